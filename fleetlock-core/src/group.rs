//! Reboot slots, held in the cluster: one Lease per group, written with compare-and-swap.
//!
//! The Lease `fleetlock-<group>` in the configured namespace carries the group's holders as
//! JSON in an annotation (so `kubectl get lease` shows them, and `spec.holderIdentity` lists
//! their nodes), whether the group is paused at run time, and when it last approved a reboot.
//! The number of slots is not stored: it comes from the configuration at every grant, so
//! changing it takes effect at once (holders above a lowered limit keep their slots; nobody
//! new gets one until the group is below it).

use cluster_api::lease::{self, Decision, Modified, ModifyError};
use cluster_api::{ClusterApi, LabelSelector, Lease, Timestamp};
use serde::{Deserialize, Serialize};

use crate::protocol::{Kind, Refusal};
use crate::recovery::RecoveryTarget;

mod name;
mod recent;

pub use name::lease_name;

/// Label on every group Lease.
pub const LOCK_LABEL: &str = "restart-manager.io/lock";
/// The value of [`LOCK_LABEL`] on FleetLock group Leases.
pub const LOCK_LABEL_VALUE: &str = "fleetlock";
/// Annotation with the group's name as clients spell it.
pub const GROUP_ANNOTATION: &str = "restart-manager.io/group";
/// Annotation with the holders, as JSON.
pub const HOLDERS_ANNOTATION: &str = "restart-manager.io/holders";
/// Annotation set to `true` while the group is paused at run time.
pub const PAUSED_ANNOTATION: &str = "restart-manager.io/paused";
/// Annotation with the time of the group's last approval.
pub const LAST_APPROVAL_ANNOTATION: &str = "restart-manager.io/last-approval";
/// Annotation with the time a holder of the group last healed and gave its slot back.
pub const LAST_RETURN_ANNOTATION: &str = "restart-manager.io/last-return";
/// The grant ([`Holder::grant`]) whose heal last gave a slot of the group back.
pub const LAST_HEALED_ANNOTATION: &str = "restart-manager.io/last-healed";

/// Annotation with the times of the group's recent grants, oldest first, comma-separated:
/// only with a rate configured, and only those it still counts (at most its `reboots`).
pub const RECENT_GRANTS_ANNOTATION: &str = "restart-manager.io/recent-grants";

/// The most bytes the API server lets an object's annotations hold, keys and values together
/// (apimachinery's `TotalAnnotationSizeLimitB`): a group Lease must fit, whatever its holders.
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// One slot's holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The client id it first asked with, as sent: shown, never used to find the holder
    /// (the same node may spell its id several ways).
    pub id: String,
    /// The Node it maps to: who holds the slot. A node holds at most one slot, whatever id
    /// it asks with.
    pub node: String,
    /// When it got the slot.
    pub since: Timestamp,
    /// Where it is.
    pub phase: HolderPhase,
    /// When its reboot was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
    /// The node's bootID when the reboot was approved; a different one now means it rebooted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The server replica that granted the slot.
    #[serde(default)]
    pub granted_by: String,
    /// What its drain disrupts, recorded at the grant: seen whole again before the slot goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evicts: Vec<RecoveryTarget>,
    /// When its steady-state came and it began recovering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_at: Option<Timestamp>,
    /// The node's last kubelet heartbeat (the `Ready` condition's `lastHeartbeatTime`) as read
    /// at its steady-state: a different one since shows the kubelet has reported after the
    /// return, so the Node's status is no longer the one from before the reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_heartbeat: Option<Timestamp>,
    /// While recovering: what it still waits for, as last seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// While recovering: since when it has waited for nothing (for `recovery.settle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<Timestamp>,
    /// The transitions seen (not written) that a replica has claimed to announce
    /// ([`crate::notices`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<String>,
}

// === impl Holder ===

impl Holder {
    /// A holder just granted its slot: draining, nothing recorded yet.
    pub fn granted(
        id: impl Into<String>,
        node: impl Into<String>,
        since: Timestamp,
        granted_by: impl Into<String>,
    ) -> Self {
        Holder {
            id: id.into(),
            node: node.into(),
            since,
            phase: HolderPhase::Draining,
            approved_at: None,
            boot_id: None,
            granted_by: granted_by.into(),
            evicts: Vec::new(),
            returned_at: None,
            returned_heartbeat: None,
            waiting_for: Vec::new(),
            healthy_since: None,
            announced: Vec::new(),
        }
    }

