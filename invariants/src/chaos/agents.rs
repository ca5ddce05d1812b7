//! Who acts in a run: a Zincati agent per node, and the chaos driver.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, WorkloadRef};
use cluster_sim::{HeldWatch, Operation, machine_id_for};
use fleetlock_core::{ClientParams, zincati_id};
use restart_core::Identity;
use tokio::time::{Instant, sleep};

use super::plan::{EAST, Plan};
use super::world::{SET, World, workloads};

/// Zincati on one node: asks until approved, reboots, reports steady-state as soon as it is
/// up again (before the kubelet reports); and now and then restarts (which sends a
/// steady-state at once, as Zincati does at start-up).
pub(super) async fn agent(world: Arc<World>, node: String, reboots: usize, mut rng: fastrand::Rng) {
    let group = if node[1..].parse::<usize>().unwrap_or(0) % 3 == 0 {
        EAST
    } else {
        "default"
    };
    let machine_id = machine_id_for(&node);
    let Ok(id) = zincati_id(&machine_id) else {
        return;
    };
    let spellings = spellings(&id, &machine_id, group);
    sleep(Duration::from_secs(rng.u64(0..=120))).await;
    for _ in 0..reboots {
        if !ask_until_approved(&world, &node, &spellings, &mut rng).await {
            world.unfinished.lock().remove(&node);
            return;
        }
        if world.sim.reboot_node(&node).is_err() {
            // Deleted while it was being approved.
            world.unfinished.lock().remove(&node);
            return;
        }
        world.report.lock().reboots += 1;
        if !wait_for_os(&world, &node).await {
            world.unfinished.lock().remove(&node);
            return;
        }
        report_steady_state(&world, &node, &spellings, &mut rng).await;
    }
    world.unfinished.lock().remove(&node);
}

/// Every spelling the lookup accepts, as a confused or hostile client might send them: each
/// names the same node, and must never win it a second slot. Zincati's own comes first.
fn spellings(id: &str, machine_id: &str, group: &str) -> Vec<Arc<ClientParams>> {
    [
        id.to_string(),
        id.to_ascii_uppercase(),
        format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..]
        ),
        machine_id.to_string(),
        machine_id.to_ascii_uppercase(),
    ]
    .into_iter()
    .map(|id| {
        Arc::new(ClientParams {
            id,
            group: group.into(),
        })
    })
    .collect()
}

/// Zincati's own spelling most of the time.
fn pick(spellings: &[Arc<ClientParams>], rng: &mut fastrand::Rng) -> Arc<ClientParams> {
    if rng.u32(0..100) < 70 {
        spellings[0].clone()
    } else {
        spellings[rng.usize(0..spellings.len())].clone()
    }
}

/// Asks random replicas for a reboot until one approves; `false` if the node is deleted
/// meanwhile.
async fn ask_until_approved(
    world: &World,
    node: &str,
    spellings: &[Arc<ClientParams>],
    rng: &mut fastrand::Rng,
) -> bool {
    loop {
        if world.sim.node(node).is_none() {
            return false;
        }
        let i = rng.usize(0..world.replica_count());
        let p = pick(spellings, rng);
        let answer = world
            .on_replica(
                i,
                |live| async move { live.coordinator.pre_reboot(&p).await },
            )
            .await;
        if let Some(Ok(())) = answer {
            return true;
        }
        world.report.lock().refusals += 1;
        if rng.u32(0..100) < 8 {
            // Zincati restarted: it reports steady-state before asking again.
            let i = rng.usize(0..world.replica_count());
            let p = pick(spellings, rng);
            let _ = world
                .on_replica(
                    i,
                    |live| async move { live.coordinator.steady_state(&p).await },
                )
                .await;
        }
        sleep(Duration::from_secs(rng.u64(5..=20))).await;
    }
}

