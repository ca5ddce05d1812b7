//! `--simulate` and its `--sim-*` flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;
use fleetlock_core::config::parse_duration;

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
