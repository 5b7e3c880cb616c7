//! A fault-injection proxy for the test suite: it sits on `127.0.0.1:0` in front of an
//! upstream on loopback (an emulator) and, by a list of [`Rule`]s, resets connections, answers
//! canned HTTP statuses, stalls requests or forwards them — counting what it did, so a test can
//! assert that the faults it asked for really happened.
//!
//! Two modes:
//!
//! * [`Mode::Http`] understands HTTP/1.1 (with `hyper`): rules match each request by method and
//!   path (substring or regex) and by occurrence (the first K, every Nth, a seeded random
//!   fraction). Client connections are kept alive; bodies stream through in both directions,
//!   chunked or sized, however large. Every forwarded request gets its own upstream connection,
//!   so an upstream that closes its connections (HTTP/1.0) never turns into a fault the test did
//!   not ask for.
//! * [`Mode::Tcp`] acts per connection, for protocols it does not parse (gRPC over HTTP/2):
//!   a rule applies to a whole connection, and rules that name a method or a path never match.
//!
//! Actions ([`Action`]): [`Forward`](Action::Forward); [`Reset`](Action::Reset) — `SO_LINGER`
//! 0 then close, so the client sees a TCP RST; [`Respond`](Action::Respond) — a canned status
//! with the body the test gives (the request body is read first, so the client sees the answer
//! rather than a broken pipe); [`Stall`](Action::Stall) — hold the request, then forward it or
//! drop the connection; [`ForwardThenReset`](Action::ForwardThenReset) — the request takes
//! effect upstream but its answer is lost; [`CutAfter`](Action::CutAfter) — (TCP) forward for a
//! while, then reset both sides.
//!
//! ```no_run
//! # async fn example(emulator: std::net::SocketAddr) -> std::io::Result<()> {
//! use fault_proxy::{Action, FaultProxy, Rule, When};
//! let proxy = FaultProxy::http(
//!     emulator,
//!     vec![
//!         Rule::new("reset the first upload", Action::Reset).method("POST").path_contains("/upload/").when(When::First(1)),
//!         Rule::new("503 every 3rd read", Action::respond(503, r#"{"error":{"code":503}}"#)).path_contains("alt=media").when(When::EveryNth(3)),
//!     ],
//! )
//! .await?;
//! // Point the client at proxy.url(), run, then:
//! assert_eq!(proxy.counters().rule("reset the first upload").fired, 1);
//! # Ok(()) }
//! ```
//!
//! Every loop is bounded: the accept loop by the proxy's life (and at most
//! [`MAX_CONNECTIONS`] connections at once), each connection by its client, request bodies that
//! are discarded by [`MAX_DISCARDED_BODY`] and [`BODY_TIMEOUT`].

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Most client connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 256;
/// Most bytes of a request body read and discarded before a canned answer, or buffered for a
/// stalled forward.
pub const MAX_DISCARDED_BODY: usize = 1 << 30;
/// Longest wait for a request body to be discarded, or an upstream answer to be read before a
/// [`Action::ForwardThenReset`].
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the proxy reads the traffic it relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1, request by request.
    Http,
    /// Bytes, connection by connection.
    Tcp,
}

/// Which requests a rule applies to, among those its method and path match.
#[derive(Clone, Debug)]
pub enum When {
    /// Every one.
    Always,
    /// The first `k`.
    First(u64),
    /// The Nth, 2Nth, 3Nth… (`EveryNth(1)` is every one; `EveryNth(0)` none).
    EveryNth(u64),
    /// Each with probability `fraction`, drawn from a generator seeded with `seed`: the same
    /// sequence of requests always gets the same faults.
    Fraction {
        /// Between 0 and 1.
        fraction: f64,
        /// The generator's seed.
        seed: u64,
    },
}

/// How a rule matches request paths (the path with its query string).
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// Any path.
    Any,
    /// Paths containing this text.
    Contains(String),
    /// Paths matching this regex.
    Regex(regex::Regex),
}

