//! Abuse against the real collector binary: bad payloads (oversized, deeply nested, gzip bombs,
//! invalid UTF-8, wrong types and encodings, oversized heads), slow bodies and slow or idle
//! heads, and floods (from one key, from many keys, of connections, of requests in flight).
//!
//! Each case asserts the status and the JSON error body; a well-behaved client on its own
//! connection sends throughout and must keep being answered — 200, or a 503 with Retry-After
//! while requests in flight are at their cap — within a latency bound; and the collector's
//! peak resident memory (`VmHWM`) must stay within a bound. Slow and idle peers use raw TCP.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::RunningCollector;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GOOD_KEY: &str = "good-key";
const ABUSE_KEY: &str = "abuse-key";
/// The well-behaved client's answers: 99 % within this, every one within [`GOOD_MAX`].
const GOOD_P99: Duration = Duration::from_millis(1_000);
const GOOD_MAX: Duration = Duration::from_millis(3_000);
/// How much the collector's peak RSS may grow over what it was, warmed up, before the abuse.
const PEAK_GROWTH_BOUND: u64 = 96 * 1024 * 1024;

/// One answer the well-behaved client got.
#[derive(Debug)]
struct Sample {
    status: u16,
    latency: Duration,
    retry_after: bool,
}

/// A client sending one valid event every 50 ms on its own connection until stopped.
struct GoodClient {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl GoodClient {
    fn start(collector: &RunningCollector) -> Self {
        let url = collector.url("/v1/events");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mut samples = Vec::new();
            // Bounded: at most 2,000 requests (100 s at this pace).
            for _ in 0..2_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let started = Instant::now();
                let answer = client
                    .post(&url)
                    .header("x-write-key", GOOD_KEY)
                    .header("content-type", "application/json")
                    .body(common::page_view(&common::uuid()).to_string())
                    .send()
                    .await;
                let (status, retry_after) = match answer {
                    Ok(response) => (response.status().as_u16(), response.headers().contains_key("retry-after")),
                    Err(_) => (0, false),
                };
                samples.push(Sample { status, latency: started.elapsed(), retry_after });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        });
        Self { stop, task }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Asserts the well-behaved client was answered throughout: enough requests, each 200 (or,
/// with `shed_allowed`, a 503 with Retry-After), within the latency bounds. Returns its p99.
fn assert_answered(case: &str, samples: &[Sample], shed_allowed: bool) -> Duration {
    assert!(samples.len() >= 5, "{case}: the good client sent only {} requests", samples.len());
    for sample in samples {
        let fine = sample.status == 200 || (shed_allowed && sample.status == 503 && sample.retry_after);
        assert!(fine, "{case}: the good client got {sample:?}");
    }
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    let max = latencies[latencies.len() - 1];
    let ok = samples.iter().filter(|s| s.status == 200).count();
    eprintln!(
        "{case}: good client {} requests ({ok} × 200), latency p50 {p50:?} p99 {p99:?} max {max:?}",
        samples.len()
    );
    assert!(p99 <= GOOD_P99, "{case}: good client p99 {p99:?} over {GOOD_P99:?}");
    assert!(max <= GOOD_MAX, "{case}: good client max {max:?} over {GOOD_MAX:?}");
    p99
}

/// Asserts the collector is alive and its peak RSS grew at most [`PEAK_GROWTH_BOUND`].
fn assert_memory_bounded(case: &str, collector: &mut RunningCollector, peak_before: u64) {
    assert!(collector.alive(), "{case}: the collector died");
    let (peak, rss) = (collector.memory("VmHWM"), collector.memory("VmRSS"));
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    eprintln!(
        "{case}: collector VmHWM {:.1} MiB before, {:.1} MiB after (+{:.1} MiB); VmRSS now {:.1} MiB",
        mib(peak_before),
        mib(peak),
        mib(peak.saturating_sub(peak_before)),
        mib(rss)
    );
    assert!(
        peak.saturating_sub(peak_before) <= PEAK_GROWTH_BOUND,
        "{case}: peak RSS grew by {:.1} MiB, over the {:.0} MiB bound",
        mib(peak - peak_before),
        mib(PEAK_GROWTH_BOUND)
    );
}

/// Warms the collector up with a few requests (allocator arenas, the user-agent cache) and
/// returns its peak RSS then.
async fn warm_up(collector: &RunningCollector) -> u64 {
    let client = reqwest::Client::new();
    for _ in 0..8 {
        let response = client
            .post(collector.url("/v1/events"))
            .header("x-write-key", GOOD_KEY)
            .body(
                json!({"events": (0..25).map(|_| common::page_view(&common::uuid())).collect::<Vec<_>>()}).to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    collector.memory("VmHWM")
}

/// A raw HTTP/1.1 answer read to the end of the connection.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawAnswer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads from `stream` until the peer closes it (at most 10 s) and parses the answer.
async fn read_answer(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<RawAnswer> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the collector did not close the connection within 10 s");
    parse_answer(&bytes)
}

/// Sends `request` and reads the answer, or says why there was none.
async fn try_exchange(address: SocketAddr, request: &[u8]) -> Result<RawAnswer, String> {
    let mut stream = TcpStream::connect(address).await.map_err(|e| e.to_string())?;
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    let mut bytes = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await {
        Err(_) => return Err("not closed within 10 s".into()),
        Ok(Err(e)) => return Err(format!("read: {e} after {} bytes", bytes.len())),
        Ok(Ok(_)) => {}
    }
    parse_answer(&bytes).ok_or_else(|| format!("not HTTP: {:?}", String::from_utf8_lossy(&bytes)))
}

fn parse_answer(bytes: &[u8]) -> Option<RawAnswer> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(RawAnswer { status, head, body: bytes[split + 4..].to_vec() })
}

/// Sends `request` (which should ask for `connection: close`) and reads the answer.
async fn exchange(address: SocketAddr, request: &[u8]) -> RawAnswer {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_answer(&mut stream).await.expect("an HTTP answer")
}

fn request_head(path: &str, headers: &[(&str, &str)], length: usize) -> Vec<u8> {
    let mut head =
        format!("POST {path} HTTP/1.1\r\nhost: collector\r\nconnection: close\r\ncontent-length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip bomb: `members` concatenated gzip members of 1 MiB of zeros each (a body decoders
/// must inflate in full), a few hundred kilobytes on the wire.
fn gzip_bomb(members: usize) -> Vec<u8> {
    gzip(&vec![0u8; 1 << 20]).repeat(members)
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// A bad payload and what the collector must answer.
struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
    /// The field and code the first error must name.
    field: Option<(&'static str, &'static str)>,
}

fn bad_payloads() -> Vec<Case> {
    let json = ("content-type", "application/json");
    let key = ("x-write-key", ABUSE_KEY);
    let gz = ("content-encoding", "gzip");
    let event = |properties: &str| {
        format!(r#"{{"event_type":"custom","event_name":"x","anonymous_id":"a","properties":{{"deep":{properties}}}}}"#)
    };
    let bomb = gzip_bomb(300);
    assert!(
        bomb.len() < 500 * 1024,
        "the bomb ({} bytes) fits the body limit, so it must be inflated to be refused",
        bomb.len()
    );
    let deep_event = event(&nested(5_000));
    let batch_deep = format!(r#"{{"events":[{deep_event},{deep_event}]}}"#);
    let segment_deep = format!(
        r#"{{"batch":[{{"type":"track","event":"x","anonymousId":"a","properties":{{"p":{}}}}}]}}"#,
        nested(50_000)
    );
    let invalid_utf8 =
        b"{\"event_type\":\"page_view\",\"anonymous_id\":\"\xff\xfe\",\"page\":{\"url\":\"https://a.example/\"}}"
            .to_vec();
    vec![
        Case {
            name: "oversized body",
            path: "/v1/events",
            headers: vec![json, key],
            body: vec![b' '; 600 * 1024],
            status: 413,
            error: "payload_too_large",
            field: None,
        },
        Case {
            name: "oversized Segment body",
            path: "/v1/batch",
            headers: vec![json, key],
            body: vec![b' '; 600 * 1024],
            status: 413,
            error: "payload_too_large",
            field: None,
        },
        Case {
            name: "10,000 levels deep",
            path: "/v1/events",
            headers: vec![json, key],
            body: event(&nested(10_000)).into_bytes(),
            status: 400,
            error: "invalid_request",
            field: Some(("properties", "too_deep")),
        },
        Case {
            name: "8 levels deep",
            path: "/v1/events",
            headers: vec![json, key],
            body: event(&nested(8)).into_bytes(),
            status: 400,
            error: "invalid_request",
            field: Some(("properties", "too_deep")),
        },
        Case {
            name: "deep in a batch",
            path: "/v1/events",
            headers: vec![json, key],
            body: batch_deep.into_bytes(),
            status: 400,
            error: "invalid_request",
            field: Some(("properties", "too_deep")),
        },
        Case {
            name: "deep Segment batch",
            path: "/v1/batch",
            headers: vec![json, key],
            body: segment_deep.into_bytes(),
            status: 400,
            error: "invalid_request",
            field: Some(("batch[0].properties", "too_deep")),
        },
        Case {
            name: "gzip bomb",
            path: "/v1/events",
            headers: vec![json, key, gz],
            body: bomb.clone(),
            status: 413,
            error: "payload_too_large",
            field: None,
        },
        Case {
            name: "Segment gzip bomb",
            path: "/v1/batch",
            headers: vec![json, key, gz],
            body: bomb,
            status: 413,
            error: "payload_too_large",
            field: None,
        },
        Case {
            name: "corrupt gzip",
            path: "/v1/events",
            headers: vec![json, key, gz],
            body: b"\x1f\x8b\x08\x00garbage".to_vec(),
            status: 400,
            error: "invalid_request",
            field: Some(("body", "gzip")),
        },
        Case {
            name: "invalid UTF-8",
            path: "/v1/events",
            headers: vec![json, key],
            body: invalid_utf8.clone(),
            status: 400,
            error: "invalid_request",
            field: Some(("body", "encoding")),
        },
        Case {
            name: "Segment invalid UTF-8",
            path: "/v1/track",
            headers: vec![json, key],
            body: invalid_utf8,
            status: 400,
            error: "invalid_request",
            field: Some(("body", "encoding")),
        },
        Case {
            name: "XML",
            path: "/v1/events",
            headers: vec![("content-type", "text/xml"), key],
            body: b"<event/>".to_vec(),
            status: 415,
            error: "unsupported_media_type",
            field: None,
        },
        Case {
            name: "Segment form",
            path: "/v1/track",
            headers: vec![("content-type", "application/x-www-form-urlencoded"), key],
            body: b"event=x".to_vec(),
            status: 415,
            error: "unsupported_media_type",
            field: None,
        },
        Case {
            name: "brotli",
            path: "/v1/events",
            headers: vec![json, key, ("content-encoding", "br")],
            body: b"{}".to_vec(),
            status: 415,
            error: "unsupported_media_type",
            field: None,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_refused_naming_the_problem_while_others_get_200s() {
    let mut collector =
        RunningCollector::start(&["--write-key", "good-key=good-shop", "--write-key", "abuse-key=abuse-shop"]);
    let peak_before = warm_up(&collector).await;
    let good = GoodClient::start(&collector);
    let cases = Arc::new(bad_payloads());
    let address = collector.address;
    // Four abusers, each sending every case three times over.
    let mut abusers = Vec::new();
    for worker in 0..4 {
        let cases = cases.clone();
        abusers.push(tokio::spawn(async move {
            for round in 0..3 {
                for offset in 0..cases.len() {
                    let case = &cases[(offset + worker + round) % cases.len()];
                    let mut request = request_head(case.path, &case.headers, case.body.len());
                    request.extend_from_slice(&case.body);
                    let answer = try_exchange(address, &request).await;
                    let answer = answer.unwrap_or_else(|e| panic!("{}: no answer: {e}", case.name));
                    let body = answer.json();
                    assert_eq!(answer.status, case.status, "{}: {answer:?}", case.name);
                    assert_eq!(body["error"], case.error, "{}: {body}", case.name);
                    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: {body}", case.name);
                    if let Some((field, code)) = case.field {
                        assert_eq!(body["errors"][0]["field"], field, "{}: {body}", case.name);
                        assert_eq!(body["errors"][0]["code"], code, "{}: {body}", case.name);
                    }
                }
            }
        }));
    }
    // A head over --max-header-bytes (16 KiB): hyper answers 431 before any handler runs.
    let padding = "a".repeat(20 * 1024);
    let answer =
        exchange(address, &request_head("/v1/events", &[("x-write-key", ABUSE_KEY), ("x-padding", &padding)], 0)).await;
    assert_eq!(answer.status, 431, "{answer:?}");
    for abuser in abusers {
        abuser.await.unwrap();
    }
    let samples = good.finish().await;
    assert_answered("bad payloads", &samples, false);
    assert_memory_bounded("bad payloads", &mut collector, peak_before);
}

/// Sends a head announcing a 10,000-byte body, then one byte of it every 100 ms; returns the
/// answer (read to the close) and how long it took.
async fn slow_body(address: SocketAddr) -> (Option<RawAnswer>, Duration) {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut head =
        request_head("/v1/events", &[("x-write-key", GOOD_KEY), ("content-type", "application/json")], 10_000);
    // Keep-alive asked for: the collector must close the connection itself.
    head = String::from_utf8(head).unwrap().replace("connection: close\r\n", "").into_bytes();
    let started = Instant::now();
    writer.write_all(&head).await.unwrap();
    let drip = tokio::spawn(async move {
        // Bounded: 100 bytes, 10 s.
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let answer = read_answer(&mut reader).await;
    let elapsed = started.elapsed();
    drip.abort();
    (answer, elapsed)
}

/// Sends a request head one byte every 100 ms (or, with `idle`, nothing); returns how long until
/// the collector closed the connection, and anything it answered.
async fn slow_head(address: SocketAddr, idle: bool) -> (Duration, Vec<u8>) {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let drip = tokio::spawn(async move {
        if idle {
            // Holds the write half open (dropping it would send FIN) while sending nothing.
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(writer);
            return;
        }
        // Bounded: 100 bytes, 10 s.
        for byte in b"POST /v1/events HTTP/1.1\r\nhost: collector\r\nx-padding: ".iter().chain([b'a'; 50].iter()) {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answered = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answered)).await;
    drip.abort();
    assert!(read.is_ok(), "a slow head was not cut off within 10 s");
    (started.elapsed(), answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_slow_or_idle_heads_are_cut_off_while_others_get_200s() {
    let mut collector = RunningCollector::start(&[
        "--write-key",
        "good-key=good-shop",
        "--request-timeout-ms",
        "1500",
        "--header-timeout-ms",
        "1000",
    ]);
    let peak_before = warm_up(&collector).await;
    let good = GoodClient::start(&collector);
    let address = collector.address;
    let bodies: Vec<_> = (0..24).map(|_| tokio::spawn(slow_body(address))).collect();
    let heads: Vec<_> = (0..24).map(|i| tokio::spawn(slow_head(address, i % 2 == 0))).collect();
    // A keep-alive connection that goes idle after one request is closed too.
    let mut kept = TcpStream::connect(address).await.unwrap();
    let body = common::page_view(&common::uuid()).to_string();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: collector\r\nx-write-key: {GOOD_KEY}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    kept.write_all(head.as_bytes()).await.unwrap();
    let idle_since = Instant::now();
    let mut after_request = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), kept.read_to_end(&mut after_request)).await;
    assert!(read.is_ok(), "an idle keep-alive connection was not closed within 10 s");
    let idle_for = idle_since.elapsed();
    assert!(String::from_utf8_lossy(&after_request).starts_with("HTTP/1.1 200"), "{after_request:?}");
    assert!(idle_for <= Duration::from_millis(3_000), "an idle keep-alive connection lived {idle_for:?}");

    for body in bodies {
        let (answer, elapsed) = body.await.unwrap();
        let answer = answer.expect("a slow body is answered");
        assert_eq!(answer.status, 408, "{answer:?}");
        assert_eq!(answer.json()["error"], "request_timeout", "{answer:?}");
        assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
        // read_answer returned: the collector closed the connection.
        assert!(elapsed >= Duration::from_millis(1_400) && elapsed <= Duration::from_millis(4_000), "{elapsed:?}");
    }
    for head in heads {
        let (elapsed, answered) = head.await.unwrap();
        // hyper closes a connection whose head is late without an answer.
        assert!(answered.is_empty(), "{:?}", String::from_utf8_lossy(&answered));
        assert!(elapsed >= Duration::from_millis(900) && elapsed <= Duration::from_millis(3_000), "{elapsed:?}");
    }
    let samples = good.finish().await;
    assert_answered("slow peers", &samples, false);
    assert_memory_bounded("slow peers", &mut collector, peak_before);
}

/// Sends 50-event batches with `key` as fast as answered for `duration`; returns the statuses,
/// asserting each refusal's body and Retry-After.
async fn hammer(url: String, key: String, duration: Duration) -> Vec<u16> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let body = json!({"events": (0..50).map(|_| common::page_view(&common::uuid())).collect::<Vec<_>>()}).to_string();
    let started = Instant::now();
    let mut statuses = Vec::new();
    // Bounded: by `duration` and 10,000 requests.
    for _ in 0..10_000 {
        if started.elapsed() >= duration {
            break;
        }
        let response = client.post(&url).header("x-write-key", &key).body(body.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            200 => {}
            429 => {
                assert_eq!(answer["error"], "rate_limited", "{answer}");
                assert!(retry_after.as_deref().is_some_and(|s| s.parse::<u64>().unwrap() >= 1), "{retry_after:?}");
            }
            503 => {
                assert_eq!(answer["error"], "overloaded", "{answer}");
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            other => panic!("a flood got {other}: {answer}"),
        }
        statuses.push(status);
    }
    statuses
}

/// Whether the collector refused an idle connection: a refused one holds the 503 or is closed;
/// an accepted one that has sent nothing is sent nothing back.
async fn is_refused(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(20), stream.peek(&mut probe)).await.is_ok()
}

/// Opens `count` idle connections the collector has accepted. Connections of an earlier flood may
/// still hold slots for a moment after their clients close them, so a connection made then can be
/// refused (503, closed); it is replaced until `count` are held open or the attempts run out.
async fn hold_accepted_connections(address: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..20 {
        while held.len() < count {
            held.push(TcpStream::connect(address).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut open = Vec::with_capacity(held.len());
        for stream in held {
            if !is_refused(&stream).await {
                open.push(stream);
            }
        }
        held = open;
        if held.len() == count {
            return held;
        }
    }
    panic!("could not hold {count} accepted connections: {} held after 20 attempts", held.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_get_429_or_503_with_retry_after_while_others_keep_being_answered() {
    let mut args = vec![
        "--write-key".to_owned(),
        "good-key=good-shop".to_owned(),
        "--write-key".to_owned(),
        "abuse-key=abuse-shop".to_owned(),
    ];
    for i in 0..8 {
        args.extend(["--write-key".to_owned(), format!("many-{i}=shop-{i}")]);
    }
    args.extend(
        ["--rate-limit-per-second", "500", "--rate-limit-burst", "500", "--max-connections", "96"]
            .into_iter()
            .chain(["--max-in-flight", "24", "--header-timeout-ms", "15000", "--request-timeout-ms", "3000"])
            .map(str::to_owned),
    );
    let mut collector = RunningCollector::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let peak_before = warm_up(&collector).await;
    let address = collector.address;
    let url = collector.url("/v1/events");

    // One key floods: it gets 429 with Retry-After; the others are not held back.
    let good = GoodClient::start(&collector);
    let flood: Vec<_> =
        (0..4).map(|_| tokio::spawn(hammer(url.clone(), ABUSE_KEY.into(), Duration::from_secs(2)))).collect();
    let mut statuses = Vec::new();
    for task in flood {
        statuses.extend(task.await.unwrap());
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("one-key flood: {} requests, {limited} × 429", statuses.len());
    assert!(limited > 0, "a flood of 50-event batches over 500 events/s was never limited");
    assert_answered("one-key flood", &good.finish().await, false);

    // Many keys flood, each within its own rate: every flooder is answered, and so is the good client.
    let good = GoodClient::start(&collector);
    let flood: Vec<_> =
        (0..16).map(|i| tokio::spawn(hammer(url.clone(), format!("many-{}", i % 8), Duration::from_secs(2)))).collect();
    let mut statuses = Vec::new();
    for task in flood {
        statuses.extend(task.await.unwrap());
    }
    eprintln!(
        "many-key flood: {} requests, {} × 200, {} × 429, {} × 503",
        statuses.len(),
        statuses.iter().filter(|s| **s == 200).count(),
        statuses.iter().filter(|s| **s == 429).count(),
        statuses.iter().filter(|s| **s == 503).count()
    );
    assert_answered("many-key flood", &good.finish().await, true);

    // A flood of connections: within --max-connections (96) the good client is served; over it,
    // each new connection is answered 503 with Retry-After and closed.
    let good = GoodClient::start(&collector);
    let held_count = 80;
    let held = hold_accepted_connections(address, held_count).await;
    let body = common::page_view(&common::uuid()).to_string();
    let mut request = request_head("/v1/events", &[("x-write-key", GOOD_KEY)], body.len());
    request.extend_from_slice(body.as_bytes());
    let request = Arc::new(request);
    // The 40 connect first and send nothing, so each holds its slot or is refused before any of
    // them is served (a served request here closes its connection, which would free a slot).
    let mut extra = Vec::new();
    for _ in 0..40 {
        extra.push(TcpStream::connect(address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    let mut accepted = Vec::new();
    for mut stream in extra {
        if is_refused(&stream).await {
            let answer = read_answer(&mut stream).await.expect("a refused connection is answered");
            assert_eq!(answer.status, 503, "{answer:?}");
            assert_eq!(answer.json()["error"], "overloaded", "{answer:?}");
            assert_eq!(answer.header("retry-after"), Some("1"), "{answer:?}");
            refused += 1;
        } else {
            accepted.push(stream);
        }
    }
    let served = accepted.len();
    eprintln!("connection flood: {held_count} held, 40 more: {served} accepted, {refused} refused with 503");
    // 96 - 80 leaves 16 slots, one of them perhaps the good client's at that moment.
    assert!((1..=16).contains(&served), "{served} of 40 connections accepted over a cap of 96 with 80 held");
    assert_eq!(served + refused, 40);
    // Each accepted connection is served.
    for mut stream in accepted {
        stream.write_all(&request).await.unwrap();
        let answer = read_answer(&mut stream).await.expect("an accepted connection is answered");
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    drop(held);
    assert_answered("connection flood", &good.finish().await, false);

    // A flood of requests in flight: 24 slow bodies take every slot of --max-in-flight; one
    // more request is answered 503 at once rather than queued, and once the slow ones time out
    // (408) the good client is served again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let good = GoodClient::start(&collector);
    // More than the slots, sent in waves: whichever come when all are taken are shed, and a
    // later wave takes any slot the good client held for a moment, so every slot is surely taken.
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.extend((0..10).map(|_| tokio::spawn(slow_body(address))));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let started = Instant::now();
    let answer = exchange(address, &request).await;
    let shed_latency = started.elapsed();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.json()["error"], "overloaded", "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("1"), "{answer:?}");
    assert!(shed_latency <= Duration::from_millis(1_000), "shedding took {shed_latency:?}");
    let mut timed_out = 0;
    for task in slow {
        let (answer, _) = task.await.unwrap();
        let answer = answer.expect("a slow body is answered");
        match answer.status {
            408 => timed_out += 1,
            503 => assert_eq!(answer.json()["error"], "overloaded", "{answer:?}"),
            other => panic!("a slow body got {other}: {answer:?}"),
        }
    }
    assert!((18..=24).contains(&timed_out), "{timed_out} slow bodies held one of 24 slots until 408");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let samples = good.finish().await;
    eprintln!("in-flight flood: a request over the cap was shed in {shed_latency:?}");
    assert_answered("in-flight flood", &samples, true);
    let recovered = samples.iter().rev().take(5).filter(|s| s.status == 200).count();
    assert_eq!(recovered, 5, "the good client was not served again after the slow bodies timed out");
    assert_memory_bounded("floods", &mut collector, peak_before);
}
