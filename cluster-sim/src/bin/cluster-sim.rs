//! `cluster-sim serve`: a simulated cluster behind a Kubernetes API endpoint, for kubectl,
//! the `restart-manager` binary and the end-to-end suite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cluster_sim::apiserver::{ApiServer, DEFAULT_TOKEN, DEFAULT_WATCH_WINDOW};
use cluster_sim::{Scenario, SimCluster, SimConfig};

/// A simulated Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "cluster-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves a scenario over the Kubernetes API until interrupted.
    Serve {
        /// The scenario file (YAML; see docs/simulation.md). Without it: an empty cluster.
        #[arg(long, env = "SIM_SCENARIO")]
        scenario: Option<PathBuf>,
        /// Where to listen.
        #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Where to write a kubeconfig that reaches the endpoint.
        #[arg(long, env = "SIM_KUBECONFIG_OUT")]
        kubeconfig_out: Option<PathBuf>,
        /// Serve plain HTTP instead of HTTPS with a CA made at start.
        #[arg(long)]
        plain_http: bool,
        /// How many changes a watch may start behind before it is told 410 Gone.
        #[arg(long, default_value_t = DEFAULT_WATCH_WINDOW)]
        watch_window: usize,
        /// The administrator's bearer token.
        #[arg(long, env = "SIM_TOKEN", default_value = DEFAULT_TOKEN)]
        token: String,
        /// How many container images each Node lists in its status (a real kubelet reports up
        /// to 50; they are most of a real Node's size).
        #[arg(long, default_value_t = 0)]
        node_images: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cluster-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let Command::Serve {
        scenario,
        listen,
        kubeconfig_out,
        plain_http,
        watch_window,
        token,
        node_images,
    } = cli.command;
    let config = SimConfig {
        node_images,
        ..live_config()
    };
    let sim = match &scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let scenario =
                Scenario::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            SimCluster::from_scenario_with(&scenario, config)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => SimCluster::with_config(config),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut server = ApiServer::new(sim.clone())
        .watch_window(watch_window)
        .token(token);
    if plain_http {
        server = server.plain_http();
    }
    let running = server.serve(listener).map_err(|e| e.to_string())?;
    if let Some(path) = &kubeconfig_out {
        // Whole or not at all: whoever waits for the file never reads half of it.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, running.kubeconfig())
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    tracing::info!(
        url = %running.url(),
        nodes = sim.nodes().len(),
        pods = sim.pods().len(),
        kubeconfig = %kubeconfig_out.as_ref().map_or("(not written)".into(), |p| p.display().to_string()),
        "serving the simulated cluster"
    );
    tokio::select! {
        () = running.wait() => Ok(()),
        r = tokio::signal::ctrl_c() => r.map_err(|e| format!("waiting for Ctrl-C: {e}")),
    }
}

/// Served to people and tools, the simulation keeps the real time (a scenario's `startTime`
/// still wins).
fn live_config() -> SimConfig {
    SimConfig {
        start_time: jiff::Timestamp::now(),
        ..SimConfig::default()
    }
}
