//! `clickstream-simulator`: plays a realistic storefront against the collector over HTTP.
//!
//! Shoppers arrive with a daily and weekly rhythm (evening peak, busier weekends) over several
//! simulated days ending an hour ago; they browse a catalogue with Zipf-like popularity, search,
//! add to and remove from carts, check out and buy, come back, log in mid-session, switch
//! devices and platforms, and arrive from campaigns and referrers. A small share are bots; some
//! clients' clocks are off; some deliveries arrive late (after the rest of the run) or twice.
//! Requests go through the real API with a write key and SDK-like batching and retries. The
//! same seed produces the same traffic; `--truth` writes the ground truth the end-to-end test
//! checks the marts against.

mod model;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use clap::Parser;
use model::{Catalogue, Device, Product};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// clickstream traffic simulator: realistic shoppers sent to the collector over HTTP.
#[derive(Debug, Parser)]
#[command(name = "clickstream-simulator", version, about)]
struct Cli {
    /// The collector's base URL.
    #[arg(long, env = "CLICKSTREAM_COLLECTOR_URL", default_value = "http://127.0.0.1:8080")]
    collector: String,

    /// The write key to send with.
    #[arg(long, env = "CLICKSTREAM_WRITE_KEY", default_value = "dev-write-key")]
    write_key: String,

    /// About how many events to send (the run stops generating sessions past this).
    #[arg(long, default_value_t = 50_000)]
    events: u64,

    /// Simulated days of traffic, ending an hour ago (at most 7: the collector's default window).
    #[arg(long, default_value_t = 5)]
    days: i64,

    /// Random seed: the same seed sends the same traffic.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Products in the catalogue.
    #[arg(long, default_value_t = 2_000)]
    products: usize,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,

    /// Most events per request (as an SDK batches).
    #[arg(long, default_value_t = 20)]
    batch_size: usize,

    /// Write the ground truth (what was sent) as JSON to this file.
    #[arg(long)]
    truth: Option<std::path::PathBuf>,

    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,

    /// Play shoppers live instead: sessions start now, at about --rate events per second, and
    /// each event is sent when it happens, until stopped (Ctrl-C, SIGTERM) or --duration-seconds.
    /// --events, --days and --truth do not apply. `make up` runs it beside the demo shop.
    #[arg(long)]
    live: bool,

    /// Events per second on average (--live).
    #[arg(long, default_value_t = 5.0)]
    rate: f64,

    /// Stop a live run after this many seconds (default: run until stopped).
    #[arg(long)]
    duration_seconds: Option<u64>,
}

/// What the run sent, for checking the marts.
#[derive(Debug, Default, serde::Serialize)]
struct Truth {
    seed: u64,
    from: String,
    to: String,
    /// Valid, unique, non-bot events by type.
    events_by_type: BTreeMap<String, u64>,
    /// Valid, unique, non-bot events.
    events: u64,
    /// Valid, unique events from bots.
    bot_events: u64,
    /// Events the collector must reject (sent on purpose).
    invalid_events: u64,
    /// Events sent a second time in a duplicated request.
    resent_events: u64,
    /// Events delivered after the rest of the run.
    late_events: u64,
    /// Orders (distinct order ids) by non-bot shoppers.
    orders: u64,
    /// Their revenue, as a decimal string.
    revenue: String,
    /// Non-bot sessions started.
    sessions: u64,
    /// Bot sessions.
    bot_sessions: u64,
    /// Distinct shoppers (devices) that had a session.
    shoppers: u64,
    /// Requests sent (including duplicates and retries' first attempts).
    requests: u64,
    /// Events the collector reported as rejected.
    rejected_by_collector: u64,
    /// Requests retried after 429/503/network errors.
    retries: u64,
    /// Purchases by product id: (purchase events, revenue cents).
    #[serde(skip)]
    revenue_cents: u64,
    /// How far the non-bot sessions got, and on which devices.
    funnel: Funnel,
}

/// Non-bot sessions by how far they got (each counted at every step it reached) and by device
/// class: what the calibration (simulator/README.md, "How realistic") is checked on.
#[derive(Debug, Default, serde::Serialize)]
struct Funnel {
    /// Sessions of one valid event (the marts' bounce).
    bounced: u64,
    /// Sessions with a product view.
    viewed_product: u64,
    /// Sessions with an add to cart.
    added_to_cart: u64,
    /// Sessions that began checkout.
    began_checkout: u64,
    /// Sessions with a purchase.
    purchased: u64,
    /// Sessions by device class (desktop, mobile, tablet).
    devices: BTreeMap<String, u64>,
    /// Valid events in all these sessions.
    events: u64,
}

