//! restart-manager's safety properties, as code.
//!
//! [`Invariants`] is an [`Auditor`](cluster_sim::Auditor) of a
//! [`SimCluster`](cluster_sim::SimCluster): it sees every write the cluster accepts at the
//! moment it is accepted, with the cluster as it is then, and records a [`Violation`] whenever
//! one of these is broken:
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
//! | a group grants no more reboots in its rate's window than the rate allows ([`Invariant::RateExceeded`]) | every group Lease write that grants |
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

//!
//! | module | what it holds |
//! |---|---|
//! | `checker.rs` | [`Invariants`]: the auditor, and the end-of-run checks |
//! | `group.rs` | the checks of reboot group Leases and of evictions |
//! | `locks.rs` | the checks of restart locks, restart patches and set runs |
//! | `state.rs` | what the checks remember between writes |
//! | `violation.rs` | [`Invariant`], [`Violation`], [`Checked`] |
//! | [`chaos`] | randomised runs over a simulated cluster, checked by all of the above |

pub mod chaos;
mod checker;
mod group;
mod locks;
mod state;
mod violation;

pub use checker::Invariants;
pub use violation::{Checked, Invariant, Violation};
