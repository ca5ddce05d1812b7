//! Wiring: the services, the shared state and the routers over one cluster.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use cluster_api::{Clock, ClusterApi, CoreBuilder, CoreOptions};
use fleetlock_core::Coordinator;
use restart_core::Restarter;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;

use crate::alerts::HttpAlerts;
use crate::api::openapi::Facts;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::ratelimit::{PerClient, PerUser};
use crate::settings::Settings;
use crate::state::{AppState, Shared};
use crate::{api, fleetlock_http, ui};

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
    limiters: Vec<Arc<PerClient>>,
    /// The per-user one, tidied likewise.
    user_limiters: Vec<Arc<PerUser>>,
    /// Stops [`App::run`] (see [`Settings::shutdown`]).
    shutdown: CancellationToken,
    /// What the services report to: its notifications are delivered before `run` returns.
    hooks: Arc<Hooks>,
}

// === impl App ===

impl App {
    /// Runs the background loops of both services until [`Settings::shutdown`] is
    /// cancelled; then each service stops at its next safe point (a drain between two
    /// steps), the notifications already queued are delivered, and this returns.
    pub async fn run(&self) {
        let tidy = async {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = self.shutdown.cancelled() => return,
                }
                for limiter in &self.limiters {
                    limiter.forget_idle();
                }
                for limiter in &self.user_limiters {
                    limiter.forget_idle();
                }
            }
        };
        tokio::join!(self.fleetlock.run(), self.restarter.run(), tidy);
        self.hooks.stopped().await;
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
    let some_group = settings.fleetlock.groups.keys().next().cloned();
    let fleetlock_prefix = settings.fleetlock_prefix.clone();
    let shutdown = settings.shutdown.clone();
    let state = shared(api, caller_reads, clock, settings)?;
    let hooks = state.hooks.clone();
    let limiters = [&state.api_rate, &state.fleetlock_rate]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let user_limiters = state.cluster_read_rate.iter().cloned().collect();
    let (fleetlock, restarter) = (state.fleetlock.clone(), state.restarter.clone());
    let (router, public_router, fleetlock_router) = routers(state, &fleetlock_prefix, some_group);
    Ok(App {
        limiters,
        user_limiters,
        shutdown,
        hooks,
        router,
        public_router,
        fleetlock_router,
        fleetlock,
        restarter,
    })
}

/// Builds the metrics and both services, with the alert gates, notifications and metrics
/// observing them, and the state every handler shares.
fn shared(
    api: Arc<dyn ClusterApi>,
    caller_reads: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    settings: Settings,
) -> anyhow::Result<AppState> {
    let metrics = Arc::new(Metrics::new()?);
    metrics.register_workloads(settings.allowlist.iter().map(|a| &a.workload));
    let alerts = settings
        .fleetlock
        .alerts
        .as_ref()
        .map(HttpAlerts::new)
        .transpose()?;
    let hooks = Arc::new(Hooks {
        metrics: metrics.clone(),
        notifier: Notifier::start(&settings.notifications, metrics.clone(), &settings.shutdown)?,
        instance: settings.instance.clone(),
    });
    let options = CoreOptions {
        clock,
        instance: settings.instance.clone(),
        leadership: settings.leadership,
        cache_grace: settings.cache_grace,
        shutdown: settings.shutdown.clone(),
    };
    let mut fleetlock = Coordinator::builder(api.clone(), settings.fleetlock)
        .options(options.clone())
        .observer(hooks.clone());
    let restarter = Restarter::builder(api, settings.allowlist)
        .options(options)
        .caller_reads(caller_reads.clone())
        .config(settings.restart)
        .sets(settings.sets)
        .observer(hooks.clone());
    if let Some(source) = alerts {
        fleetlock = fleetlock.alerts(Arc::new(source));
    }
    Ok(AppState(Arc::new(Shared {
        fleetlock: fleetlock.build(),
        restarter: restarter.build(),
        metrics,
        auth: Arc::new(settings.auth),
        status_clients: Arc::new(tokio::sync::Semaphore::new(settings.max_status_clients)),
        api_rate: PerClient::new(settings.api_rate).map(Arc::new),
        fleetlock_rate: PerClient::new(settings.fleetlock_rate).map(Arc::new),
        cluster_read_rate: PerUser::new(settings.cluster_read_rate).map(Arc::new),
        caller_reads,
        metrics_open: settings.metrics_open,
        request_timeout: settings.request_timeout,
        stream_recheck: settings.stream_recheck,
        hooks,
    })))
}

/// The three routers of [`App`]: everything, the people-facing routes, and FleetLock alone;
/// `some_group` names a real group in the OpenAPI document's examples.
fn routers(
    state: AppState,
    fleetlock_prefix: &str,
    some_group: Option<String>,
) -> (Router, Router, Router) {
    let (public, public_doc) = api::routes().split_for_parts();
    let public = public.merge(ui::routes());
    let (fleetlock_routes, fleetlock_doc) =
        fleetlock_http::routes(fleetlock_prefix).split_for_parts();
    // The document is served to anyone: its examples are made up, never the allowlist's.
    let facts = Facts {
        bearer: state.auth.uses_tokens(),
        group: some_group,
        metrics_open: state.metrics_open,
    };
    let mut both_doc = public_doc.clone();
    both_doc.merge(fleetlock_doc.clone());
    // The people-facing routes pass the browser checks and the per-client limits; FleetLock
    // has its own limit and no browser to guard against.
    let guarded = |doc: OpenApi| {
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
    let router = guarded(both_doc)
        .merge(fleetlock_routes.clone())
        .with_state(state.clone());
    let public_router = guarded(public_doc).with_state(state.clone());
    let fleetlock_router = fleetlock_routes
        .route("/healthz", get(api::probes::healthz))
        .route("/readyz", get(api::probes::fleetlock_readyz))
        .route(
            "/openapi.json",
            api::openapi::serve(&api::openapi::document(fleetlock_doc, &facts)),
        )
        .with_state(state);
    (router, public_router, fleetlock_router)
}
