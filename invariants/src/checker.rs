//! [`Invariants`]: the checker itself, which the simulated cluster shows every write it
//! accepts, and its end-of-run checks.

use std::sync::Arc;
use std::time::Duration;

use cluster_sim::{Auditor, ClusterView, SimCluster, Write, Writer};
use fleetlock_core::RateLimit;
use fleetlock_core::drain::DrainOptions;
use fleetlock_core::group::GroupState;
use fleetlock_core::nodes::CORDONED_ANNOTATION;
use parking_lot::Mutex;
use restart_core::RESTARTED_AT;
use restart_core::sets::SetRun;

use crate::state::{Checks, held_restart_lock, is_group_lock, is_restart_lock};
use crate::violation::{Checked, Invariant, Violation};
use crate::{group, locks};

/// The checker; see the [crate docs](crate). Register it with [`Invariants::watch`].
pub struct Invariants {
    namespace: String,
    drain: DrainOptions,
    state: Mutex<Checks>,
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

    /// The replicas grant every group at most `rate`; their clocks disagree by up to
    /// `clocks_apart`, which a grant's window may lose. `None` (the default): no rate.
    pub fn set_rate(&self, rate: Option<RateLimit>, clocks_apart: Duration) {
        self.state.lock().rate = rate.map(|r| (r, clocks_apart));
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
                    group::group_write(&mut checks, &self.drain, before, after, cluster);
                } else if is_restart_lock(after) {
                    locks::lock_write(&mut checks, before, after, cluster.now());
                } else if let Some(run) = SetRun::of(after) {
                    locks::set_run_write(&mut checks, after, &run, cluster.now());
                }
            }
            Write::EvictionRequested {
                namespace,
                name,
                node: Some(node),
            } => {
                let pod = format!("{namespace}/{name}");
                group::eviction(&mut checks, &self.namespace, node, &pod, cluster);
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
                locks::patch_requested(&mut checks, &self.namespace, workload, changes, cluster);
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
