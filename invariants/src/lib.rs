//! restart-manager's safety properties, as code.
//!
//! [`Invariants`] is an [`Auditor`] of a [`SimCluster`]: it sees every write the cluster accepts
//! at the moment it is accepted, with the cluster as it is then, and records a [`Violation`]
//! whenever one of these is broken:
//!
//! | invariant | checked on |
//! |---|---|
//! | a write never gives a group more holders than its slots ([`Invariant::SlotsExceeded`]) | every group Lease write |
//! | a write never gives a node a second entry in a group, whatever id it asked with ([`Invariant::NodeHeldTwice`]) | every group Lease write |
//! | no eviction is sent for a node unless a slot holder for that node is draining at that moment ([`Invariant::EvictionWithoutHolder`]) | every eviction request, as it arrives |
//! | a node is approved only when none of the pods its drain must move remains on it ([`Invariant::ApprovedWithPods`]) | every group Lease write that approves a holder |
//! | a grant is approved only out of draining: never one that is recovering from its reboot, nor a grant the write did not find draining ([`Invariant::ApprovedNotDraining`]) | every group Lease write that approves a holder |
//! | a recovering holder's slot goes only once its node is Ready and our cordon is off ([`Invariant::ReleasedUnhealed`]) | every group Lease write that removes a recovering holder |
//! | an approved or recovering holder leaves its slot only through its steady-state, its heal, or an operator's forced release ([`Invariant::RebootingSlotFreed`]) | every group Lease write that removes an approved or recovering holder |
//! | an administrator's cordon is never undone ([`Invariant::AdminCordonUndone`]) | every Node write through the API |
//! | a restart lock is never taken from a holder whose lease has not run out ([`Invariant::RestartLockStolen`]) | every restart lock write |
//! | a workload is restarted only by the holder of its lock ([`Invariant::RestartWithoutLock`]) | every restart patch, as it arrives |
//! | a restart is applied once: a set member or a scheduled due time is restarted once, whoever drives it and whatever answers are lost ([`Invariant::RestartRepeated`]) | every restart patch applied |
//! | a set run never has more members restarting than its concurrency ([`Invariant::SetConcurrencyExceeded`]) | every set run write |
//!
//! Evictions and restart patches are judged when they arrive, before any latency the
//! simulation injects delays them: Kubernetes has no transaction spanning a Lease and a pod or
//! a Deployment, so a request sent while its slot or lock was held may still land after an
//! operator broke that lock. What restart-manager controls is what it sends, and when.
//!
//! The liveness side (once faults stop, every node that keeps asking is approved; every slot
//! and lock is given back; every cordon restart-manager made is undone) is
//! [`Invariants::check_settled`], for the end of a run.
//!
//! The checks read the cluster the way restart-manager writes it ([`fleetlock_core::group`],
//! [`restart_core::lock`]), so they know nothing of how the coordinators decide.

pub mod chaos;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Lease, Timestamp, WorkloadRef};
use cluster_sim::{Auditor, ClusterView, SimCluster, Write, Writer};
use fleetlock_core::HolderPhase;
use fleetlock_core::drain::{DrainOptions, plan_drain};
use fleetlock_core::group::{GroupState, LOCK_LABEL, LOCK_LABEL_VALUE};
use fleetlock_core::nodes::CORDONED_ANNOTATION;
use parking_lot::Mutex;
use restart_core::RESTARTED_AT;
use restart_core::lock::{self, lease_name, lock_of};
use restart_core::sets::{MemberState, SetRun};

