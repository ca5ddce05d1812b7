//! An in-memory Kubernetes cluster with the semantics the cores rely on.
//!
//! [`SimCluster`] implements [`ClusterApi`] so that `fleetlock-core` and `restart-core` run on
//! it exactly as they run on a real cluster: in tests, in benchmarks, and in
//! `restart-manager --simulate`. A test that passes here means something only if the
//! simulation behaves like Kubernetes, so it reproduces (and its tests pin down):
//!
//! - **Optimistic concurrency.** Every object carries a `resourceVersion`; a replace or
//!   conditional patch with a stale one fails with [`Error::Conflict`], a duplicate create with
//!   [`Error::AlreadyExists`].
//! - **PodDisruptionBudgets.** An eviction that would take a budget below its `minAvailable`
//!   (or above its `maxUnavailable`) is refused like the API's 429; a pod covered by two
//!   budgets gets the API's 500; a pod already gone is a 404 ([`EvictionOutcome::Gone`]).
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
//! | [`SimCluster`] | the cluster, its controls, inspectors, counters and faults |
//! | [`WorkloadSpec`] | workloads to simulate and their pod templates |
//! | [`Budget`] | PodDisruptionBudgets and their arithmetic |
//! | [`Scenario`] | clusters described in YAML |
//! | [`Operation`], [`CallCounts`] | per-call counters and fault injection keys |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use cluster_api::{
    ClusterApi, Error, Event, EvictOptions, EvictionOutcome, LabelSelector, Lease, Node, NodePatch,
    ObjectRef, Pod, PodFilter, PodPhase, Result, Timestamp, WatchEvent, WatchStream, Workload,
    WorkloadFilter, WorkloadKind, WorkloadRef, WorkloadStatus,
};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;

pub mod access;
#[cfg(feature = "apiserver")]
pub mod apiserver;
mod audit;
mod budget;
pub mod changes;
mod controllers;
mod faults;
mod scenario;
mod spec;
mod state;

pub use audit::EvictionRecord;
pub use budget::{Budget, BudgetStatus, IntOrPercent};
pub use faults::{CallCounts, Operation};
pub use scenario::{NodeSpec, PodSpec, Scenario, ScenarioError, machine_id_for};
pub use spec::{StrategyName, WorkloadSpec};
pub use state::SimConfig;

use state::{SimPod, SimWorkload, State};

