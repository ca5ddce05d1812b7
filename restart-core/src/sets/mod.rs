//! Restart sets: named, ordered lists of allowlisted workloads restarted one after another
//! (or a few at a time), and the plain rules that move a set's run forward.
//!
//! ```yaml
//! restartSets:
//!   - name: shop
//!     description: caches first, then the API, then the storefront
//!     members: [Deployment/shop/cache, Deployment/shop/api, Deployment/shop/web]
//!     concurrency: 1        # how many members restart at once (default 1)
//!     onFailure: stop       # stop (default), or continue and report
//! ```
//!
//! A run lives in one Lease per set (`restart-set.<name>`): held while the run goes on, so
//! only one run of a set exists at a time, with the run's progress in an annotation, so any
//! replica (the leader drives runs) carries on from where a crashed one stopped. Each member
//! is restarted under its own workload lock, with a restart id derived from the run's, so a
//! member is never restarted twice by one run however often its driver changes.

use std::collections::BTreeSet;

use cluster_api::{Timestamp, WorkloadRef};
use serde::{Deserialize, Serialize};

use crate::allowlist::Allowlist;
use crate::lock::{LastRestart, LockInfo, Outcome};
use crate::schedule::{Schedule, ScheduleStatus};

/// The label value (on [`crate::lock::LOCK_LABEL`]) of set-run Leases.
pub const SET_LABEL_VALUE: &str = "restart-set";
/// The annotation holding a run's progress, as JSON.
pub const RUN_ANNOTATION: &str = "restart-manager.io/set-run";

/// What to do when a member's restart fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum OnFailure {
    /// Start no further member; those not started are skipped.
    #[default]
    Stop,
    /// Restart every member anyway, and report the failures at the end.
    Continue,
}

/// One restart set as written in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetEntry {
    /// The set's name: a lowercase DNS name.
    pub name: String,
    /// A sentence for the page.
    #[serde(default)]
    pub description: Option<String>,
    /// The members in order, as `Kind/namespace/name`; each must be allowlisted.
    pub members: Vec<String>,
    /// How many members restart at once.
    #[serde(default = "one")]
    pub concurrency: usize,
    /// What a failed member means for the rest.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// When it runs by itself.
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

fn one() -> usize {
    1
}

/// A checked restart set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RestartSet {
    /// A lowercase DNS label, unique among the sets; its runs live in the Lease
    /// `restart-set.<name>`.
    pub name: String,
    /// The entry's `description`, for the page; `None` when the configuration gives none.
    pub description: Option<String>,
    /// The members, in order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(serialize_with = "as_strings", deserialize_with = "from_strings")]
    pub members: Vec<WorkloadRef>,
    /// How many members restart at once.
    pub concurrency: usize,
    /// What a failed member means for the rest.
    pub on_failure: OnFailure,
    /// When it runs by itself (shown as [`SetStatus::schedule`]).
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub schedule: Option<Schedule>,
}

fn as_strings<S: serde::Serializer>(members: &[WorkloadRef], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(members.iter().map(ToString::to_string))
}

fn from_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<WorkloadRef>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|m| parse_member(m).map_err(serde::de::Error::custom))
        .collect()
}

