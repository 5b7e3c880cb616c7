//! Serving the router: hyper with the connection-level limits `axum::serve` does not expose —
//! a header-read timeout (slow-loris protection), a cap on the request head's size, a cap on
//! open connections (one more is answered 503 and closed, not queued) — and graceful shutdown
//! that drains in-flight requests before the sink is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

/// Connection-level limits of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// A request head (line and headers) must arrive within this; an idle keep-alive connection
    /// is closed after it too.
    pub header_timeout: Duration,
    /// Most bytes of a request head (hyper answers 431 above it); at least 8192.
    pub max_header_bytes: usize,
    /// Most open connections.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(5), max_header_bytes: 16 * 1024, max_connections: 1_000 }
    }
}

/// Most connections over the cap being answered at once; beyond them a connection is closed
/// without an answer, so refusing costs a bounded amount too.
const MAX_REFUSING: usize = 64;

/// How long a refused connection is given to take its 503 before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// HTTP/2 streams one connection may have open (each is a request, counted in the router's
/// in-flight limit too).
const MAX_H2_STREAMS: u32 = 64;

/// Serves `app` on `listener` until `shutdown` resolves, then waits up to `grace` for open
/// requests to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(crate::config::MIN_HEADER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    crate::metrics::connection_refused();
                    if let Ok(refusal) = refusing.clone().try_acquire_owned() {
                        tokio::spawn(async move {
                            refuse(stream).await;
                            drop(refusal);
                        });
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let first_request = Arc::new(Notify::new());
                let started = first_request.clone();
                let service = app.clone().map_request(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    started.notify_one();
                    request
                });
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                    .into_owned();
                let connection = graceful.watch(connection);
                let deadline = limits.header_timeout;
                tokio::spawn(async move {
                    tokio::pin!(connection);
                    // hyper's header timeout starts once the protocol is detected, which waits
                    // for the client's first bytes: a connection that sends nothing would be
                    // held forever. The first request must arrive within the header timeout.
                    let result = tokio::select! {
                        result = connection.as_mut() => Some(result),
                        () = first_request.notified() => None,
                        () = tokio::time::sleep(deadline) => {
                            tracing::debug!(%peer, "no request within the header timeout; closing");
                            return;
                        }
                    };
                    let result = match result {
                        Some(result) => result,
                        None => connection.await,
                    };
                    if let Err(error) = result {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
    }
}

/// The answer to a connection over the cap: written before reading the request (it does not
/// depend on it), then the connection is closed. What the client already sent is read and
/// dropped for a moment first, so closing does not reset the connection under the answer.
async fn refuse(mut stream: TcpStream) {
    let body = br#"{"error":"overloaded","message":"too many open connections; retry after 1 s"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let answer = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        // Bounded: by the linger timeout below and by 64 reads.
        for _ in 0..64 {
            if stream.read(&mut sink).await? == 0 {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (Cloud Run's stop signal).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
