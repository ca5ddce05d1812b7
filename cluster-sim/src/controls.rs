//! The test controls of [`SimCluster`]: time, nodes, pods, access, budgets and workloads to
//! set up and change; inspection that counts nothing; counters and faults.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::{
    ConfigKind, ConfigObject, Error, Event, LabelSelector, Lease, Node, Pod, PodPhase, Result,
    Timestamp, Workload, WorkloadKind, WorkloadRef, WorkloadStatus,
};

use crate::access;
use crate::audit::{Write, Writer};
use crate::state::{self, SimPod, SimWorkload};
use crate::state::{Auditor, ClusterView};
use crate::{
    Budget, BudgetStatus, CallCounts, EvictionRecord, Operation, SimCluster, StrategyName,
    WorkloadSpec, machine_id_for, workload_not_found,
};

// === impl SimCluster: controls ===

impl SimCluster {
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

    /// Reboots a node as a real cluster shows it: its kubelet goes silent at once, but the
    /// Node looks unchanged (Ready too) until
    /// [`node_monitor_grace_period`](crate::SimConfig::node_monitor_grace_period) has passed
    /// (then Ready=Unknown, its pods NotReady); its operating system, and Zincati, are up
    /// after [`reboot_duration`](crate::SimConfig::reboot_duration) ([`os_up`](Self::os_up));
    /// the kubelet reports the new bootID, Ready and a fresh heartbeat
    /// [`kubelet_start`](crate::SimConfig::kubelet_start) later, and its pods pass
    /// readiness again after their start delay.
    pub fn reboot_node(&self, name: &str) -> Result<()> {
        self.with(|st| st.reboot_node(name))
    }

    /// Whether the node's operating system runs (so its Zincati can speak): false from
    /// [`reboot_node`](Self::reboot_node) until `reboot_duration` has passed; `None` for a
    /// node that does not exist.
    pub fn os_up(&self, name: &str) -> Option<bool> {
        self.with(|st| ClusterView { state: st }.os_up(name))
    }

    /// The node's kubelet posts its status now (a fresh heartbeat), as it does every
    /// `nodeStatusReportFrequency` even when nothing changed. Does nothing while the node
    /// reboots or its kubelet is not reporting (NotReady).
    pub fn report_node_status(&self, name: &str) -> Result<()> {
        self.with(|st| {
            let mut node = st.node_named(name)?;
            if st.kubelet_up(name) {
                node.heartbeat = Some(st.wall());
                st.put_node(node);
            }
            Ok(())
        })
    }

    /// Sets a node's Ready condition, as a kubelet that stops or resumes reporting would.
    pub fn set_node_ready(&self, name: &str, ready: bool) -> Result<()> {
        self.with(|st| {
            let node = st.node_named(name)?;
            st.set_node_ready(node, ready);
            Ok(())
        })
    }

    /// Changes a Node directly, bypassing counters and faults (an admin's `kubectl`).
    pub fn edit_node(&self, name: &str, edit: impl FnOnce(&mut Node)) -> Result<Node> {
        self.with(|st| {
            let mut node = st.node_named(name)?;
            let before = node.clone();
            edit(&mut node);
            let stored = st.put_node(node);
            st.audit(&Write::Node {
                before: &before,
                after: &stored,
                by: Writer::Operator,
            });
            Ok(stored)
        })
    }

    // --- pods ---

    /// Adds a pod no simulated workload controls: unmanaged, static (mirror), a Job's, or a
    /// DaemonSet's that the test wants to place by hand. It must name an existing node.
    pub fn add_pod(&self, pod: Pod) -> Result<Pod> {
        self.with(|st| {
            cluster_api::validate_name(&pod.name).map_err(|e| Error::invalid(e.to_string()))?;
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

    /// Ends a pod's work, as a Job's pod or a batch pod ends: `Succeeded` (or `Failed`), no
    /// longer ready, still on its node (a finished pod stays until someone deletes it).
    pub fn finish_pod(&self, namespace: &str, name: &str, phase: PodPhase) -> Result<()> {
        if !matches!(phase, PodPhase::Succeeded | PodPhase::Failed) {
            return Err(Error::invalid(format!(
                "a pod finishes as Succeeded or Failed, not {phase:?}"
            )));
        }
        self.with(|st| {
            let key = (namespace.to_string(), name.to_string());
            let Some(mut sp) = st.pods.get(&key).cloned() else {
                return Err(Error::not_found("pods", name));
            };
            sp.pod.phase = phase;
            sp.pod.ready = false;
            st.put_pod(sp);
            Ok(())
        })
    }

    /// Sets a running pod's Ready condition, as a kubelet does when a readiness probe starts
    /// failing (or passes again): the pod stays Running, and budgets count it unhealthy.
    pub fn set_pod_ready(&self, namespace: &str, name: &str, ready: bool) -> Result<()> {
        self.with(|st| {
            let key = (namespace.to_string(), name.to_string());
            let Some(mut sp) = st.pods.get(&key).cloned() else {
                return Err(Error::not_found("pods", name));
            };
            if sp.pod.phase != PodPhase::Running {
                return Err(Error::invalid(format!(
                    "pod {namespace}/{name} is {:?}; only a running pod turns ready or unready",
                    sp.pod.phase
                )));
            }
            sp.pod.ready = ready;
            st.put_pod(sp);
            Ok(())
        })
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

    /// Creates or replaces a ConfigMap with this data; watches see its new digest.
    pub fn put_config_map(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
    ) -> ConfigObject {
        let data = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.with(|st| st.put_config(ConfigKind::ConfigMap, namespace, name, data))
    }

    /// Creates or replaces a Secret with this data (as its decoded values).
    pub fn put_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) -> ConfigObject {
        let data = data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.with(|st| st.put_config(ConfigKind::Secret, namespace, name, data))
    }

    /// Deletes a ConfigMap or Secret; whether it existed.
    pub fn delete_config(&self, kind: ConfigKind, namespace: &str, name: &str) -> bool {
        self.with(|st| st.delete_config(kind, namespace, name))
    }

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
        spec.validate().map_err(|e| Error::invalid(e.to_string()))?;
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
                    // The API server defaults a RollingUpdate StatefulSet's partition to 0,
                    // and kubectl judges its rollout by that.
                    _ => cluster_api::UpdateStrategy::RollingUpdate {
                        partition: match spec.kind {
                            WorkloadKind::StatefulSet => Some(spec.partition.unwrap_or(0)),
                            _ => None,
                        },
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
                config_refs: cluster_api::config_refs(spec.config_refs.iter().cloned()),
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

    /// Shows every write the cluster accepts from now on to `auditor`, as it is accepted
    /// (see [`Auditor`]).
    pub fn add_auditor(&self, auditor: std::sync::Arc<dyn Auditor>) {
        self.with(|st| st.auditors.push(auditor));
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
