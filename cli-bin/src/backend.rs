//! What the commands need from wherever the state lives: the cluster directly, or a server.

use async_trait::async_trait;
use cluster_api::WorkloadRef;
use fleetlock_core::FleetSnapshot;
use futures::stream::BoxStream;
use restart_core::{HistoryEntry, LockInfo, ServiceStatus};

/// Exit codes (documented in docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// The cluster or server failed, or something unexpected.
    Failure = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// Not in the allowlist, or not in the cluster.
    NotFound = 3,
    /// Refused: locked, paused, or a strategy that cannot be restarted.
    Refused = 4,
    /// Not signed in, or not allowed.
    Denied = 5,
    /// `--wait`: the rollout failed or timed out.
    RolloutFailed = 6,
    /// A FleetLock server refused the request.
    FleetLockRefused = 7,
}

/// A failure, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// How the process exits.
    pub exit: Exit,
    /// What went wrong.
    pub message: String,
    /// What to do next.
    pub hint: Option<String>,
}

impl CliError {
    /// A failure with no particular advice.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds advice.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// From an API error `kind` (the server's or restart-core's).
    pub fn from_kind(kind: &str, message: String) -> Self {
        let (exit, hint): (Exit, Option<&str>) = match kind {
            "not_allowlisted" => (
                Exit::NotFound,
                Some(
                    "`restartctl list` shows what may be restarted; add it under services: in the configuration",
                ),
            ),
            "workload_not_found" => (
                Exit::NotFound,
                Some("check the kind, namespace and name with kubectl get"),
            ),
            "locked" => (
                Exit::Refused,
                Some(
                    "wait for that restart to finish (`restartctl watch`), or break the lock with `restartctl unlock --reason ...`",
                ),
            ),
            "paused" => (
                Exit::Refused,
                Some("resume it first: kubectl rollout resume"),
            ),
            "unsupported_strategy" => (
                Exit::Refused,
                Some("delete its pods instead; OnDelete workloads only replace deleted pods"),
            ),
            "forbidden" | "foreign_origin" => (
                Exit::Denied,
                Some(
                    "ask an admin for the right (with --auth kubernetes: the verb restart or unlock on the workload)",
                ),
            ),
            "unauthenticated" => (
                Exit::Denied,
                Some("pass a token with --token, --token-file or RESTARTCTL_TOKEN"),
            ),
            "bad_kind" | "invalid_request" => (Exit::Usage, None),
            "cluster_unavailable" => (
                Exit::Failure,
                Some("the Kubernetes API could not be reached; try again"),
            ),
            _ => (Exit::Failure, None),
        };
        let e = CliError::new(exit, message);
        match hint {
            Some(h) => e.hint(h),
            None => e,
        }
    }
}

impl From<restart_core::RestartError> for CliError {
    fn from(e: restart_core::RestartError) -> Self {
        CliError::from_kind(e.kind(), e.to_string())
    }
}

impl From<fleetlock_core::Refusal> for CliError {
    fn from(r: fleetlock_core::Refusal) -> Self {
        CliError::from_kind(r.kind.as_str(), r.value)
    }
}

/// Where the commands get their answers.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Every allowlisted workload.
    async fn statuses(&self) -> Result<Vec<ServiceStatus>, CliError>;
    /// One workload.
    async fn status(&self, w: &WorkloadRef) -> Result<ServiceStatus, CliError>;
    /// Restarts one.
    async fn restart(
        &self,
        w: &WorkloadRef,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, CliError>;
    /// Breaks a lock.
    async fn unlock(&self, w: &WorkloadRef, reason: &str) -> Result<Option<LockInfo>, CliError>;
    /// Recent history.
    async fn history(&self, w: &WorkloadRef) -> Result<Vec<HistoryEntry>, CliError>;
    /// The node reboot state.
    async fn fleet(&self) -> Result<FleetSnapshot, CliError>;
    /// Pauses or resumes a reboot group.
    async fn pause(&self, group: &str, paused: bool) -> Result<(), CliError>;
    /// Every status now, then every change (of one workload, if given).
    async fn updates(
        &self,
        only: Option<&WorkloadRef>,
    ) -> Result<BoxStream<'static, ServiceStatus>, CliError>;
}
