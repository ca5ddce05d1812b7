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
mod plan;
mod world;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fleetlock_core::FleetLockConfig;
use fleetlock_core::drain::DrainOptions;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::{Invariant, Invariants, Violation};
use agents::{agent, chaos};
use plan::CLOCKS_APART;
pub use plan::{NAMESPACE, Plan, RATE_WINDOW, RELEASE_AFTER, Report};
use world::{Replica, World, allowlist, cluster};

/// Runs a plan to its end and reports. Violations are in the report, not panics.
pub async fn run(plan: Plan) -> Report {
    let started = Instant::now();
    let world = world(&plan);
    for i in 0..plan.replicas {
        world.start(i).await;
    }
    let agents = agents(&world, &plan);

    chaos(&world, &plan).await;

    // Faults stop: every replica comes back, without the schedule, and everything must
    // finish.
    world.sim.clear_faults();
    *world.allowlist.lock() = allowlist(false);
    for i in 0..plan.replicas {
        world.crash(i);
        world.start(i).await;
    }
    settle(&world, &plan, agents).await;

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

/// The cluster, the checks watching it, and the replicas (none started yet).
fn world(plan: &Plan) -> Arc<World> {
    let sim = cluster(plan);
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
    checker.set_rate(plan.rate(), CLOCKS_APART);
    // Replicas' clocks disagree by up to two minutes, by seed; never by whole seconds (on the
    // paused clock most things happen on whole seconds, and two replicas' stamps would meet
    // far more often than real clocks' do).
    let mut skews = fastrand::Rng::with_seed(plan.seed ^ 0xc10c_5eed);
    Arc::new(World {
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
        rate: plan.rate(),
        report: Mutex::new(Report {
            seed: plan.seed,
            on_timeout: plan.on_timeout(),
            ..Report::default()
        }),
        unfinished: Mutex::new(BTreeSet::new()),
    })
}

/// A Zincati agent on every node, each with its own seed.
fn agents(world: &Arc<World>, plan: &Plan) -> Vec<JoinHandle<()>> {
    (1..=plan.nodes)
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
        .collect()
}

/// After the chaos: waits up to `plan.settle` for every agent to be through its reboots and
/// every restart lock to be free, and records the liveness violations of what did not.
async fn settle(world: &World, plan: &Plan, agents: Vec<JoinHandle<()>>) {
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
}

fn humanize(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}
