//! Serving a router on a listener with limits a hostile network cannot exhaust: a deadline for
//! every request's headers (which also closes idle keep-alive connections), for a TLS
//! handshake, and for a connection's first request (so a client that connects and sends
//! nothing, or half an HTTP/2 preface, is closed); HTTP/2 connections with no request in
//! flight are closed after the same time; a cap on open connections, in all and per client
//! address; HTTP/1 only where HTTP/2 is not needed (FleetLock: Zincati speaks HTTP/1.1).
//! `axum::serve` has none of these. TLS is optional ([`crate::tls`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// What one listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers (its first one counted from
    /// the connection's start), how long a connection may sit idle before its next request,
    /// and how long a request body may take to arrive once its handler reads it.
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Connections open at once from one client address (0: no cap of its own); more from it
    /// are closed as soon as they are accepted.
    pub max_per_client: usize,
    /// Whether HTTP/2 is served besides HTTP/1.1.
    pub http2: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            max_connections: 16_384,
            max_per_client: 1_024,
            http2: true,
        }
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerClient(parking_lot::Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// Counts one more connection from `ip`, unless it has `max` already (0: no cap).
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock();
        let count = open.entry(ip).or_default();
        if max != 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One open connection of a client, counted until dropped.
struct ClientSlot {
    table: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What a connection is doing, for its idle deadline: requests in flight, and when the last
/// one started or ended (milliseconds since the connection was accepted).
struct Activity {
    start: tokio::time::Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: tokio::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// A request has started; the guard marks its end.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// When the connection counts as idle for `timeout`, if nothing happens before.
    fn idle_at(&self, timeout: Duration) -> Option<tokio::time::Instant> {
        (self.in_flight.load(Ordering::Relaxed) == 0).then(|| {
            self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + timeout
        })
    }
}

/// A request in flight on a connection.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
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
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let builder = http_builder(limits);
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
        let Some(client) = per_client.enter(peer.ip(), limits.max_per_client) else {
            tracing::debug!(%peer, limit = limits.max_per_client, "too many connections from this address; closing a new one");
            drop(stream);
            continue;
        };
        stream.set_nodelay(true).ok();
        let router = router.clone();
        let activity = Activity::new();
        let deadline = crate::body::BodyDeadline(limits.header_timeout);
        let service = {
            let activity = activity.clone();
            move |verified: bool| {
                let activity = activity.clone();
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    let in_flight = activity.begin();
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(deadline);
                    if verified {
                        request.extensions_mut().insert(crate::tls::VerifiedClient);
                    }
                    let router = router.clone();
                    async move {
                        let response = router
                            .oneshot(request.map(axum::body::Body::new))
                            .await
                            .unwrap_or_else(|never: Infallible| match never {});
                        drop(in_flight);
                        Ok::<_, Infallible>(response)
                    }
                })
            }
        };
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let result = accept(&builder, watcher, stream, tls, service, &activity, limits).await;
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(client);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The HTTP server of every connection: HTTP/1.1 with the header timeout, and HTTP/2 unless
/// `limits` rule it out.
fn http_builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    if !limits.http2 {
        builder = builder.http1_only();
    }
    builder
}

/// Serves one accepted connection: over TLS with `tls`, after a handshake that gets the
/// header timeout; `service` is told whether the client showed a verified certificate.
async fn accept<F, S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    service: F,
    activity: &Activity,
    limits: Limits,
) -> Result<(), BoxError>
where
    F: FnOnce(bool) -> S,
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let Some(tls) = tls else {
        return connection(builder, watcher, stream, service(false), activity, limits).await;
    };
    // The handshake is the headers' first part: it gets the same deadline.
    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => {
            // The verifier checked whatever certificate was shown; none is fine too, and
            // only marks nothing.
            let verified = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            connection(
                builder,
                watcher,
                stream,
                service(verified),
                activity,
                limits,
            )
            .await
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err("the TLS handshake took too long".into()),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one connection, plain or TLS, until it ends, a graceful shutdown ends it, or it has
/// had no request in flight for `idle`: from its start (a client that sends nothing, or only
/// part of an HTTP/2 preface, which protocol detection would wait on for ever), or since its
/// last request ended (an idle HTTP/2 connection; HTTP/1's own header timeout closes an idle
/// keep-alive connection at the same time). An upgraded connection (a websocket) has left
/// hyper by then and is not cut. Without `http2` only HTTP/1.1 is spoken, and nothing is
/// upgraded (hyper-util's upgradeable connection would detect HTTP/2 whatever it is told).
async fn connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: S,
    activity: &Activity,
    limits: Limits,
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
    let idle = limits.header_timeout;
    if limits.http2 {
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        until_idle(watcher.watch(connection), activity, idle).await
    } else {
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        until_idle(watcher.watch(connection), activity, idle).await
    }
}

/// Drives `connection` to its end, or drops it (closing it) once it has had no request in
/// flight for `idle`.
async fn until_idle<E: Into<BoxError>>(
    connection: impl Future<Output = Result<(), E>>,
    activity: &Activity,
    idle: Duration,
) -> Result<(), BoxError> {
    let mut connection = std::pin::pin!(connection);
    loop {
        let check = activity
            .idle_at(idle)
            .unwrap_or_else(|| tokio::time::Instant::now() + idle);
        tokio::select! {
            result = &mut connection => return result.map_err(Into::into),
            () = tokio::time::sleep_until(check) => {
                if activity
                    .idle_at(idle)
                    .is_some_and(|at| at <= tokio::time::Instant::now())
                {
                    return Err("no request in flight for the header timeout; closed".into());
                }
            }
        }
    }
}
