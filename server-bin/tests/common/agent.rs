//! A test agent per fake node of a real cluster (`scripts/cluster`'s KWOK nodes): it plays the
//! node's Zincati with the project's own FleetLock client (restartctl's
//! [`restartctl::fleetlock::send`]) over HTTP, and the node's reboot against the real API
//! server, in the order a real machine takes:
//!
//! 1. the kubelet stops: the label KWOK selects on goes, so KWOK stops heartbeating the node;
//!    after `--node-monitor-grace-period` the node lifecycle controller marks it Ready=Unknown
//!    and taints it unreachable ([`Reboot::Long`]), or it comes back before that and looks
//!    Ready all along ([`Reboot::Short`]);
//! 2. Zincati starts and says steady-state while the Node still shows the old bootID, before
//!    the kubelet has reported;
//! 3. the kubelet starts: the new bootID on the status, the label back (KWOK takes the node
//!    again and reports it Ready), and the node's pods Ready again (a kubelet restarts their
//!    containers; KWOK leaves pods that the controller marked unready as they are).
//!
//! Every wait is on a condition, bounded by [`AGENT_DEADLINE`] (plus the grace period for a
//! long reboot). An agent dropped with its node down (a failed test) brings the node back and
//! uncordons it, so that the next test on the same cluster finds it whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use restartctl::fleetlock::{Answer, Endpoint, send};
use serde_json::json;

/// How long the agent waits for any one thing the cluster does.
pub const AGENT_DEADLINE: Duration = Duration::from_secs(120);

/// The label KWOK selects the nodes it manages on (`scripts/cluster up`).
pub const KWOK_LABEL: &str = "kwok.x-k8s.io/node";

/// The KWOK nodes the scheduler may place pods on (not cordoned).
pub async fn schedulable_nodes(client: &kube::Client) -> Vec<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .list(&ListParams::default().labels(&format!("{KWOK_LABEL}=fake")))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| {
            !n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        })
        .filter_map(|n| n.metadata.name)
        .collect()
}

/// The nodes `app`'s pods in `namespace` run on, terminating pods left out.
pub async fn nodes_running(client: &kube::Client, namespace: &str, app: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect()
}

/// How long a reboot takes, measured against the node monitor's grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Back before the grace period: the Node shows Ready=True (from before) throughout.
    Short,
    /// Longer than the grace period: the node lifecycle controller marks it Ready=Unknown and
    /// taints it `node.kubernetes.io/unreachable` before it comes back.
    Long,
}

/// One fake node's Zincati and kubelet.
#[derive(Clone)]
pub struct NodeAgent {
    nodes: Api<Node>,
    pods: Api<Pod>,
    /// The Node's name.
    pub node: String,
    /// What Zincati sends as `client_params.id`.
    pub id: String,
    /// Zincati's `fleet_lock.base_url`.
    pub url: String,
    /// The FleetLock group.
    pub group: String,
    /// Whether the node is down (between [`NodeAgent::shut_down`] and
    /// [`NodeAgent::kubelet_starts`]), shared by the agent's clones.
    down: Arc<AtomicBool>,
}

/// What the Node shows about itself, as the agent reads it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// `status.nodeInfo.bootID`.
    pub boot_id: String,
    /// The Ready condition's status: `True`, `False` or `Unknown`.
    pub ready: String,
    /// Whether it carries the node lifecycle controller's `unreachable` taint.
    pub unreachable: bool,
    /// `spec.unschedulable`.
    pub cordoned: bool,
}