/// Waits for the operating system to be up again; `false` if the node is deleted meanwhile.
///
/// Zincati starts with the operating system, before the kubelet has reported the new boot
/// (the Node still shows the old bootID, and Ready from before a short reboot), and says
/// steady-state at once.
async fn wait_for_os(world: &World, node: &str) -> bool {
    loop {
        match world.sim.os_up(node) {
            None => return false,
            Some(true) => return true,
            Some(false) => sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Says steady-state to random replicas until one takes it or the node is gone.
async fn report_steady_state(
    world: &World,
    node: &str,
    spellings: &[Arc<ClientParams>],
    rng: &mut fastrand::Rng,
) {
    loop {
        let i = rng.usize(0..world.replica_count());
        let p = pick(spellings, rng);
        let answer = world
            .on_replica(
                i,
                |live| async move { live.coordinator.steady_state(&p).await },
            )
            .await;
        if let Some(Ok(())) = answer {
            break;
        }
        if world.sim.node(node).is_none() {
            break;
        }
        sleep(Duration::from_secs(rng.u64(5..=15))).await;
    }
}

/// The API calls faults and latency are injected into.
const OPS: [Operation; 14] = [
    Operation::GetLease,
    Operation::ReplaceLease,
    Operation::CreateLease,
    Operation::EvictPod,
    Operation::PatchNode,
    Operation::ListPods,
    Operation::WatchPods,
    Operation::WatchLeases,
    Operation::WatchNodes,
    Operation::WatchWorkloads,
    Operation::PatchWorkload,
    Operation::GetWorkload,
    Operation::ListLeases,
    Operation::RecordEvent,
];

/// The chaos driver: a random disturbance every few seconds until `plan.chaos` has passed.
pub(super) async fn chaos(world: &Arc<World>, plan: &Plan) {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let end = Instant::now() + plan.chaos;
    let workloads = workloads();
    let mut deleted = 0;
    while Instant::now() < end {
        sleep(Duration::from_millis(rng.u64(500..=8_000))).await;
        let op = OPS[rng.usize(0..OPS.len())];
        let rng = &mut rng;
        match rng.u32(0..100) {
            0..=24 => inject_faults(world, op, rng),
            25..=34 => {
                let latency = Duration::from_millis(rng.u64(0..=3_000));
                world.sim.set_latency(op, latency);
                world.report.lock().slowdowns += 1;
            }
            35..=41 => {
                world.sim.break_watches();
                world.report.lock().broken_watches += 1;
            }
            42..=51 => crash_and_restart(world, rng),
            52..=63 => {
                let w = workloads[rng.usize(0..workloads.len())].clone();
                restart(world, w, rng);
            }
            // A run of the shop's set, or its cancellation, on any replica; every replica
            // drives runs (there is no leader election here), so drivers race.
            64..=67 => start_or_cancel_set(world, rng),
            68..=71 => {
                let w = workloads[rng.usize(0..workloads.len())].clone();
                force_unlock(world, w, rng);
            }
            72..=74 if deleted < plan.nodes / 12 => {
                let node = format!("n{}", rng.usize(1..=plan.nodes));
                if world.sim.remove_node(&node).is_some() {
                    deleted += 1;
                    world.report.lock().deletions += 1;
                }
            }
            75..=78 => change_slots(world, plan, rng).await,
            // One replica's watches of one kind stall (a slow proxy, a reconnect in backoff)
            // while every other replica's go on: it acts on what it saw last.
            79..=84 => lag_watches(world, rng),
            _ => {}
        }
    }
}

/// Conflicts, throttling, server errors or a lost answer, on the next one to three `op`s.
fn inject_faults(world: &World, op: Operation, rng: &mut fastrand::Rng) {
    let times = rng.usize(1..=3);
    match rng.u32(0..4) {
        0 => world.sim.force_conflicts(op, times),
        1 => world.sim.fail_next(
            op,
            times,
            Error::TooManyRequests {
                message: "the server is throttling requests".into(),
                retry_after: Some(Duration::from_secs(rng.u64(1..=5))),
            },
        ),
        2 => world.sim.fail_next(
            op,
            times,
            Error::unavailable("the server returned 500: etcdserver: request timed out"),
        ),
        _ => world.sim.fail_after_next(
            op,
            times,
            Error::unavailable("the connection was reset after the request was sent"),
        ),
    }
    world.report.lock().faults += times;
}

/// Crashes a random replica where it stands, and starts it again up to a minute later.
fn crash_and_restart(world: &Arc<World>, rng: &mut fastrand::Rng) {
    let i = rng.usize(0..world.replica_count());
    if world.crash(i) {
        world.report.lock().crashes += 1;
        let back = Duration::from_secs(rng.u64(1..=60));
        let w = world.clone();
        tokio::spawn(async move {
            sleep(back).await;
            w.start(i).await;
        });
    }
}

/// Asks a random replica to restart `w`, as one of five users.
fn restart(world: &Arc<World>, w: WorkloadRef, rng: &mut fastrand::Rng) {
    let i = rng.usize(0..world.replica_count());
    let who = Identity::user(format!("user-{}", rng.u32(0..5)));
    world.report.lock().restarts += 1;
    let world = world.clone();
    tokio::spawn(async move {
        world
            .on_replica(i, |live| async move {
                let _ = live.restarter.restart(&w, &who, Some("chaos")).await;
            })
            .await;
    });
}

/// Asks a random replica to start a run of the set, or (one time in three) to cancel it.
fn start_or_cancel_set(world: &Arc<World>, rng: &mut fastrand::Rng) {
    let i = rng.usize(0..world.replica_count());
    let cancel = rng.u32(0..3) == 0;
    let who = Identity::user(format!("user-{}", rng.u32(0..5)));
    world.report.lock().set_runs += usize::from(!cancel);
    let world = world.clone();
    tokio::spawn(async move {
        world
            .on_replica(i, |live| async move {
                if cancel {
                    let _ = live.restarter.cancel_set(SET, &who).await;
                } else {
                    let _ = live.restarter.start_set(SET, &who, Some("chaos")).await;
                }
            })
            .await;
    });
}

/// Asks a random replica to force-unlock `w`, as an admin.
fn force_unlock(world: &Arc<World>, w: WorkloadRef, rng: &mut fastrand::Rng) {
    let i = rng.usize(0..world.replica_count());
    world.report.lock().unlocks += 1;
    let world = world.clone();
    tokio::spawn(async move {
        world
            .on_replica(i, |live| async move {
                let admin = Identity::user("admin");
                let _ = live.restarter.force_unlock(&w, &admin, "chaos").await;
            })
            .await;
    });
}

/// A new slot count, rolled out by restarting one replica with it; the others keep theirs
/// until they restart. While they disagree, the largest counts.
async fn change_slots(world: &Arc<World>, plan: &Plan, rng: &mut fastrand::Rng) {
    let slots = rng.u32(1..=plan.slots + 1);
    let i = rng.usize(0..world.replica_count());
    let largest = {
        let mut replicas = world.replicas.lock();
        replicas[i].slots = slots;
        replicas.iter().map(|r| r.slots).max().unwrap_or(slots)
    };
    world.checker.set_slots("default", largest);
    world.checker.set_slots(EAST, largest);
    world.report.lock().slot_changes += 1;
    world.crash(i);
    world.start(i).await;
}

/// Holds one random replica's watches of one random kind for up to a minute.
fn lag_watches(world: &World, rng: &mut fastrand::Rng) {
    let i = rng.usize(0..world.replica_count());
    let kinds = [
        Operation::WatchLeases,
        Operation::WatchNodes,
        Operation::WatchPods,
        Operation::WatchWorkloads,
    ];
    let held = HeldWatch::all(kinds[rng.usize(0..kinds.len())]);
    let lag = Duration::from_millis(rng.u64(500..=60_000));
    let client = world.replicas.lock()[i]
        .live
        .as_ref()
        .map(|l| l.client.clone());
    if let Some(client) = client {
        client.hold_watches(held.clone(), true);
        world.report.lock().lagging_watches += 1;
        tokio::spawn(async move {
            sleep(lag).await;
            client.hold_watches(held, false);
        });
    }
}
