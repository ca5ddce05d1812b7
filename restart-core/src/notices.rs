//! What the restarter tells whoever listens (notifications) about a restart: one notice per
//! transition, sent by the replica whose compare-and-swap on the restart lock made it (taking
//! the lock, releasing it with the outcome, breaking it), so never twice across replicas.

use cluster_api::{Timestamp, WorkloadRef};
use serde::Serialize;

/// A restart transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RestartTransition {
    /// The restart was applied; the rollout begins.
    Started,
    /// The rollout completed.
    Completed,
    /// The restart could not be applied, its rollout failed, or it timed out.
    Failed,
    /// Someone broke the restart lock.
    Unlocked,
}

impl RestartTransition {
    /// `started`, `completed`, `failed`, `unlocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartTransition::Started => "started",
            RestartTransition::Completed => "completed",
            RestartTransition::Failed => "failed",
            RestartTransition::Unlocked => "unlocked",
        }
    }
}

/// One restart transition, for notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartNotice {
    /// What happened.
    pub transition: RestartTransition,
    /// The workload restarted (or unlocked); the Event with `message` is recorded on it.
    pub workload: WorkloadRef,
    /// Who restarted it (or, for `unlocked`, who broke the lock).
    pub who: String,
    /// The reason they gave, if any.
    pub why: Option<String>,
    /// A sentence for a person, as the Event on the workload says it.
    pub message: String,
    /// When (the restarter's clock).
    pub time: Timestamp,
}
