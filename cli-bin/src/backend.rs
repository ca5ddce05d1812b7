//! What the commands need from wherever the state lives: the cluster directly, or a server.

use async_trait::async_trait;
use cluster_api::WorkloadRef;
use fleetlock_core::{FleetSnapshot, NodePlan};
use futures::stream::BoxStream;
use restart_core::{ErrorKind, HistoryEntry, LockInfo, RestartPlan, ServiceStatus, SetStatus};

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

    /// From an API error's `kind`, as a server answers it: restart-core's kinds, FleetLock's,
    /// and the server's own (authentication, limits).
    pub fn from_kind(kind: &str, message: String) -> Self {
        if let Some(k) = ErrorKind::parse(kind) {
            return Self::restart(k, message);
        }
        if let Some(k) = fleetlock_core::Kind::parse(kind) {
            return Self::fleetlock(k, message);
        }
        let (exit, hint): (Exit, Option<&str>) = match kind {
            "forbidden" | "foreign_origin" => (Exit::Denied, Some(ASK_ADMIN)),
            "unauthenticated" => (
                Exit::Denied,
                Some("pass a token with --token, --token-file or RESTARTCTL_TOKEN"),
            ),
            "bad_kind" | "invalid_request" => (Exit::Usage, None),
            "not_found" => (Exit::NotFound, None),
            "cluster_unavailable" => (Exit::Failure, Some(TRY_AGAIN)),
            "too_many_requests" | "too_many_clients" | "timeout" => (
                Exit::Failure,
                Some("the server is busy; try again in a moment"),
            ),
            _ => (Exit::Failure, None),
        };
        CliError::new(exit, message).maybe_hint(hint)
    }

    /// A restart-core refusal.
    pub fn restart(kind: ErrorKind, message: String) -> Self {
        let (exit, hint): (Exit, Option<&str>) = match kind {
            ErrorKind::NotAllowlisted => (
                Exit::NotFound,
                Some(
                    "`restartctl list` shows what may be restarted; add it under services: in the configuration",
                ),
            ),
            ErrorKind::WorkloadNotFound => (
                Exit::NotFound,
                Some("check the kind, namespace and name with kubectl get"),
            ),
            ErrorKind::Locked => (
                Exit::Refused,
                Some(
                    "wait for that restart to finish (`restartctl watch`), or break the lock with `restartctl unlock --reason ...`",
                ),
            ),
            ErrorKind::Paused => (
                Exit::Refused,
                Some("resume it first: kubectl rollout resume"),
            ),
            ErrorKind::UnsupportedStrategy => (
                Exit::Refused,
                Some("delete its pods instead; OnDelete workloads only replace deleted pods"),
            ),
            ErrorKind::OutsideWindow => (
                Exit::Refused,
                Some(
                    "wait for its next window; someone with the unlock right can restart it now with --reason",
                ),
            ),
            ErrorKind::UnknownSet => (
                Exit::NotFound,
                Some(
                    "`restartctl sets` lists the restart sets; add one under restartSets: in the configuration",
                ),
            ),
            ErrorKind::SetRunning => (
                Exit::Refused,
                Some(
                    "follow it with `restartctl sets`, or stop it with `restartctl cancel set NAME`",
                ),
            ),
            ErrorKind::Forbidden => (Exit::Denied, Some(ASK_ADMIN)),
            ErrorKind::InvalidRequest => (Exit::Usage, None),
            ErrorKind::ClusterUnavailable => (Exit::Failure, Some(TRY_AGAIN)),
            _ => (Exit::Failure, None),
        };
        CliError::new(exit, message).maybe_hint(hint)
    }

    /// A FleetLock refusal (from the coordinator directly, or a server's answer).
    pub fn fleetlock(kind: fleetlock_core::Kind, message: String) -> Self {
        use fleetlock_core::Kind as K;
        let (exit, hint): (Exit, Option<&str>) = match kind {
            K::MissingProtocolHeader
            | K::MethodNotAllowed
            | K::InvalidBody
            | K::BodyTooLarge
            | K::InvalidId
            | K::InvalidGroup => (Exit::Usage, None),
            K::UnknownGroup => (
                Exit::NotFound,
                Some("`restartctl nodes` lists the configured reboot groups"),
            ),
            K::UnknownNode => (
                Exit::NotFound,
                Some("`restartctl id NODE` prints the id a node sends"),
            ),
            K::WrongGroup | K::UnverifiedCaller => (Exit::Denied, None),
            K::LockHeld
            | K::TooManyGroups
            | K::Draining
            | K::DrainBlocked
            | K::DrainWouldBlock
            | K::DrainTimedOut
            | K::GroupPaused
            | K::NodeRecovering
            | K::NodeOptedOut
            | K::HealthGateClosed
            | K::OutsideWindow
            | K::BlockedByPods
            | K::TooSoon
            | K::RateLimited => (Exit::FleetLockRefused, None),
            K::TooManyRequests | K::ClusterUnavailable => (Exit::Failure, Some(TRY_AGAIN)),
            _ => (Exit::Failure, None),
        };
        CliError::new(exit, message).maybe_hint(hint)
    }

    fn maybe_hint(self, hint: Option<&str>) -> Self {
        match hint {
            Some(h) => self.hint(h),
            None => self,
        }
    }
}

