//! Command-line flags and environment variables.
//!
//! Every flag can also be set by the environment variable named in its help; the names the
//! k8s-restart-app seed used (`LISTEN_ADDRESS`, `CONFIG_FILE_PATH`, `KUBE_CONFIG_PATH`,
//! `WATCH_INTERVAL`, `FORCE_UNLOCK_SEC`) keep their meaning.

use fleetlock_core::config::parse_duration;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, ValueEnum};

/// restart-manager: coordinated node reboots (FleetLock for Zincati) and safe workload
/// restarts, with every lock kept in the Kubernetes API.
#[derive(Debug, Clone, Parser)]
#[command(name = "restart-manager", version, about, long_about = None)]
pub struct Args {
    /// Something to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to serve HTTP on; `:8080` means every interface.
    #[arg(long, env = "LISTEN_ADDRESS", default_value = ":8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// The configuration file (YAML). When the default file does not exist, built-in
    /// defaults apply.
    #[arg(
        long = "config",
        env = "CONFIG_FILE_PATH",
        default_value = "config.yaml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Run on an embedded simulated cluster with a demo fleet and simulated Zincati agents,
    /// instead of a real cluster.
    #[arg(long)]
    pub simulate: bool,

    /// Settings of `--simulate`.
    #[command(flatten)]
    pub simulation: SimulationArgs,

    /// How to reach a real cluster.
    #[command(flatten)]
    pub kube: KubeArgs,

    /// The FleetLock endpoints.
    #[command(flatten)]
    pub fleetlock: FleetLockArgs,

    /// Workload restarts.
    #[command(flatten)]
    pub restart: RestartArgs,

    /// Authentication.
    #[command(flatten)]
    pub auth: AuthArgs,

    /// TLS on the listeners.
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,

    /// Who this replica is.
    #[command(flatten)]
    pub identity: IdentityArgs,

    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may sit idle; slower ones are closed (both listeners).
    #[arg(long, env = "HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Connections open at once on each listener; more are closed when accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Connections open at once from one client address on the main listener (0: no cap of
    /// its own); more from it are closed when accepted. Behind a proxy every user shares its
    /// address: raise it there.
    #[arg(long, env = "MAX_CONNECTIONS_PER_CLIENT", default_value_t = 1_024)]
    pub max_connections_per_client: u32,

    /// Connections open at once from one client address on FleetLock's own listener (0: no
    /// cap of its own). Zincati opens one at a time, so a handful is plenty; a client that
    /// opens many cannot take the listener from every other node.
    #[arg(
        long,
        env = "FLEETLOCK_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 16
    )]
    pub fleetlock_max_connections_per_client: u32,

    /// Status-stream (websocket) clients connected at once; more are answered 503.
    #[arg(long, env = "MAX_STATUS_CLIENTS", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_status_clients: u32,

    /// How long a request to the page's API may take before it is answered 503.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// How often a status-stream (websocket) client is identified and authorised again while
    /// connected; one whose token or rights are gone is disconnected.
    #[arg(long, env = "STATUS_RECHECK_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub status_recheck_interval: Duration,

    /// API requests per second per client address (0: unlimited); more get 429.
    #[arg(long, env = "API_RATE", default_value_t = 20)]
    pub api_rate: u32,

    /// API requests a client may send at once after a quiet spell.
    #[arg(long, env = "API_BURST", default_value_t = 40)]
    pub api_burst: u32,

    /// FleetLock requests per second per client address (0: unlimited). Raise it when many
    /// nodes reach the server through one address (a NAT).
    #[arg(long, env = "FLEETLOCK_RATE", default_value_t = 5)]
    pub fleetlock_rate: u32,

    /// FleetLock requests a client may send at once after a quiet spell.
    #[arg(long, env = "FLEETLOCK_BURST", default_value_t = 20)]
    pub fleetlock_burst: u32,

    /// Dry runs, drain plans and history reads per second per user (0: unlimited): each
    /// reads the cluster on the caller's behalf. More get 429.
    #[arg(long, env = "CLUSTER_READ_RATE", default_value_t = 2)]
    pub cluster_read_rate: u32,

    /// Dry runs, drain plans and history reads a user may ask for at once after a quiet
    /// spell.
    #[arg(long, env = "CLUSTER_READ_BURST", default_value_t = 10)]
    pub cluster_read_burst: u32,

    /// Serve `/metrics` to anyone. Off: it needs the API's authentication and the right to
    /// read it (with `--auth kubernetes`, `get` on the non-resource URL `/metrics`), because
    /// its series name the allowlisted workloads.
    #[arg(long, env = "METRICS_OPEN", default_value_t = false)]
    pub metrics_open: bool,

    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// `--simulate` settings.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Simulation")]
