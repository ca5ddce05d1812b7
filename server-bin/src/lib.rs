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
//! | [`notify`] | notifications to webhooks |
//! | [`hooks`] | what the cores report to: metrics and notifications |
//! | `simulate` | the demo fleet and simulated Zincati agents (the `simulate` feature) |
//! | [`server`] | running it: configuration, the cluster, serving, shutting down |
//! | `app.rs`, `settings.rs`, `state.rs` | [`build`], its [`Settings`], and the [`AppState`] handlers share |
//! | [`listener`] | serving a router with header timeouts and a connection cap |
//! | [`tls`] | optional TLS from certificate files, reloaded on change |
//! | [`leader`] | leader election for the background loops |
//! | [`rbac`] | `restart-manager rbac`: the Roles a configuration needs |
//!
//! `app.rs` wires them: [`build`] returns the routers ([`App`]): the people-facing one, FleetLock's, and both
//! together, so tests drive them with `tower::ServiceExt::oneshot` or over a real socket.

use std::process::ExitCode;

use clap::Parser;

pub mod alerts;
pub mod api;
mod app;
pub mod args;
pub mod auth;
pub(crate) mod body;
pub mod config;
pub mod fleetlock_http;
pub mod hooks;
pub mod leader;
pub mod listener;
pub mod metrics;
pub mod notify;
pub mod ratelimit;
pub mod rbac;
pub mod server;
mod settings;
#[cfg(feature = "simulate")]
pub mod simulate;
mod state;
pub mod status_stream;
pub mod tls;
pub mod ui;

pub use app::{App, build, build_with_reads};
pub use args::Args;
pub use settings::{
    DEFAULT_API_RATE, DEFAULT_CLUSTER_READ_RATE, DEFAULT_FLEETLOCK_RATE,
    DEFAULT_MAX_STATUS_CLIENTS, DEFAULT_STREAM_RECHECK, Settings,
};
pub use state::{AppState, Shared};

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
