//! The simulated cluster of a run and its server replicas: started, crashed where they stand,
//! and called as a request to that process would be.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::cron::Cron;
use cluster_api::{CoreBuilder, LabelSelector, Node, WorkloadRef};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::config::{DEFAULT_GROUP_LABEL, GroupConfig};
use fleetlock_core::{Coordinator, FleetLockConfig, OnDrainTimeout, RateLimit};
use parking_lot::Mutex;
use restart_core::schedule::Schedule;
use restart_core::sets::OnFailure;
use restart_core::{Allowlist, RestartConfig, RestartSet, Restarter, ServiceEntry};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::plan::{EAST, NAMESPACE, Plan, RELEASE_AFTER, Report};
use crate::Invariants;

/// One server replica: running, or crashed.
pub(super) struct Replica {
    pub(super) name: String,
    /// How far its wall clock is off the cluster's (drawn by seed; replica 0 is on time).
    pub(super) skew: jiff::SignedDuration,
    pub(super) live: Option<Live>,
    /// Bumped at every crash: calls in flight on the old process are dropped where they are.
    pub(super) epoch: watch::Sender<u64>,
    pub(super) slots: u32,
}

#[derive(Clone)]
pub(super) struct Live {
    /// The process's own connection to the cluster: its watches can lag on their own.
    pub(super) client: SimCluster,
    pub(super) coordinator: Coordinator,
    pub(super) restarter: Restarter,
    pub(super) tasks: Arc<Vec<JoinHandle<()>>>,
}

/// The cluster, its replicas and the counters, shared by the agents and the driver.
pub(super) struct World {
    pub(super) sim: SimCluster,
    pub(super) replicas: Mutex<Vec<Replica>>,
    pub(super) checker: Arc<Invariants>,
    /// What replicas start with: with the schedule during the chaos, without it once the run
    /// settles (a scheduled restart would otherwise hold a lock whenever the end is checked).
    pub(super) allowlist: Mutex<Allowlist>,
    pub(super) sabotage: bool,
    pub(super) on_timeout: OnDrainTimeout,
    /// Every group's rate in this run, if it has one.
    pub(super) rate: Option<RateLimit>,
    pub(super) report: Mutex<Report>,
    /// Agents that have not finished, by node.
    pub(super) unfinished: Mutex<BTreeSet<String>>,
}

/// The cluster: the nodes, two groups, and workloads whose pods the drains must move under
/// their budgets.
pub(super) fn cluster(plan: &Plan) -> SimCluster {
    // Reboots short enough that the node never shows NotReady (the kubelet reports after
    // Zincati's steady-state, with Ready still True from before), and some longer than the
    // node controller's grace period, by seed.
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0x5eed_b007);
    let sim = SimCluster::with_config(cluster_sim::SimConfig {
        reboot_duration: std::time::Duration::from_secs(rng.u64(5..=90)),
        kubelet_start: std::time::Duration::from_secs(rng.u64(1..=30)),
        node_status_report: Some(std::time::Duration::from_secs(300)),
        ..cluster_sim::SimConfig::default()
    });
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

pub(super) fn sets() -> Vec<RestartSet> {
    vec![RestartSet {
        name: SET.into(),
        description: None,
        members: workloads()
            .into_iter()
            .filter(|w| w.namespace == "shop")
            .collect(),
        concurrency: 2,
        on_failure: OnFailure::Continue,
        schedule: None,
    }]
}

pub(super) fn workloads() -> Vec<WorkloadRef> {
    vec![
        WorkloadSpec::deployment("shop", "web").reference(),
        WorkloadSpec::deployment("shop", "cache").reference(),
        WorkloadSpec::statefulset("shop", "db").reference(),
        WorkloadSpec::daemonset("kube-system", "agent").reference(),
    ]
}

/// The restart set the chaos starts and cancels: the shop's three workloads, two at a time.
pub(super) const SET: &str = "shop";

pub(super) fn allowlist(scheduled: bool) -> Allowlist {
    let entries = workloads()
        .into_iter()
        .map(|w| {
            // The cache restarts every five minutes on its own: each due time exactly once,
            // whichever replicas run, crash or lose their calls.
            let schedule = (scheduled && w.name == "cache").then(|| {
                let cron = Cron::parse("*/5 * * * *", None).expect("a valid cron expression");
                Schedule::new(cron)
            });
            ServiceEntry {
                schedule,
                ..ServiceEntry::new(w)
            }
        })
        .collect();
    match Allowlist::new(entries) {
        Ok(allowlist) => allowlist,
        Err(e) => panic!("the allowlist is valid: {e}"),
    }
}

// === impl World ===

impl World {
    pub(super) fn config(&self, slots: u32) -> FleetLockConfig {
        let group = GroupConfig {
            slots,
            rate: self.rate,
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
        config.drain.on_timeout = self.on_timeout;
        if self.on_timeout == OnDrainTimeout::Release {
            config.drain.timeout = RELEASE_AFTER;
        }
        config
    }

    /// Starts replica `i` (again) with the slots it is configured with, and waits until it
    /// is ready to serve.
    pub(super) async fn start(&self, i: usize) {
        // A crash (or a newer start) while this one waits for its caches supersedes it.
        let (name, slots, epoch, skew) = {
            let replicas = self.replicas.lock();
            let replica = &replicas[i];
            if replica.live.is_some() {
                return;
            }
            (
                replica.name.clone(),
                replica.slots,
                *replica.epoch.borrow(),
                replica.skew,
            )
        };
        let client = self.sim.client();
        let api = Arc::new(client.clone());
        let clock = Arc::new(Skewed(self.sim.clone(), skew));
        let builder = Coordinator::builder(api.clone(), self.config(slots))
            .clock(clock.clone())
            .instance(name.clone());
        let builder = if self.sabotage {
            builder.sabotage(fleetlock_core::Sabotage::IgnoreRemoteReleases)
        } else {
            builder
        };
        let coordinator = builder.build();
        let restarter = Restarter::builder(api, self.allowlist.lock().clone())
            .sets(sets())
            .clock(clock)
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
            client,
            coordinator,
            restarter,
            tasks: Arc::new(tasks),
        });
    }

    /// Kills replica `i` where it stands: its loops, its drains, and every call it was
    /// answering; a start of it still under way is abandoned. False if it was not running.
    pub(super) fn crash(&self, i: usize) -> bool {
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
    pub(super) async fn on_replica<T, F, Fut>(&self, i: usize, call: F) -> Option<T>
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

    pub(super) fn replica_count(&self) -> usize {
        self.replicas.lock().len()
    }

    pub(super) fn restart_locks_held(&self) -> bool {
        let now = self.sim.now();
        self.sim
            .leases()
            .iter()
            .any(|l| l.namespace == NAMESPACE && crate::state::held_restart_lock(l, now).is_some())
    }
}

/// A replica's wall clock: the cluster's, off by a fixed amount, as a node whose clock drifts
/// or is set wrong. Every replica still shares the passing of time (Tokio's clock).
struct Skewed(SimCluster, jiff::SignedDuration);

impl cluster_api::Clock for Skewed {
    fn now(&self) -> cluster_api::Timestamp {
        cluster_api::Clock::now(&self.0) + self.1
    }
}
