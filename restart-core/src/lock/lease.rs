//! The lock Lease's contents: its names, and the lock and last restart read from it.

use cluster_api::{LabelSelector, Lease, Timestamp, WorkloadRef};
use serde::{Deserialize, Serialize};

/// Label on every restart lock.
pub const LOCK_LABEL: &str = "restart-manager.io/lock";
/// The value of [`LOCK_LABEL`] on restart locks.
pub const LOCK_LABEL_VALUE: &str = "restart";
/// Annotation naming the workload (`Deployment/shop/web`).
pub const WORKLOAD_ANNOTATION: &str = "restart-manager.io/workload";
/// Annotation with the reason given.
pub const REASON_ANNOTATION: &str = "restart-manager.io/reason";
/// Annotation identifying one restart, so that only it releases its lock.
pub const RESTART_ID_ANNOTATION: &str = "restart-manager.io/restart-id";
/// Annotation with the restart ids of the latest restarts that took the lock (the current one
/// included), a JSON list, newest last: a retry under an id derived from a set's run, a
/// due time or a configuration finds its restart done even after another restart took the
/// lock since.
pub const RECENT_IDS_ANNOTATION: &str = "restart-manager.io/recent-restart-ids";
/// How many restart ids [`RECENT_IDS_ANNOTATION`] keeps.
pub const RECENT_IDS: usize = 16;
/// Annotation with the `restartedAt` value the restart wrote into the pod template, by which
/// the workload's rollout is recognised as this restart's.
pub const RESTARTED_AT_ANNOTATION: &str = "restart-manager.io/restarted-at";
/// Annotation with how the last restart ended.
pub const OUTCOME_ANNOTATION: &str = "restart-manager.io/outcome";
/// Annotation with who started the last restart (kept after release).
pub const BY_ANNOTATION: &str = "restart-manager.io/restarted-by";
/// Annotation with when the last restart ended.
pub const ENDED_ANNOTATION: &str = "restart-manager.io/ended";

/// How many times a lock whose write may have landed is read back before giving up.
pub const CONFIRM_ATTEMPTS: usize = 3;

/// Who holds a workload's restart lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    /// The user who restarts it: `spec.holderIdentity`.
    pub holder: String,
    /// When the lock was taken: `spec.acquireTime`.
    pub since: Timestamp,
    /// When the lock may be taken over if nobody released it.
    pub expires: Option<Timestamp>,
    /// The reason given with the restart, if any.
    pub reason: Option<String>,
    /// Identifies the restart.
    pub restart_id: String,
    /// The `restartedAt` value this restart writes into the pod template.
    pub restarted_at: Option<String>,
}

/// How a restart ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The rollout completed.
    Complete,
    /// The rollout failed (progress deadline exceeded).
    Failed,
    /// The lock ran out before the rollout completed.
    TimedOut,
    /// An operator broke the lock.
    Unlocked,
    /// The restart could not be applied.
    Aborted,
}

/// The last restart of a workload, as its Lease remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LastRestart {
    /// Who restarted it.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: Option<String>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<Outcome>,
    /// When it ended.
    pub ended: Option<Timestamp>,
}

// === impl Outcome ===

impl Outcome {
    /// The label used in annotations, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timedOut",
            Outcome::Unlocked => "unlocked",
            Outcome::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "complete" => Outcome::Complete,
            "failed" => Outcome::Failed,
            "timedOut" => Outcome::TimedOut,
            "unlocked" => Outcome::Unlocked,
            "aborted" => Outcome::Aborted,
            _ => return None,
        })
    }
}

/// The Lease name of a workload's lock: `restart.<kind>.<namespace>.<name>`. Namespaces and
/// kinds contain no dots, so the name maps back to one workload only; names too long for an
/// object name are shortened with a hash.
pub fn lease_name(w: &WorkloadRef) -> String {
    let full = format!(
        "restart.{}.{}.{}",
        w.kind.as_str().to_ascii_lowercase(),
        w.namespace,
        w.name
    );
    if full.len() <= 253 {
        return full;
    }
    let hash = full.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let mut short: String = full.chars().take(240).collect();
    while short.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        short.pop();
    }
    format!("{short}-{hash:08x}")
}

/// The selector that finds every restart lock.
pub fn lease_selector() -> LabelSelector {
    LabelSelector::eq(LOCK_LABEL, LOCK_LABEL_VALUE)
}

/// The lock a Lease describes, if someone holds it (expired or not).
pub fn lock_of(lease: &Lease) -> Option<LockInfo> {
    let holder = lease.holder()?.to_string();
    let since = lease.acquire_time?;
    Some(LockInfo {
        holder,
        since,
        expires: lease.expires_at(),
        reason: lease.annotations.get(REASON_ANNOTATION).cloned(),
        restart_id: lease
            .annotations
            .get(RESTART_ID_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        restarted_at: lease.annotations.get(RESTARTED_AT_ANNOTATION).cloned(),
    })
}

/// The last restart a Lease remembers.
pub fn last_restart_of(lease: &Lease) -> Option<LastRestart> {
    let by = lease.annotations.get(BY_ANNOTATION)?.clone();
    Some(LastRestart {
        by,
        at: lease.acquire_time?,
        reason: lease.annotations.get(REASON_ANNOTATION).cloned(),
        outcome: lease
            .annotations
            .get(OUTCOME_ANNOTATION)
            .and_then(|o| Outcome::parse(o)),
        ended: lease
            .annotations
            .get(ENDED_ANNOTATION)
            .and_then(|t| t.parse().ok()),
    })
}

/// Whether a restart with `restart_id` has taken this lock: it holds it, or held it lately.
pub fn took(lease: &Lease, restart_id: &str) -> bool {
    let a = &lease.annotations;
    a.get(RESTART_ID_ANNOTATION).map(String::as_str) == Some(restart_id)
        || recent_ids(lease).iter().any(|id| id == restart_id)
}

/// The ids [`RECENT_IDS_ANNOTATION`] holds (none, if it cannot be read).
pub(super) fn recent_ids(lease: &Lease) -> Vec<String> {
    lease
        .annotations
        .get(RECENT_IDS_ANNOTATION)
        .and_then(|ids| serde_json::from_str(ids).ok())
        .unwrap_or_default()
}

/// A lock Lease not created yet: nobody holds it.
pub(super) fn new_lock_lease(namespace: &str, name: &str) -> Lease {
    Lease::new(namespace, name)
        .label(LOCK_LABEL, LOCK_LABEL_VALUE)
        .label("app.kubernetes.io/managed-by", "restart-manager")
}

#[cfg(test)]
mod tests {
    use cluster_api::WorkloadKind;

    use super::*;

    #[test]
    fn lease_names_map_back_to_one_workload() {
        let a = WorkloadRef::new(WorkloadKind::Deployment, "a-b", "c");
        let b = WorkloadRef::new(WorkloadKind::Deployment, "a", "b-c");
        assert_eq!(lease_name(&a), "restart.deployment.a-b.c");
        assert_ne!(lease_name(&a), lease_name(&b));
        let long = WorkloadRef::new(WorkloadKind::StatefulSet, "ns", "x".repeat(250));
        let name = lease_name(&long);
        assert!(name.len() <= 253, "{}", name.len());
        assert_ne!(
            name,
            lease_name(&WorkloadRef::new(
                WorkloadKind::StatefulSet,
                "ns",
                "x".repeat(251)
            ))
        );
    }
}
