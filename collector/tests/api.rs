//! The ingestion API against a real spool: contract validation, auth, CORS, gzip, limits,
//! partial batches, rate limits, sink failures, and the operational endpoints.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use collector::HttpSettings;
use collector::state::RateLimit;
use common::{KEY, SOURCE, TestApp, page_view, post_request, uuid};
use queue::spool::SpoolWriterConfig;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn it_stores_a_valid_event_enriched_and_answers_with_its_id() {
    let app = TestApp::spool();
    let id = uuid();
    let answer = app
        .send(post_request(
            serde_json::json!({
                "event_id": id, "event_type": "add_to_cart", "anonymous_id": "anon-7",
                "event_time": "2026-11-24T10:00:00Z", "sent_at": "2026-11-24T10:00:02Z",
                "product": {"product_id": "sku-1", "category_code": "electronics.smartphone",
                            "brand": "acme", "price": "199.90", "currency": "EUR", "quantity": 1},
                "context": {"platform": "web", "locale": "en-GB"}
            })
            .to_string()
            .into_bytes(),
            &[("x-write-key", KEY), ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["accepted"], 1);
    assert_eq!(answer.json["event_ids"][0], id.as_str());
    let (events, failed) = app.stored().await;
    assert!(failed.is_empty());
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.event_id, id);
    assert_eq!(event.source_id, SOURCE);
    assert_eq!(event.price.unwrap().to_string(), "199.9");
    assert_eq!(event.ua_browser.as_deref(), Some("Chrome"));
    assert_eq!(event.ua_device_class.as_deref(), Some("desktop"));
    // sent 2 s after the event on the client's clock: the event is 2 s before receipt.
    assert_eq!((event.received_at - event.event_time).num_seconds(), 2);
    // Skew correction keeps the claim's offset from sent_at, so the corrected time is in range
    // whatever the client's clock says.
    assert!(!event.event_time_out_of_range);
    assert_eq!(event.client_event_time.unwrap().to_rfc3339(), "2026-11-24T10:00:00+00:00");
}

#[tokio::test]
async fn it_rejects_an_event_without_a_type_naming_the_field_and_dead_letters_it() {
    let app = TestApp::spool();
    let answer = app.post(serde_json::json!({"anonymous_id": "a"})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["error"], "invalid_request");
    assert_eq!(answer.json["errors"][0]["field"], "event");
    assert!(answer.json["errors"][0]["message"].as_str().unwrap().contains("event_type"));
    let (events, failed) = app.stored().await;
    assert!(events.is_empty());
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].source_id.as_deref(), Some(SOURCE));
    assert!(failed[0].payload.contains("anonymous_id"));
}

