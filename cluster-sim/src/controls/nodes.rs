//! Time, Nodes and Pods to set up and change.

use std::time::Duration;

use cluster_api::{Error, Node, Pod, PodPhase, Result, Timestamp};

use crate::audit::{Write, Writer};
use crate::state::{self, ClusterView, SimPod};
use crate::{SimCluster, machine_id_for};

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
}
