//! The checks of reboot group Leases and of the evictions their drains send.

use std::collections::HashSet;

use cluster_api::{Lease, Timestamp};
use cluster_sim::ClusterView;
use fleetlock_core::drain::{DrainOptions, plan_drain};
use fleetlock_core::group::GroupState;
use fleetlock_core::nodes::CORDONED_ANNOTATION;
use fleetlock_core::{Holder, HolderPhase};

use crate::state::{Checks, is_group_lock, names};
use crate::violation::Invariant;

/// One group Lease write, both sides read.
struct GroupWrite<'a> {
    before: Option<&'a GroupState>,
    after: &'a GroupState,
    /// `spec.holderIdentity` as written: the nodes, comma-separated.
    identity: &'a str,
    now: Timestamp,
}

impl GroupWrite<'_> {
    fn held_before(&self, id: &str) -> Option<&Holder> {
        self.before.and_then(|b| b.holder(id))
    }

    /// The holders the write removed or whose grant it replaced, in any of `phases`.
    fn gone<'s>(&'s self, phases: &'s [HolderPhase]) -> impl Iterator<Item = &'s Holder> + 's {
        self.before
            .iter()
            .flat_map(|b| b.holders.iter())
            .filter(move |h| phases.contains(&h.phase))
    }
}

/// Checks a write of a group Lease: slots, one entry per node, and that every holder leaves
/// and is approved only the ways restart-manager lets it.
pub(crate) fn group_write(
    checks: &mut Checks,
    drain: &DrainOptions,
    before: Option<&Lease>,
    after: &Lease,
    cluster: &ClusterView<'_>,
) {
    checks.checked.group_writes += 1;
    let now = cluster.now();
    let identity = after.holder_identity.clone().unwrap_or_default();
    let after = match GroupState::from_lease(after) {
        Ok(state) => state,
        Err(e) => {
            checks.violation(
                Invariant::UnreadableLock,
                now,
                format!("{}: {e}", after.name),
            );
            return;
        }
    };
    let before = before.and_then(|l| GroupState::from_lease(l).ok());
    let write = GroupWrite {
        before: before.as_ref(),
        after: &after,
        identity: &identity,
        now,
    };
    let added: Vec<String> = after
        .holders
        .iter()
        .filter(|h| write.held_before(&h.id).is_none())
        .map(|h| format!("{} (granted by {})", h.node, h.granted_by))
        .collect();
    slots_exceeded(checks, &write, &added);
    rate_exceeded(checks, &write, added.len());
    held_twice(checks, &write, &added);
    released_unhealed(checks, &write, cluster);
    rebooting_slot_freed(checks, &write, cluster);
    approvals(checks, drain, &write, cluster);
}

/// A group whose slots were lowered may keep more holders than it now has slots; it must not
/// gain one.
fn slots_exceeded(checks: &mut Checks, write: &GroupWrite<'_>, added: &[String]) {
    let after = write.after;
    let slots = checks.slots(&after.group) as usize;
    if after.holders.len() > slots && !added.is_empty() {
        checks.violation(
            Invariant::SlotsExceeded,
            write.now,
            format!(
                "group {} has {} slots; the write added {} and it now has {} holders: {}",
                after.group,
                slots,
                added.join(", "),
                after.holders.len(),
                names(after.holders.iter().map(|h| h.node.as_str()))
            ),
        );
    }
}

/// A group grants no more than its rate allows in any window: `added` grants were written
/// now. The window is judged by the cluster's clock, shortened by how far the replicas'
/// clocks may disagree (a replica whose clock runs ahead sees older grants as older still).
fn rate_exceeded(checks: &mut Checks, write: &GroupWrite<'_>, added: usize) {
    let Some((rate, clocks_apart)) = checks.rate else {
        return;
    };
    if added == 0 {
        return;
    }
    let group = write.after.group.clone();
    let window = rate.per.saturating_sub(clocks_apart);
    let since = write
        .now
        .checked_sub(jiff::SignedDuration::try_from(window).unwrap_or_default())
        .unwrap_or(write.now);
    let grants = checks.grants.entry(group.clone()).or_default();
    grants.extend(std::iter::repeat_n(write.now, added));
    grants.retain(|at| *at > since);
    if grants.len() > rate.reboots as usize {
        let count = grants.len();
        checks.violation(
            Invariant::RateExceeded,
            write.now,
            format!(
                "group {group} granted {count} reboots within {} (its rate: {} per {})",
                cluster_api::duration::humanize(window),
                rate.reboots,
                cluster_api::duration::humanize(rate.per)
            ),
        );
    }
}

