//! Wiring: configuration, the cluster (real or simulated), the services, the HTTP server,
//! and a bounded graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cluster_api::{Clock, ClusterApi, SystemClock};
use k8s_adapter::{KubeCluster, KubeOptions, config_watch_permissions, required_permissions};
use restart_core::{Allowlist, RestartConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::{Args, AuthMode, FleetLockListen, LogFormat};
use crate::auth::{Auth, Authenticator, KubeAuth, ProxyAuth, load_tokens};
use crate::config::FileConfig;
use crate::leader::Election;
use crate::{Settings, build_with_reads, simulate};

/// The server's sockets, bound before anything else runs.
pub struct Listeners {
    /// The page, the API, the health and metrics endpoints (and FleetLock with
    /// `--fleetlock-listen same`).
    pub main: TcpListener,
    /// FleetLock on a listener of its own; `None` with `--fleetlock-listen same`.
    pub fleetlock: Option<TcpListener>,
}

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
    crate::args::check_exposure(&args).map_err(anyhow::Error::msg)?;
    let mut config = load_config(&args)?;
    config.settle_namespace(None, args.identity.pod_namespace.as_deref());
    if let (Some(ns), Some(name)) = (&args.identity.pod_namespace, &args.identity.pod_name) {
        config.fleetlock.own_pod = Some((ns.clone(), name.clone()));
    }
    let instance = match args.identity.instance() {
        crate::args::Instance {
            name,
            random: false,
        } => {
            tracing::info!(identity = %name, "this replica's identity is its pod name (POD_NAME)");
            name
        }
        crate::args::Instance { name, random: true } => {
            tracing::warn!(
                identity = %name,
                "POD_NAME is not set: this replica's identity is a random name; set POD_NAME \
                 from the downward API (metadata.name), as the manifests do, so that Events and \
                 Leases name the pod"
            );
            name
        }
    };

    let namespace = config.fleetlock.namespace.clone();
    // Built once: the start-up permission check and the restart service both follow it.
    let allowlist = config.allowlist()?;
    let sets = config.sets(&allowlist)?;
    let (api, clock, sim, kube): (Arc<dyn ClusterApi>, Arc<dyn Clock>, _, _) = if args.simulate {
        let sim = simulate::cluster(&args.simulation)?;
        tracing::info!(
            nodes = sim.nodes().len(),
            pods = sim.pods().len(),
            "running on a simulated cluster"
        );
        (
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Some(sim),
            None,
        )
    } else {
        let kube = connect(&args, &namespace, &config.fleetlock.group_label, &allowlist).await?;
        (
            Arc::new(kube.clone()),
            Arc::new(SystemClock),
            None,
            Some(kube),
        )
    };

    let auth = auth_settings(&args, kube.as_ref(), &namespace)?;
    if matches!(auth.authenticator, Authenticator::None) && !args.simulate {
        tracing::warn!(
            listen = %args.listen,
            "the restart API has no authentication: anyone who can reach this loopback \
             address can restart the allowlisted workloads; set --auth before exposing it"
        );
    }
    let (leader_tx, leader_rx) = watch::channel(false);
    let election = args.kube.leader_election.then(|| {
        // Renewals pass a token bucket of their own, not the one every other call queues in.
        let election_api: Arc<dyn ClusterApi> = match &kube {
            Some(kube) => {
                Arc::new(kube.with_own_budget(args.kube.election_qps, args.kube.election_burst))
            }
            None => api.clone(),
        };
        Election::new(
            election_api,
            clock.clone(),
            &namespace,
            "restart-manager-leader",
            &instance,
        )
    });
    let settings = Settings {
        restart: RestartConfig {
            namespace: config.fleetlock.namespace.clone(),
            lock_duration: Duration::from_secs(args.restart.force_unlock_sec),
            resync: Duration::from_secs(args.restart.watch_interval),
            ..RestartConfig::default()
        },
        allowlist,
        sets,
        fleetlock: config.fleetlock.clone(),
        auth,
        instance: instance.clone(),
        fleetlock_prefix: args.fleetlock.prefix.clone(),
        leadership: election.is_some().then_some(leader_rx),
        cache_grace: args.kube.cache_grace,
        max_status_clients: args.max_status_clients as usize,
        api_rate: crate::ratelimit::Rate {
            per_second: args.api_rate,
            burst: args.api_burst,
        },
        fleetlock_rate: crate::ratelimit::Rate {
            per_second: args.fleetlock_rate,
            burst: args.fleetlock_burst,
        },
        request_timeout: args.request_timeout,
        stream_recheck: args.status_recheck_interval,
        notifications: config.notifications.clone(),
        cluster_read_rate: crate::ratelimit::Rate {
            per_second: args.cluster_read_rate,
            burst: args.cluster_read_burst,
        },
        metrics_open: args.metrics_open,
    };
    // Dry runs, plans and history read on a token bucket of their own, so that callers
    // asking for many cannot take the turns evictions and lock writes need.
    let caller_reads: Arc<dyn ClusterApi> = match &kube {
        Some(kube) => Arc::new(kube.with_own_budget(args.kube.read_qps, args.kube.read_burst)),
        None => api.clone(),
    };
    let app = Arc::new(build_with_reads(api, caller_reads, clock, settings)?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let background = tokio::spawn({
        let app = app.clone();
        let mut stop = stop_rx.clone();
        async move {
            tokio::select! {
                () = app.run() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    });
    // The election stops by itself on shutdown, giving the Lease back if it holds it.
    let election = election.map(|e| tokio::spawn(e.run(leader_tx, stop_rx.clone())));
    if let Some(sim) = &sim
        && !args.simulation.no_agents
    {
        simulate::spawn_agents(sim, app.fleetlock_router.clone(), &args, stop_rx.clone());
    }
    let _endpoint = match (&sim, args.simulation.api_listen) {
        (Some(sim), Some(addr)) => {
            Some(serve_simulated_api(sim, addr, &args.simulation.kubeconfig_out).await?)
        }
        (None, Some(_)) => bail!("--sim-api-listen needs --simulate"),
        _ => None,
    };

    let Listeners {
        main: listener,
        fleetlock: fleetlock_listener,
    } = match listeners {
        Some(bound) => bound,
        None => Listeners::bind(&args).await?,
    };
    let fleetlock_path = format!(
        "{}v1/pre-reboot",
        crate::fleetlock_http::normalize_prefix(&args.fleetlock.prefix)
    );
    let main_router = match fleetlock_listener {
        None => app.router.clone(),
        Some(_) => app.public_router.clone(),
    };
    let fleetlock_address = match &fleetlock_listener {
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

    let limits = crate::listener::Limits {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
        max_per_client: args.max_connections_per_client as usize,
        http2: true,
    };
    // Zincati speaks HTTP/1.1: FleetLock's own listener serves nothing else.
    let fleetlock_limits = crate::listener::Limits {
        max_per_client: args.fleetlock_max_connections_per_client as usize,
        http2: false,
        ..limits
    };
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
        &args,
        &stop_rx,
    )?;
    let fleetlock_tls = tls_config(
        args.tls
            .fleetlock_cert_file
            .as_deref()
            .zip(args.tls.fleetlock_key_file.as_deref()),
        None,
        &args,
        &stop_rx,
    )?;
    if fleetlock_tls.is_some() && fleetlock_listener.is_none() {
        bail!(
            "--fleetlock-tls-cert-file needs FleetLock on a listener of its own; with \
             --fleetlock-listen same, --tls-cert-file covers it"
        );
    }
    let serve = |listener: TcpListener, router: axum::Router, limits, tls| {
        crate::listener::serve(listener, router, limits, tls, stop_rx.clone())
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
    let servers = async { tokio::try_join!(main, fleetlock).map(|_| ()) };
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
    background.abort();
    if let Some(election) = election
        && tokio::time::timeout(Duration::from_secs(5), election)
            .await
            .is_err()
    {
        tracing::warn!("the leader lease could not be given back in time; it expires by itself");
    }
    tracing::info!("stopped");
    Ok(())
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

/// Serves the simulated cluster over the Kubernetes API and writes a kubeconfig for it.
async fn serve_simulated_api(
    sim: &cluster_sim::SimCluster,
    addr: SocketAddr,
    kubeconfig: &std::path::Path,
) -> Result<cluster_sim::apiserver::Running> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the simulated API"))?;
    let running = cluster_sim::apiserver::ApiServer::new(sim.clone())
        .serve(listener)
        .map_err(anyhow::Error::msg)?;
    std::fs::write(kubeconfig, running.kubeconfig())
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;
    tracing::info!(
        url = %running.url(),
        kubeconfig = %kubeconfig.display(),
        "the simulated cluster is served over the Kubernetes API: kubectl --kubeconfig {} get nodes -w",
        kubeconfig.display()
    );
    Ok(running)
}

/// The proxy's shared secret, from its file; proxy mode refuses to start without one.
fn proxy_secret(path: Option<&std::path::Path>) -> Result<String> {
    let path = path.context(
        "--auth proxy needs --auth-proxy-secret-file (a secret the proxy sends in the \
         X-Restart-Manager-Proxy-Secret header) or --auth-proxy-client-ca-file (the proxy's \
         client certificate), so that nothing else on its network can claim an identity",
    )?;
    let secret = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the proxy secret {}", path.display()))?
        .trim()
        .to_string();
    if secret.len() < 16 {
        bail!(
            "the proxy secret in {} is shorter than 16 characters",
            path.display()
        );
    }
    Ok(secret)
}

/// The prefix of every Node label and annotation the services read.
pub const NODE_METADATA_PREFIX: &str = "restart-manager.io/";

/// The namespaces of the workloads that restart on configuration changes: where the
/// server watches ConfigMaps and Secrets.
pub fn config_change_namespaces(allowlist: &Allowlist) -> impl Iterator<Item = &str> {
    allowlist
        .iter()
        .filter(|a| a.config_trigger.is_some())
        .map(|a| a.workload.namespace.as_str())
}

/// Connects to the cluster and checks, before serving anything, that it answers and that
/// this identity has every permission the adapter uses.
async fn connect(
    args: &Args,
    namespace: &str,
    group_label: &str,
    allowlist: &Allowlist,
) -> Result<KubeCluster> {
    // The cores read only their own Node labels and annotations, and the group label.
    let mut prefixes = vec![NODE_METADATA_PREFIX.to_string()];
    if !group_label.is_empty() && !group_label.starts_with(NODE_METADATA_PREFIX) {
        prefixes.push(group_label.to_string());
    }
    let options = KubeOptions {
        qps: args.kube.qps,
        burst: args.kube.burst,
        timeout: args.kube.timeout,
        review_qps: args.kube.review_qps,
        review_burst: args.kube.review_burst,
        node_metadata_prefixes: Some(prefixes),
        ..KubeOptions::default()
    };
    let kube = KubeCluster::connect(
        args.kube.kubeconfig.as_deref(),
        args.kube.context.as_deref(),
        options,
    )
    .await?;
    let url = kube.url().unwrap_or("the cluster").to_string();
    let version = kube
        .server_version()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API at {url}: {e}"))?;
    let mut wanted = required_permissions(namespace, allowlist.iter().map(|a| &a.workload));
    wanted.extend(config_watch_permissions(config_change_namespaces(
        allowlist,
    )));
    let missing = kube
        .missing_permissions(&wanted)
        .await
        .map_err(|e| anyhow::anyhow!("cannot check permissions at {url}: {e}"))?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
        bail!(
            "missing permissions at {url}: this identity may not {}; grant the ClusterRole and \
             Role in deploy/, and for the allowlisted workloads (and, with \
             restartOnConfigChange, their namespaces' ConfigMaps and Secrets) the Roles that \
             `restart-manager rbac --config FILE` prints (see docs/operations.md)",
            list.join("; ")
        );
    }
    tracing::info!(%url, %version, "connected to the cluster; permissions complete");
    Ok(kube)
}

fn auth_settings(args: &Args, kube: Option<&KubeCluster>, namespace: &str) -> Result<Auth> {
    let a = &args.auth;
    let authenticator = match a.mode {
        AuthMode::None => Authenticator::None,
        AuthMode::Tokens => {
            let path = a
                .token_file
                .as_ref()
                .context("--auth tokens needs --auth-token-file (or AUTH_TOKEN_FILE)")?;
            Authenticator::Tokens(load_tokens(path)?)
        }
        AuthMode::Kubernetes => {
            let kube = kube.context(
                "--auth kubernetes needs a real cluster (it cannot be used with --simulate)",
            )?;
            let audiences = a
                .token_audiences
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            Authenticator::Kubernetes(Arc::new(KubeAuth::new(
                kube.clone(),
                namespace,
                audiences,
                a.cache_ttl,
                (args.kube.review_qps, args.kube.review_burst),
            )))
        }
        AuthMode::Proxy => Authenticator::Proxy(ProxyAuth {
            secret: match (&a.proxy_secret_file, &a.proxy_client_ca_file) {
                (None, Some(_)) => None,
                (file, _) => Some(proxy_secret(file.as_deref())?),
            },
            client_certificate: a.proxy_client_ca_file.is_some(),
            user_header: a.proxy_user_header.clone(),
            groups_header: a.proxy_groups_header.clone(),
            trusted: a
                .proxy_trusted
                .iter()
                .map(|c| c.parse().map_err(anyhow::Error::msg))
                .collect::<Result<_>>()
                .context("--auth-proxy-trusted")?,
        }),
    };
    Ok(Auth {
        authenticator,
        admins: a.admins.clone(),
        viewers: a.viewers.clone(),
        allowed_origins: a.allowed_origins.clone(),
    })
}

fn load_config(args: &Args) -> Result<FileConfig> {
    let explicit = args.config_file.as_os_str() != "config.yaml";
    if args.simulate && !explicit && !args.config_file.exists() {
        tracing::info!("no configuration file; using the demo configuration of --simulate");
        return Ok(FileConfig::parse(
            simulate::DEMO_CONFIG,
            "the built-in demo configuration",
        )?);
    }
    Ok(FileConfig::load(&args.config_file, explicit)?)
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