/// An in-memory Kubernetes cluster. Cheap to clone; clones share the cluster.
///
/// Create it inside a Tokio runtime: it starts a background task that moves simulated time
/// along (terminating pods, starting replacements, finishing reboots) and delivers watch
/// events. The task ends when the last clone is dropped.
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<Inner>,
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
        SimCluster { inner }
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
            state::validate_name(&node.name).map_err(ScenarioError::Invalid)?;
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
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
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

    // --- time ---

    /// The simulated wall-clock time now.
    pub fn now(&self) -> Timestamp {
        self.with(|st| st.wall())
    }

    // --- nodes ---

    /// Adds (or replaces) a Node. A missing uid and bootID are generated.
    pub fn add_node(&self, node: Node) -> Node {
        self.with(|st| st.put_node(node))
    }

    /// Adds Nodes `n1` .. `n<count>`, each with the machine id [`machine_id_for`] derives
    /// from its name (so a test knows the Zincati id every node answers to).
    pub fn add_fleet(&self, count: usize) {
        for i in 1..=count {
            let name = format!("n{i}");
            self.add_node(Node::new(&name).machine_id(machine_id_for(&name)));
        }
    }

    /// Deletes a Node; the pods bound to it are garbage-collected at once.
    pub fn remove_node(&self, name: &str) -> Option<Node> {
        self.with(|st| st.remove_node(name))
    }

    /// Reboots a node: NotReady now (its pods too), Ready again with a new bootID after
    /// [`SimConfig::reboot_duration`], after which its pods pass readiness again.
    pub fn reboot_node(&self, name: &str) -> Result<()> {
        self.with(|st| st.reboot_node(name))
    }

    /// Sets a node's Ready condition, as a kubelet that stops or resumes reporting would.
    pub fn set_node_ready(&self, name: &str, ready: bool) -> Result<()> {
        self.with(|st| {
            let node = st
                .nodes
                .get(name)
                .cloned()
                .ok_or_else(|| Error::not_found("nodes", name))?;
            st.set_node_ready(node, ready);
            Ok(())
        })
    }

    /// Changes a Node directly, bypassing counters and faults (an admin's `kubectl`).
    pub fn edit_node(&self, name: &str, edit: impl FnOnce(&mut Node)) -> Result<Node> {
        self.with(|st| {
            let mut node = st
                .nodes
                .get(name)
                .cloned()
                .ok_or_else(|| Error::not_found("nodes", name))?;
            edit(&mut node);
            Ok(st.put_node(node))
        })
    }

    // --- pods ---

    /// Adds a pod no simulated workload controls: unmanaged, static (mirror), a Job's, or a
    /// DaemonSet's that the test wants to place by hand. It must name an existing node.
    pub fn add_pod(&self, pod: Pod) -> Result<Pod> {
        self.with(|st| {
            state::validate_name(&pod.name).map_err(Error::invalid)?;
            let key = (pod.namespace.clone(), pod.name.clone());
            if st.pods.contains_key(&key) {
                return Err(Error::already_exists("pods", &pod.name));
            }
            match &pod.node_name {
                Some(node) if st.nodes.contains_key(node) => {}
                Some(node) => {
                    return Err(Error::invalid(format!(
                        "pod {}/{} names node {node:?}, which does not exist",
                        pod.namespace, pod.name
                    )));
                }
                None => {}
            }
            let created = st.wall();
            st.put_pod(SimPod {
                pod,
                owner: None,
                revision: String::new(),
                ordinal: None,
                start_delay: Duration::ZERO,
                never_ready: false,
                stuck: false,
                created,
            });
            Ok(st.pods[&key].pod.clone())
        })
    }

    /// Makes a pod ignore termination (`stuck`), as a pod with a finalizer nobody clears or
    /// on a hung kubelet does, or lets it go again.
    pub fn set_pod_stuck(&self, namespace: &str, name: &str, stuck: bool) {
        self.with(|st| {
            let key = (namespace.to_string(), name.to_string());
            let Some(sp) = st.pods.get_mut(&key) else {
                return;
            };
            sp.stuck = stuck;
            if !stuck && sp.pod.is_terminating() {
                let uid = sp.pod.uid.clone();
                st.schedule(Duration::ZERO, state::Timer::PodGone { key, uid });
            }
        });
    }

    /// Deletes a pod gracefully, as `kubectl delete pod` does (no budget check).
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.with(|st| st.terminate_pod(&(namespace.to_string(), name.to_string()), None));
    }

    // --- access ---

    /// Adds a user who authenticates to the API endpoint with a bearer token.
    pub fn add_user(&self, user: access::UserSpec) {
        self.with(|st| st.access.users.push(user));
    }

    /// Adds an RBAC rule the API endpoint authorises requests and access reviews by.
    pub fn add_access_rule(&self, rule: access::AccessRule) {
        self.with(|st| st.access.rules.push(rule));
    }

    /// Removes the user with this name (their token stops working); whether there was one.
    pub fn remove_user(&self, name: &str) -> bool {
        self.with(|st| {
            let before = st.access.users.len();
            st.access.users.retain(|u| u.name != name);
            st.access.users.len() != before
        })
    }

    /// Removes every RBAC rule that names `subject` (a user, or `group:NAME`), as deleting
    /// its bindings would; how many went.
    pub fn remove_access_rules(&self, subject: &str) -> usize {
        self.with(|st| {
            let before = st.access.rules.len();
            st.access
                .rules
                .retain(|r| !r.subjects.iter().any(|s| s == subject));
            before - st.access.rules.len()
        })
    }

    /// The users and rules in force.
    pub fn access(&self) -> access::Access {
        self.with(|st| st.access.clone())
    }

    // --- budgets ---

    /// Adds (or replaces) a PodDisruptionBudget.
    pub fn add_budget(&self, budget: Budget) {
        self.with(|st| {
            st.budgets
                .insert((budget.namespace.clone(), budget.name.clone()), budget);
        });
    }

    /// Removes a PodDisruptionBudget.
    pub fn remove_budget(&self, namespace: &str, name: &str) -> Option<Budget> {
        self.with(|st| {
            st.budgets
                .remove(&(namespace.to_string(), name.to_string()))
        })
    }

    /// What a budget allows right now, as its `status` would say.
    pub fn budget_status(&self, namespace: &str, name: &str) -> Option<BudgetStatus> {
        self.with(|st| {
            let budget = st.budgets.get(&(namespace.to_string(), name.to_string()))?;
            Some(st.budget_status(budget))
        })
    }

    // --- workloads ---

    /// Adds a workload; its controller creates its pods, which start at once, so the cluster
    /// begins settled.
    pub fn add_workload(&self, spec: WorkloadSpec) -> Result<Workload> {
        spec.validate().map_err(Error::invalid)?;
        let r = spec.reference();
        self.with(|st| {
            if st.workloads.contains_key(&r) {
                return Err(Error::already_exists(
                    &format!("{}.apps", r.kind.resource()),
                    &r.name,
                ));
            }
            let w = Workload {
                kind: spec.kind,
                namespace: spec.namespace.clone(),
                name: spec.name.clone(),
                uid: st.next_uid(),
                resource_version: String::new(),
                generation: 1,
                labels: spec.effective_pod_labels(),
                annotations: spec.annotations.clone(),
                replicas: match spec.kind {
                    WorkloadKind::DaemonSet => None,
                    _ => Some(spec.replicas.unwrap_or(1)),
                },
                paused: spec.paused,
                strategy: match spec.strategy {
                    Some(StrategyName::Recreate) => cluster_api::UpdateStrategy::Recreate,
                    Some(StrategyName::OnDelete) => cluster_api::UpdateStrategy::OnDelete,
                    _ => cluster_api::UpdateStrategy::RollingUpdate {
                        partition: spec.partition,
                    },
                },
                progress_deadline_seconds: match spec.kind {
                    WorkloadKind::Deployment => Some(spec.progress_deadline_seconds.unwrap_or(600)),
                    _ => None,
                },
                selector: LabelSelector {
                    match_labels: spec.effective_pod_labels(),
                    match_expressions: vec![],
                },
                template_annotations: BTreeMap::new(),
                status: WorkloadStatus::default(),
            };
            st.workloads.insert(
                r.clone(),
                SimWorkload {
                    w: w.clone(),
                    spec,
                    target_revision: String::new(),
                    history: Vec::new(),
                    stalled: false,
                    progress_at: st.now,
                    seq: 0,
                },
            );
            st.put_workload(w);
            // Bring it up at once: reconcile, start every bound pod, repeat until quiet.
            for _ in 0..10_000 {
                st.dirty.insert(r.clone());
                st.settle();
                let starting: Vec<_> = st
                    .pods_of(&r)
                    .into_iter()
                    .filter(|k| {
                        let p = &st.pods[k].pod;
                        p.node_name.is_some() && !p.ready && !p.is_terminating()
                    })
                    .collect();
                if starting.is_empty() {
                    break;
                }
                for key in starting {
                    let mut sp = st.pods[&key].clone();
                    sp.pod.phase = PodPhase::Running;
                    sp.pod.ready = true;
                    st.put_pod(sp);
                }
            }
            Ok(st.workloads[&r].w.clone())
        })
    }

    fn edit_workload(&self, r: &WorkloadRef, edit: impl FnOnce(&mut SimWorkload)) -> Result<()> {
        self.with(|st| {
            let sw = st
                .workloads
                .get_mut(r)
                .ok_or_else(|| workload_not_found(r))?;
            edit(sw);
            let w = sw.w.clone();
            st.put_workload(w);
            let delay = st.config.controller_delay;
            st.schedule(
                delay,
                state::Timer::Sync {
                    workload: r.clone(),
                },
            );
            Ok(())
        })
    }

    /// Deletes a workload, as `kubectl delete` does: its pods are deleted gracefully after it.
    pub fn remove_workload(&self, r: &WorkloadRef) -> Option<Workload> {
        self.with(|st| st.remove_workload(r))
    }

    /// Pauses or resumes a Deployment (`spec.paused`).
    pub fn set_paused(&self, r: &WorkloadRef, paused: bool) -> Result<()> {
        self.edit_workload(r, |sw| {
            if sw.w.paused != paused {
                sw.w.paused = paused;
                sw.w.generation += 1;
            }
        })
    }

    /// Scales a Deployment or StatefulSet.
    pub fn scale(&self, r: &WorkloadRef, replicas: i32) -> Result<()> {
        self.edit_workload(r, |sw| {
            if sw.w.replicas != Some(replicas) {
                sw.w.replicas = Some(replicas);
                sw.w.generation += 1;
            }
        })
    }

    /// From now on, new pods of this workload crash-loop (Running, never Ready), so a rollout
    /// stalls and a Deployment runs into its progress deadline; `false` fixes it for pods
    /// created afterwards.
    pub fn stall_rollouts(&self, r: &WorkloadRef, stalled: bool) -> Result<()> {
        self.edit_workload(r, |sw| sw.stalled = stalled)
    }

    // --- inspection: no counters, no faults ---

    /// A Node as it is now.
    pub fn node(&self, name: &str) -> Option<Node> {
        self.with(|st| st.nodes.get(name).cloned())
    }

    /// Every Node.
    pub fn nodes(&self) -> Vec<Node> {
        self.with(|st| st.nodes.values().cloned().collect())
    }

    /// A pod as it is now.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.with(|st| {
            st.pods
                .get(&(namespace.to_string(), name.to_string()))
                .map(|sp| sp.pod.clone())
        })
    }

    /// The pods bound to a node, terminating ones included.
    pub fn pods_on(&self, node: &str) -> Vec<Pod> {
        self.with(|st| {
            st.pods_on_node(node)
                .iter()
                .map(|k| st.pods[k].pod.clone())
                .collect()
        })
    }

    /// The pods a simulated workload controls, terminating ones included.
    pub fn pods_of(&self, r: &WorkloadRef) -> Vec<Pod> {
        self.with(|st| {
            st.pods_of(r)
                .iter()
                .map(|k| st.pods[k].pod.clone())
                .collect()
        })
    }

    /// Every pod.
    pub fn pods(&self) -> Vec<Pod> {
        self.with(|st| st.pods.values().map(|sp| sp.pod.clone()).collect())
    }

    /// A workload as it is now.
    pub fn workload(&self, r: &WorkloadRef) -> Option<Workload> {
        self.with(|st| st.workloads.get(r).map(|sw| sw.w.clone()))
    }

    /// A Lease as it is now.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.with(|st| {
            st.leases
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        })
    }

    /// Every Lease.
    pub fn leases(&self) -> Vec<Lease> {
        self.with(|st| st.leases.values().cloned().collect())
    }

    /// Every Event recorded, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.with(|st| st.events.iter().map(|(_, e)| e.clone()).collect())
    }

    /// Every eviction request the cluster answered, oldest first (the most recent 100,000).
    pub fn evictions(&self) -> Vec<EvictionRecord> {
        self.with(|st| st.evictions.iter().cloned().collect())
    }

    // --- counters and faults ---

    /// How many calls of each operation have been made since creation or the last reset.
    pub fn calls(&self) -> CallCounts {
        self.lock().faults.counts.clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_calls(&self) {
        self.lock().faults.counts = CallCounts::default();
    }

    /// Makes the next `times` calls of `op` fail with `error` (after being counted).
    pub fn fail_next(&self, op: Operation, times: usize, error: Error) {
        self.lock().faults.fail_next(op, times, error);
    }

    /// Lets the next `skip` calls of `op` through, then makes `times` calls fail with
    /// `error`: for a failure in the middle of a sequence of calls.
    pub fn fail_later(&self, op: Operation, skip: usize, times: usize, error: Error) {
        self.lock().faults.fail_later(op, skip, times, error);
    }

    /// Makes every call of `op` fail with `error` until [`clear_faults`](Self::clear_faults).
    pub fn fail_always(&self, op: Operation, error: Error) {
        self.lock().faults.fail_always(op, error);
    }

    /// Makes the next `times` calls of `op` fail with a Conflict, as if another writer had got
    /// there first each time.
    pub fn force_conflicts(&self, op: Operation, times: usize) {
        self.fail_next(op, times, Error::conflict("objects", "forced"));
    }

    /// Delays every call of `op` by `latency` of Tokio time (zero removes the delay).
    pub fn set_latency(&self, op: Operation, latency: Duration) {
        self.lock().faults.set_latency(op, latency);
    }

    /// Makes the next `times` calls of `op` take effect and then fail with `error`, as a
    /// request whose answer is lost (a timeout after the API server committed it).
    pub fn fail_after_next(&self, op: Operation, times: usize, error: Error) {
        self.lock().faults.fail_after_next(op, times, error);
    }

    /// Ends every open watch with an error now (their consumers must watch again and get a
    /// fresh list), as an API server restart or a `410 Gone` does.
    pub fn break_watches(&self) {
        self.with(|st| st.break_watches("the watch was closed: too old resource version"));
    }

    /// Removes every injected failure and delay.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
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
            let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
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

fn stream<T: Send + 'static>(rx: mpsc::UnboundedReceiver<Result<WatchEvent<T>>>) -> WatchStream<T> {
    Box::pin(UnboundedReceiverStream::new(rx))
}

