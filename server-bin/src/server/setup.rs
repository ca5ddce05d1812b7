//! What the server is configured to do: the configuration file, this replica's identity,
//! the authentication settings, and the [`Settings`] of the services, from the flags.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_adapter::KubeCluster;
use restart_core::RestartConfig;

use crate::args::{Args, AuthMode, Instance};
use crate::auth::{Auth, Authenticator, KubeAuth, ProxyAuth, load_tokens};
use crate::config::FileConfig;
use crate::ratelimit::Rate;
use crate::settings::Settings;

/// The configuration as this replica runs it, and the parts of it read once.
pub(super) struct Setup {
    pub(super) config: FileConfig,
    /// This replica's name, on locks, Events and the leader Lease.
    pub(super) instance: String,
    /// Built once: the start-up permission check and the restart service both follow it.
    pub(super) allowlist: restart_core::Allowlist,
    pub(super) sets: Vec<restart_core::RestartSet>,
}

// === impl Setup ===

impl Setup {
    /// Checks the flags, reads the configuration and settles this replica's namespace and
    /// identity.
    pub(super) fn read(args: &Args) -> Result<Self> {
        #[cfg(not(feature = "simulate"))]
        if args.simulate {
            bail!("{}", crate::args::NO_SIMULATE);
        }
        crate::args::check_exposure(args).map_err(anyhow::Error::msg)?;
        let mut config = load_config(args)?;
        config.settle_namespace(None, args.identity.pod_namespace.as_deref());
        if let (Some(ns), Some(name)) = (&args.identity.pod_namespace, &args.identity.pod_name) {
            config.fleetlock.own_pod = Some((ns.clone(), name.clone()));
        }
        let instance = instance(args);
        let allowlist = config.allowlist()?;
        let sets = config.sets(&allowlist)?;
        Ok(Setup {
            config,
            instance,
            allowlist,
            sets,
        })
    }

    /// The services' settings; `leadership` is the election's verdict, if there is one.
    pub(super) fn settings(
        self,
        args: &Args,
        auth: Auth,
        leadership: Option<tokio::sync::watch::Receiver<bool>>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Settings {
        let Setup {
            config,
            instance,
            allowlist,
            sets,
        } = self;
        Settings {
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
            instance,
            fleetlock_prefix: args.fleetlock.prefix.clone(),
            leadership,
            cache_grace: args.kube.cache_grace,
            shutdown,
            max_status_clients: args.max_status_clients as usize,
            api_rate: Rate {
                per_second: args.api_rate,
                burst: args.api_burst,
            },
            fleetlock_rate: Rate {
                per_second: args.fleetlock_rate,
                burst: args.fleetlock_burst,
            },
            request_timeout: args.request_timeout,
            stream_recheck: args.status_recheck_interval,
            notifications: config.notifications.clone(),
            cluster_read_rate: Rate {
                per_second: args.cluster_read_rate,
                burst: args.cluster_read_burst,
            },
            metrics_open: args.metrics_open,
        }
    }
}

/// This replica's identity: its pod's name, or a random one (with a warning) without it.
fn instance(args: &Args) -> String {
    match args.identity.instance() {
        Instance {
            name,
            random: false,
        } => {
            tracing::info!(identity = %name, "this replica's identity is its pod name (POD_NAME)");
            name
        }
        Instance { name, random: true } => {
            tracing::warn!(
                identity = %name,
                "POD_NAME is not set: this replica's identity is a random name; set POD_NAME \
                 from the downward API (metadata.name), as the manifests do, so that Events and \
                 Leases name the pod"
            );
            name
        }
    }
}

/// The authentication settings, with a warning when nobody is authenticated on a real
/// cluster.
pub(super) fn auth(args: &Args, kube: Option<&KubeCluster>, namespace: &str) -> Result<Auth> {
    let auth = auth_settings(args, kube, namespace)?;
    if matches!(auth.authenticator, Authenticator::None) && !args.simulate {
        tracing::warn!(
            listen = %args.listen,
            "the restart API has no authentication: anyone who can reach this loopback \
             address can restart the allowlisted workloads; set --auth before exposing it"
        );
    }
    Ok(auth)
}

/// The authentication settings of `--auth` and the flags that go with it.
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

/// The configuration file; with `--simulate` and no file, the demo's.
fn load_config(args: &Args) -> Result<FileConfig> {
    let explicit = args.config_file.as_os_str() != "config.yaml";
    #[cfg(feature = "simulate")]
    if args.simulate && !explicit && !args.config_file.exists() {
        tracing::info!("no configuration file; using the demo configuration of --simulate");
        return Ok(FileConfig::parse(
            crate::simulate::DEMO_CONFIG,
            "the built-in demo configuration",
        )?);
    }
    Ok(FileConfig::load(&args.config_file, explicit)?)
}
