//! Wiring: configuration, the cluster (real or simulated), the services, the HTTP server,
//! and a bounded graceful shutdown.
//!
//! [`run_with`] goes through four steps: `Setup::read` (flags and configuration),
//! `Cluster::reach` (connect and check), `spawn_background` (the services' loops, the
//! leader election, the simulation), and `serving::start` (listen, serve, stop).
//!
//! | module | what it holds |
//! |---|---|
//! | `setup.rs` | the configuration, this replica's identity, authentication, the services' settings |
//! | `cluster.rs` | the cluster: connected and checked, or simulated |
//! | `serving.rs` | the listeners, their limits and TLS |

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, build_with_reads};
use crate::args::{Args, LogFormat};
use crate::leader::Election;

mod cluster;
mod serving;
mod setup;

pub use cluster::{NODE_METADATA_PREFIX, config_change_namespaces};
pub use serving::Listeners;

use cluster::Cluster;
use setup::Setup;

/// Runs the server until SIGTERM or Ctrl-C: `main`'s whole job.
pub async fn run(args: Args) -> Result<()> {
    init_logging(&args)?;
    run_with(args, None, shutdown_signal()).await
}

/// The whole server until `shutdown` completes; then it finishes in-flight requests (up to
/// `--shutdown-grace`), gives up the leader Lease and returns. What `main` runs, and what
/// tests run with their own shutdown. With `listeners` `None` it binds `--listen` and
/// `--fleetlock-listen` once the cluster has been reached and checked (so a server that
/// cannot work never opens its ports); tests pass sockets they bound themselves.
pub async fn run_with(
    args: Args,
    listeners: Option<Listeners>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let setup = Setup::read(&args)?;
    let namespace = setup.config.fleetlock.namespace.clone();
    let cluster = Cluster::reach(
        &args,
        &namespace,
        &setup.config.fleetlock.group_label,
        &setup.allowlist,
    )
    .await?;
    let instance = setup.instance.clone();
    let auth = setup::auth(&args, cluster.kube.as_ref(), &namespace)?;
    let (leader_tx, leader_rx) = watch::channel(false);
    let election = args.kube.leader_election.then(|| {
        // Renewals pass a token bucket of their own, not the one every other call queues in.
        Election::new(
            cluster.with_own_budget(args.kube.election_qps, args.kube.election_burst),
            cluster.clock.clone(),
            &namespace,
            "restart-manager-leader",
            &instance,
        )
    });
    // Stops the services' background work once the HTTP servers have stopped.
    let services_stop = CancellationToken::new();
    let settings = setup.settings(
        &args,
        auth,
        election.is_some().then_some(leader_rx),
        services_stop.clone(),
    );
    // Dry runs, plans and history read on a token bucket of their own, so that callers
    // asking for many cannot take the turns evictions and lock writes need.
    let caller_reads = cluster.with_own_budget(args.kube.read_qps, args.kube.read_burst);
    let app = Arc::new(build_with_reads(
        cluster.api.clone(),
        caller_reads,
        cluster.clock.clone(),
        settings,
    )?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let background = spawn_background(&args, &app, &cluster, election, leader_tx, &stop_rx).await?;
    let servers = serving::start(&args, &app, &instance, listeners, &stop_rx).await?;
    let grace = args.shutdown_grace;
    let mut stopped = stop_rx;
    tokio::select! {
        result = servers => result.context("serving HTTP")?,
        () = async {
            shutdown.await;
            tracing::info!(grace = ?grace, "shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("in-flight requests did not finish within the shutdown grace; exiting"),
    }
    // The services stop at their next safe point: a drain between two steps, its slot kept
    // in the group Lease for whichever replica runs next.
    services_stop.cancel();
    if tokio::time::timeout(SERVICES_STOP_BOUND, background.services)
        .await
        .is_err()
    {
        tracing::warn!(bound = ?SERVICES_STOP_BOUND, "the services did not stop in time; exiting");
    }
    if let Some(election) = background.election
        && tokio::time::timeout(Duration::from_secs(5), election)
            .await
            .is_err()
    {
        tracing::warn!("the leader lease could not be given back in time; it expires by itself");
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long the services may take to stop once asked (a drain finishes the step it is in:
/// an eviction round, a Lease write).
const SERVICES_STOP_BOUND: Duration = Duration::from_secs(10);

/// What [`spawn_background`] started.
struct Background {
    /// The services' loops, until the services' shutdown token is cancelled.
    services: JoinHandle<()>,
    /// The leader election, which gives the Lease back when `stop` turns true.
    election: Option<JoinHandle<()>>,
    /// The simulated cluster's Kubernetes API (`--sim-api-listen`), served until dropped.
    #[cfg(feature = "simulate")]
    _sim_api: Option<cluster_sim::apiserver::Running>,
}

/// Starts the work that runs beside the HTTP servers: the services' loops, the leader
/// election, and on a simulated cluster its Zincati agents and its Kubernetes API.
async fn spawn_background(
    args: &Args,
    app: &Arc<App>,
    cluster: &Cluster,
    election: Option<Election>,
    leader_tx: watch::Sender<bool>,
    stop_rx: &watch::Receiver<bool>,
) -> Result<Background> {
    let services = tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    // The election stops by itself on shutdown, giving the Lease back if it holds it.
    let election = election.map(|e| tokio::spawn(e.run(leader_tx, stop_rx.clone())));
    #[cfg(feature = "simulate")]
    let _sim_api = spawn_simulation(args, app, cluster, stop_rx).await?;
    #[cfg(not(feature = "simulate"))]
    if args.simulation.api_listen.is_some() {
        anyhow::bail!("--sim-api-listen needs --simulate");
    }
    #[cfg(not(feature = "simulate"))]
    let _ = cluster;
    Ok(Background {
        services,
        election,
        #[cfg(feature = "simulate")]
        _sim_api,
    })
}

/// On the simulated cluster, its Zincati agents (unless `--sim-no-agents`) and, with
/// `--sim-api-listen`, its Kubernetes API.
#[cfg(feature = "simulate")]
async fn spawn_simulation(
    args: &Args,
    app: &App,
    cluster: &Cluster,
    stop_rx: &watch::Receiver<bool>,
) -> Result<Option<cluster_sim::apiserver::Running>> {
    use crate::simulate;

    if let Some(sim) = &cluster.sim
        && !args.simulation.no_agents
    {
        simulate::spawn_agents(sim, app.fleetlock_router.clone(), args, stop_rx.clone());
    }
    Ok(match (&cluster.sim, args.simulation.api_listen) {
        (Some(sim), Some(addr)) => {
            Some(simulate::serve_api(sim, addr, &args.simulation.kubeconfig_out).await?)
        }
        (None, Some(_)) => anyhow::bail!("--sim-api-listen needs --simulate"),
        _ => None,
    })
}

fn init_logging(args: &Args) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log.level)
        .with_context(|| format!("invalid --log-level {:?}", args.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let result = match args.log.format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already initialised (tests running several servers in one process) is fine.
    let _ = result;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
