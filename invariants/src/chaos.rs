//! Randomised runs: several coordinator and restart-service replicas over one simulated
//! cluster, Zincati agents on every node, and a chaos driver that injects conflicts, 429s,
//! 5xx, latency, broken watches, replica crashes at any await point, node deletions, slot
//! changes, restarts and unlocks, with [`Invariants`] watching every write.
//!
//! A run is a function of its [`Plan`]: the seed fixes every choice the harness makes (which
//! fault, when, which replica an agent asks). Tokio's scheduling of the cores' own tasks is not
//! seeded, so a replayed seed makes the same choices but may interleave the cores slightly
//! differently. Run it on a paused clock (`#[tokio::test(start_paused = true)]` or a
//! current-thread runtime with `start_paused(true)`): hours of cluster time pass in seconds.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, LabelSelector, Node, WorkloadRef};
use cluster_sim::{Budget, IntOrPercent, Operation, SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::config::{DEFAULT_GROUP_LABEL, GroupConfig};
use fleetlock_core::drain::DrainOptions;
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use parking_lot::Mutex;
use restart_core::{Allowlist, Identity, RestartConfig, Restarter, ServiceEntry};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::{Checked, Invariant, Invariants, Violation};

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
}

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
        }
    }
}

/// What happened in a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The plan's seed.
    pub seed: u64,
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
    /// Replica crashes (each followed by a restart).
    pub crashes: usize,
    /// Restarts and unlocks asked for.
    pub restarts: usize,
    /// Unlocks asked for.
    pub unlocks: usize,
    /// Nodes deleted.
    pub deletions: usize,
    /// Slot changes rolled out.
    pub slot_changes: usize,
    /// Cluster time the run took.
    pub simulated: Duration,
}

impl Report {
    /// One line for a log or a table.
    pub fn summary(&self) -> String {
        format!(
            "seed {}: {} reboots, {} refusals, {} faults, {} slowdowns, {} broken watches, {} \
             crashes, {} restarts, {} unlocks, {} deletions, {} slot changes, {} min of cluster \
             time; checked {:?}; {} violations",
            self.seed,
            self.reboots,
            self.refusals,
            self.faults,
            self.slowdowns,
            self.broken_watches,
            self.crashes,
            self.restarts,
            self.unlocks,
            self.deletions,
            self.slot_changes,
            self.simulated.as_secs() / 60,
            self.checked,
            self.violations.len()
        )
    }
}

/// One server replica: running, or crashed.
struct Replica {
    name: String,
    live: Option<Live>,
    /// Bumped at every crash: calls in flight on the old process are dropped where they are.
    epoch: watch::Sender<u64>,
    slots: u32,
}

#[derive(Clone)]
struct Live {
    coordinator: Coordinator,
    restarter: Restarter,
    tasks: Arc<Vec<JoinHandle<()>>>,
}

