//! What a run is asked to do ([`Plan`]) and what it found ([`Report`]).

use std::time::Duration;

use fleetlock_core::{OnDrainTimeout, RateLimit};

use crate::{Checked, Violation};

/// The lock namespace of the replicas.
pub const NAMESPACE: &str = "restart-manager";

/// The second reboot group: every third node is in it.
pub(super) const EAST: &str = "east";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Fixes every choice of the harness.
    pub seed: u64,
    /// Nodes `n1`..: every third in group `east`, the rest in `default`.
    pub nodes: usize,
    /// Server replicas, each a coordinator and a restart service.
    pub replicas: usize,
    /// Slots per group at the start; slot changes pick between 1 and this plus one.
    pub slots: u32,
    /// How long (cluster time) faults and crashes are injected.
    pub chaos: Duration,
    /// How long after the chaos every node must have rebooted and every lock be free.
    pub settle: Duration,
    /// How many times each node's agent reboots it.
    pub reboots_per_node: usize,
    /// Build the coordinators with [`fleetlock_core::Sabotage::IgnoreRemoteReleases`], to
    /// show that the checks catch it.
    pub sabotage: bool,
    /// What the drains do past their timeout. With `release`, the timeout is short
    /// ([`RELEASE_AFTER`]), so that drains do overrun it while other replicas approve the same
    /// grants. `None`: every other seed releases.
    pub on_timeout: Option<OnDrainTimeout>,
}

/// The window of the groups' rate in runs that have one ([`Plan::rate`]).
pub const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How far the replicas' clocks may disagree: each is off the cluster's by up to two minutes.
pub(super) const CLOCKS_APART: Duration = Duration::from_secs(4 * 60);

/// `drain.timeout` in runs whose drains release on timeout: short enough that drains slowed
/// by the budgets and the chaos overrun it.
pub const RELEASE_AFTER: Duration = Duration::from_secs(30);

impl Plan {
    /// A small run: the size `cargo test` affords many of.
    pub fn small(seed: u64) -> Self {
        Plan {
            seed,
            nodes: 24,
            replicas: 3,
            slots: 2,
            chaos: Duration::from_secs(20 * 60),
            settle: Duration::from_secs(3 * 60 * 60),
            reboots_per_node: 1,
            sabotage: false,
            on_timeout: None,
        }
    }

    /// The groups' rate in this run: one seed in five has one (none of the regression seeds),
    /// a reboot more per quarter of an hour than the slots, so that it binds while the slots
    /// do not always.
    pub fn rate(&self) -> Option<RateLimit> {
        (self.seed % 5 == 3).then(|| RateLimit {
            reboots: self.slots + 1,
            per: RATE_WINDOW,
        })
    }

    /// What the drains do past their timeout in this run.
    pub fn on_timeout(&self) -> OnDrainTimeout {
        self.on_timeout.unwrap_or(if self.seed % 2 == 1 {
            OnDrainTimeout::Release
        } else {
            OnDrainTimeout::KeepWaiting
        })
    }
}

/// What happened in a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The plan's seed.
    pub seed: u64,
    /// What the drains did past their timeout.
    pub on_timeout: OnDrainTimeout,
    /// Every invariant broken, safety and liveness.
    pub violations: Vec<Violation>,
    /// How many writes the checks looked at.
    pub checked: Checked,
    /// Reboots approved and done.
    pub reboots: usize,
    /// Refusals and errors the agents got on the way.
    pub refusals: usize,
    /// Faults injected into API calls (errors and conflicts).
    pub faults: usize,
    /// Latency changes.
    pub slowdowns: usize,
    /// Times every watch was broken.
    pub broken_watches: usize,
    /// Times one replica's watches of one kind lagged while the others' did not.
    pub lagging_watches: usize,
    /// Replica crashes (each followed by a restart).
    pub crashes: usize,
    /// Restarts and unlocks asked for.
    pub restarts: usize,
    /// Unlocks asked for.
    pub unlocks: usize,
    /// Set runs asked for (some refused: a run already going on).
    pub set_runs: usize,
    /// Nodes deleted.
    pub deletions: usize,
    /// Slot changes rolled out.
    pub slot_changes: usize,
    /// Drains that overran their timeout and gave the slot back (`onTimeout: release`).
    pub drain_timeouts: usize,
    /// Cluster time the run took.
    pub simulated: Duration,
}

impl Report {
    /// One line for a log or a table.
    pub fn summary(&self) -> String {
        format!(
            "seed {} (onTimeout {:?}): {} reboots, {} refusals, {} faults, {} slowdowns, {} broken watches, {} \
             lagging watches, {} crashes, {} restarts, {} unlocks, {} set runs, {} deletions, {} slot changes, {} drain timeouts, {} min of \
             cluster time; checked {:?}; {} violations",
            self.seed,
            self.on_timeout,
            self.reboots,
            self.refusals,
            self.faults,
            self.slowdowns,
            self.broken_watches,
            self.lagging_watches,
            self.crashes,
            self.restarts,
            self.unlocks,
            self.set_runs,
            self.deletions,
            self.slot_changes,
            self.drain_timeouts,
            self.simulated.as_secs() / 60,
            self.checked,
            self.violations.len()
        )
    }
}
