//! What the checks report: which property ([`Invariant`]), each breach of one ([`Violation`]),
//! and how much they looked at ([`Checked`]).

use std::fmt;

use cluster_api::Timestamp;

/// One of the properties [`Invariants`](crate::Invariants) checks.
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
    /// as long as [`Invariants::set_stuck_release`](crate::Invariants::set_stuck_release) says.
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
    /// A group granted more reboots within its rate's window than the rate allows, judged by
    /// the cluster's clock less the most the replicas' clocks may disagree.
    RateExceeded,
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
    /// Writes of a restart set's run Lease, each checked against the run's concurrency.
    pub set_run_writes: u64,
}
