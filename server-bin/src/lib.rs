//! The `restart-manager` server, as a library so tests can build and drive it.
//!
//! It serves the FleetLock protocol for Zincati (node reboots), the restart API, live status
//! stream and web page (workload restarts), health and readiness probes, Prometheus metrics and
//! a JSON view of the fleet, on a real cluster or on the embedded simulated one
//! (`--simulate`). `main.rs` only calls [`parse_and_run`].
//!
//! | module | what it holds |
//! |---|---|
//! | [`alerts`] | firing alerts from Prometheus or Alertmanager, for the alert gates |
//! | [`args`] | flags and environment variables |
//! | [`config`] | the YAML configuration file |
//! | [`fleetlock_http`] | the FleetLock endpoints |
//! | [`api`] | the people-facing API and its OpenAPI document |
//! | [`status_stream`] | the live status websocket |
//! | [`auth`] | authentication, admins, origin checks |
//! | [`ui`] | the web page |
//! | [`metrics`] | Prometheus metrics |
//! | [`simulate`] | the demo fleet and simulated Zincati agents |
//! | [`server`] | wiring it together, serving, shutting down |
//! | [`listener`] | serving a router with header timeouts and a connection cap |
//! | [`tls`] | optional TLS from certificate files, reloaded on change |
//! | [`leader`] | leader election for the background loops |
//! | [`rbac`] | `restart-manager rbac`: the Roles a configuration needs |
//!
//! [`build`] returns the routers ([`App`]): the people-facing one, FleetLock's, and both
//! together, so tests drive them with `tower::ServiceExt::oneshot` or over a real socket.

use cluster_api::CoreBuilder;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use clap::Parser;
use cluster_api::{Clock, ClusterApi};
use fleetlock_core::{Coordinator, FleetLockConfig};
use restart_core::{Allowlist, RestartConfig, Restarter};

pub mod alerts;
pub mod api;
pub mod args;
pub mod auth;
pub(crate) mod body;
pub mod config;
pub mod fleetlock_http;
pub mod leader;
pub mod listener;
pub mod metrics;
pub mod notify;
pub mod ratelimit;
pub mod rbac;
pub mod server;
pub mod simulate;
pub mod status_stream;
pub mod tls;
pub mod ui;

pub use args::Args;

/// What every handler shares, behind one `Arc`: axum clones the state for every request, and
/// one reference count is cheaper than one per field (each a cache line both worker threads
/// write).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// Node reboots.
    pub fleetlock: Coordinator,
    /// Workload restarts.
    pub restarter: Restarter,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Who may do what.
    pub auth: Arc<auth::Auth>,
    /// One permit per connected status-stream client ([`Settings::max_status_clients`]).
    pub status_clients: Arc<tokio::sync::Semaphore>,
    /// Per-client rate of the people-facing API (none: unlimited).
    pub api_rate: Option<Arc<ratelimit::PerClient>>,
    /// Per-client rate of FleetLock requests (none: unlimited).
    pub fleetlock_rate: Option<Arc<ratelimit::PerClient>>,
    /// Per-user rate of the requests that read the cluster on the caller's behalf: dry runs,
    /// drain plans, history (none: unlimited).
    pub cluster_read_rate: Option<Arc<ratelimit::PerUser>>,
    /// The cluster as those requests read it: a handle with a client-side budget of its own,
    /// so that they never take the turns lock writes and evictions need.
    pub caller_reads: Arc<dyn ClusterApi>,
    /// Whether `/metrics` is served to anyone (`--metrics-open`); otherwise it needs the
    /// API's authentication and the right to read the metrics.
    pub metrics_open: bool,
    /// How long an API request may take before it is answered 503.
    pub request_timeout: std::time::Duration,
    /// How often a status-stream client is identified and authorised again.
    pub stream_recheck: std::time::Duration,
}

/// Everything [`build`] needs besides the cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Node reboots.
    pub fleetlock: FleetLockConfig,
    /// The restart allowlist.
    pub allowlist: Allowlist,
    /// The restart sets (checked against the allowlist).
    pub sets: Vec<restart_core::RestartSet>,
    /// Restart locks and tracking.
    pub restart: RestartConfig,
    /// Authentication.
    pub auth: auth::Auth,
    /// This replica's name, on locks and Events.
    pub instance: String,
    /// Where the FleetLock endpoints live.
    pub fleetlock_prefix: String,
    /// Whether this replica leads (runs background loops); `None`: always.
    pub leadership: Option<tokio::sync::watch::Receiver<bool>>,
    /// How long a failing watch is tolerated before the server reports itself unready.
    pub cache_grace: std::time::Duration,
    /// How many status-stream (websocket) clients may be connected at once.
    pub max_status_clients: usize,
    /// Requests per client address to the people-facing API (0 per second: unlimited).
    pub api_rate: ratelimit::Rate,
    /// FleetLock requests per client address (0 per second: unlimited).
    pub fleetlock_rate: ratelimit::Rate,
    /// How long a request to the people-facing API may take (the status stream's socket is
    /// not a request once upgraded).
    pub request_timeout: std::time::Duration,
    /// How often a status-stream client is identified and authorised again while it stays
    /// connected (a revoked token or a withdrawn right closes its socket).
    pub stream_recheck: std::time::Duration,
    /// Where reboot and restart transitions are sent.
    pub notifications: manager_config::NotificationsConfig,
    /// Requests per user that read the cluster on the caller's behalf: dry runs, drain plans,
    /// history (0 per second: unlimited).
    pub cluster_read_rate: ratelimit::Rate,
    /// Serve `/metrics` without authentication (it names the allowlisted workloads).
    pub metrics_open: bool,
}