impl Funnel {
    fn count(&mut self, events: &[Value], device_class: &str) {
        let valid: Vec<&str> = events
            .iter()
            .filter(|e| !(e["event_type"] == "add_to_cart" && e.get("product").is_none()))
            .filter_map(|e| e["event_type"].as_str())
            .collect();
        if valid.is_empty() {
            return;
        }
        let reached = |step: &str| u64::from(valid.contains(&step));
        self.bounced += u64::from(valid.len() == 1);
        self.viewed_product += reached("product_view");
        self.added_to_cart += reached("add_to_cart");
        self.began_checkout += reached("begin_checkout");
        self.purchased += reached("purchase");
        *self.devices.entry(device_class.to_owned()).or_default() += 1;
        self.events += valid.len() as u64;
    }
}

struct Shopper {
    anonymous_id: String,
    user_id: Option<String>,
    device: Device,
    logged_in: bool,
}

struct SessionPlan {
    events: Vec<Value>,
    clock_offset: Duration,
    late: bool,
}

fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string()
}

fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn product_json(product: &Product, quantity: Option<u64>) -> Value {
    let mut value = json!({
        "product_id": product.id, "category_id": product.category_id, "category_code": product.category_code,
        "brand": product.brand, "price": money(product.price_cents), "currency": "EUR",
    });
    if let Some(quantity) = quantity {
        value["quantity"] = json!(quantity);
    }
    value
}

/// What every event of one session shares: its id and the device context.
struct Visit<'a> {
    session_id: &'a str,
    context: &'a Value,
}

struct Simulation {
    rng: StdRng,
    catalogue: Catalogue,
    shoppers: Vec<Shopper>,
    end: DateTime<Utc>,
}

impl Simulation {
    fn event(
        &mut self,
        shopper: &Shopper,
        visit: &Visit<'_>,
        event_type: &str,
        time: DateTime<Utc>,
        page: Value,
        extra: Value,
    ) -> Value {
        let Visit { session_id, context } = visit;
        let mut event = json!({
            "event_id": uuid(&mut self.rng), "event_type": event_type, "event_time": iso(time),
            "anonymous_id": shopper.anonymous_id, "session_id": session_id, "page": page, "context": context,
        });
        if shopper.logged_in
            && let Some(user_id) = &shopper.user_id
        {
            event["user_id"] = json!(user_id);
        }
        if let (Some(target), Some(fields)) = (event.as_object_mut(), extra.as_object()) {
            for (key, value) in fields {
                target.insert(key.clone(), value.clone());
            }
        }
        event
    }