/// What the proxy does with a request (or, in TCP mode, a connection).
#[derive(Clone, Debug)]
pub enum Action {
    /// Relay it upstream and relay the answer back.
    Forward,
    /// Reset the client connection (`SO_LINGER` 0, then close: a TCP RST) without forwarding.
    Reset,
    /// Answer with this status and body without forwarding.
    Respond(Canned),
    /// Hold the request this long, then forward it or drop the connection. A client that gives
    /// up meanwhile still sees its request forwarded later with [`AfterStall::Forward`], as a
    /// slow network would deliver it.
    Stall {
        /// How long.
        duration: Duration,
        /// Then what.
        then: AfterStall,
    },
    /// Forward the request, read the whole answer, then reset the client connection instead of
    /// relaying it: the request took effect, the client never learns so. (TCP mode: connect
    /// upstream, then reset both sides at once.)
    ForwardThenReset,
    /// (TCP mode) Forward for this long, then reset both sides. In HTTP mode: wait this long,
    /// then reset.
    CutAfter(Duration),
}

impl Action {
    /// A canned answer with a JSON body.
    pub fn respond(status: u16, body: impl Into<Bytes>) -> Self {
        Action::Respond(Canned { status, content_type: "application/json; charset=UTF-8".into(), body: body.into() })
    }

    /// Holds the request for `duration`, then forwards it.
    pub fn stall_then_forward(duration: Duration) -> Self {
        Action::Stall { duration, then: AfterStall::Forward }
    }

    /// Holds the request for `duration`, then closes the connection without an answer.
    pub fn stall_then_drop(duration: Duration) -> Self {
        Action::Stall { duration, then: AfterStall::Drop }
    }
}

/// What a stall ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStall {
    /// Forward the request.
    Forward,
    /// Close the connection (FIN) without an answer.
    Drop,
}

/// A canned HTTP answer.
#[derive(Clone, Debug)]
pub struct Canned {
    /// The status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The body, as the test gives it.
    pub body: Bytes,
}

/// One fault rule. The first rule whose method, path and occurrence all match decides what
/// happens to a request; a request no rule claims is forwarded.
#[derive(Clone, Debug)]
pub struct Rule {
    name: String,
    method: Option<String>,
    path: PathMatch,
    when: When,
    action: Action,
}

impl Rule {
    /// A rule named `name` (for its counters) doing `action` to every request.
    pub fn new(name: impl Into<String>, action: Action) -> Self {
        Self { name: name.into(), method: None, path: PathMatch::Any, when: When::Always, action }
    }

    /// Only requests with this method (`GET`, `POST`…).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path and query contain `text`.
    pub fn path_contains(mut self, text: impl Into<String>) -> Self {
        self.path = PathMatch::Contains(text.into());
        self
    }

    /// Only requests whose path and query match `regex`.
    pub fn path_regex(mut self, regex: regex::Regex) -> Self {
        self.path = PathMatch::Regex(regex);
        self
    }

    /// Which of the matching requests get the action.
    pub fn when(mut self, when: When) -> Self {
        self.when = when;
        self
    }

    fn matches(&self, method: Option<&str>, path: Option<&str>) -> bool {
        let method_ok = match (&self.method, method) {
            (None, _) => true,
            (Some(wanted), Some(method)) => wanted == method,
            (Some(_), None) => false,
        };
        let path_ok = match (&self.path, path) {
            (PathMatch::Any, _) => true,
            (PathMatch::Contains(text), Some(path)) => path.contains(text.as_str()),
            (PathMatch::Regex(regex), Some(path)) => regex.is_match(path),
            (_, None) => false,
        };
        method_ok && path_ok
    }
}

/// What one rule saw and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCounters {
    /// The rule's name.
    pub name: String,
    /// Requests (or connections) its method and path matched.
    pub matched: u64,
    /// Those it applied its action to.
    pub fired: u64,
}