impl cluster_api::Clock for SimCluster {
    fn now(&self) -> Timestamp {
        SimCluster::now(self)
    }
}

#[async_trait]
impl ClusterApi for SimCluster {
    async fn get_node(&self, name: &str) -> Result<Node> {
        self.enter(Operation::GetNode).await?;
        self.node(name)
            .ok_or_else(|| Error::not_found("nodes", name))
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.enter(Operation::ListNodes).await?;
        Ok(self.nodes())
    }

    async fn watch_nodes(&self) -> Result<WatchStream<Node>> {
        self.enter(Operation::WatchNodes).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let all = st.nodes.values().cloned().collect();
            let _ = tx.send(Ok(WatchEvent::Restarted(all)));
            st.watchers.add_nodes(tx);
        });
        Ok(stream(rx))
    }

    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node> {
        self.enter(Operation::PatchNode).await?;
        let result = self.with(|st| {
            let node = st
                .nodes
                .get(name)
                .ok_or_else(|| Error::not_found("nodes", name))?;
            if let Some(rv) = &patch.resource_version
                && rv != &node.resource_version
            {
                return Err(Error::conflict("nodes", name));
            }
            let mut patched = node.clone();
            patch.apply_to(&mut patched);
            if &patched == node {
                // The API server does not bump the version for a patch that changes nothing.
                return Ok(patched);
            }
            Ok(st.put_node(patched))
        });
        self.leave(Operation::PatchNode, result)
    }

    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>> {
        self.enter(Operation::ListPods).await?;
        Ok(self.with(|st| st.list_pods(filter)))
    }

    async fn watch_pods(&self, filter: &PodFilter) -> Result<WatchStream<Pod>> {
        self.enter(Operation::WatchPods).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let _ = tx.send(Ok(WatchEvent::Restarted(st.list_pods(filter))));
            st.watchers.add_pods(filter.clone(), tx);
        });
        Ok(stream(rx))
    }

    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> Result<EvictionOutcome> {
        self.enter(Operation::EvictPod).await?;
        let outcome = self.with(|st| {
            let pod = st
                .pods
                .get(&lease_key(namespace, name))
                .map(|sp| (sp.pod.uid.clone(), sp.pod.node_name.clone()));
            let outcome = st.evict(namespace, name, options);
            let (uid, node) = pod.map_or((None, None), |(uid, node)| (Some(uid), node));
            st.record_eviction(EvictionRecord {
                at: st.wall(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid,
                node,
                outcome: outcome.clone(),
            });
            outcome
        });
        self.leave(Operation::EvictPod, Ok(outcome))
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.enter(Operation::GetLease).await?;
        self.lease(namespace, name)
            .ok_or_else(|| Error::not_found("leases.coordination.k8s.io", name))
    }

    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>> {
        self.enter(Operation::ListLeases).await?;
        Ok(self.with(|st| st.list_leases(namespace, selector)))
    }

    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>> {
        self.enter(Operation::WatchLeases).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let current = st.list_leases(namespace, selector);
            let _ = tx.send(Ok(WatchEvent::Restarted(current)));
            st.watchers
                .add_leases((namespace.to_string(), selector.clone()), tx);
        });
        Ok(stream(rx))
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        self.enter(Operation::CreateLease).await?;
        state::validate_name(&lease.name).map_err(Error::invalid)?;
        let result = self.with(|st| {
            let key = lease_key(&lease.namespace, &lease.name);
            if st.leases.contains_key(&key) {
                return Err(Error::already_exists(
                    "leases.coordination.k8s.io",
                    &lease.name,
                ));
            }
            Ok(st.put_lease(lease.clone()))
        });
        self.leave(Operation::CreateLease, result)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        self.enter(Operation::ReplaceLease).await?;
        if lease.resource_version.is_empty() {
            return Err(Error::invalid(format!(
                "leases.coordination.k8s.io \"{}\": a replace must carry the resourceVersion it \
                 was read at",
                lease.name
            )));
        }
        let result = self.with(|st| {
            let key = lease_key(&lease.namespace, &lease.name);
            let current = st
                .leases
                .get(&key)
                .ok_or_else(|| Error::not_found("leases.coordination.k8s.io", &lease.name))?;
            if current.resource_version != lease.resource_version {
                return Err(Error::conflict("leases.coordination.k8s.io", &lease.name));
            }
            Ok(st.put_lease(lease.clone()))
        });
        self.leave(Operation::ReplaceLease, result)
    }

    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()> {
        self.enter(Operation::DeleteLease).await?;
        let result = self.with(|st| {
            let key = lease_key(namespace, name);
            let current = st
                .leases
                .get(&key)
                .ok_or_else(|| Error::not_found("leases.coordination.k8s.io", name))?;
            if let Some(rv) = resource_version
                && rv != current.resource_version
            {
                return Err(Error::Conflict {
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, \
                         ResourceVersion in record: {}: the object has been modified; please \
                         apply your changes to the latest version and try again",
                        current.resource_version
                    ),
                });
            }
            st.remove_lease(&key);
            Ok(())
        });
        self.leave(Operation::DeleteLease, result)
    }

    async fn get_workload(&self, workload: &WorkloadRef) -> Result<Workload> {
        self.enter(Operation::GetWorkload).await?;
        self.workload(workload)
            .ok_or_else(|| workload_not_found(workload))
    }

    async fn list_workloads(&self, filter: &WorkloadFilter) -> Result<Vec<Workload>> {
        self.enter(Operation::ListWorkloads).await?;
        Ok(self.with(|st| st.list_workloads(filter)))
    }

    async fn watch_workloads(&self, filter: &WorkloadFilter) -> Result<WatchStream<Workload>> {
        self.enter(Operation::WatchWorkloads).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.with(|st| {
            let _ = tx.send(Ok(WatchEvent::Restarted(st.list_workloads(filter))));
            st.watchers.add_workloads(filter.clone(), tx);
        });
        Ok(stream(rx))
    }

    async fn patch_template_annotations(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Workload> {
        self.enter(Operation::PatchWorkload).await?;
        let result = self.with(|st| {
            let sw = st
                .workloads
                .get(workload)
                .ok_or_else(|| workload_not_found(workload))?;
            let mut w = sw.w.clone();
            cluster_api::apply_changes(&mut w.template_annotations, annotations);
            if w.template_annotations == sw.w.template_annotations {
                return Ok(w);
            }
            w.generation += 1;
            st.put_workload(w);
            let delay = st.config.controller_delay;
            st.schedule(
                delay,
                state::Timer::Sync {
                    workload: workload.clone(),
                },
            );
            Ok(st.workloads[workload].w.clone())
        });
        self.leave(Operation::PatchWorkload, result)
    }

    async fn record_event(&self, event: &Event) -> Result<()> {
        self.enter(Operation::RecordEvent).await?;
        if event.reason.is_empty() {
            return Err(Error::invalid("Event: reason: Required value"));
        }
        self.with(|st| st.push_event(event.clone()));
        self.leave(Operation::RecordEvent, Ok(()))
    }

    async fn list_events(&self, regarding: &ObjectRef) -> Result<Vec<Event>> {
        self.enter(Operation::ListEvents).await?;
        Ok(self.with(|st| {
            st.events
                .iter()
                .map(|(_, e)| e)
                .filter(|e| e.regarding.names_same(regarding))
                .cloned()
                .collect()
        }))
    }
}

