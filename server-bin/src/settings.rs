//! Everything [`build`](crate::build) needs besides the cluster, and its defaults.

use std::time::Duration;

use fleetlock_core::FleetLockConfig;
use restart_core::{Allowlist, RestartConfig};

use crate::auth::Auth;
use crate::ratelimit::Rate;

/// Everything [`build`](crate::build) needs besides the cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Node reboots.
    pub fleetlock: FleetLockConfig,
    /// The restart allowlist.
    pub allowlist: Allowlist,
    /// The restart sets (checked against the allowlist).
    pub sets: Vec<restart_core::RestartSet>,
    /// Restart locks and tracking.
    pub restart: RestartConfig,
    /// Authentication.
    pub auth: Auth,
    /// This replica's name, on locks and Events.
    pub instance: String,
    /// Where the FleetLock endpoints live.
    pub fleetlock_prefix: String,
    /// Whether this replica leads (runs background loops); `None`: always.
    pub leadership: Option<tokio::sync::watch::Receiver<bool>>,
    /// How long a failing watch is tolerated before the server reports itself unready.
    pub cache_grace: Duration,
    /// Cancelled to stop both services' background work ([`App::run`](crate::App::run)
    /// then returns once their drains have stopped).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// How many status-stream (websocket) clients may be connected at once.
    pub max_status_clients: usize,
    /// Requests per client address to the people-facing API (0 per second: unlimited).
    pub api_rate: Rate,
    /// FleetLock requests per client address (0 per second: unlimited).
    pub fleetlock_rate: Rate,
    /// How long a request to the people-facing API may take (the status stream's socket is
    /// not a request once upgraded).
    pub request_timeout: Duration,
    /// How often a status-stream client is identified and authorised again while it stays
    /// connected (a revoked token or a withdrawn right closes its socket).
    pub stream_recheck: Duration,
    /// Where reboot and restart transitions are sent.
    pub notifications: manager_config::NotificationsConfig,
    /// Requests per user that read the cluster on the caller's behalf: dry runs, drain plans,
    /// history (0 per second: unlimited).
    pub cluster_read_rate: Rate,
    /// Serve `/metrics` without authentication (it names the allowlisted workloads).
    pub metrics_open: bool,
}

/// How often a status-stream client is checked again, unless configured.
pub const DEFAULT_STREAM_RECHECK: Duration = Duration::from_secs(60);

/// How many status-stream clients may be connected at once, unless configured.
pub const DEFAULT_MAX_STATUS_CLIENTS: usize = 20_000;

/// Requests per client to the API, unless configured: far above what a person or restartctl
/// sends, far below what a script in a loop does.
pub const DEFAULT_API_RATE: Rate = Rate {
    per_second: 20,
    burst: 40,
};

/// Dry runs, drain plans and history reads per user, unless configured: each costs the
/// cluster a few list calls, so a person clicking around stays far below it and a script
/// in a loop does not.
pub const DEFAULT_CLUSTER_READ_RATE: Rate = Rate {
    per_second: 2,
    burst: 10,
};

/// FleetLock requests per client address, unless configured. Zincati asks every few minutes;
/// many nodes behind one address (a NAT) need a higher rate, or 0.
pub const DEFAULT_FLEETLOCK_RATE: Rate = Rate {
    per_second: 5,
    burst: 20,
};

impl Settings {
    /// Defaults for tests and embedding: the given allowlist, no authentication.
    pub fn new(fleetlock: FleetLockConfig, allowlist: Allowlist) -> Self {
        Settings {
            restart: RestartConfig {
                namespace: fleetlock.namespace.clone(),
                ..RestartConfig::default()
            },
            fleetlock,
            allowlist,
            sets: Vec::new(),
            auth: Auth::none(),
            instance: "restart-manager".into(),
            fleetlock_prefix: "/".into(),
            leadership: None,
            cache_grace: fleetlock_core::DEFAULT_CACHE_GRACE,
            shutdown: tokio_util::sync::CancellationToken::new(),
            max_status_clients: DEFAULT_MAX_STATUS_CLIENTS,
            api_rate: DEFAULT_API_RATE,
            fleetlock_rate: DEFAULT_FLEETLOCK_RATE,
            request_timeout: Duration::from_secs(30),
            stream_recheck: DEFAULT_STREAM_RECHECK,
            notifications: manager_config::NotificationsConfig::default(),
            cluster_read_rate: DEFAULT_CLUSTER_READ_RATE,
            metrics_open: false,
        }
    }
}
