//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::ClusterApi;
use fleetlock_core::Coordinator;
use restart_core::Restarter;

use crate::auth::Auth;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::ratelimit::{PerClient, PerUser};

/// What every handler shares, behind one `Arc`: axum clones the state for every request, and
/// one reference count is cheaper than one per field (each a cache line both worker threads
/// write).
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// Node reboots.
    pub fleetlock: Coordinator,
    /// Workload restarts.
    pub restarter: Restarter,
    /// The Prometheus series the handlers and the services' observers record to.
    pub metrics: Arc<Metrics>,
    /// Who may do what.
    pub auth: Arc<Auth>,
    /// One permit per connected status-stream client
    /// ([`Settings::max_status_clients`](crate::Settings::max_status_clients)).
    pub status_clients: Arc<tokio::sync::Semaphore>,
    /// Per-client rate of the people-facing API (none: unlimited).
    pub api_rate: Option<Arc<PerClient>>,
    /// Per-client rate of FleetLock requests (none: unlimited).
    pub fleetlock_rate: Option<Arc<PerClient>>,
    /// Per-user rate of the requests that read the cluster on the caller's behalf: dry runs,
    /// drain plans, history (none: unlimited).
    pub cluster_read_rate: Option<Arc<PerUser>>,
    /// The cluster as those requests read it: a handle with a client-side budget of its own,
    /// so that they never take the turns lock writes and evictions need.
    pub caller_reads: Arc<dyn ClusterApi>,
    /// Whether `/metrics` is served to anyone (`--metrics-open`); otherwise it needs the
    /// API's authentication and the right to read the metrics.
    pub metrics_open: bool,
    /// How long an API request may take before it is answered 503.
    pub request_timeout: Duration,
    /// How often a status-stream client is identified and authorised again.
    pub stream_recheck: Duration,
    /// What the services report to (metrics, notifications), for the shutdown to wait on.
    pub hooks: Arc<Hooks>,
}
