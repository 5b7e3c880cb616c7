//! Turns a valid tracker event into the stored event: ids, server time, clock-skew correction,
//! truncated IP, parsed user agent, campaign fields.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use event_model::event::EventView;
use event_model::tracker::UrlFacts;
use event_model::{Event, EventId, EventType, TrackerEvent};

/// What the collector knows about the request an event came in.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Source of the write key.
    pub source_id: Arc<str>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// The batch's `sent_at`, for events without their own.
    pub batch_sent_at: Option<DateTime<Utc>>,
    /// The client's IP address, as far as it can be known.
    pub client_ip: Option<IpAddr>,
    /// The request's User-Agent header.
    pub user_agent: Option<String>,
    /// The header's parsed facts, computed once per request.
    pub user_agent_facts: Option<Arc<UserAgentFacts>>,
}

/// The accepted window for corrected event times.
#[derive(Clone, Copy, Debug)]
pub struct TimeWindow {
    /// How far before `received_at` an event may claim to be.
    pub max_age: Duration,
    /// How far after `received_at` an event may claim to be.
    pub max_future: Duration,
}

/// Truncates an IP to its network: /24 for IPv4, /48 for IPv6. IPv4-mapped IPv6 addresses are
/// treated as IPv4.
pub fn truncate_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            let mut out = String::with_capacity(15);
            for octet in [a, b, c] {
                out.push_str(itoa::Buffer::new().format(octet));
                out.push('.');
            }
            out.push('0');
            out
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => truncate_ip(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
            }
        },
    }
}

/// User-agent facts for the stored event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAgentFacts {
    /// Browser or crawler name.
    pub browser: Option<String>,
    /// Browser version.
    pub browser_version: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Operating system version.
    pub os_version: Option<String>,
    /// desktop, mobile, tablet, bot or other.
    pub device_class: &'static str,
    /// Known crawler or automation tool.
    pub is_bot: bool,
}

/// Substrings of automation tools that `woothee`'s crawler list does not cover.
const AUTOMATION_MARKERS: &[&str] = &[
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "curl/",
    "wget/",
    "okhttp",
    "java/",
    "libwww-perl",
    "scrapy",
    "httpclient",
    "bot",
    "spider",
    "crawl",
    "slurp",
    "lighthouse",
];

fn known(value: &str) -> Option<String> {
    (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN).then(|| value.to_owned())
}

/// Parses a user agent with `woothee` (a maintained, table-driven parser with a crawler list),
/// and flags automation tools it does not list.
pub fn parse_user_agent(user_agent: &str) -> UserAgentFacts {
    let lower = user_agent.to_ascii_lowercase();
    let automation = AUTOMATION_MARKERS.iter().any(|marker| lower.contains(marker));
    let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
        return UserAgentFacts {
            device_class: if automation { "bot" } else { "other" },
            is_bot: automation,
            ..UserAgentFacts::default()
        };
    };
    let crawler = parsed.category == "crawler";
    let tablet = lower.contains("ipad") || (lower.contains("android") && !lower.contains("mobile"));
    let device_class = if crawler || automation {
        "bot"
    } else {
        match parsed.category {
            "pc" => "desktop",
            "smartphone" if tablet => "tablet",
            "smartphone" | "mobilephone" => "mobile",
            _ => "other",
        }
    };
    UserAgentFacts {
        browser: known(parsed.name),
        browser_version: known(parsed.version),
        os: known(parsed.os),
        os_version: known(&parsed.os_version),
        device_class,
        is_bot: crawler || automation,
    }
}

/// Parses user agents through a bounded cache: real traffic repeats a few thousand user agents,
/// so most events skip the parser.
pub struct UserAgentParser {
    cache: quick_cache::sync::Cache<String, Arc<UserAgentFacts>>,
}

impl Default for UserAgentParser {
    fn default() -> Self {
        Self { cache: quick_cache::sync::Cache::new(10_000) }
    }
}

impl UserAgentParser {
    /// The facts of `user_agent`, from the cache or freshly parsed.
    pub fn parse(&self, user_agent: &str) -> Arc<UserAgentFacts> {
        if let Some(facts) = self.cache.get(user_agent) {
            return facts;
        }
        let facts = Arc::new(parse_user_agent(user_agent));
        self.cache.insert(user_agent.to_owned(), facts.clone());
        facts
    }
}

