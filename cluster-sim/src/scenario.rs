//! Scenario files: a cluster described in YAML.
//!
//! ```yaml
//! nodes:
//!   - name: worker            # with count: worker-1 .. worker-3
//!     count: 3
//!     labels: {fleetlock.group: workers}
//!   - name: control-plane
//!     machineID: 0123456789abcdef0123456789abcdef
//!     unschedulable: true
//! workloads:
//!   - kind: Deployment
//!     namespace: shop
//!     name: web
//!     replicas: 3
//!     podStartSeconds: 5
//! budgets:
//!   - namespace: shop
//!     name: web
//!     selector: {matchLabels: {app: web}}
//!     minAvailable: 2
//! pods:
//!   - namespace: default
//!     name: debug-shell       # no controller: a drain refuses it by default
//!     node: worker-1
//! ```

use std::collections::BTreeMap;

use cluster_api::{Node, OwnerRef, Pod, PodPhase};
use jiff::Timestamp;
use serde::Deserialize;

use crate::budget::Budget;
use crate::spec::WorkloadSpec;

/// A whole simulated cluster, as read from a scenario file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// The wall-clock time the simulation starts at.
    #[serde(default)]
    pub start_time: Option<Timestamp>,
    /// The nodes, each entry expanded by its `count` ([`Scenario::expand_nodes`]); their
    /// names must be valid object names and unique.
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Deployments, StatefulSets and DaemonSets; their pods are created and started.
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// PodDisruptionBudgets.
    #[serde(default)]
    pub budgets: Vec<Budget>,
    /// Pods that no simulated workload controls (unmanaged pods, static pods, finished jobs).
    #[serde(default)]
    pub pods: Vec<PodSpec>,
    /// Users of the API endpoint and their bearer tokens.
    #[serde(default)]
    pub users: Vec<crate::access::UserSpec>,
    /// RBAC rules: who may do what through the API endpoint.
    #[serde(default)]
    pub access: Vec<crate::access::AccessRule>,
}

/// One node, or `count` nodes named `<name>-1` .. `<name>-<count>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// The name, or the name prefix when `count` is set.
    pub name: String,
    /// How many nodes this entry stands for.
    #[serde(default)]
    pub count: Option<u32>,
    /// `status.nodeInfo.machineID`; derived from the name when unset.
    #[serde(default, rename = "machineID")]
    pub machine_id: Option<String>,
    /// `metadata.labels`, the same on every node the entry stands for (the reboot group
    /// label goes here).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`, the same on every node the entry stands for.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Cordoned.
    #[serde(default)]
    pub unschedulable: bool,
    /// Ready (the default).
    #[serde(default = "yes")]
    pub ready: bool,
}

/// A pod no simulated workload controls.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSpec {
    /// `metadata.namespace`; not checked.
    pub namespace: String,
    /// `metadata.name`: a lowercase RFC 1123 subdomain, unique in its namespace, or loading
    /// the scenario fails.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// Its controller, e.g. `{kind: Job, name: backup}`.
    #[serde(default)]
    pub owner: Option<OwnerRef>,
    /// The mirror of a static pod.
    #[serde(default)]
    pub mirror: bool,
    /// Mounts an `emptyDir`.
    #[serde(default)]
    pub empty_dir: bool,
    /// Phase (Running when unset).
    #[serde(default)]
    pub phase: Option<PodPhase>,
    /// `metadata.labels`, what budgets' selectors match; none when unset.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `terminationGracePeriodSeconds` (30 when unset).
    #[serde(default)]
    pub termination_grace_period_seconds: Option<i64>,
    /// Never finishes terminating once deleted.
    #[serde(default)]
    pub stuck: bool,
    /// `spec.tolerations`.
    #[serde(default)]
    pub tolerations: Vec<cluster_api::Toleration>,
}

fn yes() -> bool {
    true
}

/// A scenario file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The YAML is malformed or does not have the expected shape.
    #[error("invalid scenario: {0}")]
    Parse(String),
    /// The YAML is well-formed but describes something a cluster would refuse.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

// === impl Scenario ===

impl Scenario {
    /// Parses a scenario from YAML. Errors name the line and the field.
    pub fn from_yaml(yaml: &str) -> Result<Self, ScenarioError> {
        serde_saphyr::from_str(yaml).map_err(|e| ScenarioError::Parse(e.to_string()))
    }

    /// The nodes, with `count` entries expanded.
    pub fn expand_nodes(&self) -> Vec<Node> {
        let mut out = Vec::new();
        for spec in &self.nodes {
            let names: Vec<String> = match spec.count {
                Some(n) => (1..=n).map(|i| format!("{}-{i}", spec.name)).collect(),
                None => vec![spec.name.clone()],
            };
            for name in names {
                let machine_id = match (&spec.machine_id, spec.count) {
                    (Some(id), None) => id.clone(),
                    _ => machine_id_for(&name),
                };
                let mut node = Node::new(name).machine_id(machine_id);
                node.labels = spec.labels.clone();
                node.annotations = spec.annotations.clone();
                node.unschedulable = spec.unschedulable;
                node.ready = spec.ready;
                out.push(node);
            }
        }
        out
    }
}

// === impl PodSpec ===

impl PodSpec {
    pub(crate) fn to_pod(&self) -> Pod {
        let mut pod = Pod::new(&self.namespace, &self.name).on(&self.node);
        pod.controller = self.owner.clone();
        pod.mirror = self.mirror;
        pod.empty_dir = self.empty_dir;
        pod.labels = self.labels.clone();
        pod.tolerations = self.tolerations.clone();
        if let Some(phase) = self.phase {
            pod = pod.phase(phase);
        }
        if let Some(grace) = self.termination_grace_period_seconds {
            pod = pod.grace_period(grace);
        }
        pod
    }
}

/// A deterministic 32-hex-digit machine id for a node name, for fleets too big to list.
pub fn machine_id_for(name: &str) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in name.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3 ^ 0xff);
    }
    format!("{a:016x}{b:016x}")
}