pub struct SimulationArgs {
    /// A scenario file describing the simulated cluster, instead of the demo fleet.
    #[arg(long = "sim-scenario", env = "SIM_SCENARIO")]
    pub scenario: Option<PathBuf>,

    /// How often a simulated Zincati agent polls. Real Zincati waits 5 minutes (plus up to
    /// 10% jitter); the demo is faster so that something happens while you watch.
    #[arg(long = "sim-agent-interval", env = "SIM_AGENT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub agent_interval: Duration,

    /// How long a simulated node takes to reboot.
    #[arg(long = "sim-reboot-time", env = "SIM_REBOOT_TIME", default_value = "20s", value_parser = parse_duration)]
    pub reboot_time: Duration,

    /// Do not start simulated Zincati agents (drive the FleetLock endpoints yourself).
    #[arg(long = "sim-no-agents", env = "SIM_NO_AGENTS")]
    pub no_agents: bool,

    /// Also serve the simulated cluster over the Kubernetes API (HTTPS) on this address, so
    /// that kubectl can watch it: `kubectl --kubeconfig FILE get nodes -w`.
    #[arg(long = "sim-api-listen", env = "SIM_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,

    /// Where to write the kubeconfig for `--sim-api-listen`.
    #[arg(
        long = "sim-kubeconfig-out",
        env = "SIM_KUBECONFIG_OUT",
        default_value = "simulated-cluster.kubeconfig"
    )]
    pub kubeconfig_out: PathBuf,
}

/// Reaching a real cluster.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Cluster")]
pub struct KubeArgs {
    /// A kubeconfig file. Without it: `KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// service account, as kubectl does.
    #[arg(long = "kubeconfig", env = "KUBE_CONFIG_PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use.
    #[arg(long = "context", env = "KUBE_CONTEXT")]
    pub context: Option<String>,

    /// Client-side limit on API requests per second.
    #[arg(long = "kube-qps", env = "KUBE_QPS", default_value_t = 50.0)]
    pub qps: f64,

    /// Requests allowed at once above the QPS after a quiet spell.
    #[arg(long = "kube-burst", env = "KUBE_BURST", default_value_t = 100)]
    pub burst: u32,

    /// Access reviews (TokenReview, SubjectAccessReview) per second made for callers of
    /// this server, on a budget of their own: callers with made-up tokens cannot use up the
    /// requests that drains and lock writes need. Past the budget callers get 429.
    #[arg(
        long = "kube-review-qps",
        env = "KUBE_REVIEW_QPS",
        default_value_t = 20.0
    )]
    pub review_qps: f64,

    /// Access reviews allowed at once above `--kube-review-qps` after a quiet spell.
    #[arg(
        long = "kube-review-burst",
        env = "KUBE_REVIEW_BURST",
        default_value_t = 40
    )]
    pub review_burst: u32,

    /// Reads made on callers' behalf (dry runs, drain plans, history: pods, disruption
    /// budgets, Events) per second, on a budget of their own: however many callers ask,
    /// evictions and lock writes under `--kube-qps` never wait behind them.
    #[arg(long = "kube-read-qps", env = "KUBE_READ_QPS", default_value_t = 10.0)]
    pub read_qps: f64,

    /// Reads for callers allowed at once above `--kube-read-qps`.
    #[arg(
        long = "kube-read-burst",
        env = "KUBE_READ_BURST",
        default_value_t = 20
    )]
    pub read_burst: u32,

    /// Leader-election requests (reading and renewing the leader Lease) per second, on a
    /// budget of their own: a burst of other requests queued under `--kube-qps` cannot push
    /// a renewal past its deadline and make leadership change hands.
    #[arg(
        long = "kube-election-qps",
        env = "KUBE_ELECTION_QPS",
        default_value_t = 5.0
    )]
    pub election_qps: f64,

    /// Leader-election requests allowed at once above `--kube-election-qps`.
    #[arg(
        long = "kube-election-burst",
        env = "KUBE_ELECTION_BURST",
        default_value_t = 10
    )]
    pub election_burst: u32,

    /// How long one API request may take.
    #[arg(long = "kube-timeout", env = "KUBE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How long a watch of the cluster may keep failing before `/readyz` says no. Answers
    /// are never given from a cache whose watch is failing, whatever this is.
    #[arg(long = "cache-grace", env = "CACHE_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub cache_grace: Duration,

    /// Run background loops (resuming drains, releasing finished restarts) only while holding
    /// the leader Lease, so that one replica at a time does them.
    #[arg(long = "leader-election", env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
}