/// What the proxy did since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Client connections accepted.
    pub connections: u64,
    /// Requests received (HTTP mode).
    pub requests: u64,
    /// Requests (or connections) forwarded upstream, stalled ones included.
    pub forwarded: u64,
    /// Client connections reset by [`Action::Reset`], [`Action::ForwardThenReset`] or
    /// [`Action::CutAfter`].
    pub resets: u64,
    /// Canned answers sent.
    pub responded: u64,
    /// Requests (or connections) stalled.
    pub stalled: u64,
    /// Connections dropped after a stall.
    pub dropped: u64,
    /// Forwards that failed because the upstream could not be reached (answered 502).
    pub upstream_failures: u64,
    /// Per rule, in rule order.
    pub rules: Vec<RuleCounters>,
}

impl Counters {
    /// The counters of the rule named `name` (all zero if there is none).
    pub fn rule(&self, name: &str) -> RuleCounters {
        self.rules.iter().find(|r| r.name == name).cloned().unwrap_or_default()
    }

    /// Faults injected: resets, canned answers and stalls (those that ended in a drop included).
    pub fn faults(&self) -> u64 {
        self.resets + self.responded + self.stalled
    }
}

struct RuleState {
    rule: Rule,
    matched: u64,
    fired: u64,
    random: StdRng,
}

impl RuleState {
    fn new(rule: Rule) -> Self {
        let seed = match rule.when {
            When::Fraction { seed, .. } => seed,
            _ => 0,
        };
        Self { rule, matched: 0, fired: 0, random: StdRng::seed_from_u64(seed) }
    }
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    resets: AtomicU64,
    responded: AtomicU64,
    stalled: AtomicU64,
    dropped: AtomicU64,
    upstream_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    upstream: SocketAddr,
    mode: Mode,
    rules: Mutex<Vec<RuleState>>,
    stats: Stats,
}

impl Shared {
    fn rules(&self) -> MutexGuard<'_, Vec<RuleState>> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.rules.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The action for a request (`method` and `path` are `None` in TCP mode).
    fn decide(&self, method: Option<&str>, path: Option<&str>) -> Action {
        let mut rules = self.rules();
        for state in rules.iter_mut() {
            if !state.rule.matches(method, path) {
                continue;
            }
            state.matched += 1;
            let fire = match state.rule.when {
                When::Always => true,
                When::First(k) => state.matched <= k,
                When::EveryNth(n) => n > 0 && state.matched % n == 0,
                When::Fraction { fraction, .. } => state.random.random::<f64>() < fraction,
            };
            if fire {
                state.fired += 1;
                tracing::debug!(rule = %state.rule.name, ?method, ?path, "fault-proxy: rule fired");
                return state.rule.action.clone();
            }
        }
        Action::Forward
    }

    fn counters(&self) -> Counters {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let stats = &self.stats;
        Counters {
            connections: load(&stats.connections),
            requests: load(&stats.requests),
            forwarded: load(&stats.forwarded),
            resets: load(&stats.resets),
            responded: load(&stats.responded),
            stalled: load(&stats.stalled),
            dropped: load(&stats.dropped),
            upstream_failures: load(&stats.upstream_failures),
            rules: self
                .rules()
                .iter()
                .map(|s| RuleCounters { name: s.rule.name.clone(), matched: s.matched, fired: s.fired })
                .collect(),
        }
    }
}

