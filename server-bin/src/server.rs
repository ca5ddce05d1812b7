//! Wiring: configuration, the cluster (real or simulated), the coordinator, the HTTP server,
//! and a bounded graceful shutdown.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cluster_api::{Clock, ClusterApi};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::{Args, LogFormat};
use crate::config::FileConfig;
use crate::{App, build, simulate};

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> Result<()> {
    init_logging(&args)?;
    let mut config = load_config(&args)?;
    if let (Some(namespace), true) = (
        &args.identity.pod_namespace,
        config.fleetlock.namespace == "restart-manager",
    ) {
        config.fleetlock.namespace = namespace.clone();
    }
    if let (Some(ns), Some(name)) = (&args.identity.pod_namespace, &args.identity.pod_name) {
        config.fleetlock.own_pod = Some((ns.clone(), name.clone()));
    }
    let instance = args
        .identity
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("restart-manager-{}", std::process::id()));

    let (api, clock, sim): (Arc<dyn ClusterApi>, Arc<dyn Clock>, _) = if args.simulate {
        let sim = simulate::cluster(&args.simulation)?;
        tracing::info!(
            nodes = sim.nodes().len(),
            pods = sim.pods().len(),
            "running on a simulated cluster"
        );
        (Arc::new(sim.clone()), Arc::new(sim.clone()), Some(sim))
    } else {
        bail!(
            "no cluster to talk to: this build has no Kubernetes adapter yet; run with --simulate \
             to use the embedded simulated cluster"
        );
    };

    let App {
        router: app,
        fleetlock,
    } = build(
        api,
        clock,
        config.fleetlock.clone(),
        &instance,
        &args.fleetlock.prefix,
    )?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let background = tokio::spawn({
        let fleetlock = fleetlock.clone();
        let mut stop = stop_rx.clone();
        async move {
            tokio::select! {
                () = fleetlock.run() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    });
    if let Some(sim) = &sim
        && !args.simulation.no_agents
    {
        simulate::spawn_agents(sim, app.clone(), &args, stop_rx.clone());
    }

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        fleetlock = %format!("{}v1/pre-reboot", crate::fleetlock_http::normalize_prefix(&args.fleetlock.prefix)),
        %instance,
        "serving"
    );

    let mut stopping = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopping.wait_for(|s| *s).await;
    });
    let grace = args.shutdown_grace;
    let mut stopped = stop_rx;
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        () = async {
            shutdown_signal().await;
            tracing::info!(grace = ?grace, "shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("in-flight requests did not finish within the shutdown grace; exiting"),
    }
    background.abort();
    tracing::info!("stopped");
    Ok(())
}

fn load_config(args: &Args) -> Result<FileConfig> {
    let explicit = args.config_file.as_os_str() != "config.yaml";
    if args.simulate && !explicit && !args.config_file.exists() {
        tracing::info!("no configuration file; using the demo configuration of --simulate");
        return FileConfig::parse(simulate::DEMO_CONFIG, "the built-in demo configuration");
    }
    FileConfig::load(&args.config_file, explicit)
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