    /// One shopper session, in time order; truncated at the end of the timeline.
    fn session(&mut self, start: DateTime<Utc>, truth: &mut Truth) -> SessionPlan {
        let rng = &mut self.rng;
        let returning = !self.shoppers.is_empty() && rng.random_bool(0.35);
        let index = if returning {
            rng.random_range(0..self.shoppers.len())
        } else {
            let registered = rng.random_bool(0.4);
            let anonymous_id = uuid(rng);
            self.shoppers.push(Shopper {
                user_id: registered.then(|| format!("customer-{}", 100_000 + self.shoppers.len())),
                anonymous_id,
                device: model::pick_device(rng),
                logged_in: false,
            });
            self.shoppers.len() - 1
        };
        let mut shopper = std::mem::replace(
            &mut self.shoppers[index],
            Shopper { anonymous_id: String::new(), user_id: None, device: model::pick_device(rng), logged_in: false },
        );
        // A returning registered shopper is often still logged in; some switch device.
        shopper.logged_in = shopper.user_id.is_some() && rng.random_bool(0.5);
        if returning && rng.random_bool(0.1) {
            shopper.device = model::pick_device(rng);
            shopper.anonymous_id = uuid(rng);
        }
        let session_id = format!("s-{}", &uuid(rng)[..13]);
        let (campaign, referrer) = model::pick_channel(rng);
        let locale = ["en-GB", "de-DE", "fr-FR", "en-US"][rng.random_range(0..4)];
        let mut context = json!({
            "platform": shopper.device.platform, "locale": locale,
            "screen": {"width": shopper.device.screen.0, "height": shopper.device.screen.1},
            "library": {"name": "clickstream-simulator", "version": env!("CARGO_PKG_VERSION")},
            "user_agent": shopper.device.user_agent,
        });
        if shopper.device.platform != "web" {
            context["app"] = json!({"name": "Shop", "version": "5.2.0"});
        }
        let campaign_medium = campaign.as_ref().and_then(|c| c["medium"].as_str()).map(str::to_owned);
        if let Some(campaign) = campaign {
            context["campaign"] = campaign;
        }
        let clock_offset =
            if rng.random_bool(0.05) { Duration::minutes(rng.random_range(-30..=30)) } else { Duration::zero() };
        let late = rng.random_bool(0.03);
        truth.sessions += 1;

        let mut events = Vec::new();
        let mut time = start;
        // The landing page: the home page, a category, or a product (deep links from search and
        // ads). model::BOUNCE_RATE and the intents below are calibrated against published
        // benchmarks (simulator/README.md, "How realistic").
        let landing_product = self.catalogue.pick(&mut self.rng).clone();
        let landing = match self.rng.random_range(0..10) {
            0..=3 => "/".to_owned(),
            4..=6 => format!("/c/{}", self.catalogue.pick(&mut self.rng).category_code.replace('.', "/")),
            _ => format!("/p/{}", landing_product.id),
        };
        let mut page = json!({"url": format!("https://shop.example.com{landing}"), "path": landing, "title": "Shop"});
        if let Some(referrer) = referrer {
            page["referrer"] = json!(referrer);
        }
        let visit = Visit { session_id: &session_id, context: &context };
        events.push(self.event(&shopper, &visit, "page_view", time, page.clone(), json!({})));
        let bounced = self.rng.random_bool(model::bounce_probability(&shopper.device, campaign_medium.as_deref()));
        // What the visit is for: most browse, some compare products, a few came to buy.
        let intent = model::pick_intent(&mut self.rng);
        let mut cart: Vec<(Product, u64)> = Vec::new();
        let mut last: Option<Product> = None;
        if !bounced && landing.starts_with("/p/") {
            events.push(self.event(
                &shopper,
                &visit,
                "product_view",
                time,
                page,
                json!({"product": product_json(&landing_product, None)}),
            ));
            last = Some(landing_product);
        }
        let pages =
            if bounced { 0 } else { 1 + (0..24).take_while(|_| self.rng.random_bool(intent.keep_going)).count() };
        for _ in 0..pages {
            time += model::think_time(&mut self.rng);
            if self.rng.random_bool(0.12) {
                let product = self.catalogue.pick(&mut self.rng).clone();
                let query = format!("{} {}", product.brand, product.category_code.rsplit('.').next().unwrap_or("deal"));
                let page = json!({"url": format!("https://shop.example.com/search?q={}", query.replace(' ', "+")), "path": "/search", "title": "Search"});
                events.push(self.event(&shopper, &visit, "search", time, page, json!({"search": {"query": query}})));
                continue;
            }
            if !self.rng.random_bool(intent.product_page_share) {
                // A listing page: the home page or a category.
                let path = format!("/c/{}", self.catalogue.pick(&mut self.rng).category_code.replace('.', "/"));
                let page = json!({"url": format!("https://shop.example.com{path}"), "path": path, "title": "Category"});
                events.push(self.event(&shopper, &visit, "page_view", time, page, json!({})));
                continue;
            }
            let product = match &last {
                Some(previous) if self.rng.random_bool(0.6) => {
                    self.catalogue.pick_similar(&mut self.rng, previous).clone()
                }
                _ => self.catalogue.pick(&mut self.rng).clone(),
            };
            let page = json!({"url": format!("https://shop.example.com/p/{}", product.id), "path": format!("/p/{}", product.id), "title": format!("{} {}", product.brand, product.category_code)});
            events.push(self.event(
                &shopper,
                &visit,
                "product_view",
                time,
                page.clone(),
                json!({"product": product_json(&product, None)}),
            ));
            if shopper.user_id.is_some() && !shopper.logged_in && self.rng.random_bool(0.08) {
                shopper.logged_in = true; // logs in mid-session
            }
            if self.rng.random_bool(intent.add_to_cart) {
                time += model::think_time(&mut self.rng);
                let quantity = if self.rng.random_bool(0.9) { 1 } else { 2 };
                events.push(self.event(
                    &shopper,
                    &visit,
                    "add_to_cart",
                    time,
                    page.clone(),
                    json!({"product": product_json(&product, Some(quantity))}),
                ));
                cart.push((product.clone(), quantity));
            }
            if !cart.is_empty() && self.rng.random_bool(0.06) {
                time += model::think_time(&mut self.rng);
                let (removed, quantity) = cart.remove(self.rng.random_range(0..cart.len()));
                let page = json!({"url": "https://shop.example.com/cart", "path": "/cart", "title": "Cart"});
                events.push(self.event(
                    &shopper,
                    &visit,
                    "remove_from_cart",
                    time,
                    page,
                    json!({"product": product_json(&removed, Some(quantity))}),
                ));
            }
            last = Some(product);
        }
        if !cart.is_empty() && self.rng.random_bool(intent.checkout) {
            time += model::think_time(&mut self.rng);
            // Checkout needs an account: registered shoppers log in, some guests sign up.
            if shopper.user_id.is_none() && self.rng.random_bool(0.5) {
                shopper.user_id = Some(format!("customer-{}", 500_000 + self.rng.random_range(0..10_000_000)));
            }
            if shopper.user_id.is_some() {
                shopper.logged_in = true;
            }
            let page = json!({"url": "https://shop.example.com/checkout", "path": "/checkout", "title": "Checkout"});
            events.push(self.event(&shopper, &visit, "begin_checkout", time, page.clone(), json!({})));
            if self.rng.random_bool(model::PURCHASE_AFTER_CHECKOUT) {
                time += model::think_time(&mut self.rng);
                let order_id = format!("ORD-{}", &uuid(&mut self.rng)[..8].to_uppercase());
                for (product, quantity) in &cart {
                    let line = product.price_cents * quantity;
                    events.push(self.event(
                        &shopper,
                        &visit,
                        "purchase",
                        time,
                        page.clone(),
                        json!({
                            "product": product_json(product, Some(*quantity)),
                            "order": {"order_id": order_id, "revenue": money(line), "currency": "EUR"},
                        }),
                    ));
                }
            }
        }
        if self.rng.random_bool(0.002) {
            // A broken client: an add_to_cart without its product, which the collector rejects.
            events.push(self.event(
                &shopper,
                &visit,
                "add_to_cart",
                time,
                json!({"url": "https://shop.example.com/"}),
                json!({}),
            ));
            truth.invalid_events += 1;
        }
        events.retain(|e| {
            e["event_time"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).is_some_and(|t| t < self.end)
        });
        truth.funnel.count(&events, shopper.device.class);
        for event in &events {
            let valid = !(event["event_type"] == "add_to_cart" && event.get("product").is_none());
            if valid {
                truth.events += 1;
                *truth
                    .events_by_type
                    .entry(event["event_type"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
        let mut orders: Vec<&str> = events
            .iter()
            .filter(|e| e["event_type"] == "purchase")
            .filter_map(|e| e["order"]["order_id"].as_str())
            .collect();
        orders.dedup();
        truth.orders += orders.len() as u64;
        for event in events.iter().filter(|e| e["event_type"] == "purchase") {
            let text = event["order"]["revenue"].as_str().unwrap_or("0.00");
            let (units, cents) = text.split_once('.').unwrap_or((text, "0"));
            truth.revenue_cents += units.parse::<u64>().unwrap_or(0) * 100 + cents.parse::<u64>().unwrap_or(0);
        }
        self.shoppers[index] = shopper;
        SessionPlan { events, clock_offset, late }
    }

    fn bot_session(&mut self, start: DateTime<Utc>, truth: &mut Truth) -> SessionPlan {
        let agent = model::bot_agent(&mut self.rng);
        let anonymous_id = uuid(&mut self.rng);
        let context = json!({"platform": "web", "user_agent": agent, "library": {"name": "clickstream-simulator", "version": env!("CARGO_PKG_VERSION")}});
        let mut events = Vec::new();
        let mut time = start;
        for _ in 0..self.rng.random_range(10..40) {
            time += Duration::milliseconds(self.rng.random_range(300..3000));
            let product = self.catalogue.pick(&mut self.rng).clone();
            events.push(json!({
                "event_id": uuid(&mut self.rng), "event_type": "product_view", "event_time": iso(time), "anonymous_id": anonymous_id,
                "page": {"url": format!("https://shop.example.com/p/{}", product.id)}, "product": product_json(&product, None), "context": context,
            }));
        }
        events.retain(|e| {
            e["event_time"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).is_some_and(|t| t < self.end)
        });
        truth.bot_sessions += 1;
        truth.bot_events += events.len() as u64;
        SessionPlan { events, clock_offset: Duration::zero(), late: false }
    }
}

struct Sender {
    client: reqwest::Client,
    url: String,
    write_key: String,
    requests: AtomicU64,
    retries: AtomicU64,
    rejected: AtomicU64,
    sent_events: AtomicU64,
}

impl Sender {
    /// A sender to the collector and with the write key of `cli`.
    fn new(cli: &Cli) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(StdDuration::from_secs(30)).build()?,
            url: format!("{}/v1/events", cli.collector.trim_end_matches('/')),
            write_key: cli.write_key.clone(),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            sent_events: AtomicU64::new(0),
        })
    }

    /// Sends one batch like an SDK: retries 429, 5xx and network errors with exponential backoff
    /// and jitter (honouring Retry-After), never 4xx.
    async fn send(
        &self,
        events: &[Value],
        clock_offset: Duration,
        progress: &indicatif::ProgressBar,
    ) -> anyhow::Result<()> {
        let mut events = events.to_vec();
        // The client's clock: event times and sent_at both carry its offset.
        if !clock_offset.is_zero() {
            for event in &mut events {
                if let Some(time) = event["event_time"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
                    event["event_time"] = json!(iso(time + clock_offset));
                }
            }
        }
        let body = json!({"sent_at": iso(Utc::now() + clock_offset), "events": events});
        let mut delay = StdDuration::from_millis(200);
        for attempt in 0..8 {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.client.post(&self.url).header("X-Write-Key", &self.write_key).json(&body).send().await;
            let retry_after = match result {
                Ok(response)
                    if response.status().is_success() || response.status() == reqwest::StatusCode::BAD_REQUEST =>
                {
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    let rejected = answer["rejected"].as_array().map(|r| {
                        let mut indexes: Vec<u64> = r.iter().filter_map(|e| e["index"].as_u64()).collect();
                        indexes.dedup();
                        indexes.len()
                    });
                    let rejected = rejected.or_else(|| answer["errors"].as_array().map(|_| events.len())).unwrap_or(0);
                    self.rejected.fetch_add(rejected as u64, Ordering::Relaxed);
                    self.sent_events.fetch_add(events.len() as u64, Ordering::Relaxed);
                    progress.inc(events.len() as u64);
                    return Ok(());
                }
                Ok(response) if response.status().as_u16() == 429 || response.status().is_server_error() => response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(StdDuration::from_secs),
                Ok(response) => anyhow::bail!(
                    "the collector refused a batch: HTTP {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                ),
                Err(_) => None,
            };
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            let jitter = StdDuration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]));
            tokio::time::sleep(retry_after.unwrap_or(delay) + jitter).await;
            delay = (delay * 2).min(StdDuration::from_secs(10));
        }
        anyhow::bail!("a batch failed 8 times; is the collector at {} running?", self.url)
    }
}

