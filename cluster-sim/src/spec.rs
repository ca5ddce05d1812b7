//! Descriptions of simulated objects, shared by the builders and the scenario files.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::{ConfigRef, Toleration, WorkloadKind, WorkloadRef};
use serde::Deserialize;

use crate::budget::IntOrPercent;

/// A Deployment, StatefulSet or DaemonSet to simulate, with the pod template its controller
/// stamps out.
///
/// ```
/// use cluster_sim::WorkloadSpec;
/// let web = WorkloadSpec::deployment("prod", "web").replicas(4).pod_start_secs(5);
/// # let _ = web;
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// `Deployment`, `StatefulSet` or `DaemonSet`, spelled out (a scenario takes no short
    /// names); it says which of the fields below apply.
    pub kind: WorkloadKind,
    /// `metadata.namespace`: a lowercase RFC 1123 subdomain, or adding the workload fails.
    pub namespace: String,
    /// `metadata.name`, and the start of its pods' names: a lowercase RFC 1123 subdomain, or
    /// adding the workload fails.
    pub name: String,
    /// `spec.replicas` (Deployments and StatefulSets; 1 when unset).
    #[serde(default)]
    pub replicas: Option<i32>,
    /// Labels of the pods (and the selector); `app: <name>` when empty.
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// Only nodes with these labels run the pods.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// `spec.paused` (Deployments).
    #[serde(default)]
    pub paused: bool,
    /// `RollingUpdate` (the default), `Recreate` (Deployments) or `OnDelete` (StatefulSets,
    /// DaemonSets).
    #[serde(default)]
    pub strategy: Option<StrategyName>,
    /// StatefulSet `rollingUpdate.partition`.
    #[serde(default)]
    pub partition: Option<i32>,
    /// Deployment `rollingUpdate.maxSurge` (25% when unset).
    #[serde(default)]
    pub max_surge: Option<IntOrPercent>,
    /// `rollingUpdate.maxUnavailable` (25% for Deployments, 1 for DaemonSets when unset).
    #[serde(default)]
    pub max_unavailable: Option<IntOrPercent>,
    /// Deployment `spec.progressDeadlineSeconds` (600 when unset).
    #[serde(default)]
    pub progress_deadline_seconds: Option<i32>,
    /// How long a new pod takes from being bound to a node to passing readiness: the pace of
    /// a rollout.
    #[serde(default = "default_pod_start")]
    pub pod_start_seconds: u64,
    /// `terminationGracePeriodSeconds` of the pods: how long an evicted pod takes to go.
    #[serde(default = "default_grace")]
    pub termination_grace_period_seconds: i64,
    /// Whether the pods mount an `emptyDir` volume.
    #[serde(default)]
    pub empty_dir: bool,
    /// `spec.template.spec.tolerations`. DaemonSet pods also get the tolerations the
    /// DaemonSet controller adds to every pod it makes.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Annotations of the workload object itself.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// ConfigMaps its pods mount as a volume, and Secrets they read through `envFrom`.
    #[serde(default)]
    pub config_refs: Vec<ConfigRef>,
}

/// The name of an update strategy, as written in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum StrategyName {
    /// `RollingUpdate`: replace pods a few at a time; every kind's default.
    RollingUpdate,
    /// `Recreate`: remove every old pod, then make the new ones (Deployments only).
    Recreate,
    /// `OnDelete`: new pods only where old ones are deleted (StatefulSets and DaemonSets
    /// only).
    OnDelete,
}

fn default_pod_start() -> u64 {
    2
}

fn default_grace() -> i64 {
    30
}

// === impl WorkloadSpec ===

impl WorkloadSpec {
    /// A workload of `kind` with one replica and the defaults Kubernetes would fill in.
    pub fn new(kind: WorkloadKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        WorkloadSpec {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            replicas: None,
            pod_labels: BTreeMap::new(),
            node_selector: BTreeMap::new(),
            paused: false,
            strategy: None,
            partition: None,
            max_surge: None,
            max_unavailable: None,
            progress_deadline_seconds: None,
            pod_start_seconds: default_pod_start(),
            termination_grace_period_seconds: default_grace(),
            empty_dir: false,
            tolerations: Vec::new(),
            annotations: BTreeMap::new(),
            config_refs: Vec::new(),
        }
    }

    /// [`new`](Self::new) for a Deployment: one replica unless [`replicas`](Self::replicas)
    /// says otherwise.
    pub fn deployment(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(WorkloadKind::Deployment, namespace, name)
    }

