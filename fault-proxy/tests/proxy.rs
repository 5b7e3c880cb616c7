//! The proxy against a real HTTP/1.1 upstream (hyper) that echoes what it receives: each action
//! does to a real client (reqwest) what it says, and is counted.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_proxy::{Action, FaultProxy, Rule, When};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// An upstream answering every request with `<method> <path> <body length>` and counting the
/// requests that reached it.
async fn echo_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        // Bounded by the test's runtime, which ends with the test.
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let counter = counter.clone();
                    async move {
                        let method = request.method().to_string();
                        let path = request.uri().path_and_query().unwrap().to_string();
                        let body = request.into_body().collect().await?.to_bytes();
                        counter.fetch_add(1, Ordering::SeqCst);
                        let text = format!("{method} {path} {}", body.len());
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(text))))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (address, seen)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[tokio::test]
async fn it_forwards_keep_alive_requests_and_large_chunked_bodies() {
    let (upstream, seen) = echo_upstream().await;
    let proxy = FaultProxy::http(upstream, vec![]).await.unwrap();
    let client = client();
    for i in 0..5 {
        let text = client.get(format!("{}/small/{i}?q=1", proxy.url())).send().await.unwrap().text().await.unwrap();
        assert_eq!(text, format!("GET /small/{i}?q=1 0"));
    }
    // 8 MiB, sized.
    let big = vec![7u8; 8 * 1024 * 1024];
    let text = client.post(format!("{}/big", proxy.url())).body(big).send().await.unwrap().text().await.unwrap();
    assert_eq!(text, "POST /big 8388608");
    // 3 MiB, chunked: a body of unknown length, over a hyper client connection of its own.
    let text = send_chunked(proxy.address(), "/chunked", 3).await;
    assert_eq!(text, "PUT /chunked 3145728");
    let counters = proxy.counters();
    assert_eq!((counters.requests, counters.forwarded, counters.faults()), (7, 7, 0));
    // reqwest's one connection, kept alive for its six requests, and the chunked sender's own.
    assert_eq!(counters.connections, 2);
    assert_eq!(seen.load(Ordering::SeqCst), 7);
}

/// Sends `mebibytes` 1 MiB chunks with `Transfer-Encoding: chunked` and returns the answer.
async fn send_chunked(proxy: SocketAddr, path: &str, mebibytes: usize) -> String {
    let chunks =
        (0..mebibytes).map(|_| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(vec![1u8; 1 << 20]))));
    let body = http_body_util::StreamBody::new(futures::stream::iter(chunks));
    let stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::put(path).header("host", proxy.to_string()).body(body).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn it_resets_the_first_k_matching_requests_and_forwards_the_rest() {
    let (upstream, seen) = echo_upstream().await;
    let rules =
        vec![Rule::new("reset uploads", Action::Reset).method("POST").path_contains("/upload").when(When::First(2))];
    let proxy = FaultProxy::http(upstream, rules).await.unwrap();
    let client = client();
    for _ in 0..2 {
        let error = client.post(format!("{}/upload/x", proxy.url())).body("data").send().await.unwrap_err();
        assert!(!error.is_timeout() && !error.is_status(), "{error:?}");
        assert!(format!("{error:?}").to_lowercase().contains("reset"), "a TCP RST, not a clean close: {error:?}");
    }
    // A GET is not matched; the third POST is past the first two.
    assert_eq!(client.get(format!("{}/upload/x", proxy.url())).send().await.unwrap().status(), 200);
    assert_eq!(client.post(format!("{}/upload/x", proxy.url())).body("d").send().await.unwrap().status(), 200);
    let counters = proxy.counters();
    assert_eq!(counters.resets, 2);
    assert_eq!(counters.rule("reset uploads").matched, 3);
    assert_eq!(counters.rule("reset uploads").fired, 2);
    assert_eq!(seen.load(Ordering::SeqCst), 2, "reset requests never reached the upstream");
}