    /// Whether `other` is this same grant of the slot: the same client, granted at the same
    /// time. A client's id alone is not enough, since its node may be granted again once the
    /// slot is back.
    pub fn same_grant(&self, other: &Holder) -> bool {
        self.id == other.id && self.since == other.since
    }

    /// This grant, in words: its node and when the slot was granted (`n1@2026-01-05T09:00:00Z`).
    pub fn grant(&self) -> String {
        format!("{}@{}", self.node, self.since)
    }
}

/// Where a holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum HolderPhase {
    /// Its node is being drained.
    Draining,
    /// Its node is empty and the reboot was approved.
    Approved,
    /// It said steady-state; the slot stays until its node and workloads have healed.
    Recovering,
}

impl HolderPhase {
    /// The phase as the Lease spells it: `draining`, `approved`, `recovering`.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderPhase::Draining => "draining",
            HolderPhase::Approved => "approved",
            HolderPhase::Recovering => "recovering",
        }
    }
}

/// A group's state as stored in its Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The group name as clients spell it.
    pub group: String,
    /// The holders, oldest first.
    pub holders: Vec<Holder>,
    /// Paused at run time (in addition to any `paused` in the config).
    pub paused: bool,
    /// When the group last approved a reboot.
    pub last_approval: Option<Timestamp>,
    /// When a holder of the group last healed and gave its slot back: the latest such time
    /// any replica's clock has stamped, never moved back by a clock that runs behind.
    pub last_return: Option<Timestamp>,
    /// The grant ([`Holder::grant`]) whose heal gave its slot back last.
    pub last_healed: Option<String>,
    /// When the grants its rate still counts were made, oldest first: at most the rate's
    /// `reboots`, none older than its `per` when written (empty without a rate, and in a
    /// Lease written before rates existed).
    pub recent_grants: Vec<Timestamp>,
    /// The Lease's resourceVersion this state was read at; empty if it does not exist yet.
    pub resource_version: String,
}

// === impl GroupState ===

impl GroupState {
    /// A group nobody holds.
    pub fn empty(group: &str) -> Self {
        GroupState {
            group: group.to_string(),
            holders: Vec::new(),
            paused: false,
            last_approval: None,
            last_return: None,
            last_healed: None,
            recent_grants: Vec::new(),
            resource_version: String::new(),
        }
    }

