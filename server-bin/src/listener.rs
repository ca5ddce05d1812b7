//! Serving a router on a listener with limits a hostile network cannot exhaust: a deadline for
//! every request's headers (which also closes idle keep-alive connections) and for a TLS
//! handshake, and a cap on open connections. `axum::serve` has neither. TLS is optional
//! ([`crate::tls`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// What one listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may sit idle before its next request.
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            max_connections: 16_384,
        }
    }
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` turns true, then lets
/// open requests finish (the caller bounds how long). Each request carries the peer's
/// address as [`ConnectInfo`], as `into_make_service_with_connect_info` does.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let tls = tls.map(TlsAcceptor::from);
    let mut stopping = std::pin::pin!(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopping => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, limit = limits.max_connections, "too many connections; closing a new one");
            drop(stream);
            continue;
        };
        stream.set_nodelay(true).ok();
        let router = router.clone();
        let service = move |verified: bool| {
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                if verified {
                    request.extensions_mut().insert(crate::tls::VerifiedClient);
                }
                let router = router.clone();
                async move {
                    let response = router
                        .oneshot(request.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|never: Infallible| match never {});
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let result = match tls {
                None => connection(&builder, watcher, stream, service(false)).await,
                // The handshake is the headers' first part: it gets the same deadline.
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            // The verifier checked whatever certificate was shown; none is
                            // fine too, and only marks nothing.
                            let verified = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .is_some_and(|c| !c.is_empty());
                            connection(&builder, watcher, stream, service(verified)).await
                        }
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("the TLS handshake took too long".into()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one connection, plain or TLS, until it ends or a graceful shutdown ends it.
async fn connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: S,
) -> Result<(), BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    watcher.watch(connection).await
}