/// One of the properties [`Invariants`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Invariant {
    /// A write gave a group a holder beyond its slots.
    SlotsExceeded,
    /// A write gave a node a second entry among a group's holders (under another spelling of
    /// its id, say): one node would hold two slots.
    NodeHeldTwice,
    /// An eviction was sent for a node no draining slot holder stood for.
    EvictionWithoutHolder,
    /// A node was approved with pods on it that its drain must move.
    ApprovedWithPods,
    /// A holder was approved that the Lease did not show draining under the same grant just
    /// before (it was recovering, or newly granted).
    ApprovedNotDraining,
    /// A recovering holder's slot was given back while its node was NotReady or still
    /// cordoned by restart-manager.
    ReleasedUnhealed,
    /// An approved or recovering holder lost its slot other than through its steady-state,
    /// its heal, or an operator's forced release: say, a drain timeout of a grant that another
    /// replica had approved, freeing the slot (and the next node's turn) while the node reboots.
    ///
    /// A write cannot say who made it or why, so the check reads each way out in what the
    /// write leaves. A heal removes a recovering holder and records the group's last return
    /// (no earlier than the holder's own return) in the same write. A steady-state comes from
    /// Zincati running on the node, so never while the node is down for the reboot it was
    /// approved for (NotReady, with the approved bootID); at any other time it may give an
    /// approved holder's slot back (Zincati restarted before rebooting, or recovery off). An
    /// operator deletes the Node, deletes the Lease, or edits the holders by hand, which leaves
    /// `spec.holderIdentity` naming the node (restart-manager rewrites it with every change of
    /// the holders); `stuck.release`, an operator's standing order, takes a slot held at least
    /// as long as [`Invariants::set_stuck_release`] says.
    RebootingSlotFreed,
    /// A cordon restart-manager did not make was undone by restart-manager.
    AdminCordonUndone,
    /// A restart lock changed hands while its holder's lease still ran.
    RestartLockStolen,
    /// A workload was restarted by someone not holding its lock.
    RestartWithoutLock,
    /// A restart's patch was applied a second time (under a new `restartedAt`): a restart
    /// meant to happen once, such as a set member's or a schedule's, happened again.
    RestartRepeated,
    /// A set run had more members restarting at once than its concurrency.
    SetConcurrencyExceeded,
    /// A lock restart-manager wrote could not be read back.
    UnreadableLock,
    /// Once faults stopped, a node that kept asking was not approved in time.
    NeverApproved,
    /// After the run settled, a slot was still held.
    SlotNeverReleased,
    /// After the run settled, a node was still cordoned by restart-manager.
    CordonNeverUndone,
    /// After the run settled, a restart lock was still held and not expired.
    LockNeverReleased,
}

/// A broken invariant: which, when (simulated time), and the objects involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The property broken.
    pub invariant: Invariant,
    /// When the write that broke it was accepted.
    pub at: Timestamp,
    /// What happened, naming the objects.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.at, self.invariant, self.detail)
    }
}

/// How many writes of each kind were checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Group Lease writes.
    pub group_writes: u64,
    /// Holders approved.
    pub approvals: u64,
    /// Evictions sent for a pod on a node.
    pub evictions: u64,
    /// Node writes through the API.
    pub node_writes: u64,
    /// Restart lock writes.
    pub lock_writes: u64,
    /// Restart patches sent.
    pub restarts: u64,
    /// Set run writes.
    pub set_run_writes: u64,
}

/// The checker; see the [crate docs](crate). Register it with [`Invariants::watch`].
pub struct Invariants {
    namespace: String,
    drain: DrainOptions,
    state: Mutex<Checks>,
}

#[derive(Default)]
struct Checks {
    slots: HashMap<String, u32>,
    default_slots: u32,
    /// With `stuck.release` on: how long a holder holds its slot before it may be taken.
    stuck_release: Option<Duration>,
    violations: Vec<Violation>,
    checked: Checked,
    /// The restart id each restart patch was sent under, by workload and `restartedAt`.
    sent_by: HashMap<(WorkloadRef, String), String>,
    /// Every restart id whose patch was applied.
    applied: HashSet<String>,
    /// Per restart lock Lease: when (simulated time) its holder, times or duration last
    /// changed. A lock is held until its duration has passed since then: the replicas judge
    /// expiry by watching it unchanged, since the times it carries are the writer's clock.
    lock_changed: HashMap<String, Timestamp>,
}