    /// Reads a group Lease. A Lease whose holders cannot be read is an error, never an empty
    /// group: guessing would hand out slots that are taken.
    pub fn from_lease(lease: &Lease) -> Result<Self, UnreadableLock> {
        let group = lease
            .annotations
            .get(GROUP_ANNOTATION)
            .cloned()
            .ok_or_else(|| UnreadableLock::NoGroup {
                lease: lease.name.clone(),
            })?;
        let holders = match lease.annotations.get(HOLDERS_ANNOTATION) {
            Some(json) if !json.trim().is_empty() => {
                serde_json::from_str(json).map_err(|source| UnreadableLock::Holders {
                    lease: format!("{}/{}", lease.namespace, lease.name),
                    source,
                })?
            }
            _ => Vec::new(),
        };
        let time = |annotation: &'static str| match lease.annotations.get(annotation) {
            Some(t) => t.parse().map(Some).map_err(|source| UnreadableLock::Time {
                lease: lease.name.clone(),
                annotation,
                source,
            }),
            None => Ok(None),
        };
        let last_approval = time(LAST_APPROVAL_ANNOTATION)?;
        let last_return = time(LAST_RETURN_ANNOTATION)?;
        let recent_grants = lease
            .annotations
            .get(RECENT_GRANTS_ANNOTATION)
            .map_or(Ok(Vec::new()), |list| recent::parse(list))
            .map_err(|source| UnreadableLock::Time {
                lease: lease.name.clone(),
                annotation: RECENT_GRANTS_ANNOTATION,
                source,
            })?;
        Ok(GroupState {
            group,
            holders,
            paused: lease
                .annotations
                .get(PAUSED_ANNOTATION)
                .is_some_and(|v| v == "true"),
            last_approval,
            last_return,
            last_healed: lease.annotations.get(LAST_HEALED_ANNOTATION).cloned(),
            recent_grants,
            resource_version: lease.resource_version.clone(),
        })
    }

    /// Writes the state into a new Lease (keeping the resourceVersion for compare-and-swap).
    pub fn to_lease(&self, namespace: &str, now: Timestamp) -> Lease {
        self.onto_lease(Lease::new(namespace, lease_name(&self.group)), now)
    }

    /// Writes the state onto `lease` as it stands in the cluster: only our own labels,
    /// annotations and the spec change, so that what other tools keep on the Lease survives.
    pub fn onto_lease(&self, mut lease: Lease, now: Timestamp) -> Lease {
        lease
            .labels
            .insert(LOCK_LABEL.into(), LOCK_LABEL_VALUE.into());
        lease.labels.insert(
            "app.kubernetes.io/managed-by".into(),
            "restart-manager".into(),
        );
        lease.resource_version = self.resource_version.clone();
        let ours = |key: &str, value: Option<String>| (key.to_string(), value);
        let annotations = [
            ours(GROUP_ANNOTATION, Some(self.group.clone())),
            ours(
                HOLDERS_ANNOTATION,
                Some(serde_json::to_string(&self.holders).unwrap_or_else(|_| "[]".into())),
            ),
            ours(PAUSED_ANNOTATION, self.paused.then(|| "true".into())),
            ours(
                LAST_APPROVAL_ANNOTATION,
                self.last_approval.map(|at| at.to_string()),
            ),
            ours(
                LAST_RETURN_ANNOTATION,
                self.last_return.map(|at| at.to_string()),
            ),
            ours(LAST_HEALED_ANNOTATION, self.last_healed.clone()),
            ours(RECENT_GRANTS_ANNOTATION, recent::join(&self.recent_grants)),
        ];
        for (key, value) in annotations {
            match value {
                Some(value) => lease.annotations.insert(key, value),
                None => lease.annotations.remove(&key),
            };
        }
        let nodes: Vec<&str> = self.holders.iter().map(|h| h.node.as_str()).collect();
        lease.holder_identity = (!nodes.is_empty()).then(|| nodes.join(","));
        lease.acquire_time = self.holders.iter().map(|h| h.since).min();
        lease.renew_time = Some(now);
        lease
    }

    /// Makes the holders' records coarser until `size` (of the Lease they go on) is within
    /// [`ANNOTATIONS_LIMIT`]: first each holder's recovery targets by namespace, then as every
    /// namespace with what it waits for cut to one line. A holder waits for more, never for
    /// less. Whether it fits.
    pub fn fit(&mut self, size: impl Fn(&GroupState) -> usize) -> bool {
        for everywhere in [false, true] {
            if size(self) <= ANNOTATIONS_LIMIT {
                return true;
            }
            for h in &mut self.holders {
                h.evicts = crate::recovery::coarser(&h.evicts, everywhere);
                if everywhere && h.waiting_for.len() > 1 {
                    let more = h.waiting_for.len();
                    h.waiting_for = vec![format!("{more} things, left out to fit the Lease")];
                }
            }
        }
        size(self) <= ANNOTATIONS_LIMIT
    }

    /// The holder whose client id is exactly `id`, as it was granted. Decisions go by node
    /// ([`holder_of`](Self::holder_of)): this is for tests and tools that know the id.
    pub fn holder(&self, id: &str) -> Option<&Holder> {
        self.holders.iter().find(|h| h.id == id)
    }

    /// [`holder`](Self::holder), to change.
    pub fn holder_mut(&mut self, id: &str) -> Option<&mut Holder> {
        self.holders.iter_mut().find(|h| h.id == id)
    }

    /// Removes the holders whose client id is exactly `id`; whether there were any. (For
    /// tests and tools, as [`holder`](Self::holder).)
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.holders.len();
        self.holders.retain(|h| h.id != id);
        self.holders.len() != before
    }

    /// The slot `node` holds: its oldest grant. (Versions before issue 27 keyed holders by
    /// the id as spelt, and may have left one node several; the oldest is the one that
    /// counts, and the node's steady-state gives them all back.)
    pub fn holder_of(&self, node: &str) -> Option<&Holder> {
        self.holders.iter().find(|h| h.node == node)
    }

    /// This very grant ([`Holder::same_grant`]), if it still holds its slot.
    pub fn grant(&self, grant: &Holder) -> Option<&Holder> {
        self.holders.iter().find(|h| h.same_grant(grant))
    }

    /// [`grant`](Self::grant), to change.
    pub fn grant_mut(&mut self, grant: &Holder) -> Option<&mut Holder> {
        self.holders.iter_mut().find(|h| h.same_grant(grant))
    }

    /// How many slots are taken: the nodes holding one (a node counts once, however many
    /// entries an older version left it).
    pub fn slots_taken(&self) -> usize {
        let mut nodes: Vec<&str> = self.holders.iter().map(|h| h.node.as_str()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    }
}