/// A restart set that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("restartSets[{index}]: {message}")]
pub struct InvalidSet {
    /// The set's position in the list.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Checks the sets against the allowlist: unique valid names, at least one member, each
/// member allowlisted and listed once, a concurrency of at least one.
pub fn check_sets(
    entries: Vec<SetEntry>,
    allowlist: &Allowlist,
) -> Result<Vec<RestartSet>, InvalidSet> {
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (index, e) in entries.into_iter().enumerate() {
        let err = |message: String| InvalidSet { index, message };
        // The Lease name is `restart-set.<name>`; a DNS label keeps it one name.
        if !cluster_api::is_object_name(&e.name) || e.name.contains('.') || e.name.len() > 63 {
            return Err(err(format!(
                "name {:?} is not a lowercase DNS label (a-z, 0-9 and '-', at most 63)",
                e.name
            )));
        }
        if !names.insert(e.name.clone()) {
            return Err(err(format!("the set {} is defined twice", e.name)));
        }
        if e.members.is_empty() {
            return Err(err(format!("the set {} has no members", e.name)));
        }
        if e.concurrency == 0 {
            return Err(err(format!(
                "the set {}: concurrency must be at least 1",
                e.name
            )));
        }
        let mut members = Vec::with_capacity(e.members.len());
        for m in &e.members {
            let w = parse_member(m)
                .map_err(|problem| err(format!("the set {}: member {m:?}: {problem}", e.name)))?;
            if allowlist.get(&w).is_none() {
                return Err(err(format!(
                    "the set {}: member {w} is not in services (only allowlisted workloads \
                     may be in a set)",
                    e.name
                )));
            }
            if members.contains(&w) {
                return Err(err(format!("the set {}: {w} is listed twice", e.name)));
            }
            members.push(w);
        }
        out.push(RestartSet {
            name: e.name,
            description: e.description,
            members,
            concurrency: e.concurrency,
            on_failure: e.on_failure,
            schedule: e.schedule,
        });
    }
    Ok(out)
}

/// `Kind/namespace/name`, kubectl's short kind names accepted.
pub(crate) fn parse_member(s: &str) -> Result<WorkloadRef, String> {
    match s.split('/').collect::<Vec<_>>().as_slice() {
        [kind, namespace, name] => {
            let kind = kind
                .parse()
                .map_err(|e: cluster_api::UnknownKind| e.to_string())?;
            Ok(WorkloadRef::new(kind, *namespace, *name))
        }
        _ => Err("expected Kind/namespace/name, e.g. Deployment/shop/web".into()),
    }
}

/// The Lease name of a set's run: `restart-set.<name>`.
pub fn lease_name(set: &str) -> String {
    format!("restart-set.{set}")
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RunState {
    /// Members are being restarted.
    Running,
    /// Cancelled: no further member starts; the run ends when those restarting have.
    Cancelling,
    /// Every member rolled out.
    Complete,
    /// A member failed (the rest were skipped under `stop`, restarted under `continue`).
    Failed,
    /// Cancelled; members not started were skipped.
    Cancelled,
}

impl RunState {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Running | RunState::Cancelling)
    }
}

/// Where one member of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum MemberState {
    /// Not reached yet.
    Pending,
    /// Its turn came while someone else restarts it; it starts once their lock is free.
    Waiting,
    /// Restarted; its rollout runs.
    Restarting,
    /// Rolled out.
    Complete,
    /// Could not be restarted, or its rollout failed or timed out.
    Failed,
    /// Never started: the run stopped or was cancelled first.
    Skipped,
}

impl MemberState {
    /// Whether the member is done with, one way or another.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MemberState::Complete | MemberState::Failed | MemberState::Skipped
        )
    }
}

/// One member's progress in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemberProgress {
    /// `Kind/namespace/name`.
    pub workload: String,
    /// Where it is.
    pub state: MemberState,
    /// When its restart started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Timestamp>,
    /// What happened, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One run of a set, as its Lease keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SetRun {
    /// Identifies the run; a member's restart id is `<id>.<position>`.
    pub id: String,
    /// The name of the set ([`RestartSet::name`]) this is a run of.
    pub set: String,
    /// Who started it.
    pub by: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Timestamp>,
    /// Where it is.
    pub state: RunState,
    /// Who cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    /// How many members restart at once, as when it started.
    pub concurrency: usize,
    /// What a failed member means, as when it started.
    pub on_failure: OnFailure,
    /// The members in order, as when it started.
    pub members: Vec<MemberProgress>,
}

/// What the page, the API and the CLI show about one set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SetStatus {
    /// The set as configured.
    #[serde(flatten)]
    pub set: RestartSet,
    /// Whether a run goes on.
    pub running: bool,
    /// The run going on, or else the last one.
    pub run: Option<SetRun>,
    /// Its schedule, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,
}

/// What a member's workload lock says about the member's restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The lock carries this member's restart id and is held: the rollout runs.
    Running,
    /// The lock carries this member's restart id and was released: it ended so.
    Ended(Outcome),
    /// Someone else holds the lock (and it has not expired).
    HeldBy(LockInfo),
    /// The lock is free (or expired) and carries another restart, or none.
    Free(Option<LastRestart>),
}

/// What a pass over a run decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Members (by position) to restart now.
    pub start: Vec<usize>,
    /// Whether the run changed (and must be written back).
    pub changed: bool,
}

mod run;

#[cfg(test)]
mod tests;
