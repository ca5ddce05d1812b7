//! Command-line flags and environment variables.
//!
//! Every flag can also be set by the environment variable named in its help; the names the
//! k8s-restart-app seed used (`LISTEN_ADDRESS`, `CONFIG_FILE_PATH`, `KUBE_CONFIG_PATH`,
//! `WATCH_INTERVAL`, `FORCE_UNLOCK_SEC`) keep their meaning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, ValueEnum};

/// restart-manager: coordinated node reboots (FleetLock for Zincati) and safe workload
/// restarts, with every lock kept in the Kubernetes API.
#[derive(Debug, Clone, Parser)]
#[command(name = "restart-manager", version, about, long_about = None)]
pub struct Args {
    /// Address to serve HTTP on; `:8080` means every interface.
    #[arg(long, env = "LISTEN_ADDRESS", default_value = ":8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// The configuration file (YAML). When the default file does not exist, built-in
    /// defaults apply.
    #[arg(
        long = "config",
        env = "CONFIG_FILE_PATH",
        default_value = "config.yaml"
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

    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,

    /// Who this replica is.
    #[command(flatten)]
    pub identity: IdentityArgs,

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
}

/// Reaching a real cluster.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Cluster")]
pub struct KubeArgs {
    /// A kubeconfig file; without it, the in-cluster service account is used.
    #[arg(long = "kubeconfig", env = "KUBE_CONFIG_PATH")]
    pub kubeconfig: Option<PathBuf>,
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    fleetlock_core::config::parse_duration(s)
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
    fn defaults_parse() {
        let args = Args::try_parse_from(["restart-manager"]).unwrap();
        assert_eq!(args.listen.port(), 8080);
        assert_eq!(args.fleetlock.prefix, "/");
        assert!(!args.simulate);
    }
}
