//! The `restart-manager` server, as a library so tests can build and drive it.
//!
//! It serves the FleetLock protocol for Zincati (node reboots), health and readiness probes,
//! Prometheus metrics and a read-only JSON view of the fleet, on a real cluster or on the
//! embedded simulated one (`--simulate`). `main.rs` only calls [`parse_and_run`].
//!
//! | module | what it holds |
//! |---|---|
//! | [`args`] | flags and environment variables |
//! | [`config`] | the YAML configuration file |
//! | [`fleetlock_http`] | the FleetLock endpoints |
//! | [`metrics`] | Prometheus metrics |
//! | [`simulate`] | the demo fleet and simulated Zincati agents |
//! | [`server`] | wiring it together, serving, shutting down |
//!
//! The router is a plain function of its state ([`router`]), so tests drive it with
//! `tower::ServiceExt::oneshot` or over a real socket.

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use cluster_api::{Clock, ClusterApi};
use fleetlock_core::{Coordinator, FleetLockConfig};

pub mod args;
pub mod config;
pub mod fleetlock_http;
pub mod metrics;
pub mod server;
pub mod simulate;

pub use args::Args;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Node reboots.
    pub fleetlock: Coordinator,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
}

/// A wired server: its router, and the coordinator whose [`Coordinator::run`] must be
/// driven for it to answer.
pub struct App {
    /// The HTTP surface.
    pub router: Router,
    /// Node reboots.
    pub fleetlock: Coordinator,
}

/// Wires the coordinator, metrics and routes over a cluster, as the server runs them.
pub fn build(
    api: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    fleetlock: FleetLockConfig,
    instance: &str,
    fleetlock_prefix: &str,
) -> anyhow::Result<App> {
    let metrics = Arc::new(metrics::Metrics::new()?);
    let fleetlock = Coordinator::builder(api, fleetlock)
        .clock(clock)
        .instance(instance)
        .observer(metrics.clone())
        .build();
    let state = AppState {
        fleetlock: fleetlock.clone(),
        metrics,
    };
    Ok(App {
        router: router(state, fleetlock_prefix),
        fleetlock,
    })
}

/// The whole HTTP surface. `fleetlock_prefix` is where the FleetLock endpoints live.
pub fn router(state: AppState, fleetlock_prefix: &str) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/fleet", get(fleet))
        .merge(fleetlock_http::routes(fleetlock_prefix))
        .with_state(state)
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.fleetlock.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the node and lock caches to sync",
        )
            .into_response()
    }
}

async fn metrics_text(State(app): State<AppState>) -> Response {
    app.metrics.update_fleet(&app.fleetlock.snapshot());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn fleet(State(app): State<AppState>) -> Response {
    axum::Json(app.fleetlock.snapshot()).into_response()
}

/// Parses the command line and runs the server; the whole of `main`.
pub fn parse_and_run() -> ExitCode {
    let args = Args::parse();
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
            tracing::error!("{e:#}");
            eprintln!("restart-manager: {e:#}");
            ExitCode::FAILURE
        }
    }
}