/// FleetLock endpoints.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "FleetLock")]
pub struct FleetLockArgs {
    /// Path prefix of the FleetLock endpoints: with `/fleetlock/`, Zincati's
    /// `base_url = "http://host/fleetlock/"` reaches `/fleetlock/v1/pre-reboot`.
    #[arg(
        long = "fleetlock-prefix",
        env = "FLEETLOCK_PATH_PREFIX",
        default_value = "/"
    )]
    pub prefix: String,

    /// Where Zincati reaches the FleetLock endpoints: an address of their own (`:8081`, every
    /// interface), so that a NetworkPolicy can admit only the nodes to it; or `same`, to serve
    /// them on `--listen` beside the page and the API, as earlier versions did.
    #[arg(id = "fleetlock_listen", long = "fleetlock-listen", env = "FLEETLOCK_LISTEN_ADDRESS", default_value = ":8081", value_parser = parse_fleetlock_listen)]
    pub listen: FleetLockListen,
}

/// Where the FleetLock endpoints are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetLockListen {
    /// On a listener of their own.
    Separate(SocketAddr),
    /// On the main listener, with everything else.
    Same,
}

fn parse_fleetlock_listen(s: &str) -> Result<FleetLockListen, String> {
    if s == "same" {
        return Ok(FleetLockListen::Same);
    }
    parse_listen(s)
        .map(FleetLockListen::Separate)
        .map_err(|e| format!("{e}, or \"same\""))
}

/// Workload restarts.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Restarts")]
pub struct RestartArgs {
    /// Seconds between full re-evaluations of every workload, besides watch events.
    #[arg(long = "watch-interval", env = "WATCH_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_interval: u64,

    /// Seconds a restart may hold its lock; after that anyone may take it over.
    #[arg(long = "force-unlock-sec", env = "FORCE_UNLOCK_SEC", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub force_unlock_sec: u64,
}

/// Authentication.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// How callers of the restart API and page are identified.
    #[arg(long = "auth", env = "AUTH_MODE", value_enum, default_value_t = AuthMode::None)]
    pub mode: AuthMode,

    /// With `--auth tokens`: a file of `token,user,uid,"group1,group2"` lines.
    #[arg(long = "auth-token-file", env = "AUTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// With `--auth proxy`: the header carrying the user name.
    #[arg(
        long = "auth-proxy-user-header",
        env = "AUTH_PROXY_USER_HEADER",
        default_value = "X-Forwarded-User"
    )]
    pub proxy_user_header: String,

    /// With `--auth proxy`: the header carrying comma-separated groups.
    #[arg(
        long = "auth-proxy-groups-header",
        env = "AUTH_PROXY_GROUPS_HEADER",
        default_value = "X-Forwarded-Groups"
    )]
    pub proxy_groups_header: String,

    /// With `--auth proxy`: networks the proxy connects from (comma-separated CIDRs).
    #[arg(
        long = "auth-proxy-trusted",
        env = "AUTH_PROXY_TRUSTED",
        value_delimiter = ',',
        default_value = "127.0.0.1/32,::1/128"
    )]
    pub proxy_trusted: Vec<String>,

    /// With `--auth proxy`: a file holding the secret the proxy sends in the
    /// `X-Restart-Manager-Proxy-Secret` header (at least 16 characters). Required: without
    /// it, any workload on the proxy's network could claim to be anyone.
    #[arg(long = "auth-proxy-secret-file", env = "AUTH_PROXY_SECRET_FILE")]
    pub proxy_secret_file: Option<PathBuf>,

    /// With `--auth proxy`: the proxy must connect over TLS with a client certificate signed
    /// by an authority in this PEM file (mTLS); then the shared secret is optional. Needs
    /// `--tls-cert-file`.
    #[arg(long = "auth-proxy-client-ca-file", env = "AUTH_PROXY_CLIENT_CA_FILE")]
    pub proxy_client_ca_file: Option<PathBuf>,

    /// Users or `group:<name>` allowed to break restart locks and pause reboot groups
    /// (comma-separated). Without authentication everyone is.
    #[arg(long = "admins", env = "AUTH_ADMINS", value_delimiter = ',')]
    pub admins: Vec<String>,

    /// Users or `group:<name>` allowed to see workloads, their history and the fleet
    /// (comma-separated); unset: everyone authenticated. With `--auth kubernetes` RBAC decides
    /// (`get` on the workload, `list` on nodes) and this is not used.
    #[arg(long = "viewers", env = "AUTH_VIEWERS", value_delimiter = ',')]
    pub viewers: Vec<String>,

    /// With `--auth kubernetes`: the audiences a token must have been issued for
    /// (comma-separated), as `kubectl create token --audience restart-manager` makes one. A
    /// token made for the API server itself is then refused, so a token handed to this
    /// server cannot be used against the cluster. Set it empty (`""`) to take tokens for the
    /// API server's own audiences instead.
    #[arg(
        long = "auth-token-audiences",
        env = "AUTH_TOKEN_AUDIENCES",
        value_delimiter = ',',
        default_value = "restart-manager"
    )]
    pub token_audiences: Vec<String>,

    /// With `--auth kubernetes`: how long an accepted token or an allowed access review is
    /// trusted before the cluster is asked again; a revoked token or RoleBinding takes up to
    /// this long to count (refusals are kept at most 10 s).
    #[arg(long = "auth-cache-ttl", env = "AUTH_CACHE_TTL", default_value = "30s", value_parser = parse_duration)]
    pub cache_ttl: Duration,

    /// Browser origins, besides the server's own, allowed to use the API
    /// (comma-separated, e.g. `https://portal.example.com`).
    #[arg(
        long = "allowed-origins",
        env = "ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
}

/// Authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Nobody is authenticated; everyone is `anonymous`. For `--simulate` and local use.
    None,
    /// Bearer tokens from `--auth-token-file`.
    Tokens,
    /// User and groups from headers set by a trusted reverse proxy.
    Proxy,
    /// Kubernetes bearer tokens, checked with TokenReview; rights checked with
    /// SubjectAccessReview for the verbs `restart` and `unlock` on the workload.
    Kubernetes,
}

/// What `--simulate` answers in a binary built without the `simulate` feature.
#[cfg(not(feature = "simulate"))]
pub const NO_SIMULATE: &str = "--simulate is not available: this restart-manager was built \
     without the `simulate` feature (cargo build -p server-bin --features simulate)";

/// Refuses `--auth none` where strangers could reach the server: it is for `--simulate` and
/// for a server that listens on a loopback address only.
pub fn check_exposure(args: &Args) -> Result<(), String> {
    if args.auth.mode != AuthMode::None || args.simulate || args.listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "--auth none on {} would let anyone who can reach it restart workloads, break locks \
         and pause reboot groups. Choose how callers are identified: --auth kubernetes \
         (Kubernetes tokens and RBAC; what the shipped manifests use), --auth tokens \
         --auth-token-file FILE, or --auth proxy behind an authenticating proxy. For local use \
         without authentication, listen on a loopback address (--listen 127.0.0.1:8080).",
        args.listen
    ))
}

/// Logging.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log format.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub format: LogFormat,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long = "log-level", env = "LOG_LEVEL", default_value = "info")]
    pub level: String,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// TLS on the listeners, from PEM files that are read again when they change.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Serve the page and API over HTTPS with this certificate chain (PEM), with
    /// `--tls-key-file`. With `--fleetlock-listen same`, FleetLock too.
    #[arg(long = "tls-cert-file", env = "TLS_CERT_FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert-file`.
    #[arg(long = "tls-key-file", env = "TLS_KEY_FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// Serve FleetLock's own listener over HTTPS with this certificate chain (PEM), with
    /// `--fleetlock-tls-key-file`. Zincati must then trust its issuer.
    #[arg(
        long = "fleetlock-tls-cert-file",
        env = "FLEETLOCK_TLS_CERT_FILE",
        requires = "fleetlock_key_file"
    )]
    pub fleetlock_cert_file: Option<PathBuf>,

    /// The private key (PEM) of `--fleetlock-tls-cert-file`.
    #[arg(
        long = "fleetlock-tls-key-file",
        env = "FLEETLOCK_TLS_KEY_FILE",
        requires = "fleetlock_cert_file"
    )]
    pub fleetlock_key_file: Option<PathBuf>,

    /// How often the certificate files are checked for a change (a renewed Secret); a new
    /// pair is served from the next handshake on.
    #[arg(long = "tls-reload-interval", env = "TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub reload_interval: Duration,
}

/// What the binary can do besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print the RBAC objects (YAML) the configuration's allowlist needs.
    ///
    /// The allowlist's kinds are read in their namespaces and each workload is patched by
    /// name; nothing else on workloads. Run it again whenever the allowlist changes: the
    /// server checks these rights at start-up and names any that are missing.
    Rbac(RbacArgs),
}

/// `restart-manager rbac`.
#[derive(Debug, Clone, ClapArgs)]
pub struct RbacArgs {
    /// Only the Roles and RoleBindings of the allowlisted workloads' namespaces: what
    /// `deploy/kustomize/components/workload-roles` adds to the base, which holds the rest.
    #[arg(long)]
    pub workloads_only: bool,

