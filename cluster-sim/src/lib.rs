//! An in-memory Kubernetes cluster with the semantics the cores rely on.
//!
//! [`SimCluster`] implements [`ClusterApi`](cluster_api::ClusterApi) so that `fleetlock-core` and `restart-core` run on
//! it exactly as they run on a real cluster: in tests, in benchmarks, and in
//! `restart-manager --simulate`. A test that passes here means something only if the
//! simulation behaves like Kubernetes, so it reproduces (and its tests pin down):
//!
//! - **Optimistic concurrency.** Every object carries a `resourceVersion`; a replace or
//!   conditional patch with a stale one fails with [`Error::Conflict`], a duplicate create with
//!   [`Error::AlreadyExists`].
//! - **PodDisruptionBudgets.** An eviction that would take a budget below its `minAvailable`
//!   (or above its `maxUnavailable`) is refused like the API's 429; a pod covered by two
//!   budgets gets the API's 500; a pod already gone is a 404 ([`EvictionOutcome::Gone`](cluster_api::EvictionOutcome::Gone)).
//!   Pending, finished and terminating pods are evicted without consulting budgets, as the API
//!   server does.
//! - **Graceful termination.** An evicted pod gets a `deletionTimestamp`, stops being Ready
//!   and disappears after its grace period; its controller creates a replacement on a
//!   schedulable node, which becomes Ready after the workload's start-up time, so budgets
//!   recover.
//! - **Workload controllers.** Changing a pod template rolls the pods: Deployments with
//!   `maxSurge`/`maxUnavailable` (or `Recreate`), StatefulSets one ordinal at a time from the
//!   top (respecting `partition`; `OnDelete` waits), DaemonSets node by node. `generation`,
//!   `observedGeneration`, replica counts, revisions and the Deployment `Progressing` condition
//!   move as kube-controller-manager moves them, including `ProgressDeadlineExceeded` for a
//!   rollout that stalls ([`SimCluster::stall_rollouts`]) and no rollout while paused.
//! - **Reboots.** [`SimCluster::reboot_node`] takes a node NotReady and brings it back with a
//!   new `bootID`.
//! - **Watches** deliver every change, in order, starting with the full current set.
//!
//! Time is Tokio's: timestamps are [`SimConfig::start_time`] plus the Tokio time elapsed, and
//! grace periods, start-up times and reboots are timers on Tokio's clock. Tests run with
//! `#[tokio::test(start_paused = true)]` and move time with `tokio::time::advance` or
//! `sleep`, never waiting for real.
//!
//! For tests and benchmarks, every call is counted per [`Operation`] ([`SimCluster::calls`])
//! and can be made to fail or slow down ([`SimCluster::fail_next`],
//! [`SimCluster::set_latency`]).
//!
//! ```
//! use cluster_api::{ClusterApi, EvictOptions, EvictionOutcome, LabelSelector};
//! use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cluster_api::Result<()> {
//! let sim = SimCluster::new();
//! sim.add_node(cluster_api::Node::new("n1"));
//! sim.add_node(cluster_api::Node::new("n2"));
//! sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(2))?;
//! sim.add_budget(Budget::min_available(
//!     "shop", "web", LabelSelector::eq("app", "web"), IntOrPercent::Int(2),
//! ));
//!
//! let pod = &sim.pods_of(&WorkloadSpec::deployment("shop", "web").reference())[0];
//! let outcome = sim.evict_pod("shop", &pod.name, &EvictOptions::default()).await?;
//! assert!(matches!(outcome, EvictionOutcome::Blocked { .. }));
//! # Ok(())
//! # }
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`SimCluster`] | the cluster (`lib.rs`), its controls, inspectors, counters and faults (`controls/`), and its `ClusterApi` side (`api/`) |
//! | [`WorkloadSpec`] | workloads to simulate and their pod templates |
//! | [`Budget`] | PodDisruptionBudgets and their arithmetic |
//! | [`Scenario`] | clusters described in YAML |
//! | [`Operation`], [`CallCounts`] | per-call counters and fault injection keys |

use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};

use cluster_api::{Error, Result, WorkloadRef};
use tokio::sync::Notify;
use tokio::time::Instant;

pub mod access;
mod api;
#[cfg(feature = "apiserver")]
pub mod apiserver;
mod audit;
mod budget;
pub mod changes;
mod controllers;
mod controls;
mod faults;
mod scenario;
mod spec;
mod state;
mod view;

pub use audit::{EvictionRecord, Write, Writer};
pub use budget::{Budget, BudgetStatus, IntOrPercent};
pub use faults::{CallCounts, Operation};
pub use scenario::{NodeSpec, PodSpec, Scenario, ScenarioError, machine_id_for};
pub use spec::{StrategyName, WorkloadSpec};
pub use state::{ANNOTATIONS_LIMIT, Auditor, ClusterView, SimConfig};
pub use view::HeldWatch;