/// What a lock Lease's holder renews: holder, times, duration, transitions.
fn lock_times(l: &Lease) -> impl PartialEq + use<'_> {
    (
        &l.holder_identity,
        l.acquire_time,
        l.renew_time,
        l.lease_duration_seconds,
        l.lease_transitions,
    )
}

impl Checks {
    /// Whether the lock `lease` (as it stands) is still held at `now`, by the simulation's
    /// clock: its duration not yet over since it last changed. A lock never seen to change
    /// is judged by its own times.
    fn lock_held(&self, lease: &Lease, now: Timestamp) -> bool {
        if lease.holder_identity.is_none() {
            return false;
        }
        match (
            self.lock_changed.get(&lease.name),
            lease.lease_duration_seconds,
        ) {
            (Some(at), Some(seconds)) => {
                now < *at + jiff::SignedDuration::from_secs(i64::from(seconds))
            }
            _ => lease.is_held_at(now),
        }
    }
}

// === impl Invariants ===

impl Invariants {
    /// A checker of the locks restart-manager keeps in `namespace`, whose drains run with
    /// `drain` (which pods must leave a node), for groups of `default_slots` slots.
    pub fn new(namespace: impl Into<String>, drain: DrainOptions, default_slots: u32) -> Self {
        Invariants {
            namespace: namespace.into(),
            drain,
            state: Mutex::new(Checks {
                default_slots,
                ..Checks::default()
            }),
        }
    }

    /// Creates a checker and shows it every write `sim` accepts from now on.
    pub fn watch(
        sim: &SimCluster,
        namespace: impl Into<String>,
        drain: DrainOptions,
        default_slots: u32,
    ) -> Arc<Self> {
        let checker = Arc::new(Self::new(namespace, drain, default_slots));
        sim.add_auditor(checker.clone());
        checker
    }

    /// The slots of a group from now on. While replicas disagree (a configuration being
    /// rolled out), give the largest any of them has.
    pub fn set_slots(&self, group: &str, slots: u32) {
        self.state.lock().slots.insert(group.to_string(), slots);
    }

    /// The replicas run with `stuck.release` on, taking the slot of a holder that has held it
    /// for `after` (an operator's forced release, decided in advance); `None` (the default):
    /// off.
    pub fn set_stuck_release(&self, after: Option<Duration>) {
        self.state.lock().stuck_release = after;
    }