const ASK_ADMIN: &str = "ask an admin for the right (with --auth kubernetes: the verb restart or unlock on the workload)";
const TRY_AGAIN: &str = "the Kubernetes API could not be reached; try again";

impl From<restart_core::RestartError> for CliError {
    fn from(e: restart_core::RestartError) -> Self {
        CliError::restart(e.kind(), e.to_string())
    }
}

impl From<fleetlock_core::Refusal> for CliError {
    fn from(r: fleetlock_core::Refusal) -> Self {
        CliError::fleetlock(r.kind, r.value)
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
    /// What a restart would do, changing nothing.
    async fn dry_run(&self, w: &WorkloadRef, reason: Option<&str>)
    -> Result<RestartPlan, CliError>;
    /// Breaks a lock.
    async fn unlock(&self, w: &WorkloadRef, reason: &str) -> Result<Option<LockInfo>, CliError>;
    /// Recent history.
    async fn history(&self, w: &WorkloadRef) -> Result<Vec<HistoryEntry>, CliError>;
    /// The node reboot state.
    async fn fleet(&self) -> Result<FleetSnapshot, CliError>;
    /// Pauses or resumes a reboot group.
    async fn pause(&self, group: &str, paused: bool) -> Result<(), CliError>;
    /// What a drain of the node would do now.
    async fn plan(&self, node: &str) -> Result<NodePlan, CliError>;
    /// Every status now, then every change (of one workload, if given).
    async fn updates(
        &self,
        only: Option<&WorkloadRef>,
    ) -> Result<BoxStream<'static, ServiceStatus>, CliError>;
    /// Every restart set, with its run.
    async fn sets(&self) -> Result<Vec<SetStatus>, CliError>;
    /// Starts a run of a set.
    async fn start_set(&self, name: &str, reason: Option<&str>) -> Result<SetStatus, CliError>;
    /// Cancels a set's run; `None` if none was going on.
    async fn cancel_set(&self, name: &str) -> Result<Option<SetStatus>, CliError>;
    /// The set's status now, then every change of it.
    async fn set_updates(&self, name: &str) -> Result<BoxStream<'static, SetStatus>, CliError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_a_server_sends_has_its_exit_code() {
        let exit = |kind: &str| CliError::from_kind(kind, String::new()).exit;
        assert_eq!(exit("invalid_group"), Exit::Usage);
        assert_eq!(exit("unknown_group"), Exit::NotFound);
        assert_eq!(exit("wrong_group"), Exit::Denied);
        assert_eq!(exit("lock_held"), Exit::FleetLockRefused);
        assert_eq!(exit("locked"), Exit::Refused);
        assert_eq!(exit("workload_not_found"), Exit::NotFound);
        assert_eq!(exit("unauthenticated"), Exit::Denied);
        assert_eq!(exit("forbidden"), Exit::Denied);
        assert_eq!(exit("too_many_requests"), Exit::Failure);
        // Every FleetLock kind but the server-side failures says more than "failure".
        for kind in fleetlock_core::Kind::ALL {
            let code = exit(kind.as_str());
            let failure = matches!(
                kind,
                fleetlock_core::Kind::TooManyRequests
                    | fleetlock_core::Kind::ClusterUnavailable
                    | fleetlock_core::Kind::Internal
            );
            assert_eq!(code == Exit::Failure, failure, "{kind:?}");
        }
        for kind in ErrorKind::ALL {
            let code = exit(kind.as_str());
            let failure = matches!(
                kind,
                ErrorKind::ClusterUnavailable | ErrorKind::ClusterError
            );
            assert_eq!(code == Exit::Failure, failure, "{kind:?}");
        }
    }
}