/// The selector that finds every group Lease.
pub fn lease_selector() -> LabelSelector {
    LabelSelector::eq(LOCK_LABEL, LOCK_LABEL_VALUE)
}

/// Reads a group's Lease, lets `change` decide, and writes the result back if it changed,
/// retrying from a fresh read whenever another writer got there first.
///
/// `change` may run several times; it must decide from the state it is given, not from
/// anything it saw in an earlier run. Returns the state as written (or as read, if nothing
/// changed) and what `change` returned.
pub async fn modify<R>(
    api: &dyn ClusterApi,
    namespace: &str,
    group: &str,
    now: impl Fn() -> Timestamp,
    mut change: impl FnMut(&mut GroupState) -> Result<R, Refusal>,
) -> Result<(GroupState, R), Refusal> {
    let name = lease_name(group);
    let modified = lease::modify(api, namespace, &name, |lease| {
        let current = match lease.as_ref().map(GroupState::from_lease) {
            Some(Ok(state)) => state,
            Some(Err(e)) => {
                return Decision::Keep(Err(Refusal::new(Kind::Internal, e.to_string())));
            }
            None => GroupState::empty(group),
        };
        let mut next = current.clone();
        match change(&mut next) {
            Err(refusal) => Decision::Keep(Err(refusal)),
            Ok(result) if next == current => Decision::Keep(Ok((current, result))),
            Ok(result) => {
                let base = lease.unwrap_or_else(|| Lease::new(namespace, &name));
                let now = now();
                let written = next.onto_lease(base.clone(), now);
                // The usual write fits as it is: it is built once, and only a Lease that would
                // not fit is built again while the records are made coarser.
                if annotations_size(&written) <= ANNOTATIONS_LIMIT {
                    return Decision::Write(written, (next, result));
                }
                if !next.fit(|state| annotations_size(&state.onto_lease(base.clone(), now))) {
                    return Decision::Keep(Err(Refusal::new(
                        Kind::LockHeld,
                        format!(
                            "the Lease of group {group} cannot record {} holders within the API \
                             server's limit of {ANNOTATIONS_LIMIT} bytes of annotations; ask again \
                             once a slot is back",
                            next.holders.len()
                        ),
                    )));
                }
                Decision::Write(next.onto_lease(base, now), (next, result))
            }
        }
    })
    .await;
    match modified {
        Ok(Modified::Kept(answer)) => answer,
        Ok(Modified::Written(lease, (mut next, result))) => {
            next.resource_version = lease.resource_version;
            Ok((next, result))
        }
        Err(ModifyError::Read { source, .. }) => {
            Err(Refusal::from_cluster("reading the group lock", &source))
        }
        Err(ModifyError::Write { source, .. }) => {
            Err(Refusal::from_cluster("writing the group lock", &source))
        }
        Err(_) => Err(Refusal::new(
            Kind::ClusterUnavailable,
            format!("the lock of group {group} kept changing under us; try again"),
        )),
    }
}

/// The bytes of a Lease's annotations as the API server counts them: keys and values.
fn annotations_size(lease: &Lease) -> usize {
    lease
        .annotations
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum()
}

impl cluster_api::Versioned for GroupState {
    fn resource_version(&self) -> &str {
        &self.resource_version
    }
}

/// A group Lease that cannot be read as a group's state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnreadableLock {
    /// It does not say which group it is.
    #[error("lease {lease} has no {GROUP_ANNOTATION} annotation")]
    NoGroup {
        /// The Lease's name.
        lease: String,
    },
    /// Its holders are not the JSON this crate writes.
    #[error(
        "lease {lease} has an unreadable {HOLDERS_ANNOTATION} annotation ({source}); fix or \
         delete it by hand"
    )]
    Holders {
        /// The Lease's namespace and name.
        lease: String,
        /// Why the JSON did not parse.
        source: serde_json::Error,
    },
    /// Its last approval or return, or one of its recent grants, is not a timestamp.
    #[error("lease {lease} has an unreadable {annotation}: {source}")]
    Time {
        /// The Lease's name.
        lease: String,
        /// The annotation's key: [`LAST_APPROVAL_ANNOTATION`], [`LAST_RETURN_ANNOTATION`] or
        /// [`RECENT_GRANTS_ANNOTATION`].
        annotation: &'static str,
        /// Why the timestamp did not parse.
        source: jiff::Error,
    },
}

#[cfg(test)]
mod tests;