    /// The namespace the server runs in (its Leases live there). Default: the configuration
    /// file's `fleetlock.namespace`, else `POD_NAMESPACE`, else `restart-manager`.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// The ServiceAccount the server runs as.
    #[arg(long, default_value = "restart-manager")]
    pub service_account: String,

    /// The name of the Roles (and `<name>-workloads` in the workloads' namespaces).
    #[arg(long, default_value = "restart-manager")]
    pub name: String,
}

/// Who this replica is (from the downward API).
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Identity")]
pub struct IdentityArgs {
    /// This pod's name: recorded on slots and Events, and never evicted before the others on
    /// its node.
    #[arg(long = "pod-name", env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// This pod's namespace; also where the lock Leases live unless the config file says
    /// otherwise.
    #[arg(long = "pod-namespace", env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
}

/// This replica's name in leader elections, slots, restart ids and Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The name.
    pub name: String,
    /// Made up at start (`restart-manager-` and a random suffix) because no `POD_NAME` was
    /// given: unique, but not the pod's name, so Events and Leases do not lead to the pod.
    pub random: bool,
}

impl IdentityArgs {
    /// The pod's name from the downward API, or else a random one. (The process id is no
    /// name: in a container every replica is PID 1.)
    pub fn instance(&self) -> Instance {
        use std::hash::BuildHasher;
        match self.pod_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Instance {
                name: name.to_string(),
                random: false,
            },
            _ => {
                // Seeded from the operating system's randomness, and different on every call.
                let suffix = std::collections::hash_map::RandomState::new().hash_one(0u8);
                Instance {
                    name: format!("restart-manager-{:08x}", suffix as u32),
                    random: true,
                }
            }
        }
    }
}

/// Parses `:8080`, `0.0.0.0:8080`, `[::]:8080` or `127.0.0.1:9000`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("{s:?} is not an address like \":8080\" or \"127.0.0.1:8080\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_like_the_seed() {
        assert_eq!(parse_listen(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(
            parse_listen("127.0.0.1:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert_eq!(parse_listen("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert!(parse_listen("8080").unwrap_err().contains("\"8080\""));
    }

    #[test]
    fn no_authentication_only_for_the_simulation_or_loopback() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["restart-manager"];
            argv.extend_from_slice(extra);
            check_exposure(&Args::try_parse_from(argv).unwrap())
        };
        let refused = parse(&[]).unwrap_err();
        assert!(refused.contains("--auth none on 0.0.0.0:8080"), "{refused}");
        assert!(refused.contains("--auth kubernetes"), "{refused}");
        assert!(parse(&["--listen", "[::]:8080"]).is_err());
        assert!(parse(&["--listen", "10.1.2.3:8080"]).is_err());
        assert!(parse(&["--simulate"]).is_ok());
        assert!(parse(&["--listen", "127.0.0.1:8080"]).is_ok());
        assert!(parse(&["--listen", "[::1]:8080"]).is_ok());
        assert!(parse(&["--auth", "kubernetes"]).is_ok());
        assert!(parse(&["--auth", "tokens"]).is_ok());
    }

    /// Two replicas started without `POD_NAME` (in containers, both are PID 1) must not
    /// share a name: elections and restart ids depend on it.
    #[test]
    fn replicas_without_a_pod_name_get_names_of_their_own() {
        let identity = |extra: &[&str]| {
            let mut argv = vec!["restart-manager"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap().identity.instance()
        };
        let (a, b) = (identity(&[]), identity(&[]));
        assert_ne!(a.name, b.name);
        assert!(a.random && a.name.starts_with("restart-manager-"), "{a:?}");
        let named = identity(&["--pod-name", "restart-manager-7d9f-x2"]);
        assert_eq!(named.name, "restart-manager-7d9f-x2");
        assert!(!named.random);
    }

    #[test]
    fn defaults_parse() {
        let args = Args::try_parse_from(["restart-manager"]).unwrap();
        assert_eq!(args.listen.port(), 8080);
        assert_eq!(args.fleetlock.prefix, "/");
        assert_eq!(
            args.fleetlock.listen,
            FleetLockListen::Separate("0.0.0.0:8081".parse().unwrap())
        );
        assert!(!args.simulate);
        let same = Args::try_parse_from(["restart-manager", "--fleetlock-listen", "same"]).unwrap();
        assert_eq!(same.fleetlock.listen, FleetLockListen::Same);
        let bad =
            Args::try_parse_from(["restart-manager", "--fleetlock-listen", "8081"]).unwrap_err();
        assert!(bad.to_string().contains("or \"same\""), "{bad}");
    }
}
