//! Workload restarts.

use clap::Args as ClapArgs;

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