#[tokio::test]
async fn it_reports_every_invalid_field_with_its_path() {
    let app = TestApp::spool();
    let answer = app
        .post(serde_json::json!({"event_type": "purchase", "anonymous_id": "a",
            "order": {"order_id": "o-1", "revenue": -5, "currency": "euro"}}))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let mut fields: Vec<&str> =
        answer.json["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["order.currency", "order.revenue"]);
}

#[tokio::test]
async fn it_refuses_unknown_write_keys_and_publishes_nothing() {
    let app = TestApp::spool();
    for headers in [vec![], vec![("x-write-key", "wrong")], vec![("authorization", "Basic d3Jvbmc6")]] {
        let answer = app.send(post_request(page_view(&uuid()).to_string().into_bytes(), &headers)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json["error"], "unauthorized");
        assert!(answer.headers.contains_key("www-authenticate"));
    }
    let (events, failed) = app.stored().await;
    assert!(events.is_empty() && failed.is_empty(), "an unauthenticated request reached the queue");
}

#[tokio::test]
async fn every_presented_credential_must_be_valid() {
    let app = TestApp::spool();
    let bad_basic = format!("Basic {}", base64_encode("wrong:"));
    let answer = app
        .send(post_request(
            page_view(&uuid()).to_string().into_bytes(),
            &[("x-write-key", KEY), ("authorization", &bad_basic)],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let good_basic = format!("Basic {}", base64_encode(&format!("{KEY}:")));
    let answer = app
        .send(post_request(
            page_view(&uuid()).to_string().into_bytes(),
            &[("x-write-key", "wrong"), ("authorization", &good_basic)],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(app.stored().await.0.is_empty());
}

#[tokio::test]
async fn it_accepts_the_write_key_as_the_basic_auth_username() {
    let app = TestApp::spool();
    // base64("test-write-key:")
    let basic = format!("Basic {}", base64_encode(&format!("{KEY}:")));
    let answer =
        app.send(post_request(page_view(&uuid()).to_string().into_bytes(), &[("authorization", &basic)])).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_partial_batch_stores_the_valid_events_and_reports_the_rest_by_index() {
    let app = TestApp::spool();
    let (first, third) = (uuid(), uuid());
    let answer = app
        .post(serde_json::json!({"sent_at": chrono::Utc::now().to_rfc3339(), "events": [
            page_view(&first),
            {"event_type": "product_view", "anonymous_id": "a"},
            page_view(&third),
        ]}))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["accepted"], 2);
    assert_eq!(answer.json["event_ids"], serde_json::json!([first, null, third]));
    assert_eq!(answer.json["rejected"][0]["index"], 1);
    assert_eq!(answer.json["rejected"][0]["field"], "product.product_id");
    let (events, failed) = app.stored().await;
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), third.as_str()]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].index, Some(1));
    assert_eq!(failed[0].errors[0].field, "product.product_id");
}

#[tokio::test]
async fn a_batch_where_every_event_is_invalid_is_a_400_and_all_are_dead_lettered() {
    let app = TestApp::spool();
    let answer = app
        .post(serde_json::json!({"events": [{"event_type": "search", "anonymous_id": "a"},
                                            {"event_type": "custom", "user_id": "u"}]}))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let indexes: Vec<u64> =
        answer.json["errors"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [0, 1]);
    assert_eq!(app.stored().await.1.len(), 2);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = TestApp::spool();
    let body = gzip(serde_json::json!({"events": [page_view(&uuid()), page_view(&uuid())]}).to_string().as_bytes());
    let answer = app.send(post_request(body, &[("x-write-key", KEY), ("content-encoding", "gzip")])).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["accepted"], 2);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_with_413_without_inflating_it() {
    let app = TestApp::spool();
    // 50 MB of zeros compress to about 50 KB: under the body limit, far over the inflated one.
    let bomb = gzip(&vec![b'0'; 50 * 1024 * 1024]);
    assert!(bomb.len() < 500 * 1024);
    let answer = app.send(post_request(bomb, &[("x-write-key", KEY), ("content-encoding", "gzip")])).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json["error"], "payload_too_large");
}

#[tokio::test]
async fn corrupt_gzip_and_unknown_encodings_and_types_are_client_errors() {
    let app = TestApp::spool();
    let corrupt =
        app.send(post_request(b"not gzip".to_vec(), &[("x-write-key", KEY), ("content-encoding", "gzip")])).await;
    assert_eq!(corrupt.status, StatusCode::BAD_REQUEST);
    let brotli = app.send(post_request(b"{}".to_vec(), &[("x-write-key", KEY), ("content-encoding", "br")])).await;
    assert_eq!(brotli.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let request = Request::post("/v1/events")
        .header("x-write-key", KEY)
        .header("content-type", "application/xml")
        .body(Body::from("<event/>"))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let beacon = Request::post("/v1/events")
        .header("x-write-key", KEY)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(page_view(&uuid()).to_string()))
        .unwrap();
    assert_eq!(app.send(beacon).await.status, StatusCode::OK, "sendBeacon's text/plain is accepted");
}

