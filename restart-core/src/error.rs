//! Why the restart service refused something.

use cluster_api::{Error, WorkloadRef};

use crate::lock::LockInfo;
use crate::service::seconds;

/// Why a restart, unlock or lookup was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestartError {
    /// Not in the allowlist.
    #[error("{0} is not in the allowlist")]
    NotAllowlisted(WorkloadRef),
    /// The caller may not restart it.
    #[error("{who} may not restart {workload}")]
    Forbidden {
        /// The caller.
        who: String,
        /// The workload.
        workload: WorkloadRef,
    },
    /// Allowlisted but not in the cluster.
    #[error("{0} does not exist in the cluster")]
    NotFound(WorkloadRef),
    /// Someone else is restarting it.
    #[error("{workload} is being restarted by {} since {}", .lock.holder, seconds(&.lock.since))]
    Locked {
        /// The workload.
        workload: WorkloadRef,
        /// Who holds it.
        lock: Box<LockInfo>,
    },
    /// A paused Deployment, which `kubectl rollout restart` refuses too.
    #[error("can't restart paused deployment {0} (run `kubectl rollout resume` first)")]
    Paused(WorkloadRef),
    /// A strategy under which a restart changes nothing by itself.
    #[error(
        "{0} uses the OnDelete update strategy: a restart would replace no pod until someone deletes them"
    )]
    OnDelete(WorkloadRef),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The cluster failed.
    #[error("{0}")]
    Cluster(Error),
}

impl RestartError {
    /// A short, stable label for responses and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RestartError::NotAllowlisted(_) => "not_allowlisted",
            RestartError::Forbidden { .. } => "forbidden",
            RestartError::NotFound(_) => "workload_not_found",
            RestartError::Locked { .. } => "locked",
            RestartError::Paused(_) => "paused",
            RestartError::OnDelete(_) => "unsupported_strategy",
            RestartError::Invalid(_) => "invalid_request",
            RestartError::Cluster(e) if e.is_transient() => "cluster_unavailable",
            RestartError::Cluster(_) => "cluster_error",
        }
    }

    /// The HTTP status that goes with it.
    pub fn status(&self) -> u16 {
        match self {
            RestartError::NotAllowlisted(_) | RestartError::NotFound(_) => 404,
            RestartError::Forbidden { .. } => 403,
            RestartError::Locked { .. } | RestartError::Paused(_) | RestartError::OnDelete(_) => {
                409
            }
            RestartError::Invalid(_) => 400,
            RestartError::Cluster(e) if e.is_transient() => 503,
            RestartError::Cluster(_) => 500,
        }
    }
}