/// The cluster, its replicas and the counters, shared by the agents and the driver.
struct World {
    sim: SimCluster,
    replicas: Mutex<Vec<Replica>>,
    checker: Arc<Invariants>,
    allowlist: Allowlist,
    sabotage: bool,
    report: Mutex<Report>,
    /// Agents that have not finished, by node.
    unfinished: Mutex<BTreeSet<String>>,
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
        },
        plan.slots,
    );
    let world = Arc::new(World {
        sim: sim.clone(),
        replicas: Mutex::new(
            (0..plan.replicas)
                .map(|i| Replica {
                    name: format!("replica-{i}"),
                    live: None,
                    epoch: watch::channel(0).0,
                    slots: plan.slots,
                })
                .collect(),
        ),
        checker,
        allowlist: allowlist(),
        sabotage: plan.sabotage,
        report: Mutex::new(Report {
            seed: plan.seed,
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

    // Faults stop: every replica comes back, and everything must finish.
    world.sim.clear_faults();
    for i in 0..plan.replicas {
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
    let settled = world.checker.check_settled(&world.sim);
    world.report.lock().violations.extend(settled);

    for i in 0..plan.replicas {
        world.crash(i);
    }
    let mut report = world.report.lock().clone();
    let mut violations = world.checker.violations();
    violations.append(&mut report.violations);
    report.violations = violations;
    report.checked = world.checker.checked();
    report.simulated = started.elapsed();
    report
}

/// The cluster: the nodes, two groups, and workloads whose pods the drains must move under
/// their budgets.
fn cluster(plan: &Plan) -> SimCluster {
    let sim = SimCluster::new();
    for i in 1..=plan.nodes {
        let name = format!("n{i}");
        let mut node = Node::new(&name).machine_id(machine_id_for(&name));
        if i % 3 == 0 {
            node.labels
                .insert(DEFAULT_GROUP_LABEL.to_string(), EAST.to_string());
        }
        sim.add_node(node);
    }
    let replicas = (plan.nodes / 2).max(3) as i32;
    let specs = [
        WorkloadSpec::deployment("shop", "web")
            .replicas(replicas)
            .pod_start_secs(15)
            .grace_period(5),
        WorkloadSpec::deployment("shop", "cache")
            .replicas((replicas / 2).max(2))
            .pod_start_secs(1)
            .grace_period(1),
        WorkloadSpec::statefulset("shop", "db")
            .replicas(3)
            .pod_start_secs(5)
            .grace_period(10),
        WorkloadSpec::daemonset("kube-system", "agent")
            .pod_start_secs(2)
            .grace_period(2),
    ];
    for spec in specs {
        if let Err(e) = sim.add_workload(spec) {
            panic!("the simulated workloads are valid: {e}");
        }
    }
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(1),
    ));
    sim.add_budget(Budget::min_available(
        "shop",
        "db",
        LabelSelector::eq("app", "db"),
        IntOrPercent::Int(2),
    ));
    sim
}

fn workloads() -> Vec<WorkloadRef> {
    vec![
        WorkloadSpec::deployment("shop", "web").reference(),
        WorkloadSpec::deployment("shop", "cache").reference(),
        WorkloadSpec::statefulset("shop", "db").reference(),
        WorkloadSpec::daemonset("kube-system", "agent").reference(),
    ]
}

fn allowlist() -> Allowlist {
    let entries = workloads()
        .into_iter()
        .map(|w| ServiceEntry {
            kind: w.kind,
            namespace: w.namespace,
            name: w.name,
            description: None,
            allowed: vec![],
        })
        .collect();
    match Allowlist::new(entries) {
        Ok(allowlist) => allowlist,
        Err(e) => panic!("the allowlist is valid: {e}"),
    }
}

// === impl World ===

impl World {
    fn config(&self, slots: u32) -> FleetLockConfig {
        let group = GroupConfig {
            slots,
            ..GroupConfig::default()
        };
        let mut config = FleetLockConfig {
            namespace: NAMESPACE.into(),
            groups: [
                ("default".to_string(), group.clone()),
                (EAST.to_string(), group),
            ]
            .into_iter()
            .collect(),
            ..FleetLockConfig::default()
        };
        config.drain.request_wait = Duration::from_secs(10);
        config.drain.retry_initial = Duration::from_secs(1);
        config.drain.retry_max = Duration::from_secs(20);
        config
    }

    /// Starts replica `i` (again) with the slots it is configured with, and waits until it
    /// is ready to serve.
    async fn start(&self, i: usize) {
        // A crash (or a newer start) while this one waits for its caches supersedes it.
        let (name, slots, epoch) = {
            let replicas = self.replicas.lock();
            let replica = &replicas[i];
            if replica.live.is_some() {
                return;
            }
            (replica.name.clone(), replica.slots, *replica.epoch.borrow())
        };
        let api = Arc::new(self.sim.clone());
        let builder = Coordinator::builder(api.clone(), self.config(slots))
            .clock(Arc::new(self.sim.clone()))
            .instance(name.clone());
        let builder = if self.sabotage {
            builder.sabotage(fleetlock_core::Sabotage::IgnoreRemoteReleases)
        } else {
            builder
        };
        let coordinator = builder.build();
        let restarter = Restarter::builder(api, self.allowlist.clone())
            .clock(Arc::new(self.sim.clone()))
            .config(RestartConfig {
                namespace: NAMESPACE.into(),
                ..RestartConfig::default()
            })
            .instance(name)
            .build();
        let tasks = vec![
            tokio::spawn({
                let c = coordinator.clone();
                async move { c.run().await }
            }),
            tokio::spawn({
                let r = restarter.clone();
                async move { r.run().await }
            }),
        ];
        // A process serves once its caches are in; the faults still injected may delay that.
        let ready = async {
            coordinator.wait_ready().await;
            restarter.wait_ready().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(600), ready).await;
        let mut replicas = self.replicas.lock();
        let replica = &mut replicas[i];
        if replica.live.is_some() || *replica.epoch.borrow() != epoch {
            for task in &tasks {
                task.abort();
            }
            return;
        }
        // Installing a process is a new epoch too: a start still waiting is superseded.
        replica.epoch.send_modify(|e| *e += 1);
        replica.live = Some(Live {
            coordinator,
            restarter,
            tasks: Arc::new(tasks),
        });
    }

    /// Kills replica `i` where it stands: its loops, its drains, and every call it was
    /// answering; a start of it still under way is abandoned. False if it was not running.
    fn crash(&self, i: usize) -> bool {
        let mut replicas = self.replicas.lock();
        replicas[i].epoch.send_modify(|e| *e += 1);
        let Some(live) = replicas[i].live.take() else {
            return false;
        };
        for task in live.tasks.iter() {
            task.abort();
        }
        true
    }

    /// Runs `call` on replica `i` as a request to that process would run: `None` if the
    /// replica is down, or crashes before answering.
    async fn on_replica<T, F, Fut>(&self, i: usize, call: F) -> Option<T>
    where
        F: FnOnce(Live) -> Fut,
        Fut: Future<Output = T>,
    {
        let (live, mut epoch) = {
            let replicas = self.replicas.lock();
            let replica = &replicas[i];
            (replica.live.clone()?, replica.epoch.subscribe())
        };
        tokio::select! {
            biased;
            _ = epoch.changed() => None,
            answer = call(live) => Some(answer),
        }
    }

    fn replica_count(&self) -> usize {
        self.replicas.lock().len()
    }

    fn restart_locks_held(&self) -> bool {
        let now = self.sim.now();
        self.sim.leases().iter().any(|l| {
            l.namespace == NAMESPACE
                && crate::is_restart_lock(l)
                && restart_core::lock::lock_of(l).is_some()
                && l.is_held_at(now)
        })
    }
}

/// Zincati on one node: asks until approved, reboots, reports steady-state; and now and then
/// restarts (which sends a steady-state at once, as Zincati does at start-up).
async fn agent(world: Arc<World>, node: String, reboots: usize, mut rng: fastrand::Rng) {
    let group = if node[1..].parse::<usize>().unwrap_or(0) % 3 == 0 {
        EAST
    } else {
        "default"
    };
    let Some(params) = zincati_id(&machine_id_for(&node))
        .ok()
        .map(|id| ClientParams {
            id,
            group: group.into(),
        })
    else {
        return;
    };
    let params = Arc::new(params);
    sleep(Duration::from_secs(rng.u64(0..=120))).await;
    for _ in 0..reboots {
        loop {
            if world.sim.node(&node).is_none() {
                world.unfinished.lock().remove(&node);
                return;
            }
            let i = rng.usize(0..world.replica_count());
            let p = params.clone();
            let answer = world
                .on_replica(
                    i,
                    |live| async move { live.coordinator.pre_reboot(&p).await },
                )
                .await;
            if let Some(Ok(())) = answer {
                break;
            }
            world.report.lock().refusals += 1;
            if rng.u32(0..100) < 8 {
                // Zincati restarted: it reports steady-state before asking again.
                let i = rng.usize(0..world.replica_count());
                let p = params.clone();
                let _ = world
                    .on_replica(
                        i,
                        |live| async move { live.coordinator.steady_state(&p).await },
                    )
                    .await;
            }
            sleep(Duration::from_secs(rng.u64(5..=20))).await;
        }
        if world.sim.reboot_node(&node).is_err() {
            // Deleted while it was being approved.
            world.unfinished.lock().remove(&node);
            return;
        }
        world.report.lock().reboots += 1;
        loop {
            match world.sim.node(&node) {
                None => {
                    world.unfinished.lock().remove(&node);
                    return;
                }
                Some(n) if n.ready => break,
                Some(_) => sleep(Duration::from_secs(5)).await,
            }
        }
        loop {
            let i = rng.usize(0..world.replica_count());
            let p = params.clone();
            let answer = world
                .on_replica(
                    i,
                    |live| async move { live.coordinator.steady_state(&p).await },
                )
                .await;
            if let Some(Ok(())) = answer {
                break;
            }
            if world.sim.node(&node).is_none() {
                break;
            }
            sleep(Duration::from_secs(rng.u64(5..=15))).await;
        }
    }
    world.unfinished.lock().remove(&node);
}

/// The chaos driver: a random disturbance every few seconds until `plan.chaos` has passed.
async fn chaos(world: &Arc<World>, plan: &Plan) {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let end = Instant::now() + plan.chaos;
    let ops = [
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
    let workloads = workloads();
    let mut deleted = 0;
    while Instant::now() < end {
        sleep(Duration::from_millis(rng.u64(500..=8_000))).await;
        let op = ops[rng.usize(0..ops.len())];
        match rng.u32(0..100) {
            0..=24 => {
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
                        Error::unavailable(
                            "the server returned 500: etcdserver: request timed out",
                        ),
                    ),
                    _ => world.sim.fail_after_next(
                        op,
                        times,
                        Error::unavailable("the connection was reset after the request was sent"),
                    ),
                }
                world.report.lock().faults += times;
            }
            25..=34 => {
                let latency = Duration::from_millis(rng.u64(0..=3_000));
                world.sim.set_latency(op, latency);
                world.report.lock().slowdowns += 1;
            }
            35..=41 => {
                world.sim.break_watches();
                world.report.lock().broken_watches += 1;
            }
            42..=51 => {
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
            52..=67 => {
                let w = workloads[rng.usize(0..workloads.len())].clone();
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
            68..=71 => {
                let w = workloads[rng.usize(0..workloads.len())].clone();
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
            72..=74 if deleted < plan.nodes / 12 => {
                let node = format!("n{}", rng.usize(1..=plan.nodes));
                if world.sim.remove_node(&node).is_some() {
                    deleted += 1;
                    world.report.lock().deletions += 1;
                }
            }
            75..=78 => {
                // A new slot count, rolled out by restarting one replica with it; the others
                // keep theirs until they restart. While they disagree, the largest counts.
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
            _ => {}
        }
    }
}

fn humanize(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}
