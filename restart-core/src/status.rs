//! What the page, the API and the CLI show about a workload, and the plain decisions behind
//! it: which phase a workload is in, and how a restart ended. Functions of plain values,
//! tested without a cluster; the service gathers the values from its caches.

use cluster_api::{EventType, Timestamp, WorkloadKind, WorkloadRef};
use serde::{Deserialize, Serialize};

use crate::lock::{LastRestart, LockInfo, Outcome};
use crate::rollout::Verdict;

/// Where an allowlisted workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Nothing happening; never restarted through us.
    Idle,
    /// Restarted; the controller has not picked the change up yet.
    Restarting,
    /// Pods are being replaced.
    Progressing,
    /// The last restart rolled out.
    Complete,
    /// The rollout failed (progress deadline exceeded).
    Failed,
    /// The lock ran out before the rollout completed.
    TimedOut,
}

/// What the page, the API and the CLI show about one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: WorkloadKind,
    /// The namespace as the allowlist entry gives it, shown even when the workload is missing.
    pub namespace: String,
    /// The name as the allowlist entry gives it.
    pub name: String,
    /// From the allowlist.
    pub description: Option<String>,
    /// Whether the workload exists in the cluster.
    pub exists: bool,
    /// Where it is.
    pub phase: Phase,
    /// `kubectl rollout status`'s sentence, or why the workload is missing.
    pub message: String,
    /// Replicas wanted.
    pub desired: i32,
    /// Replicas at the newest template.
    pub updated: i32,
    /// Replicas ready.
    pub ready: i32,
    /// Replicas available.
    pub available: i32,
    /// A paused Deployment (cannot be restarted).
    pub paused: bool,
    /// Who restarts it now.
    pub lock: Option<LockInfo>,
    /// The last restart through us.
    pub last_restart: Option<LastRestart>,
    /// When it may be restarted (its restart windows, as text); absent: any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// Its schedule, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::ScheduleStatus>,
}

impl ServiceStatus {
    /// Which workload this is.
    pub fn workload(&self) -> WorkloadRef {
        WorkloadRef::new(self.kind, self.namespace.clone(), self.name.clone())
    }
}

/// One entry of a workload's restart history (its Events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When.
    pub time: Option<Timestamp>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// `Restarted`, `RestartRefused`, `RolloutComplete`, ...
    pub reason: String,
    /// Who and why.
    pub message: String,
    /// How many times it happened in a row (identical repeats are counted, not repeated);
    /// `time` is the last.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The phase of a workload whose rollout `kubectl rollout status` judges `verdict`.
///
/// `locked`: a restart holds its lock, and `caught_up` says whether the controller has seen
/// that restart's template yet (until then the verdict is about the old one). Without a lock,
/// `last` is how the last restart ended.
pub fn phase(verdict: Verdict, locked: bool, caught_up: bool, last: Option<Outcome>) -> Phase {
    if locked {
        return match verdict {
            _ if !caught_up => Phase::Restarting,
            Verdict::Progressing => Phase::Progressing,
            Verdict::Complete => Phase::Complete,
            Verdict::Failed => Phase::Failed,
        };
    }
    match (verdict, last) {
        (Verdict::Failed, _) => Phase::Failed,
        (_, Some(Outcome::TimedOut)) => Phase::TimedOut,
        (_, Some(Outcome::Failed)) if verdict != Verdict::Complete => Phase::Failed,
        (Verdict::Progressing, _) => Phase::Progressing,
        (Verdict::Complete, Some(Outcome::Complete)) => Phase::Complete,
        (Verdict::Complete, _) => Phase::Idle,
    }
}

/// How a running restart has ended, if it has: its own rollout's `verdict` (`None` while the
/// controller has not taken up the restart's template), and whether its lock `expired`.
pub fn ended(verdict: Option<Verdict>, expired: bool) -> Option<Outcome> {
    match (verdict, expired) {
        (Some(Verdict::Complete), _) => Some(Outcome::Complete),
        (Some(Verdict::Failed), _) => Some(Outcome::Failed),
        (_, true) => Some(Outcome::TimedOut),
        _ => None,
    }
}

/// RFC 3339 in UTC with second precision, as kubectl writes `restartedAt`.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time for people: to the second.
pub(crate) fn seconds(t: &Timestamp) -> String {
    rfc3339(*t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_workload_is_restarting_until_the_controller_catches_up() {
        for verdict in [Verdict::Progressing, Verdict::Complete, Verdict::Failed] {
            assert_eq!(phase(verdict, true, false, None), Phase::Restarting);
        }
        assert_eq!(
            phase(Verdict::Progressing, true, true, None),
            Phase::Progressing
        );
        assert_eq!(phase(Verdict::Complete, true, true, None), Phase::Complete);
        assert_eq!(phase(Verdict::Failed, true, true, None), Phase::Failed);
    }

    #[test]
    fn without_a_lock_the_last_restart_colours_a_settled_rollout() {
        let complete = Some(Outcome::Complete);
        assert_eq!(phase(Verdict::Complete, false, true, None), Phase::Idle);
        assert_eq!(
            phase(Verdict::Complete, false, true, complete),
            Phase::Complete
        );
        assert_eq!(
            phase(Verdict::Complete, false, true, Some(Outcome::TimedOut)),
            Phase::TimedOut
        );
        // A failed restart whose rollout later settled is over: the workload is fine.
        assert_eq!(
            phase(Verdict::Complete, false, true, Some(Outcome::Failed)),
            Phase::Idle
        );
        assert_eq!(
            phase(Verdict::Progressing, false, true, Some(Outcome::Failed)),
            Phase::Failed
        );
        assert_eq!(
            phase(Verdict::Progressing, false, true, None),
            Phase::Progressing
        );
        assert_eq!(phase(Verdict::Failed, false, true, complete), Phase::Failed);
    }

    #[test]
    fn a_restart_ends_with_its_rollout_or_its_lock() {
        assert_eq!(
            ended(Some(Verdict::Complete), true),
            Some(Outcome::Complete)
        );
        assert_eq!(ended(Some(Verdict::Failed), false), Some(Outcome::Failed));
        assert_eq!(ended(Some(Verdict::Progressing), false), None);
        assert_eq!(
            ended(Some(Verdict::Progressing), true),
            Some(Outcome::TimedOut)
        );
        assert_eq!(ended(None, false), None, "not yet taken up, still time");
        assert_eq!(ended(None, true), Some(Outcome::TimedOut));
    }
}