// === impl State: the API server's side of the calls ===

impl State {
    fn list_pods(&self, filter: &PodFilter) -> Vec<Pod> {
        match &filter.node {
            Some(node) => self
                .pods_on_node(node)
                .iter()
                .map(|k| &self.pods[k].pod)
                .filter(|p| filter.matches(p))
                .cloned()
                .collect(),
            None => self
                .pods
                .values()
                .map(|sp| &sp.pod)
                .filter(|p| filter.matches(p))
                .cloned()
                .collect(),
        }
    }

    fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Vec<Lease> {
        self.leases
            .range(lease_key(namespace, "")..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, l)| selector.matches(&l.labels))
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn list_workloads(&self, filter: &WorkloadFilter) -> Vec<Workload> {
        self.workloads
            .values()
            .map(|sw| &sw.w)
            .filter(|w| filter.matches(w))
            .cloned()
            .collect()
    }

    fn budget_status(&self, budget: &Budget) -> BudgetStatus {
        let matching: Vec<&SimPod> = self
            .pods
            .range((budget.namespace.clone(), String::new())..)
            .take_while(|((ns, _), _)| ns == &budget.namespace)
            .map(|(_, sp)| sp)
            .filter(|sp| budget.selector.matches(&sp.pod.labels))
            .collect();
        let healthy = matching
            .iter()
            .filter(|sp| sp.pod.ready && !sp.pod.is_terminating())
            .count() as i32;
        // Percentages and maxUnavailable count against the owners' desired scale.
        let mut owners: Vec<&WorkloadRef> =
            matching.iter().filter_map(|sp| sp.owner.as_ref()).collect();
        owners.sort();
        owners.dedup();
        let unowned = matching.iter().filter(|sp| sp.owner.is_none()).count() as i32;
        let scale = unowned
            + owners
                .iter()
                .filter_map(|o| self.workloads.get(o))
                .map(|sw| {
                    sw.w.replicas
                        .unwrap_or(sw.w.status.desired_number_scheduled)
                })
                .sum::<i32>();
        budget.status(matching.len() as i32, healthy, scale)
    }