/// How often a status-stream client is checked again, unless configured.
pub const DEFAULT_STREAM_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// How many status-stream clients may be connected at once, unless configured.
pub const DEFAULT_MAX_STATUS_CLIENTS: usize = 20_000;

/// Requests per client to the API, unless configured: far above what a person or restartctl
/// sends, far below what a script in a loop does.
pub const DEFAULT_API_RATE: ratelimit::Rate = ratelimit::Rate {
    per_second: 20,
    burst: 40,
};

/// Dry runs, drain plans and history reads per user, unless configured: each costs the
/// cluster a few list calls, so a person clicking around stays far below it and a script
/// in a loop does not.
pub const DEFAULT_CLUSTER_READ_RATE: ratelimit::Rate = ratelimit::Rate {
    per_second: 2,
    burst: 10,
};

/// FleetLock requests per client address, unless configured. Zincati asks every few minutes;
/// many nodes behind one address (a NAT) need a higher rate, or 0.
pub const DEFAULT_FLEETLOCK_RATE: ratelimit::Rate = ratelimit::Rate {
    per_second: 5,
    burst: 20,
};

impl Settings {
    /// Defaults for tests and embedding: the given allowlist, no authentication.
    pub fn new(fleetlock: FleetLockConfig, allowlist: Allowlist) -> Self {
        Settings {
            restart: RestartConfig {
                namespace: fleetlock.namespace.clone(),
                ..RestartConfig::default()
            },
            fleetlock,
            allowlist,
            sets: Vec::new(),
            auth: auth::Auth::none(),
            instance: "restart-manager".into(),
            fleetlock_prefix: "/".into(),
            leadership: None,
            cache_grace: fleetlock_core::DEFAULT_CACHE_GRACE,
            max_status_clients: DEFAULT_MAX_STATUS_CLIENTS,
            api_rate: DEFAULT_API_RATE,
            fleetlock_rate: DEFAULT_FLEETLOCK_RATE,
            request_timeout: std::time::Duration::from_secs(30),
            stream_recheck: DEFAULT_STREAM_RECHECK,
            notifications: manager_config::NotificationsConfig::default(),
            cluster_read_rate: DEFAULT_CLUSTER_READ_RATE,
            metrics_open: false,
        }
    }
}

/// A wired server: its routers, and the services whose loops [`App::run`] drives.
pub struct App {
    /// The whole HTTP surface on one router: the people-facing routes and FleetLock.
    pub router: Router,
    /// The people-facing routes (page, restart and fleet APIs, health, metrics) without
    /// FleetLock, for a server that gives FleetLock a listener of its own.
    pub public_router: Router,
    /// FleetLock alone (with `/healthz`, and a `/readyz` of FleetLock's caches only), for its
    /// own listener.
    pub fleetlock_router: Router,
    /// Node reboots.
    pub fleetlock: Coordinator,
    /// Workload restarts.
    pub restarter: Restarter,
    /// The per-client rate limiters, tidied by [`App::run`].
    limiters: Vec<Arc<ratelimit::PerClient>>,
    /// The per-user one, tidied likewise.
    user_limiters: Vec<Arc<ratelimit::PerUser>>,
}

impl App {
    /// Runs the background loops of both services until dropped.
    pub async fn run(&self) {
        let tidy = async {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                for limiter in &self.limiters {
                    limiter.forget_idle();
                }
                for limiter in &self.user_limiters {
                    limiter.forget_idle();
                }
            }
        };
        tokio::join!(self.fleetlock.run(), self.restarter.run(), tidy);
    }

    /// Whether both services' caches have synced.
    pub fn is_ready(&self) -> bool {
        self.fleetlock.is_ready() && self.restarter.is_ready()
    }
}

/// Wires the services, metrics and routes over a cluster, as the server runs them, with
/// every call on one handle (a simulated cluster has no client-side budget to share).
pub fn build(
    api: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    settings: Settings,
) -> anyhow::Result<App> {
    build_with_reads(api.clone(), api, clock, settings)
}