/// Mean valid events of one session of `seed`'s traffic (from a sample of 300).
fn events_per_session(seed: u64, products: usize, start: DateTime<Utc>) -> f64 {
    let mut probe = Simulation {
        rng: StdRng::seed_from_u64(seed ^ 0x5eed),
        catalogue: Catalogue::new(&mut StdRng::seed_from_u64(seed), products),
        shoppers: Vec::new(),
        end: DateTime::<Utc>::MAX_UTC,
    };
    let mut scratch = Truth::default();
    let sample = 300;
    (0..sample).map(|_| probe.session(start, &mut scratch).events.len()).sum::<usize>() as f64 / sample as f64
}

/// `--live`: sessions start as a Poisson process at --rate / (events per session) a second;
/// each session's events are sent at their own times, one request per event as a tracker on a
/// page sends them. Sessions still running when the run stops are cut short.
async fn live(cli: &Cli) -> anyhow::Result<()> {
    anyhow::ensure!(cli.rate > 0.0 && cli.rate.is_finite(), "--rate must be above 0 events per second");
    let mut rng = StdRng::seed_from_u64(cli.seed);
    let catalogue = Catalogue::new(&mut rng, cli.products);
    let mut simulation = Simulation { rng, catalogue, shoppers: Vec::new(), end: DateTime::<Utc>::MAX_UTC };
    let sessions_per_second = cli.rate / events_per_session(cli.seed, cli.products, Utc::now());
    let sender = Arc::new(Sender::new(cli)?);
    let progress = indicatif::ProgressBar::hidden();
    let deadline = cli.duration_seconds.map(|s| tokio::time::Instant::now() + StdDuration::from_secs(s));
    let mut truth = Truth::default();
    let mut sessions = tokio::task::JoinSet::new();
    let mut report = tokio::time::interval(StdDuration::from_secs(60));
    report.tick().await;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    eprintln!("simulator: live at about {:.1} events/s against {} (Ctrl-C stops)", cli.rate, sender.url);
    loop {
        let gap: f64 = -(1.0 - simulation.rng.random_range(0.0..1.0f64)).ln() / sessions_per_second;
        let next = tokio::time::sleep(StdDuration::from_secs_f64(gap.min(3600.0)));
        let stop = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = next => {}
            _ = stop => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = report.tick() => {
                eprintln!("simulator: {} events sent, {} sessions running", sender.sent_events.load(Ordering::Relaxed), sessions.len());
                continue;
            }
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                if let Ok(Err(error)) = done {
                    eprintln!("simulator: {error:#}");
                }
                continue;
            }
        }
        // Bounded: a collector that stops answering cannot pile up sessions without end.
        if sessions.len() >= 10_000 {
            continue;
        }
        let now = Utc::now();
        let plan = if simulation.rng.random_bool(0.02) {
            simulation.bot_session(now, &mut truth)
        } else {
            simulation.session(now, &mut truth)
        };
        let (sender, progress) = (sender.clone(), progress.clone());
        sessions.spawn(async move {
            for event in plan.events {
                let at = event["event_time"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok());
                if let Some(wait) = at.and_then(|at| (at - Utc::now()).to_std().ok()) {
                    tokio::time::sleep(wait).await;
                }
                sender.send(&[event], plan.clock_offset, &progress).await?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    sessions.abort_all();
    eprintln!("simulator: stopped after {} events", sender.sent_events.load(Ordering::Relaxed));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        (1..=7).contains(&cli.days),
        "--days must be 1 to 7 (the collector keeps event times up to 7 days old)"
    );
    anyhow::ensure!(
        cli.products > 0 && cli.batch_size > 0 && cli.concurrency > 0,
        "--products, --batch-size and --concurrency must be above 0"
    );
    if cli.live {
        return live(&cli).await;
    }
    let now = Utc::now();
    let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(1) + Duration::minutes(59);
    let start = (end - Duration::days(cli.days)).duration_trunc(Duration::hours(1)).unwrap_or(end);
    let mut rng = StdRng::seed_from_u64(cli.seed);
    let catalogue = Catalogue::new(&mut rng, cli.products);
    let mut simulation = Simulation { rng, catalogue, shoppers: Vec::new(), end };

    // Calibrate sessions per day so the timeline holds about --events events.
    let per_session = events_per_session(cli.seed, cli.products, start);
    let per_day = cli.events as f64 / per_session / cli.days as f64;

    let progress = if cli.no_progress || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(cli.events);
        bar.set_style(
            indicatif::ProgressStyle::with_template("simulating {bar:40} {pos}/{len} events {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let sender = Arc::new(Sender::new(&cli)?);
    let mut truth = Truth { seed: cli.seed, from: iso(start), to: iso(end), ..Truth::default() };
    let (queue, receiver) = tokio::sync::mpsc::channel::<(Vec<Value>, Duration)>(cli.concurrency * 4);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let mut workers = Vec::new();
    for _ in 0..cli.concurrency {
        let (sender, receiver, progress) = (sender.clone(), receiver.clone(), progress.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = receiver.lock().await.recv().await;
                let Some((batch, offset)) = next else { return Ok::<(), anyhow::Error>(()) };
                sender.send(&batch, offset, &progress).await?;
            }
        }));
    }

    let mut late: Vec<(Vec<Value>, Duration)> = Vec::new();
    let mut hour = start;
    let mut carry = 0.0;
    'timeline: while hour < end {
        let expected = model::sessions_in_hour(hour, per_day) + carry;
        let count = expected.floor() as u64;
        carry = expected - count as f64;
        for _ in 0..count {
            if truth.events + truth.bot_events >= cli.events {
                break 'timeline;
            }
            let session_start = model::start_in_hour(&mut simulation.rng, hour);
            let plan = if simulation.rng.random_bool(0.02) {
                simulation.bot_session(session_start, &mut truth)
            } else {
                simulation.session(session_start, &mut truth)
            };
            for batch in plan.events.chunks(cli.batch_size) {
                let batch = batch.to_vec();
                if plan.late {
                    truth.late_events += batch.len() as u64;
                    late.push((batch, plan.clock_offset));
                    continue;
                }
                if simulation.rng.random_bool(0.02) {
                    // A retry whose first attempt did arrive: the same events twice.
                    truth.resent_events += batch.len() as u64;
                    queue.send((batch.clone(), plan.clock_offset)).await?;
                }
                queue.send((batch, plan.clock_offset)).await?;
            }
        }
        hour += Duration::hours(1);
    }
    // Late deliveries arrive after everything else, into hours the pipeline already saw.
    for batch in late {
        queue.send(batch).await?;
    }
    drop(queue);
    for worker in workers {
        worker.await??;
    }
    progress.finish_and_clear();
    truth.shoppers = simulation.shoppers.len() as u64;
    truth.requests = sender.requests.load(Ordering::Relaxed);
    truth.retries = sender.retries.load(Ordering::Relaxed);
    truth.rejected_by_collector = sender.rejected.load(Ordering::Relaxed);
    truth.revenue = money(truth.revenue_cents);
    if let Some(path) = &cli.truth {
        std::fs::write(path, serde_json::to_vec_pretty(&truth)?)?;
    }
    println!(
        "simulator: {} events ({} by bots) in {} sessions of {} shoppers, {} orders, revenue EUR {}, {} sent late, {} resent, {} rejected as intended, {} requests",
        truth.events + truth.bot_events,
        truth.bot_events,
        truth.sessions + truth.bot_sessions,
        truth.shoppers,
        truth.orders,
        truth.revenue,
        truth.late_events,
        truth.resent_events,
        truth.rejected_by_collector,
        truth.requests
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark ranges of simulator/README.md ("How realistic"), checked on the default
    /// traffic: 20,000 sessions of the default seed's shoppers.
    #[test]
    fn the_default_traffic_lands_inside_the_benchmark_ranges() {
        let mut rng = StdRng::seed_from_u64(42);
        let catalogue = Catalogue::new(&mut rng, 2_000);
        let mut simulation = Simulation { rng, catalogue, shoppers: Vec::new(), end: DateTime::<Utc>::MAX_UTC };
        let mut truth = Truth::default();
        let start: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
        for _ in 0..20_000 {
            simulation.session(start, &mut truth);
        }
        let funnel = &truth.funnel;
        let sessions = funnel.devices.values().sum::<u64>() as f64;
        let share = |count: u64| count as f64 / sessions;
        let within = |name: &str, value: f64, (low, high): (f64, f64)| {
            eprintln!("{name}: {value:.4} (range {low}..{high})");
            assert!((low..=high).contains(&value), "{name} {value:.4} is outside {low}..{high}");
        };
        within("bounce rate", share(funnel.bounced), (0.20, 0.45));
        within("sessions with a product view", share(funnel.viewed_product), (0.35, 0.70));
        within("add-to-cart rate", share(funnel.added_to_cart), (0.05, 0.10));
        within("conversion rate", share(funnel.purchased), (0.015, 0.04));
        within("cart abandonment", 1.0 - funnel.purchased as f64 / funnel.added_to_cart as f64, (0.60, 0.80));
        within("checkout abandonment", 1.0 - funnel.purchased as f64 / funnel.began_checkout as f64, (0.25, 0.50));
        within("events per session", funnel.events as f64 / sessions, (2.0, 6.0));
        let device = |class: &str| share(funnel.devices.get(class).copied().unwrap_or(0));
        within("mobile share", device("mobile"), (0.60, 0.70));
        within("desktop share", device("desktop"), (0.27, 0.37));
        within("tablet share", device("tablet"), (0.01, 0.05));
    }
}