/// `time` truncated to whole microseconds (the stored precision).
fn to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    let below_micros = time.nanosecond() % 1_000;
    if below_micros == 0 { time } else { time - TimeDelta::nanoseconds(i64::from(below_micros)) }
}

/// Browser, browser version, OS and OS version, borrowed.
fn user_agent_text(facts: &UserAgentFacts) -> [Option<Cow<'_, str>>; 4] {
    [&facts.browser, &facts.browser_version, &facts.os, &facts.os_version].map(|v| v.as_deref().map(Cow::Borrowed))
}

/// Builds the stored event from a valid tracker event and its request.
///
/// The stored event borrows its text from the tracker event (which borrows the request body)
/// and from the request, so nothing is copied until the event is encoded for the queue.
pub fn enrich<'a>(
    event: TrackerEvent<'a>,
    request: &'a RequestContext,
    window: TimeWindow,
    parser: &UserAgentParser,
) -> EventView<'a> {
    let received_at = to_micros(request.received_at);
    let sent_at = event.sent_at.or(request.batch_sent_at).map(to_micros);
    let client_event_time = event.event_time.map(to_micros);
    // Clients may claim any time chrono can read (years ±262,143): a correction past chrono's
    // range is no time at all, so out of range.
    let corrected = match (client_event_time, sent_at) {
        (Some(claimed), Some(sent)) => received_at.checked_sub_signed(sent.signed_duration_since(claimed)),
        (Some(claimed), None) => Some(claimed),
        (None, _) => Some(received_at),
    };
    let max_age = TimeDelta::from_std(window.max_age).unwrap_or(TimeDelta::MAX);
    let earliest = received_at.checked_sub_signed(max_age).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let max_future = TimeDelta::from_std(window.max_future).unwrap_or(TimeDelta::zero());
    let latest = received_at.checked_add_signed(max_future).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let (event_time, out_of_range) = match corrected {
        Some(corrected) if corrected >= earliest && corrected <= latest => (corrected, false),
        _ => (received_at, true),
    };

    let id = event.event_id.unwrap_or_else(EventId::generate);
    let event_name = match event.event_type {
        EventType::Custom => event.event_name.unwrap_or_default(),
        other => Cow::Borrowed(other.as_str()),
    };
    let page = event.page.unwrap_or_default();
    let product = event.product.unwrap_or_default();
    let order = event.order.unwrap_or_default();
    let context = event.context.unwrap_or_default();
    let campaign = context.campaign.unwrap_or_default();
    // `check` parsed the URL of every valid event; an event built another way gets it here.
    let url_facts = page.url_facts.or_else(|| page.url.as_deref().and_then(UrlFacts::parse).map(UrlFacts::into_owned));
    let (url_path, [url_source, url_medium, url_campaign, url_term, url_content]) =
        url_facts.map(|facts| (Some(facts.path), facts.utm)).unwrap_or_default();
    // The request's user-agent facts are borrowed; an event's own user agent (server-side
    // tracking) has facts of its own, which the event then owns.
    let request_user_agent = request.user_agent.as_deref().map(Cow::Borrowed);
    let (user_agent, [ua_browser, ua_browser_version, ua_os, ua_os_version], device_class, is_bot) =
        match (context.user_agent, request.user_agent_facts.as_deref()) {
            (Some(own), _) => {
                let facts = parser.parse(&own);
                let text = user_agent_text(&facts).map(|v| v.map(|v| Cow::Owned(v.into_owned())));
                (Some(own), text, facts.device_class, facts.is_bot)
            }
            (None, Some(facts)) => (request_user_agent, user_agent_text(facts), facts.device_class, facts.is_bot),
            (None, None) => (request_user_agent, Default::default(), "other", false),
        };
    let app = context.app.unwrap_or_default();
    let library = context.library.unwrap_or_default();
    let screen = context.screen.unwrap_or_default();

    Event {
        event_id: id.text(),
        event_id_generated: id.generated,
        event_type: event.event_type,
        event_name,
        event_time,
        client_event_time,
        event_time_out_of_range: out_of_range,
        sent_at,
        received_at,
        source_id: Cow::Borrowed(&request.source_id),
        anonymous_id: event.anonymous_id,
        user_id: event.user_id,
        session_id: event.session_id,
        page_path: page.path.or(url_path),
        page_url: page.url,
        page_referrer: page.referrer,
        page_title: page.title,
        product_id: product.product_id,
        category_id: product.category_id,
        category_code: product.category_code,
        brand: product.brand,
        price: product.price,
        currency: product.currency,
        quantity: product.quantity,
        order_id: order.order_id,
        revenue: order.revenue,
        order_currency: order.currency,
        search_query: event.search.and_then(|s| s.query),
        platform: context.platform,
        app_name: app.name,
        app_version: app.version,
        locale: context.locale,
        screen_width: screen.width,
        screen_height: screen.height,
        library_name: library.name,
        library_version: library.version,
        utm_source: campaign.source.or(url_source),
        utm_medium: campaign.medium.or(url_medium),
        utm_campaign: campaign.name.or(url_campaign),
        utm_term: campaign.term.or(url_term),
        utm_content: campaign.content.or(url_content),
        ip_truncated: request.client_ip.map(|ip| Cow::Owned(truncate_ip(ip))),
        user_agent,
        ua_browser,
        ua_browser_version,
        ua_os,
        ua_os_version,
        ua_device_class: Some(Cow::Borrowed(device_class)),
        is_bot,
        properties: event.properties.map(|p| Cow::Owned(serde_json::Value::Object(p).to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn window() -> TimeWindow {
        TimeWindow { max_age: Duration::from_secs(7 * 86_400), max_future: Duration::from_secs(600) }
    }

    fn request(received_at: DateTime<Utc>) -> RequestContext {
        RequestContext {
            source_id: "shop".into(),
            received_at,
            batch_sent_at: None,
            client_ip: Some("203.0.113.77".parse().unwrap()),
            user_agent: Some(CHROME_MAC.into()),
            user_agent_facts: Some(Arc::new(parse_user_agent(CHROME_MAC))),
        }
    }

    fn tracker(json: serde_json::Value) -> TrackerEvent<'static> {
        serde::Deserialize::deserialize(json).unwrap()
    }

    #[test]
    fn client_clock_skew_is_corrected_the_segment_way() {
        let received = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        // The client's clock runs one hour fast: it says it sent at 13:00:05 an event of 13:00:00.
        let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a",
            "event_time": "2026-11-24T13:00:00Z", "sent_at": "2026-11-24T13:00:05Z"}));
        let request = request(received);
        let stored = enrich(event, &request, window(), &UserAgentParser::default());
        assert_eq!(stored.event_time, Utc.with_ymd_and_hms(2026, 11, 24, 11, 59, 55).unwrap());
        assert_eq!(stored.client_event_time.unwrap().to_rfc3339(), "2026-11-24T13:00:00+00:00");
        assert!(!stored.event_time_out_of_range);
    }

    #[test]
    fn the_batch_sent_at_applies_to_events_without_their_own() {
        let received = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let mut context = request(received);
        context.batch_sent_at = Some(Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 10).unwrap());
        let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a",
            "event_time": "2026-11-24T12:00:00Z"}));
        let stored = enrich(event, &context, window(), &UserAgentParser::default());
        assert_eq!(stored.event_time, Utc.with_ymd_and_hms(2026, 11, 24, 11, 59, 50).unwrap());
    }

    #[test]
    fn times_outside_the_window_are_flagged_and_set_to_receipt_time() {
        let received = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        for claim in ["2025-01-01T00:00:00Z", "2026-11-24T13:00:00Z"] {
            let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a",
                "event_time": claim}));
            let request = request(received);
            let stored = enrich(event, &request, window(), &UserAgentParser::default());
            assert!(stored.event_time_out_of_range, "{claim}");
            assert_eq!(stored.event_time, received);
            assert_eq!(stored.client_event_time.unwrap(), claim.parse::<DateTime<Utc>>().unwrap());
        }
    }

    /// Found by `proptests::any_event_and_sent_times_are_enriched_without_panicking`: the
    /// clock-skew correction of claims at the ends of chrono's range overflowed, and the
    /// collector panicked.
    #[test]
    fn a_correction_past_chrono_s_range_is_out_of_range_not_a_panic() {
        let received = Utc.with_ymd_and_hms(2023, 11, 14, 22, 13, 20).unwrap();
        let mut context = request(received);
        context.batch_sent_at = Some("+262142-12-31T23:59:59Z".parse().unwrap());
        let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a",
            "event_time": "-262143-01-01T00:00:00Z"}));
        let stored = enrich(event, &context, window(), &UserAgentParser::default());
        assert!(stored.event_time_out_of_range);
        assert_eq!(stored.event_time, received);
        let unlimited = TimeWindow { max_age: Duration::MAX, max_future: Duration::MAX };
        let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a"}));
        assert!(!enrich(event, &context, unlimited, &UserAgentParser::default()).event_time_out_of_range);
    }

    #[test]
    fn a_missing_event_id_is_generated_as_uuid_v7_and_recorded() {
        let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a"}));
        let request = request(Utc::now());
        let stored = enrich(event, &request, window(), &UserAgentParser::default());
        assert!(stored.event_id_generated);
        assert_eq!(uuid::Uuid::parse_str(&stored.event_id).unwrap().get_version_num(), 7);
    }

    #[test]
    fn ips_are_truncated_never_stored_whole() {
        assert_eq!(truncate_ip("203.0.113.77".parse().unwrap()), "203.0.113.0");
        assert_eq!(truncate_ip("2001:db8:abcd:12::1".parse().unwrap()), "2001:db8:abcd::");
        assert_eq!(truncate_ip("::ffff:198.51.100.9".parse().unwrap()), "198.51.100.0");
    }

    #[test]
    fn user_agents_give_browser_os_device_class_and_bot_flag() {
        let chrome = parse_user_agent(CHROME_MAC);
        assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
        assert_eq!(chrome.os.as_deref(), Some("Mac OSX"));
        assert_eq!(chrome.device_class, "desktop");
        assert!(!chrome.is_bot);
        assert_eq!(parse_user_agent(IPHONE).device_class, "mobile");
        assert_eq!(parse_user_agent(IPAD).device_class, "tablet");
        let bot = parse_user_agent(GOOGLEBOT);
        assert!(bot.is_bot);
        assert_eq!(bot.device_class, "bot");
        assert!(parse_user_agent("Mozilla/5.0 HeadlessChrome/120.0").is_bot);
        assert!(parse_user_agent("curl/8.5.0").is_bot);
    }

    #[test]
    fn campaign_fields_come_from_context_or_the_page_url() {
        let event = tracker(serde_json::json!({"event_type": "page_view", "anonymous_id": "a",
            "page": {"url": "https://shop.example/p/1?utm_source=news&utm_medium=email&x=1"},
            "context": {"campaign": {"name": "black-friday"}}}));
        let request = request(Utc::now());
        let stored = enrich(event, &request, window(), &UserAgentParser::default());
        assert_eq!(stored.utm_source.as_deref(), Some("news"));
        assert_eq!(stored.utm_medium.as_deref(), Some("email"));
        assert_eq!(stored.utm_campaign.as_deref(), Some("black-friday"));
        assert_eq!(stored.page_path.as_deref(), Some("/p/1"));
    }

    #[test]
    fn custom_events_keep_their_name_and_properties_become_json_text() {
        let event = tracker(serde_json::json!({"event_type": "custom", "event_name": "newsletter_signup",
            "user_id": "u1", "properties": {"list": "weekly"},
            "context": {"user_agent": IPHONE}}));
        let request = request(Utc::now());
        let stored = enrich(event, &request, window(), &UserAgentParser::default());
        assert_eq!(stored.event_name, "newsletter_signup");
        assert_eq!(stored.properties.as_deref(), Some(r#"{"list":"weekly"}"#));
        assert_eq!(stored.ua_device_class.as_deref(), Some("mobile"), "context user agent wins");
    }

    /// Properties of decoding + validation + enrichment, over generated requests; `make fuzz`
    /// runs them longer.
    mod proptests {
        use event_model::strategies;
        use event_model::tracker::{Limits, parse_body};
        use proptest::prelude::*;
        use serde::Deserialize;
        use serde_json::Value;

        use super::*;

        proptest! {
            #![proptest_config(strategies::config(48))]

            /// A valid request is stored as serde's own reading of its JSON is: the collector's
            /// decoders (one event read in place, a batch in one pass, or in two) give the same
            /// stored event, and its queue encoding is serde_json's of the same struct.
            #[test]
            fn valid_events_are_stored_as_the_serde_reference_stores_them(
                events in prop::collection::vec(strategies::tracker_event(), 1..4),
                pretty in any::<bool>(),
            ) {
                let body = if events.len() == 1 { events[0].clone() } else { serde_json::json!({"events": events}) };
                let text = if pretty { serde_json::to_string_pretty(&body).unwrap() } else { body.to_string() };
                let limits = Limits::default();
                let batch = parse_body(&text, &limits).unwrap();
                let context = request(Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
                let parser = UserAgentParser::default();
                for (item, sent) in batch.items.into_iter().zip(&events) {
                    let mut parsed = item.outcome.unwrap();
                    let mut reference = TrackerEvent::deserialize(sent).unwrap();
                    prop_assert_eq!(reference.check(&limits), vec![]);
                    reference.assign_missing_id();
                    parsed.event_id = parsed.event_id.or(reference.event_id);
                    let stored = enrich(parsed, &context, window(), &parser).to_json_bytes();
                    let expected = enrich(reference, &context, window(), &parser);
                    let reference_bytes = serde_json::to_vec(&expected).unwrap();
                    prop_assert_eq!(String::from_utf8_lossy(&stored), String::from_utf8_lossy(&reference_bytes));
                    // Field for field against what was sent.
                    let stored = Event::from_json_bytes(&stored).unwrap();
                    prop_assert_eq!(stored.event_type.as_str(), sent["event_type"].as_str().unwrap());
                    prop_assert_eq!(stored.anonymous_id.as_deref(), sent.get("anonymous_id").and_then(Value::as_str));
                    prop_assert_eq!(stored.user_id.as_deref(), sent.get("user_id").and_then(Value::as_str));
                    let properties = stored.properties.as_deref().map(|p| serde_json::from_str::<Value>(p).unwrap());
                    prop_assert_eq!(properties.as_ref(), sent.get("properties"));
                    let price = sent.pointer("/product/price").map(|p| serde_json::from_value::<event_model::Money>(p.clone()).unwrap());
                    prop_assert_eq!(stored.price, price);
                    prop_assert_eq!(stored.source_id, "shop");
                    prop_assert!(stored.event_time_out_of_range || stored.event_time <= context.received_at + TimeDelta::minutes(10));
                }
            }

            /// Claimed and sent times anywhere in chrono's range are stored without panicking:
            /// an impossible correction is out of range, and the event takes its receipt time.
            #[test]
            fn any_event_and_sent_times_are_enriched_without_panicking(
                event_time in strategies::maybe(strategies::timestamp()),
                sent_at in strategies::maybe(strategies::timestamp()),
                batch_sent_at in strategies::maybe(strategies::timestamp()),
                // The collector's own clock: this century.
                received_at in (1_700_000_000i64..1_900_000_000, 0u32..1_000_000_000)
                    .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap()),
            ) {
                let mut json = serde_json::json!({"event_type": "page_view", "anonymous_id": "a"});
                if let Some(time) = event_time {
                    json["event_time"] = serde_json::to_value(time).unwrap();
                }
                if let Some(time) = sent_at {
                    json["sent_at"] = serde_json::to_value(time).unwrap();
                }
                let text = json.to_string();
                let event = event_model::tracker::parse_event(&text, &Limits::default()).unwrap();
                let mut context = request(received_at);
                context.batch_sent_at = batch_sent_at;
                let stored = enrich(event, &context, window(), &UserAgentParser::default());
                prop_assert_eq!(stored.received_at, to_micros(received_at));
                if stored.event_time_out_of_range {
                    prop_assert_eq!(stored.event_time, stored.received_at);
                }
            }
        }
    }
}