    /// [`new`](Self::new) for a StatefulSet: one replica unless [`replicas`](Self::replicas)
    /// says otherwise, its pods named `<name>-0`, `<name>-1`, ...
    pub fn statefulset(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(WorkloadKind::StatefulSet, namespace, name)
    }

    /// [`new`](Self::new) for a DaemonSet: one pod on every node its `node_selector`
    /// admits; it takes no [`replicas`](Self::replicas).
    pub fn daemonset(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(WorkloadKind::DaemonSet, namespace, name)
    }

    /// With `spec.replicas`.
    pub fn replicas(mut self, n: i32) -> Self {
        self.replicas = Some(n);
        self
    }

    /// Paused (Deployments).
    pub fn paused(mut self) -> Self {
        self.paused = true;
        self
    }

    /// With this update strategy.
    pub fn strategy(mut self, strategy: StrategyName) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// With a StatefulSet partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// With `progressDeadlineSeconds`.
    pub fn progress_deadline(mut self, seconds: i32) -> Self {
        self.progress_deadline_seconds = Some(seconds);
        self
    }

    /// New pods pass readiness this many seconds after they are bound.
    pub fn pod_start_secs(mut self, seconds: u64) -> Self {
        self.pod_start_seconds = seconds;
        self
    }

    /// Pods take this long to terminate.
    pub fn grace_period(mut self, seconds: i64) -> Self {
        self.termination_grace_period_seconds = seconds;
        self
    }

    /// Pods mount an `emptyDir`.
    pub fn with_empty_dir(mut self) -> Self {
        self.empty_dir = true;
        self
    }

    /// Pods tolerate this taint (as in `tolerations:` of the pod template).
    pub fn tolerate(mut self, toleration: Toleration) -> Self {
        self.tolerations.push(toleration);
        self
    }

    /// Whose pods mount this ConfigMap as a volume.
    pub fn uses_config_map(mut self, name: impl Into<String>) -> Self {
        self.config_refs.push(ConfigRef::config_map(name));
        self
    }

    /// Whose pods take their environment from this Secret (`envFrom`).
    pub fn uses_secret(mut self, name: impl Into<String>) -> Self {
        self.config_refs.push(ConfigRef::secret(name));
        self
    }

    /// With one more pod label.
    pub fn pod_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pod_labels.insert(key.into(), value.into());
        self
    }

    /// Pods only on nodes with this label.
    pub fn on_nodes_labelled(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.node_selector.insert(key.into(), value.into());
        self
    }

    /// Which workload this describes.
    pub fn reference(&self) -> WorkloadRef {
        WorkloadRef::new(self.kind, &self.namespace, &self.name)
    }

    /// The pod labels, defaulted.
    pub(crate) fn effective_pod_labels(&self) -> BTreeMap<String, String> {
        if self.pod_labels.is_empty() {
            BTreeMap::from([("app".to_string(), self.name.clone())])
        } else {
            self.pod_labels.clone()
        }
    }

    pub(crate) fn pod_start(&self) -> Duration {
        Duration::from_secs(self.pod_start_seconds)
    }

    /// Checks what the API server's validation would check.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let strategy_ok = matches!(
            (self.kind, self.strategy),
            (_, None | Some(StrategyName::RollingUpdate))
                | (WorkloadKind::Deployment, Some(StrategyName::Recreate))
                | (
                    WorkloadKind::StatefulSet | WorkloadKind::DaemonSet,
                    Some(StrategyName::OnDelete)
                )
        );
        if !strategy_ok {
            return Err(format!(
                "{} {}/{}: strategy {:?} is not valid for a {}",
                self.kind, self.namespace, self.name, self.strategy, self.kind
            ));
        }
        if self.replicas.is_some_and(|r| r < 0) {
            return Err(format!(
                "{} {}/{}: replicas must not be negative",
                self.kind, self.namespace, self.name
            ));
        }
        if self.kind == WorkloadKind::DaemonSet && self.replicas.is_some() {
            return Err(format!(
                "DaemonSet {}/{}: a DaemonSet has no replicas; it runs one pod per node",
                self.namespace, self.name
            ));
        }
        cluster_api::validate_name(&self.name).map_err(|e| format!("{}: {e}", self.kind))?;
        cluster_api::validate_name(&self.namespace).map_err(|e| format!("namespace: {e}"))?;
        Ok(())
    }
}