#[tokio::test]
async fn batches_over_500_events_or_500_kb_are_refused_with_413() {
    let app = TestApp::spool();
    let events: Vec<_> = (0..501).map(|_| page_view(&uuid())).collect();
    let answer = app.post(serde_json::json!({"events": events})).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let big = serde_json::json!({"events": [{"event_type": "page_view", "anonymous_id": "a",
        "properties": {"padding": "x".repeat(600 * 1024)}}]});
    assert_eq!(app.post(big).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let (events, _) = app.stored().await;
    assert!(events.is_empty());
}

#[tokio::test]
async fn an_event_over_32_kb_is_rejected_alone_in_its_batch() {
    let app = TestApp::spool();
    let mut huge = page_view(&uuid());
    huge["page"]["title"] = "t".repeat(33 * 1024).into();
    let answer = app.post(serde_json::json!({"events": [page_view(&uuid()), huge]})).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["rejected"][0]["index"], 1);
    assert_eq!(answer.json["rejected"][0]["code"], "too_large");
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_the_body_and_is_dead_lettered() {
    let app = TestApp::spool();
    let answer = app.send(post_request(b"{\"events\": [".to_vec(), &[("x-write-key", KEY)])).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["errors"][0]["field"], "body");
    assert_eq!(app.stored().await.1.len(), 1);
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let http = HttpSettings { cors_origins: vec!["https://shop.example".into()], ..HttpSettings::default() };
    let app = TestApp::spool_with(|_| {}, http, SpoolWriterConfig::new);
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/events")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-write-key")
            .body(Body::empty())
            .unwrap()
    };
    let allowed = app.send(preflight("https://shop.example")).await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://shop.example");
    let allowed_headers = allowed.headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed_headers.contains("x-write-key"), "{allowed_headers}");
    let other = app.send(preflight("https://evil.example")).await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    let mut request = post_request(page_view(&uuid()).to_string().into_bytes(), &[("x-write-key", KEY)]);
    request.headers_mut().insert("origin", "https://shop.example".parse().unwrap());
    let answer = app.send(request).await;
    assert_eq!(answer.headers["access-control-allow-origin"], "https://shop.example");
}

#[tokio::test]
async fn a_write_key_over_its_rate_gets_429_with_retry_after() {
    let app = TestApp::spool_with(
        |settings| settings.rate_limit = RateLimit::new(1, 3),
        HttpSettings::default(),
        SpoolWriterConfig::new,
    );
    let batch = |n: usize| serde_json::json!({"events": (0..n).map(|_| page_view(&uuid())).collect::<Vec<_>>()});
    assert_eq!(app.post(batch(3)).await.status, StatusCode::OK);
    let limited = app.post(batch(2)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json["error"], "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (events, _) = app.stored().await;
    assert_eq!(events.len(), 3, "the limited request stored nothing");
}

#[tokio::test]
async fn a_full_spool_answers_503_with_retry_after_and_accepts_nothing() {
    let app = TestApp::spool_with(
        |_| {},
        HttpSettings::default(),
        |dir| SpoolWriterConfig { max_spool_bytes: 1, ..SpoolWriterConfig::new(dir) },
    );
    // The first append fits (the cap is checked before writing); then the spool is over its cap.
    assert_eq!(app.post(page_view(&uuid())).await.status, StatusCode::OK);
    let answer = app.post(page_view(&uuid())).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json["error"], "overloaded");
    assert_eq!(answer.headers["retry-after"], "1");
    assert_eq!(app.stored().await.0.len(), 1);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spool();
    app.post(page_view(&uuid())).await;
    app.post(serde_json::json!({"event_type": "nope"})).await;
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    assert_eq!(app.send(get("/healthz")).await.status, StatusCode::OK);
    let ready = app.send(get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json["sink"], "spool");
    let response = tower::ServiceExt::oneshot(app.router.clone(), get("/metrics")).await.unwrap();
    let text =
        String::from_utf8(http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes().to_vec())
            .unwrap();
    for name in [
        "clickstream_collector_requests_total",
        "clickstream_collector_events_accepted_total",
        "clickstream_collector_events_rejected_total",
        "clickstream_collector_publish_duration_seconds",
        "clickstream_collector_queue_depth_bytes",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    app.sink.shutdown().await;
    let closed = app.send(get("/readyz")).await;
    assert_eq!(closed.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_slow_body_gets_408_from_a_real_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let http = HttpSettings { request_timeout: Duration::from_millis(300), ..HttpSettings::default() };
    let app = TestApp::spool_with(|_| {}, http, SpoolWriterConfig::new);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(collector::server::serve(
        listener,
        router,
        collector::server::ServerLimits { header_timeout: Duration::from_secs(2), ..Default::default() },
        Duration::from_secs(1),
        std::future::pending(),
    ));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: x\r\nx-write-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"event"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&response[..read]).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    server.abort();
}