    /// Every violation seen so far, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.state.lock().violations.clone()
    }

    /// How many writes were checked.
    pub fn checked(&self) -> Checked {
        self.state.lock().checked
    }

    /// The end-of-run checks, once faults have stopped and every agent is done: no slot is
    /// held, no node is left cordoned by restart-manager, and no restart lock is held. Returns
    /// what it finds now, without recording it (a caller may look again after a while).
    pub fn check_settled(&self, sim: &SimCluster) -> Vec<Violation> {
        let now = sim.now();
        let mut found = Vec::new();
        let mut violation = |invariant, detail: String| {
            found.push(Violation {
                invariant,
                at: now,
                detail,
            })
        };
        for lease in sim.leases() {
            if lease.namespace != self.namespace {
                continue;
            }
            if is_group_lock(&lease) {
                match GroupState::from_lease(&lease) {
                    Ok(state) => {
                        for h in &state.holders {
                            violation(
                                Invariant::SlotNeverReleased,
                                format!(
                                    "group {} still has {} ({}) holding a slot since {}",
                                    state.group,
                                    h.node,
                                    h.phase.as_str(),
                                    h.since
                                ),
                            );
                        }
                    }
                    Err(e) => violation(Invariant::UnreadableLock, e.to_string()),
                }
            } else if let Some(lock) = held_restart_lock(&lease, now) {
                violation(
                    Invariant::LockNeverReleased,
                    format!(
                        "{} is still held by {} since {}",
                        lease.name, lock.holder, lock.since
                    ),
                );
            }
        }
        for node in sim.nodes() {
            if node.unschedulable && node.annotations.contains_key(CORDONED_ANNOTATION) {
                violation(
                    Invariant::CordonNeverUndone,
                    format!("{} is still cordoned by restart-manager", node.name),
                );
            }
        }
        found
    }

    fn slots(checks: &Checks, group: &str) -> u32 {
        checks
            .slots
            .get(group)
            .copied()
            .unwrap_or(checks.default_slots)
    }

    fn group_write(
        &self,
        checks: &mut Checks,
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
                checks.violations.push(Violation {
                    invariant: Invariant::UnreadableLock,
                    at: now,
                    detail: format!("{}: {e}", after.name),
                });
                return;
            }
        };
        let before = before.and_then(|l| GroupState::from_lease(l).ok());
        let held_before = |id: &str| before.as_ref().and_then(|b| b.holder(id));
        let slots = Self::slots(checks, &after.group) as usize;
        // A group whose slots were lowered may keep more holders than it now has slots; it
        // must not gain one.
        let added: Vec<String> = after
            .holders
            .iter()
            .filter(|h| held_before(&h.id).is_none())
            .map(|h| format!("{} (granted by {})", h.node, h.granted_by))
            .collect();
        if after.holders.len() > slots && !added.is_empty() {
            checks.violations.push(Violation {
                invariant: Invariant::SlotsExceeded,
                at: now,
                detail: format!(
                    "group {} has {} slots; the write added {} and it now has {} holders: {}",
                    after.group,
                    slots,
                    added.join(", "),
                    after.holders.len(),
                    names(after.holders.iter().map(|h| h.node.as_str()))
                ),
            });
        }
        // A node holds one slot of a group, whatever spelling of its id it asked with.
        let mut seen = HashSet::new();
        let twice: Vec<&str> = after
            .holders
            .iter()
            .map(|h| h.node.as_str())
            .filter(|node| !seen.insert(*node))
            .collect();
        if !twice.is_empty() && !added.is_empty() {
            checks.violations.push(Violation {
                invariant: Invariant::NodeHeldTwice,
                at: now,
                detail: format!(
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
            });
        }
        // A recovering holder leaves only healed (a deleted Node needs nothing).
        for gone in before
            .iter()
            .flat_map(|b| b.holders.iter())
            .filter(|h| h.phase == HolderPhase::Recovering)
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
                checks.violations.push(Violation {
                    invariant: Invariant::ReleasedUnhealed,
                    at: now,
                    detail: format!(
                        "{} left group {} recovering while {}",
                        gone.node,
                        after.group,
                        if ours {
                            "still cordoned by us"
                        } else {
                            "NotReady"
                        }
                    ),
                });
            }
        }
        let named = |node: &str| identity.split(',').any(|n| n == node);
        for gone in before
            .iter()
            .flat_map(|b| b.holders.iter())
            .filter(|h| matches!(h.phase, HolderPhase::Approved | HolderPhase::Recovering))
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
            let up =
                gone.phase == HolderPhase::Approved && cluster.os_up(&gone.node).unwrap_or(true);
            let held = now.duration_since(gone.since);
            let stuck = checks
                .stuck_release
                .is_some_and(|after| !held.is_negative() && held.unsigned_abs() >= after);
            if healed || up || stuck {
                continue;
            }
            checks.violations.push(Violation {
                invariant: Invariant::RebootingSlotFreed,
                at: now,
                detail: format!(
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
            });
        }
        for holder in &after.holders {
            let was_approved =
                held_before(&holder.id).is_some_and(|h| h.phase == HolderPhase::Approved);
            if holder.phase != HolderPhase::Approved || was_approved {
                continue;
            }
            checks.checked.approvals += 1;
            let from = held_before(&holder.id);
            if !from.is_some_and(|h| h.same_grant(holder) && h.phase == HolderPhase::Draining) {
                checks.violations.push(Violation {
                    invariant: Invariant::ApprovedNotDraining,
                    at: now,
                    detail: format!(
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
                });
            }
            let pods = cluster.pods_on(&holder.node);
            let plan = plan_drain(pods.iter().copied(), &self.drain);
            if !plan.is_done() || !plan.refuse.is_empty() {
                let left = plan
                    .evict
                    .iter()
                    .chain(plan.wait.iter().map(|(p, _)| p))
                    .chain(plan.refuse.iter().map(|(p, _)| p))
                    .map(|p| p.to_string());
                checks.violations.push(Violation {
                    invariant: Invariant::ApprovedWithPods,
                    at: now,
                    detail: format!(
                        "{} approved in group {} with pods its drain must move: {}",
                        holder.node,
                        after.group,
                        left.collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }

    fn eviction(&self, checks: &mut Checks, node: &str, pod: &str, cluster: &ClusterView<'_>) {
        checks.checked.evictions += 1;
        let draining = cluster
            .leases(&self.namespace)
            .filter(|l| is_group_lock(l))
            .filter_map(|l| GroupState::from_lease(l).ok())
            .any(|g| {
                g.holders
                    .iter()
                    .any(|h| h.node == node && h.phase == HolderPhase::Draining)
            });
        if !draining {
            checks.violations.push(Violation {
                invariant: Invariant::EvictionWithoutHolder,
                at: cluster.now(),
                detail: format!("pod {pod} evicted from {node}, which holds no draining slot"),
            });
        }
    }

    fn lock_write(
        &self,
        checks: &mut Checks,
        before: Option<&Lease>,
        after: &Lease,
        now: Timestamp,
    ) {
        checks.checked.lock_writes += 1;
        let held_before = before.is_some_and(|b| checks.lock_held(b, now));
        if before.is_none_or(|b| lock_times(b) != lock_times(after)) {
            checks.lock_changed.insert(after.name.clone(), now);
        }
        let Some(before) = before else { return };
        let (Some(old), Some(new)) = (lock_of(before), lock_of(after)) else {
            return;
        };
        if old.restart_id != new.restart_id && held_before {
            checks.violations.push(Violation {
                invariant: Invariant::RestartLockStolen,
                at: now,
                detail: format!(
                    "{}: {} took the lock from {}, whose lease runs until {}",
                    after.name,
                    new.holder,
                    old.holder,
                    before
                        .expires_at()
                        .map_or_else(|| "forever".to_string(), |t| t.to_string())
                ),
            });
        }
    }

    fn patch_requested(
        &self,
        checks: &mut Checks,
        workload: &WorkloadRef,
        changes: &BTreeMap<String, Option<String>>,
        cluster: &ClusterView<'_>,
    ) {
        let Some(Some(restarted_at)) = changes.get(RESTARTED_AT) else {
            return;
        };
        checks.checked.restarts += 1;
        let now = cluster.now();
        let lease = cluster.lease(&self.namespace, &lease_name(workload));
        let lock = lease.and_then(|l| lock_of(l).map(|lock| (l, lock)));
        if let Some((_, lock)) = &lock
            && lock.restarted_at.as_ref() == Some(restarted_at)
        {
            checks.sent_by.insert(
                (workload.clone(), restarted_at.clone()),
                lock.restart_id.clone(),
            );
        }
        let why = match lock {
            None => "its lock is free".to_string(),
            Some((_, lock)) if lock.restarted_at.as_ref() != Some(restarted_at) => format!(
                "its lock belongs to another restart (by {}, restartedAt {})",
                lock.holder,
                lock.restarted_at.as_deref().unwrap_or("unset")
            ),
            Some((lease, lock)) if !checks.lock_held(lease, now) => {
                format!("its lock, held by {}, has run out", lock.holder)
            }
            Some(_) => return,
        };
        checks.violations.push(Violation {
            invariant: Invariant::RestartWithoutLock,
            at: now,
            detail: format!("{workload} restart sent (restartedAt {restarted_at}), but {why}"),
        });
    }
}

impl Auditor for Invariants {
    fn audit(&self, write: &Write<'_>, cluster: &ClusterView<'_>) {
        let mut checks = self.state.lock();
        match *write {
            Write::Lease { before, after } => {
                let Some(after) = after else { return };
                if after.namespace != self.namespace {
                    return;
                }
                if is_group_lock(after) {
                    self.group_write(&mut checks, before, after, cluster);
                } else if is_restart_lock(after) {
                    self.lock_write(&mut checks, before, after, cluster.now());
                } else if let Some(run) = SetRun::of(after) {
                    set_run_write(&mut checks, after, &run, cluster.now());
                }
            }
            Write::EvictionRequested {
                namespace,
                name,
                node: Some(node),
            } => {
                self.eviction(&mut checks, node, &format!("{namespace}/{name}"), cluster);
            }
            Write::Node { before, after, by } => {
                if by != Writer::Client {
                    return;
                }
                checks.checked.node_writes += 1;
                let uncordoned = before.unschedulable && !after.unschedulable;
                if uncordoned && !before.annotations.contains_key(CORDONED_ANNOTATION) {
                    checks.violations.push(Violation {
                        invariant: Invariant::AdminCordonUndone,
                        at: cluster.now(),
                        detail: format!(
                            "{} was uncordoned through the API, but the cordon was not \
                             restart-manager's",
                            after.name
                        ),
                    });
                }
            }
            Write::WorkloadPatchRequested { workload, changes } => {
                self.patch_requested(&mut checks, workload, changes, cluster);
            }
            Write::Workload { before, after } => {
                let stamp = after.template_annotations.get(RESTARTED_AT);
                if stamp == before.template_annotations.get(RESTARTED_AT) {
                    return;
                }
                let key = (after.reference(), stamp.cloned().unwrap_or_default());
                if let Some(id) = checks.sent_by.get(&key).cloned()
                    && !checks.applied.insert(id.clone())
                {
                    checks.violations.push(Violation {
                        invariant: Invariant::RestartRepeated,
                        at: cluster.now(),
                        detail: format!(
                            "{} restarted again (restartedAt {}) by restart {id}, which had \
                             restarted it before",
                            key.0, key.1
                        ),
                    });
                }
            }
            _ => {}
        }
    }
}

fn set_run_write(checks: &mut Checks, lease: &Lease, run: &SetRun, now: Timestamp) {
    checks.checked.set_run_writes += 1;
    let restarting: Vec<&str> = run
        .members
        .iter()
        .filter(|m| m.state == MemberState::Restarting)
        .map(|m| m.workload.as_str())
        .collect();
    if restarting.len() > run.concurrency {
        checks.violations.push(Violation {
            invariant: Invariant::SetConcurrencyExceeded,
            at: now,
            detail: format!(
                "{}: run {} restarts {} at once ({}), its concurrency is {}",
                lease.name,
                run.id,
                restarting.len(),
                restarting.join(", "),
                run.concurrency
            ),
        });
    }
}

fn is_group_lock(lease: &Lease) -> bool {
    lease.labels.get(LOCK_LABEL).map(String::as_str) == Some(LOCK_LABEL_VALUE)
}

fn is_restart_lock(lease: &Lease) -> bool {
    lease.labels.get(lock::LOCK_LABEL).map(String::as_str) == Some(lock::LOCK_LABEL_VALUE)
}

/// The lock a restart lock Lease holds at `now`, if it is one and its lease has not run out.
fn held_restart_lock(lease: &Lease, now: Timestamp) -> Option<restart_core::LockInfo> {
    if !is_restart_lock(lease) || !lease.is_held_at(now) {
        return None;
    }
    lock_of(lease)
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}