use state::State;

/// An in-memory Kubernetes cluster. Cheap to clone; clones share the cluster.
///
/// Create it inside a Tokio runtime: it starts a background task that moves simulated time
/// along (terminating pods, starting replacements, finishing reboots) and delivers watch
/// events. The task ends when the last clone is dropped.
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<Inner>,
    /// This handle's view: shared by its clones, not by [`SimCluster::client`]'s handles.
    view: Arc<view::View>,
}

struct Inner {
    state: Mutex<State>,
    wake: Arc<Notify>,
}

// === impl SimCluster ===

impl Default for SimCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("SimCluster")
            .field("nodes", &st.nodes.len())
            .field("pods", &st.pods.len())
            .field("workloads", &st.workloads.len())
            .field("leases", &st.leases.len())
            .finish()
    }
}

impl SimCluster {
    /// An empty cluster with the default [`SimConfig`].
    pub fn new() -> Self {
        Self::with_config(SimConfig::default())
    }

    /// An empty cluster.
    pub fn with_config(config: SimConfig) -> Self {
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(config)),
            wake: wake.clone(),
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(drive(Arc::downgrade(&inner), wake));
        }
        SimCluster {
            inner,
            view: Arc::default(),
        }
    }

    /// Another client of the same cluster, with watches of its own: what
    /// [`SimCluster::hold_watches`] holds back on one client, the others still see at once.
    pub fn client(&self) -> Self {
        SimCluster {
            inner: self.inner.clone(),
            view: Arc::default(),
        }
    }

    /// Holds back (or, with `held: false`, lets through) the events of this client's
    /// watches that `watch` names, open now or opened later, as a replica whose watch
    /// connection stalls sees the cluster late. Held events arrive in order once let through.
    pub fn hold_watches(&self, watch: HeldWatch, held: bool) {
        self.view.hold(watch, held);
    }

    /// A cluster built from a scenario.
    pub fn from_scenario(scenario: &Scenario) -> Result<Self, ScenarioError> {
        Self::from_scenario_with(scenario, SimConfig::default())
    }

    /// A cluster built from a scenario, with settings; the scenario's `startTime`, if it has
    /// one, wins over the config's.
    pub fn from_scenario_with(
        scenario: &Scenario,
        mut config: SimConfig,
    ) -> Result<Self, ScenarioError> {
        if let Some(start) = scenario.start_time {
            config.start_time = start;
        }
        let sim = Self::with_config(config);
        let invalid = |e: Error| ScenarioError::Invalid(e.to_string());
        for node in scenario.expand_nodes() {
            cluster_api::validate_name(&node.name)
                .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
            if sim.node(&node.name).is_some() {
                return Err(ScenarioError::Invalid(format!(
                    "node {:?} is listed twice",
                    node.name
                )));
            }
            sim.add_node(node);
        }
        for budget in &scenario.budgets {
            sim.add_budget(budget.clone());
        }
        for workload in &scenario.workloads {
            sim.add_workload(workload.clone()).map_err(invalid)?;
        }
        for user in &scenario.users {
            sim.add_user(user.clone());
        }
        for rule in &scenario.access {
            sim.add_access_rule(rule.clone());
        }
        for pod in &scenario.pods {
            sim.add_pod(pod.to_pod()).map_err(invalid)?;
            if pod.stuck {
                sim.set_pod_stuck(&pod.namespace, &pod.name, true);
            }
        }
        Ok(sim)
    }

    /// A cluster built from a scenario file's text.
    pub fn from_yaml(yaml: &str) -> Result<Self, ScenarioError> {
        Self::from_scenario(&Scenario::from_yaml(yaml)?)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for a simulation.
        self.inner.state.lock()
    }

    /// Runs `f` on the state brought up to the current Tokio time, then lets the controllers
    /// react and wakes the driver for any new timers.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let result = {
            let mut st = self.lock();
            st.advance_to(Instant::now());
            let result = f(&mut st);
            st.settle();
            result
        };
        self.inner.wake.notify_one();
        result
    }

    /// Counts a call and applies any injected latency or failure.
    async fn enter(&self, op: Operation) -> Result<()> {
        let (latency, error) = self.lock().faults.on_call(op);
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        match error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Applies a lost-answer fault queued for `op` to a call that took effect.
    fn leave<T>(&self, op: Operation, result: Result<T>) -> Result<T> {
        match (result, self.lock().faults.after_call(op)) {
            (Ok(_), Some(error)) => Err(error),
            (result, _) => result,
        }
    }
}

fn workload_not_found(r: &WorkloadRef) -> Error {
    Error::not_found(&format!("{}.apps", r.kind.resource()), &r.name)
}

fn lease_key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

/// Moves simulated time along: fires due timers, then sleeps until the next one or until an
/// operation adds an earlier one.
async fn drive(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            let mut st = inner.state.lock();
            st.advance_to(Instant::now());
            st.next_deadline()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
