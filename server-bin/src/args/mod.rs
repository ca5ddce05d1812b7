//! Command-line flags and environment variables.
//!
//! Every flag can also be set by the environment variable named in its help; the names the
//! k8s-restart-app seed used (`LISTEN_ADDRESS`, `CONFIG_FILE_PATH`, `KUBE_CONFIG_PATH`,
//! `WATCH_INTERVAL`, `FORCE_UNLOCK_SEC`) keep their meaning.

//!
//! | module | flags |
//! |---|---|
//! | `simulation.rs` | `--simulate` and `--sim-*` |
//! | `kube.rs` | reaching a real cluster: `--kubeconfig`, `--kube-*`, leader election |
//! | `fleetlock.rs` | `--fleetlock-prefix`, `--fleetlock-listen` |
//! | `restarts.rs` | `--watch-interval`, `--force-unlock-sec` |
//! | `auth.rs` | `--auth*`, `--admins`, `--viewers`, `--allowed-origins` |
//! | `tls.rs`, `log.rs`, `identity.rs` | `--tls-*`, `--log-*`, `--pod-*` |
//! | `rbac.rs` | the `rbac` subcommand |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fleetlock_core::config::parse_duration;

mod auth;
mod fleetlock;
mod identity;
mod kube;
mod log;
mod rbac;
mod restarts;
mod simulation;
mod tls;

pub use auth::{AuthArgs, AuthMode};
pub use fleetlock::{FleetLockArgs, FleetLockListen, parse_listen};
pub use identity::{IdentityArgs, Instance};
pub use kube::KubeArgs;
pub use log::{LogArgs, LogFormat};
pub use rbac::{Command, RbacArgs};
pub use restarts::RestartArgs;
pub use simulation::SimulationArgs;
pub use tls::TlsArgs;

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
