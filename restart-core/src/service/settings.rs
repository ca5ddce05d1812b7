//! The service's settings and the names it writes into the cluster.

use std::time::Duration;

/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The `reportingController` of our Events.
pub const CONTROLLER: &str = "restart-manager.io/restart";
/// The longest reason accepted, in characters.
pub const MAX_REASON_LEN: usize = 500;

/// Settings of the restart service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartConfig {
    /// The namespace holding the lock Leases.
    pub namespace: String,
    /// How long a restart holds its lock before anyone may take it over
    /// (`FORCE_UNLOCK_SEC`).
    pub lock_duration: Duration,
    /// How often everything is looked at again besides watch events (`WATCH_INTERVAL`).
    pub resync: Duration,
    /// How many history entries are returned per workload.
    pub history_limit: usize,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            namespace: "restart-manager".into(),
            lock_duration: Duration::from_secs(300),
            resync: Duration::from_secs(10),
            history_limit: 20,
        }
    }
}