/// [`build`], with the reads made on a caller's behalf (dry runs, drain plans, history) on
/// `caller_reads`: a handle on the same cluster with a client-side budget of its own, so
/// that however many of them callers ask for, lock writes and evictions on `api` never wait
/// behind them.
pub fn build_with_reads(
    api: Arc<dyn ClusterApi>,
    caller_reads: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    settings: Settings,
) -> anyhow::Result<App> {
    let metrics = Arc::new(metrics::Metrics::new()?);
    metrics.register_workloads(settings.allowlist.iter().map(|a| &a.workload));
    let some_group = settings.fleetlock.groups.keys().next().cloned();
    let alerts = settings
        .fleetlock
        .alerts
        .as_ref()
        .map(alerts::HttpAlerts::new)
        .transpose()?;
    let hooks = Arc::new(notify::Hooks {
        metrics: metrics.clone(),
        notifier: notify::Notifier::start(&settings.notifications, metrics.clone())?,
        instance: settings.instance.clone(),
    });
    let mut fleetlock = Coordinator::builder(api.clone(), settings.fleetlock)
        .cache_grace(settings.cache_grace)
        .clock(clock.clone())
        .instance(&settings.instance)
        .observer(hooks.clone());
    let mut restarter = Restarter::builder(api, settings.allowlist)
        .caller_reads(caller_reads.clone())
        .cache_grace(settings.cache_grace)
        .clock(clock)
        .config(settings.restart)
        .instance(&settings.instance)
        .sets(settings.sets)
        .observer(hooks);
    if let Some(source) = alerts {
        fleetlock = fleetlock.alerts(Arc::new(source));
    }
    if let Some(leader) = settings.leadership {
        fleetlock = fleetlock.leadership(leader.clone());
        restarter = restarter.leadership(leader);
    }
    let (fleetlock, restarter) = (fleetlock.build(), restarter.build());
    let state = AppState(Arc::new(Shared {
        fleetlock: fleetlock.clone(),
        restarter: restarter.clone(),
        metrics,
        auth: Arc::new(settings.auth),
        status_clients: Arc::new(tokio::sync::Semaphore::new(settings.max_status_clients)),
        api_rate: ratelimit::PerClient::new(settings.api_rate).map(Arc::new),
        fleetlock_rate: ratelimit::PerClient::new(settings.fleetlock_rate).map(Arc::new),
        cluster_read_rate: ratelimit::PerUser::new(settings.cluster_read_rate).map(Arc::new),
        caller_reads,
        metrics_open: settings.metrics_open,
        request_timeout: settings.request_timeout,
        stream_recheck: settings.stream_recheck,
    }));
    let (public, public_doc) = api::routes().split_for_parts();
    let public = public.merge(ui::routes());
    let (fleetlock_routes, fleetlock_doc) =
        fleetlock_http::routes(&settings.fleetlock_prefix).split_for_parts();
    // The document is served to anyone: its examples are made up, never the allowlist's.
    let facts = api::openapi::Facts {
        bearer: state.auth.uses_tokens(),
        group: some_group,
        metrics_open: state.metrics_open,
    };
    let mut both_doc = public_doc.clone();
    both_doc.merge(fleetlock_doc.clone());
    // The people-facing routes pass the browser checks and the per-client limits; FleetLock
    // has its own limit and no browser to guard against.
    let guarded = |doc: utoipa::openapi::OpenApi| {
        public
            .clone()
            .route(
                "/openapi.json",
                api::openapi::serve(&api::openapi::document(doc, &facts)),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::browser_guard,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::limits,
            ))
    };
    let limiters = [&state.api_rate, &state.fleetlock_rate]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let user_limiters = state.cluster_read_rate.iter().cloned().collect();
    Ok(App {
        limiters,
        user_limiters,
        router: guarded(both_doc)
            .merge(fleetlock_routes.clone())
            .with_state(state.clone()),
        public_router: guarded(public_doc).with_state(state.clone()),
        fleetlock_router: fleetlock_routes
            .route("/healthz", get(api::probes::healthz))
            .route("/readyz", get(api::probes::fleetlock_readyz))
            .route(
                "/openapi.json",
                api::openapi::serve(&api::openapi::document(fleetlock_doc, &facts)),
            )
            .with_state(state),
        fleetlock,
        restarter,
    })
}

/// Parses the command line and runs the server; the whole of `main`.
pub fn parse_and_run() -> ExitCode {
    let args = Args::parse();
    if let Some(args::Command::Rbac(rbac)) = &args.command {
        let rendered = config::FileConfig::load(&args.config_file, true)
            .map_err(anyhow::Error::from)
            .and_then(|config| rbac::render(rbac, &rbac::namespace(&args, rbac, &config), &config));
        return match rendered {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("restart-manager rbac: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("restart-manager: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restart-manager: {e:#}");
            ExitCode::FAILURE
        }
    }
}