/// A node holds one slot of a group, whatever spelling of its id it asked with.
fn held_twice(checks: &mut Checks, write: &GroupWrite<'_>, added: &[String]) {
    let after = write.after;
    let mut seen = HashSet::new();
    let twice: Vec<&str> = after
        .holders
        .iter()
        .map(|h| h.node.as_str())
        .filter(|node| !seen.insert(*node))
        .collect();
    if !twice.is_empty() && !added.is_empty() {
        checks.violation(
            Invariant::NodeHeldTwice,
            write.now,
            format!(
                "group {}: the write added {} and {} now hold(s) two entries: {}",
                after.group,
                added.join(", "),
                names(twice.iter().copied()),
                after
                    .holders
                    .iter()
                    .map(|h| format!("{} as {}", h.node, h.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// A recovering holder leaves only healed (a deleted Node needs nothing).
fn released_unhealed(checks: &mut Checks, write: &GroupWrite<'_>, cluster: &ClusterView<'_>) {
    let after = write.after;
    for gone in write
        .gone(&[HolderPhase::Recovering])
        .filter(|h| after.holder(&h.id).is_none())
    {
        let Some(node) = cluster.node(&gone.node) else {
            continue;
        };
        let ours = node
            .annotations
            .get(CORDONED_ANNOTATION)
            .is_some_and(|v| v == "true");
        if !node.ready || ours {
            checks.violation(
                Invariant::ReleasedUnhealed,
                write.now,
                format!(
                    "{} left group {} recovering while {}",
                    gone.node,
                    after.group,
                    if ours {
                        "still cordoned by us"
                    } else {
                        "NotReady"
                    }
                ),
            );
        }
    }
}

/// An approved or recovering holder leaves only through its steady-state, its heal, or an
/// operator's doing (see [`Invariant::RebootingSlotFreed`]).
fn rebooting_slot_freed(checks: &mut Checks, write: &GroupWrite<'_>, cluster: &ClusterView<'_>) {
    let (after, now) = (write.after, write.now);
    let named = |node: &str| write.identity.split(',').any(|n| n == node);
    for gone in write
        .gone(&[HolderPhase::Approved, HolderPhase::Recovering])
        .filter(|h| after.holder(&h.id).is_none_or(|a| !a.same_grant(h)))
    {
        // A deleted Node, or the holders edited by hand: an operator's doing.
        if cluster.node(&gone.node).is_none() || named(&gone.node) {
            continue;
        }
        // A heal names the grant it healed in the same write.
        let healed = gone.phase == HolderPhase::Recovering
            && after.last_healed.as_deref() == Some(gone.grant().as_str());
        // Zincati is up on the node, and may have said steady-state. The simulation knows
        // it; the Node may still show Ready from before a short reboot.
        let up = gone.phase == HolderPhase::Approved && cluster.os_up(&gone.node).unwrap_or(true);
        let held = now.duration_since(gone.since);
        let stuck = checks
            .stuck_release
            .is_some_and(|after| !held.is_negative() && held.unsigned_abs() >= after);
        if healed || up || stuck {
            continue;
        }
        checks.violation(
            Invariant::RebootingSlotFreed,
            now,
            format!(
                "{} lost its slot in group {} while {}, {}",
                gone.node,
                after.group,
                gone.phase.as_str(),
                if gone.phase == HolderPhase::Approved {
                    "its node down for its reboot"
                } else {
                    "without its heal"
                }
            ),
        );
    }
}

/// Every holder the write approves was draining under the same grant, and its node has no
/// pod left that its drain must move.
fn approvals(
    checks: &mut Checks,
    drain: &DrainOptions,
    write: &GroupWrite<'_>,
    cluster: &ClusterView<'_>,
) {
    let (after, now) = (write.after, write.now);
    for holder in &after.holders {
        let was_approved = write
            .held_before(&holder.id)
            .is_some_and(|h| h.phase == HolderPhase::Approved);
        if holder.phase != HolderPhase::Approved || was_approved {
            continue;
        }
        checks.checked.approvals += 1;
        let from = write.held_before(&holder.id);
        if !from.is_some_and(|h| h.same_grant(holder) && h.phase == HolderPhase::Draining) {
            checks.violation(
                Invariant::ApprovedNotDraining,
                now,
                format!(
                    "{} approved in group {} from {}",
                    holder.node,
                    after.group,
                    match from {
                        None => "no slot".to_string(),
                        Some(h) if h.since != holder.since => {
                            format!("an earlier grant (since {})", h.since)
                        }
                        Some(h) => h.phase.as_str().to_string(),
                    }
                ),
            );
        }
        let pods = cluster.pods_on(&holder.node);
        let plan = plan_drain(pods.iter().copied(), drain);
        if !plan.is_done() || !plan.refuse.is_empty() {
            let left = plan
                .evict
                .iter()
                .chain(plan.wait.iter().map(|(p, _)| p))
                .chain(plan.refuse.iter().map(|(p, _)| p))
                .map(|p| p.to_string());
            checks.violation(
                Invariant::ApprovedWithPods,
                now,
                format!(
                    "{} approved in group {} with pods its drain must move: {}",
                    holder.node,
                    after.group,
                    left.collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}

/// An eviction is sent for a pod on `node` only while a slot holder for `node` is draining.
pub(crate) fn eviction(
    checks: &mut Checks,
    namespace: &str,
    node: &str,
    pod: &str,
    cluster: &ClusterView<'_>,
) {
    checks.checked.evictions += 1;
    let draining = cluster
        .leases(namespace)
        .filter(|l| is_group_lock(l))
        .filter_map(|l| GroupState::from_lease(l).ok())
        .any(|g| {
            g.holders
                .iter()
                .any(|h| h.node == node && h.phase == HolderPhase::Draining)
        });
    if !draining {
        checks.violation(
            Invariant::EvictionWithoutHolder,
            cluster.now(),
            format!("pod {pod} evicted from {node}, which holds no draining slot"),
        );
    }
}