/// A running proxy. Dropping it stops accepting connections and ends the open ones.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts an HTTP-mode proxy in front of `upstream`.
    pub async fn http(upstream: SocketAddr, rules: Vec<Rule>) -> std::io::Result<Self> {
        Self::start(upstream, Mode::Http, rules).await
    }

    /// Starts a TCP-mode proxy in front of `upstream`.
    pub async fn tcp(upstream: SocketAddr, rules: Vec<Rule>) -> std::io::Result<Self> {
        Self::start(upstream, Mode::Tcp, rules).await
    }

    /// Starts a proxy on `127.0.0.1:0` in front of `upstream`, which must be on loopback.
    pub async fn start(upstream: SocketAddr, mode: Mode, rules: Vec<Rule>) -> std::io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("fault-proxy relays to loopback only, not {upstream}"),
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode,
            rules: Mutex::new(rules.into_iter().map(RuleState::new).collect()),
            stats: Stats::default(),
        });
        let (shutdown, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        Ok(Self { address, shared, shutdown, accept: Some(accept) })
    }

    /// The proxy's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the proxy did so far.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// Replaces the rules (and their counters); the totals keep counting.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.shared.rules() = rules.into_iter().map(RuleState::new).collect();
    }

    /// Stops the proxy: no new connections, open ones ended.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Bounded by the proxy's life: it ends when the proxy is shut down or dropped.
    loop {
        let slot = tokio::select! {
            _ = stopped.changed() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) if peer.ip().is_loopback() => {
                bump(&shared.stats.connections);
                let _ = client.set_nodelay(true);
                let shared = shared.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    match shared.mode {
                        Mode::Http => serve_http(shared, client, stopped).await,
                        Mode::Tcp => serve_tcp(shared, client, stopped).await,
                    }
                    drop(slot);
                });
            }
            Ok(_) => {} // not loopback: closed unanswered
            Err(error) => {
                // Out of descriptors, or a connection that died in the backlog: wait a little.
                tracing::warn!(%error, "fault-proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A second descriptor of a client socket, to set `SO_LINGER` 0 on it while `hyper` owns the
/// first; the RST goes out when the last descriptor closes.
fn duplicate(client: &TcpStream) -> std::io::Result<std::net::TcpStream> {
    Ok(std::net::TcpStream::from(client.as_fd().try_clone_to_owned()?))
}

fn arm_reset(socket: &std::net::TcpStream) {
    if let Err(error) = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO)) {
        tracing::warn!(%error, "fault-proxy: cannot set SO_LINGER 0");
    }
}

/// Why the proxy ends a client connection without an answer.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("fault-proxy reset the connection")]
    Reset,
    #[error("fault-proxy dropped the connection")]
    Dropped,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn full(body: Bytes) -> ProxyBody {
    Full::new(body).map_err(|never| match never {}).boxed()
}

async fn serve_http(shared: Arc<Shared>, client: TcpStream, mut stopped: watch::Receiver<bool>) {
    let socket = match duplicate(&client) {
        Ok(socket) => Arc::new(socket),
        Err(error) => {
            tracing::warn!(%error, "fault-proxy: cannot duplicate a client socket");
            return;
        }
    };
    let service = {
        let socket = socket.clone();
        hyper::service::service_fn(move |request| handle(shared.clone(), socket.clone(), request))
    };
    let connection =
        hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(client), service);
    tokio::select! {
        _ = connection => {}
        _ = stopped.changed() => {}
    }
    // `socket` (and the service's copy) close here, after hyper's descriptor: an armed reset
    // goes out now.
}

async fn handle(
    shared: Arc<Shared>,
    socket: Arc<std::net::TcpStream>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Ended> {
    bump(&shared.stats.requests);
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let action = shared.decide(Some(request.method().as_str()), Some(&path));
    match action {
        Action::Forward => Ok(forward(&shared, request).await),
        Action::Reset => {
            arm_reset(&socket);
            bump(&shared.stats.resets);
            Err(Ended::Reset)
        }
        Action::Respond(canned) => {
            discard(request.into_body()).await;
            bump(&shared.stats.responded);
            let response = Response::builder()
                .status(canned.status)
                .header(hyper::header::CONTENT_TYPE, canned.content_type.as_str())
                .body(full(canned.body.clone()));
            Ok(response.unwrap_or_else(|_| Response::new(full(Bytes::from_static(b"bad canned status")))))
        }
        Action::Stall { duration, then: AfterStall::Forward } => {
            bump(&shared.stats.stalled);
            // Buffered and sent from a task of its own: if the client gives up meanwhile (and
            // hyper drops this future), the request still arrives late, as over a slow network.
            let (parts, body) = request.into_parts();
            let Some(body) = buffer(body).await else { return Err(Ended::Dropped) };
            let request = Request::from_parts(parts, Full::new(body));
            let (answer, answered) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                tokio::time::sleep(duration).await;
                let _ = answer.send(forward(&shared, request).await);
            });
            answered.await.map_err(|_| Ended::Dropped)
        }
        Action::Stall { duration, then: AfterStall::Drop } => {
            bump(&shared.stats.stalled);
            tokio::time::sleep(duration).await;
            bump(&shared.stats.dropped);
            Err(Ended::Dropped)
        }
        Action::ForwardThenReset => {
            let response = forward(&shared, request).await;
            let _ = tokio::time::timeout(BODY_TIMEOUT, response.into_body().collect()).await;
            arm_reset(&socket);
            bump(&shared.stats.resets);
            Err(Ended::Reset)
        }
        Action::CutAfter(duration) => {
            tokio::time::sleep(duration).await;
            arm_reset(&socket);
            bump(&shared.stats.resets);
            Err(Ended::Reset)
        }
    }
}

