//! Randomised runs: several coordinator and restart-service replicas over one simulated
//! cluster, Zincati agents on every node, and a chaos driver that injects conflicts, 429s,
//! 5xx, latency, broken watches, replica crashes at any await point, node deletions, slot
//! changes, restarts, unlocks, restart set runs and cancellations, and a scheduled restart,
//! with [`Invariants`] watching every write.
//!
//! A run is a function of its [`Plan`]: the seed fixes every choice the harness makes (which
//! fault, when, which replica an agent asks). Tokio's scheduling of the cores' own tasks is not
//! seeded, so a replayed seed makes the same choices but may interleave the cores slightly
//! differently. Run it on a paused clock (`#[tokio::test(start_paused = true)]` or a
//! current-thread runtime with `start_paused(true)`): hours of cluster time pass in seconds.

mod agents;
mod world;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fleetlock_core::drain::DrainOptions;
use fleetlock_core::{FleetLockConfig, OnDrainTimeout};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::{Checked, Invariant, Invariants, Violation};
use agents::{agent, chaos};
use world::{Replica, World, allowlist, cluster};

/// The lock namespace of the replicas.
pub const NAMESPACE: &str = "restart-manager";

/// The second reboot group: every third node is in it.
const EAST: &str = "east";

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

/// Runs a plan to its end and reports. Violations are in the report, not panics.
pub async fn run(plan: Plan) -> Report {
    let started = Instant::now();
    let sim = cluster(&plan);
    let drain = FleetLockConfig::default().drain;
    let checker = Invariants::watch(
        &sim,
        NAMESPACE,
        DrainOptions {
            delete_unmanaged: drain.delete_unmanaged,
            delete_empty_dir_data: drain.delete_empty_dir_data,
            own_pod: None,
            rules: drain.rules,
        },
        plan.slots,
    );
    // Replicas' clocks disagree by up to two minutes, by seed; never by whole seconds (on the
    // paused clock most things happen on whole seconds, and two replicas' stamps would meet
    // far more often than real clocks' do).
    let mut skews = fastrand::Rng::with_seed(plan.seed ^ 0xc10c_5eed);
    let world = Arc::new(World {
        sim: sim.clone(),
        replicas: Mutex::new(
            (0..plan.replicas)
                .map(|i| Replica {
                    name: format!("replica-{i}"),
                    skew: if i == 0 {
                        jiff::SignedDuration::ZERO
                    } else {
                        jiff::SignedDuration::from_millis(skews.i64(-120_000..=120_000) | 1)
                    },
                    live: None,
                    epoch: watch::channel(0).0,
                    slots: plan.slots,
                })
                .collect(),
        ),
        checker,
        allowlist: Mutex::new(allowlist(true)),
        sabotage: plan.sabotage,
        on_timeout: plan.on_timeout(),
        report: Mutex::new(Report {
            seed: plan.seed,
            on_timeout: plan.on_timeout(),
            ..Report::default()
        }),
        unfinished: Mutex::new(BTreeSet::new()),
    });
    for i in 0..plan.replicas {
        world.start(i).await;
    }

    let agents: Vec<JoinHandle<()>> = (1..=plan.nodes)
        .map(|i| {
            let node = format!("n{i}");
            world.unfinished.lock().insert(node.clone());
            let seed = plan.seed.wrapping_mul(6_364_136_223_846_793_005) ^ i as u64;
            tokio::spawn(agent(
                world.clone(),
                node,
                plan.reboots_per_node,
                fastrand::Rng::with_seed(seed),
            ))
        })
        .collect();

    chaos(&world, &plan).await;

    // Faults stop: every replica comes back, without the schedule, and everything must
    // finish.
    world.sim.clear_faults();
    *world.allowlist.lock() = allowlist(false);
    for i in 0..plan.replicas {
        world.crash(i);
        world.start(i).await;
    }
    let deadline = Instant::now() + plan.settle;
    let all = futures::future::join_all(agents);
    let _ = tokio::time::timeout_at(deadline, all).await;
    let never: Vec<String> = world.unfinished.lock().iter().cloned().collect();
    let now = world.sim.now();
    for node in never {
        world.report.lock().violations.push(Violation {
            invariant: Invariant::NeverApproved,
            at: now,
            detail: format!(
                "{node} kept asking and was not through its reboots {} after the faults stopped",
                humanize(plan.settle)
            ),
        });
    }
    // Restarts end with their rollouts; then every lock must be free.
    while Instant::now() < deadline && world.restart_locks_held() {
        sleep(Duration::from_secs(10)).await;
    }
    // Time for the replicas' maintenance to tidy up what a crash left behind.
    sleep(Duration::from_secs(120)).await;
    // A set run still going takes its next member's lock meanwhile (a lock left by a crash
    // is taken over once it has run out): those restarts, too, end with their rollouts.
    while Instant::now() < deadline && world.restart_locks_held() {
        sleep(Duration::from_secs(10)).await;
    }
    let settled = world.checker.check_settled(&world.sim);
    world.report.lock().violations.extend(settled);

    for i in 0..plan.replicas {
        world.crash(i);
    }
    let mut report = world.report.lock().clone();
    report.drain_timeouts = world
        .sim
        .events()
        .iter()
        .filter(|e| e.reason == "DrainTimedOut")
        .count();
    let mut violations = world.checker.violations();
    violations.append(&mut report.violations);
    report.violations = violations;
    report.checked = world.checker.checked();
    report.simulated = started.elapsed();
    report
}

fn humanize(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}