impl NodeAgent {
    /// The agent of `node`, whose Zincati speaks to `url` as a member of `group`.
    pub async fn new(client: &kube::Client, node: &str, url: &str, group: &str) -> Self {
        let nodes: Api<Node> = Api::all(client.clone());
        let n = nodes.get(node).await.expect("the agent's node");
        let machine_id = n
            .status
            .and_then(|s| s.node_info)
            .map(|i| i.machine_id)
            .unwrap_or_default();
        let id = fleetlock_core::zincati_id(&machine_id)
            .unwrap_or_else(|e| panic!("{node} has no usable machine id: {e}"));
        NodeAgent {
            nodes,
            pods: Api::all(client.clone()),
            node: node.to_string(),
            id,
            url: url.to_string(),
            group: group.to_string(),
            down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same agent speaking to another server (another replica).
    pub fn via(&self, url: &str) -> Self {
        let mut agent = self.clone();
        agent.url = url.to_string();
        agent
    }

    async fn fleetlock(&self, endpoint: Endpoint) -> Answer {
        send(&self.url, endpoint, &self.id, &self.group)
            .await
            .unwrap_or_else(|e| panic!("{}'s Zincati: {e}", self.node))
    }

    /// `pre-reboot`, once.
    pub async fn pre_reboot(&self) -> Answer {
        self.fleetlock(Endpoint::PreReboot).await
    }

    /// `steady-state`, once.
    pub async fn steady_state(&self) -> Answer {
        self.fleetlock(Endpoint::SteadyState).await
    }

    /// Zincati with an update pending: `pre-reboot` until the server says 200 (Zincati
    /// retries refusals on a period; here every 500 ms), bounded by `deadline`. Returns the
    /// refusals' kinds, in order.
    pub async fn until_approved(&self, deadline: Duration) -> Vec<String> {
        let started = tokio::time::Instant::now();
        let mut refusals = Vec::new();
        loop {
            let answer = self.pre_reboot().await;
            if answer.allowed() {
                return refusals;
            }
            let kind = answer.kind.clone().unwrap_or_else(|| answer.body.clone());
            if refusals.last() != Some(&kind) {
                refusals.push(kind);
            }
            assert!(
                started.elapsed() < deadline,
                "{}'s pre-reboot was not approved within {deadline:?}: {refusals:?}, last {answer:?}",
                self.node
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The Node as it shows now.
    pub async fn view(&self) -> NodeView {
        let n = self.nodes.get(&self.node).await.expect("the agent's node");
        let status = n.status.unwrap_or_default();
        NodeView {
            boot_id: status.node_info.map(|i| i.boot_id).unwrap_or_default(),
            ready: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.status)
                .unwrap_or_default(),
            unreachable: n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| t.iter().any(|t| t.key == "node.kubernetes.io/unreachable")),
            cordoned: n.spec.and_then(|s| s.unschedulable).unwrap_or(false),
        }
    }

    /// Waits (bounded) until the Node shows what `want` asks for.
    pub async fn until(&self, what: &str, deadline: Duration, want: impl Fn(&NodeView) -> bool) {
        let started = tokio::time::Instant::now();
        loop {
            let view = self.view().await;
            if want(&view) {
                return;
            }
            assert!(
                started.elapsed() < deadline,
                "{}: {what} did not happen within {deadline:?} (now {view:?})",
                self.node
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The machine goes down: KWOK stops heartbeating the node. A long reboot waits
    /// (bounded by `grace` and [`AGENT_DEADLINE`]) until the node lifecycle controller has
    /// marked the node Ready=Unknown and tainted it. Returns the bootID from before.
    pub async fn shut_down(&self, reboot: Reboot, grace: Duration) -> String {
        let before = self.view().await;
        self.down.store(true, Ordering::SeqCst);
        self.label(None).await;
        if reboot == Reboot::Long {
            self.until(
                "Ready=Unknown with the unreachable taint",
                grace + AGENT_DEADLINE,
                |v| v.ready == "Unknown" && v.unreachable,
            )
            .await;
        }
        before.boot_id
    }

    /// Zincati starts on the new boot and says steady-state at once: before the kubelet has
    /// reported, so the Node still shows `old_boot` (checked before and after the call).
    pub async fn zincati_starts(&self, old_boot: &str) -> Answer {
        assert_eq!(
            self.view().await.boot_id,
            old_boot,
            "{}: the kubelet reported before Zincati started",
            self.node
        );
        let answer = self.steady_state().await;
        assert_eq!(self.view().await.boot_id, old_boot);
        answer
    }

    /// The kubelet starts: it reports a new bootID, KWOK takes the node back (Ready), and the
    /// node's pods that the controller marked unready meanwhile are Ready again. Returns the
    /// new bootID.
    pub async fn kubelet_starts(&self) -> String {
        let boot = new_boot_id();
        self.nodes
            .patch_status(
                &self.node,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"nodeInfo": {"bootID": boot}}})),
            )
            .await
            .expect("the new bootID");
        self.label(Some("fake")).await;
        self.down.store(false, Ordering::SeqCst);
        self.until("Ready=True after the boot", AGENT_DEADLINE, |v| {
            v.ready == "True" && v.boot_id == boot
        })
        .await;
        self.pods_ready_again().await;
        boot
    }

    /// The whole reboot in a real machine's order; returns Zincati's steady-state answer.
    pub async fn reboot(&self, reboot: Reboot, grace: Duration) -> Answer {
        let old = self.shut_down(reboot, grace).await;
        let answer = self.zincati_starts(&old).await;
        self.kubelet_starts().await;
        answer
    }

    async fn label(&self, value: Option<&str>) {
        self.nodes
            .patch(
                &self.node,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {KWOK_LABEL: value}}})),
            )
            .await
            .expect("the KWOK label");
    }

    async fn pods_ready_again(&self) {
        let on_node = ListParams::default()
            .fields(&format!("spec.nodeName={},status.phase=Running", self.node));
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        for pod in self.pods.list(&on_node).await.expect("the node's pods") {
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                continue;
            }
            let (Some(ns), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else {
                continue;
            };
            let conditions = json!({"status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            ]}});
            let api: Api<Pod> = Api::namespaced(self.pods.clone().into_client(), &ns);
            // A pod deleted meanwhile needs nothing.
            let _ = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Strategic(conditions),
                )
                .await;
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        if Arc::strong_count(&self.down) > 1 || !std::thread::panicking() {
            return;
        }
        // A failed test: the node back (new bootID, KWOK's label) and uncordoned.
        let (nodes, node, down) = (
            self.nodes.clone(),
            self.node.clone(),
            self.down.load(Ordering::SeqCst),
        );
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Runtime::new() else {
                return;
            };
            runtime.block_on(async {
                let params = PatchParams::default();
                if down {
                    let boot = json!({"status": {"nodeInfo": {"bootID": new_boot_id()}}});
                    let _ = nodes
                        .patch_status(&node, &params, &Patch::Merge(boot))
                        .await;
                }
                let back = json!({"metadata": {"labels": {KWOK_LABEL: "fake"}},
                                  "spec": {"unschedulable": false}});
                let _ = nodes.patch(&node, &params, &Patch::Merge(back)).await;
            });
        })
        .join();
    }
}

/// A UUID-shaped bootID, as the kernel's `/proc/sys/kernel/random/boot_id`.
fn new_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let n = jiff::Timestamp::now().as_nanosecond() as u128;
            format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                (n >> 64) as u32,
                (n >> 48) as u16,
                (n >> 36) as u16 & 0xfff,
                (n >> 24) as u16 & 0xfff,
                n as u64 & 0xffff_ffff_ffff
            )
        })
}