    /// The Eviction subresource: budgets first, then graceful deletion.
    fn evict(&mut self, namespace: &str, name: &str, options: &EvictOptions) -> EvictionOutcome {
        let key = (namespace.to_string(), name.to_string());
        let Some(sp) = self.pods.get(&key) else {
            return EvictionOutcome::Gone;
        };
        let pod = &sp.pod;
        // Pods that are not running, or already going, disrupt nothing more.
        let ignores_budgets = pod.is_terminating()
            || matches!(
                pod.phase,
                PodPhase::Pending | PodPhase::Succeeded | PodPhase::Failed
            );
        if !ignores_budgets {
            let budgets: Vec<&Budget> = self
                .budgets
                .values()
                .filter(|b| b.namespace == namespace && b.selector.matches(&pod.labels))
                .collect();
            match budgets.as_slice() {
                [] => {}
                [budget] => {
                    let status = self.budget_status(budget);
                    // An unready pod may go without spending a disruption while the budget
                    // is satisfied and wants healthy pods at all (IfHealthyBudget); otherwise
                    // it needs a disruption like any other pod.
                    let free = !pod.ready
                        && status.desired_healthy > 0
                        && status.current_healthy >= status.desired_healthy;
                    let allowed = free || status.disruptions_allowed > 0;
                    if !allowed {
                        return EvictionOutcome::Blocked {
                            message: format!(
                                "Cannot evict pod as it would violate the pod's disruption \
                                 budget. The disruption budget {} needs {} healthy pods and has \
                                 {} currently",
                                budget.name, status.desired_healthy, status.current_healthy
                            ),
                            retry_after: None,
                        };
                    }
                }
                _ => {
                    return EvictionOutcome::Failed {
                        message: "This pod has more than one PodDisruptionBudget, which the \
                                  eviction subresource does not support."
                            .into(),
                    };
                }
            }
        }
        self.terminate_pod(&key, options.grace_period_seconds);
        EvictionOutcome::Evicted
    }
}
