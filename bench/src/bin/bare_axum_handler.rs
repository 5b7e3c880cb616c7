//! The peer of the collector benchmark: the least an axum ingestion endpoint can do. It reads
//! the body, parses it as JSON and answers 200 — no auth, no validation, no enrichment, no
//! durability. The collector's throughput is reported as a ratio to this.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn accept(body: Bytes) -> (StatusCode, &'static str) {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => (StatusCode::OK, "{\"accepted\":true}"),
        Err(_) => (StatusCode::BAD_REQUEST, "{\"error\":\"invalid json\"}"),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let app = Router::new().route("/v1/events", post(accept));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, app).await
}
