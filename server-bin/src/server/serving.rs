//! Serving the routers: the listeners, their limits and TLS, until told to stop.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::args::{Args, AuthMode, FleetLockListen};
use crate::listener::Limits;

/// The server's sockets, bound before anything else runs.
pub struct Listeners {
    /// The page, the API, the health and metrics endpoints (and FleetLock with
    /// `--fleetlock-listen same`).
    pub main: TcpListener,
    /// FleetLock on a listener of its own; `None` with `--fleetlock-listen same`.
    pub fleetlock: Option<TcpListener>,
}

// === impl Listeners ===

impl Listeners {
    /// Binds `--listen` and `--fleetlock-listen` (port 0 picks a free port, as tests do).
    pub async fn bind(args: &Args) -> Result<Self> {
        let main = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let fleetlock = match args.fleetlock.listen {
            FleetLockListen::Same => None,
            FleetLockListen::Separate(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for FleetLock"))?,
            ),
        };
        Ok(Listeners { main, fleetlock })
    }
}

/// Readies the servers of `app` on `listeners` (bound now when `None`): the returned future
/// serves until the servers fail or `stop` turns true.
pub(super) async fn start(
    args: &Args,
    app: &App,
    instance: &str,
    listeners: Option<Listeners>,
    stop: &watch::Receiver<bool>,
) -> Result<impl Future<Output = std::io::Result<()>> + use<>> {
    let Listeners {
        main: listener,
        fleetlock: fleetlock_listener,
    } = match listeners {
        Some(bound) => bound,
        None => Listeners::bind(args).await?,
    };
    let main_router = match fleetlock_listener {
        None => app.router.clone(),
        Some(_) => app.public_router.clone(),
    };
    log_serving(args, app, instance, &listener, fleetlock_listener.as_ref())?;
    let (limits, fleetlock_limits) = limits(args);
    let (main_tls, fleetlock_tls) = tls_configs(args, stop)?;
    if fleetlock_tls.is_some() && fleetlock_listener.is_none() {
        bail!(
            "--fleetlock-tls-cert-file needs FleetLock on a listener of its own; with \
             --fleetlock-listen same, --tls-cert-file covers it"
        );
    }
    let serve = |listener: TcpListener, router: axum::Router, limits, tls| {
        crate::listener::serve(listener, router, limits, tls, stop.clone())
    };
    let main = serve(listener, main_router, limits, main_tls);
    let fleetlock = {
        let server = fleetlock_listener.map(|l| {
            serve(
                l,
                app.fleetlock_router.clone(),
                fleetlock_limits,
                fleetlock_tls,
            )
        });
        async move {
            match server {
                Some(server) => server.await,
                None => Ok(()),
            }
        }
    };
    Ok(async move { tokio::try_join!(main, fleetlock).map(|_| ()) })
}

/// Says where the server listens, once it does.
fn log_serving(
    args: &Args,
    app: &App,
    instance: &str,
    listener: &TcpListener,
    fleetlock_listener: Option<&TcpListener>,
) -> Result<()> {
    let fleetlock_path = format!(
        "{}v1/pre-reboot",
        crate::fleetlock_http::normalize_prefix(&args.fleetlock.prefix)
    );
    let fleetlock_address = match fleetlock_listener {
        Some(l) => l.local_addr()?.to_string(),
        None => "the main listener".to_string(),
    };
    tracing::info!(
        address = %listener.local_addr()?,
        fleetlock = %fleetlock_address,
        fleetlock_path = %fleetlock_path,
        restartable = app.restarter.allowlist().len(),
        %instance,
        "serving"
    );
    Ok(())
}

/// The limits of the main listener and of FleetLock's own.
fn limits(args: &Args) -> (Limits, Limits) {
    let limits = Limits {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
        max_per_client: args.max_connections_per_client as usize,
        http2: true,
    };
    // Zincati speaks HTTP/1.1: FleetLock's own listener serves nothing else.
    let fleetlock_limits = Limits {
        max_per_client: args.fleetlock_max_connections_per_client as usize,
        http2: false,
        ..limits
    };
    (limits, fleetlock_limits)
}

/// The TLS configurations of the main listener and of FleetLock's own, if any.
type TlsConfigs = (
    Option<Arc<rustls::ServerConfig>>,
    Option<Arc<rustls::ServerConfig>>,
);

/// The TLS of both listeners, with the proxy's client certificates checked on the main one
/// under `--auth proxy`.
fn tls_configs(args: &Args, stop: &watch::Receiver<bool>) -> Result<TlsConfigs> {
    let proxy_clients = match (&args.auth.proxy_client_ca_file, args.auth.mode) {
        (Some(ca), AuthMode::Proxy) => Some(crate::tls::client_roots(ca)?),
        (Some(_), _) => bail!("--auth-proxy-client-ca-file goes with --auth proxy"),
        (None, _) => None,
    };
    if proxy_clients.is_some() && args.tls.cert_file.is_none() {
        bail!(
            "--auth-proxy-client-ca-file needs TLS on the listener: set --tls-cert-file and \
             --tls-key-file"
        );
    }
    let main_tls = tls_config(
        args.tls
            .cert_file
            .as_deref()
            .zip(args.tls.key_file.as_deref()),
        proxy_clients,
        args,
        stop,
    )?;
    let fleetlock_tls = tls_config(
        args.tls
            .fleetlock_cert_file
            .as_deref()
            .zip(args.tls.fleetlock_key_file.as_deref()),
        None,
        args,
        stop,
    )?;
    Ok((main_tls, fleetlock_tls))
}

/// A TLS configuration from a certificate and key file, kept current by a task that reloads
/// the files when they change.
fn tls_config(
    files: Option<(&std::path::Path, &std::path::Path)>,
    clients: Option<rustls::RootCertStore>,
    args: &Args,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Arc<rustls::ServerConfig>>> {
    let Some((cert, key)) = files else {
        return Ok(None);
    };
    let pair = crate::tls::Reloading::load(cert, key)?;
    let config = pair.server_config(clients)?;
    tokio::spawn(pair.watch(args.tls.reload_interval, stop.clone()));
    Ok(Some(config))
}