#[tokio::test]
async fn it_answers_a_canned_status_with_the_given_body_on_every_nth_request() {
    let (upstream, seen) = echo_upstream().await;
    let body = r#"{"error":{"code":403,"errors":[{"reason":"rateLimitExceeded"}],"message":"Exceeded rate limits"}}"#;
    let rules = vec![Rule::new("403 every 3rd", Action::respond(403, body)).when(When::EveryNth(3))];
    let proxy = FaultProxy::http(upstream, rules).await.unwrap();
    let client = client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        // A body the proxy must read before answering.
        let response = client.post(format!("{}/jobs", proxy.url())).body(vec![0u8; 256 * 1024]).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 403 {
            assert_eq!(response.text().await.unwrap(), body);
        }
    }
    assert_eq!(statuses, vec![200, 200, 403, 200, 200, 403]);
    assert_eq!(proxy.counters().responded, 2);
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn it_stalls_then_forwards_or_drops() {
    let (upstream, seen) = echo_upstream().await;
    let rules = vec![
        Rule::new("stall and forward", Action::stall_then_forward(Duration::from_millis(600))).path_contains("/slow"),
        Rule::new("stall and drop", Action::stall_then_drop(Duration::from_millis(300))).path_contains("/gone"),
    ];
    let proxy = FaultProxy::http(upstream, rules).await.unwrap();
    let client = client();
    let started = Instant::now();
    assert_eq!(client.get(format!("{}/slow", proxy.url())).send().await.unwrap().text().await.unwrap(), "GET /slow 0");
    assert!(started.elapsed() >= Duration::from_millis(600));
    // A client with a shorter timeout gives up; the stalled request still reaches the upstream.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    assert!(impatient.get(format!("{}/slow", proxy.url())).send().await.unwrap_err().is_timeout());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let error = client.get(format!("{}/gone", proxy.url())).send().await.unwrap_err();
    assert!(!error.is_timeout(), "{error:?}");
    let counters = proxy.counters();
    assert_eq!((counters.stalled, counters.dropped), (3, 1));
    assert_eq!(seen.load(Ordering::SeqCst), 2, "a dropped request is not forwarded");
}

#[tokio::test]
async fn it_lets_a_request_take_effect_and_loses_its_answer() {
    let (upstream, seen) = echo_upstream().await;
    let rules = vec![Rule::new("lose the answer", Action::ForwardThenReset).when(When::First(1))];
    let proxy = FaultProxy::http(upstream, rules).await.unwrap();
    let client = client();
    assert!(client.put(format!("{}/object", proxy.url())).body("x").send().await.is_err());
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the request reached the upstream");
    assert_eq!(client.put(format!("{}/object", proxy.url())).body("x").send().await.unwrap().status(), 200);
    assert_eq!(proxy.counters().resets, 1);
}

#[tokio::test]
async fn a_seeded_fraction_picks_the_same_requests_every_run() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (upstream, _) = echo_upstream().await;
        let rule = Rule::new("a third", Action::respond(503, "{}")).when(When::Fraction { fraction: 0.33, seed: 42 });
        let proxy = FaultProxy::http(upstream, vec![rule]).await.unwrap();
        let client = client();
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(client.get(format!("{}/x", proxy.url())).send().await.unwrap().status().as_u16());
        }
        let faults = statuses.iter().filter(|s| **s == 503).count();
        assert!((3..=18).contains(&faults), "about a third of 30: {faults}");
        assert_eq!(proxy.counters().responded, faults as u64);
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn in_tcp_mode_it_resets_whole_connections_and_relays_the_others() {
    let (upstream, _) = echo_upstream().await;
    let proxy = FaultProxy::tcp(upstream, vec![Rule::new("first connection", Action::Reset).when(When::First(1))])
        .await
        .unwrap();
    // A fresh connection per request, so that each is a new connection to the proxy.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(5)).build().unwrap();
    assert!(client.get(format!("{}/a", proxy.url())).send().await.is_err());
    assert_eq!(client.get(format!("{}/b", proxy.url())).send().await.unwrap().text().await.unwrap(), "GET /b 0");
    let counters = proxy.counters();
    assert_eq!((counters.connections, counters.resets, counters.forwarded), (2, 1, 1));
    // Rules naming a method or a path never match in TCP mode.
    proxy.set_rules(vec![Rule::new("by path", Action::Reset).path_contains("/c")]);
    assert_eq!(client.get(format!("{}/c", proxy.url())).send().await.unwrap().status(), 200);
    assert_eq!(proxy.counters().rule("by path").matched, 0);
}

#[tokio::test]
async fn it_refuses_an_upstream_that_is_not_on_loopback() {
    let error = FaultProxy::http("192.0.2.1:80".parse().unwrap(), vec![]).await.err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn in_tcp_mode_it_cuts_a_forwarded_connection_after_a_while() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (upstream, _) = echo_upstream().await;
    let proxy =
        FaultProxy::tcp(upstream, vec![Rule::new("cut", Action::CutAfter(Duration::from_millis(300)))]).await.unwrap();
    let mut connection = tokio::net::TcpStream::connect(proxy.address()).await.unwrap();
    connection.write_all(b"GET /alive HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).ends_with("GET /alive 0"), "relayed before the cut");
    // The kept-alive connection idles until the cut, which resets it rather than closing it.
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut answer)).await.unwrap();
    assert_eq!(outcome.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    assert!(started.elapsed() >= Duration::from_millis(150), "cut at 300 ms, not at once: {:?}", started.elapsed());
    assert_eq!(proxy.counters().resets, 1);
}