/// Reads a whole request body, within [`MAX_DISCARDED_BODY`] and [`BODY_TIMEOUT`]; `None`
/// when it is larger, slower or broken.
async fn buffer(body: Incoming) -> Option<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_DISCARDED_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => Some(collected.to_bytes()),
        _ => None,
    }
}

/// Reads and discards a request body, within [`MAX_DISCARDED_BODY`] and [`BODY_TIMEOUT`].
async fn discard(mut body: Incoming) {
    let drain = async {
        let mut seen = 0usize;
        // Bounded by the body's size limit (and the timeout around it).
        while seen <= MAX_DISCARDED_BODY {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) | None => return,
            }
        }
    };
    let _ = tokio::time::timeout(BODY_TIMEOUT, drain).await;
}

/// Headers that describe one hop, not the message: not relayed.
const HOP_BY_HOP: [&str; 6] = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

/// Relays `request` over a fresh upstream connection; 502 when the upstream cannot be reached.
async fn forward<B>(shared: &Shared, request: Request<B>) -> Response<ProxyBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    bump(&shared.stats.forwarded);
    let (mut parts, body) = request.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    let request = Request::from_parts(parts, body);
    let result = async {
        let upstream = TcpStream::connect(shared.upstream).await.map_err(|e| e.to_string())?;
        let _ = upstream.set_nodelay(true);
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender.send_request(request).await.map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, body.boxed())
        }
        Err(error) => {
            bump(&shared.stats.upstream_failures);
            tracing::warn!(%error, upstream = %shared.upstream, "fault-proxy: upstream failed");
            let mut response = Response::new(full(Bytes::from(format!("fault-proxy: upstream failed: {error}"))));
            *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, mut client: TcpStream, mut stopped: watch::Receiver<bool>) {
    let action = shared.decide(None, None);
    let cut_after = match action {
        Action::Forward => None,
        Action::Reset => {
            let _ = client.set_zero_linger();
            bump(&shared.stats.resets);
            return;
        }
        Action::Respond(canned) => {
            use tokio::io::AsyncWriteExt;
            bump(&shared.stats.responded);
            let head = format!(
                "HTTP/1.1 {} Fault\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                canned.status,
                canned.content_type,
                canned.body.len()
            );
            let _ = client.write_all(head.as_bytes()).await;
            let _ = client.write_all(&canned.body).await;
            let _ = client.shutdown().await;
            return;
        }
        Action::Stall { duration, then } => {
            bump(&shared.stats.stalled);
            tokio::time::sleep(duration).await;
            if then == AfterStall::Drop {
                bump(&shared.stats.dropped);
                return;
            }
            None
        }
        Action::ForwardThenReset => Some(Duration::ZERO),
        Action::CutAfter(duration) => Some(duration),
    };
    let mut upstream = match TcpStream::connect(shared.upstream).await {
        Ok(upstream) => upstream,
        Err(error) => {
            bump(&shared.stats.upstream_failures);
            tracing::warn!(%error, upstream = %shared.upstream, "fault-proxy: upstream failed");
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    bump(&shared.stats.forwarded);
    let cut = async {
        match cut_after {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = cut => {
            let _ = client.set_zero_linger();
            let _ = upstream.set_zero_linger();
            bump(&shared.stats.resets);
        }
        _ = stopped.changed() => {}
    }
}
