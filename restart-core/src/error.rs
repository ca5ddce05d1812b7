//! Why the restart service refused something.

use cluster_api::{Error, WorkloadRef};

use crate::lock::LockInfo;
use crate::status::seconds;

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
        /// The workload whose entry's `allowed` leaves the caller out (for a set: the first such
        /// member).
        workload: WorkloadRef,
    },
    /// Allowlisted but not in the cluster.
    #[error("{0} does not exist in the cluster")]
    NotFound(WorkloadRef),
    /// Someone else is restarting it.
    #[error("{workload} is being restarted by {} since {}", .lock.holder, seconds(&.lock.since))]
    Locked {
        /// The workload whose restart lock is held (`lock` says by whom).
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
    /// Outside the workload's restart windows, and not overridden.
    #[error(
        "{workload} may be restarted only in its windows ({windows}){next}; outside them only \
         someone with the unlock right who gives a reason"
    )]
    OutsideWindow {
        /// The workload whose windows leave out now (for a set: the first such member).
        workload: WorkloadRef,
        /// Its windows, as text.
        windows: String,
        /// `; the next opens at ...`, or empty.
        next: String,
    },
    /// No restart set has this name.
    #[error("there is no restart set named {0:?}")]
    UnknownSet(String),
    /// The set runs already.
    #[error("restart set {set} is running already, started by {by} at {}", seconds(.since))]
    SetRunning {
        /// The name of the set, as configured.
        set: String,
        /// Who started the run.
        by: String,
        /// When.
        since: cluster_api::Timestamp,
    },
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The cluster failed.
    #[error("{0}")]
    Cluster(Error),
}

impl RestartError {
    /// What kind of refusal this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RestartError::NotAllowlisted(_) => ErrorKind::NotAllowlisted,
            RestartError::Forbidden { .. } => ErrorKind::Forbidden,
            RestartError::NotFound(_) => ErrorKind::WorkloadNotFound,
            RestartError::Locked { .. } => ErrorKind::Locked,
            RestartError::SetRunning { .. } => ErrorKind::SetRunning,
            RestartError::UnknownSet(_) => ErrorKind::UnknownSet,
            RestartError::Paused(_) => ErrorKind::Paused,
            RestartError::OnDelete(_) => ErrorKind::UnsupportedStrategy,
            RestartError::OutsideWindow { .. } => ErrorKind::OutsideWindow,
            RestartError::Invalid(_) => ErrorKind::InvalidRequest,
            RestartError::Cluster(e) if e.is_transient() => ErrorKind::ClusterUnavailable,
            RestartError::Cluster(_) => ErrorKind::ClusterError,
        }
    }
}

/// The kinds of [`RestartError`], each with a short, stable name for API responses, metrics
/// and the CLI's exit codes. How a kind is answered over HTTP is the server's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `not_allowlisted`: not in the allowlist.
    NotAllowlisted,
    /// `forbidden`: the caller may not do this.
    Forbidden,
    /// `workload_not_found`: allowlisted, but not in the cluster.
    WorkloadNotFound,
    /// `locked`: someone else is restarting it.
    Locked,
    /// `paused`: a paused Deployment.
    Paused,
    /// `unsupported_strategy`: an update strategy a restart cannot roll.
    UnsupportedStrategy,
    /// `outside_window`: outside the workload's restart windows.
    OutsideWindow,
    /// `unknown_set`: no restart set has this name.
    UnknownSet,
    /// `set_running`: a run of the restart set goes on already.
    SetRunning,
    /// `invalid_request`: the request itself is wrong.
    InvalidRequest,
    /// `cluster_unavailable`: the cluster could not answer; try again.
    ClusterUnavailable,
    /// `cluster_error`: the cluster refused.
    ClusterError,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NotAllowlisted,
        ErrorKind::Forbidden,
        ErrorKind::WorkloadNotFound,
        ErrorKind::Locked,
        ErrorKind::Paused,
        ErrorKind::UnsupportedStrategy,
        ErrorKind::OutsideWindow,
        ErrorKind::UnknownSet,
        ErrorKind::SetRunning,
        ErrorKind::InvalidRequest,
        ErrorKind::ClusterUnavailable,
        ErrorKind::ClusterError,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotAllowlisted => "not_allowlisted",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::WorkloadNotFound => "workload_not_found",
            ErrorKind::Locked => "locked",
            ErrorKind::Paused => "paused",
            ErrorKind::UnsupportedStrategy => "unsupported_strategy",
            ErrorKind::OutsideWindow => "outside_window",
            ErrorKind::UnknownSet => "unknown_set",
            ErrorKind::SetRunning => "set_running",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ClusterUnavailable => "cluster_unavailable",
            ErrorKind::ClusterError => "cluster_error",
        }
    }

    /// The kind with this name (as an API response carries it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_name_that_reads_back() {
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("draining"), None);
    }
}
