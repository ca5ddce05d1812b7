use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The annotation the kubelet puts on the API mirror of a static pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The taint the node lifecycle controller puts on a cordoned node (with effect
/// `NoSchedule`); pods that tolerate it are still scheduled there.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";
/// The taint on a node whose `Ready` condition is not `True`.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The taint on a node whose kubelet stopped reporting.
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// What a drain needs to know about a Pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`; a StatefulSet's replacement pod has the same name but a new uid.
    #[serde(default)]
    pub uid: String,
    /// `metadata.resourceVersion`.
    #[serde(default)]
    pub resource_version: String,
    /// `spec.nodeName`; `None` while the pod is not yet scheduled.
    #[serde(default)]
    pub node_name: Option<String>,
    /// The owner reference with `controller: true`, if any.
    #[serde(default)]
    pub controller: Option<OwnerRef>,
    /// Whether this is the mirror of a static pod (it carries [`MIRROR_POD_ANNOTATION`]).
    #[serde(default)]
    pub mirror: bool,
    /// Whether the pod mounts an `emptyDir` volume, whose data an eviction destroys.
    #[serde(default)]
    pub empty_dir: bool,
    /// `status.phase`.
    pub phase: PodPhase,
    /// Whether the `Ready` condition is `True`.
    #[serde(default)]
    pub ready: bool,
    /// `spec.terminationGracePeriodSeconds` (30 when unset, as in Kubernetes).
    pub termination_grace_period_seconds: i64,
    /// `metadata.deletionTimestamp`: set once the pod is terminating.
    #[serde(default)]
    pub deletion_timestamp: Option<Timestamp>,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `spec.tolerations`: which node taints the pod accepts. A pod that tolerates
    /// [`UNSCHEDULABLE_TAINT`] is scheduled onto cordoned nodes, so a drain that evicts it
    /// may see it (or its replacement) come straight back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

/// One entry of `spec.tolerations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// The taint key it matches; empty with `Exists` matches every key.
    #[serde(default)]
    pub key: String,
    /// `Equal` (the default) or `Exists`.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// The taint value it matches under `Equal`.
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; empty matches every effect.
    #[serde(default)]
    pub effect: String,
}

/// How a [`Toleration`] compares values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TolerationOperator {
    /// The taint's value must equal the toleration's.
    #[default]
    Equal,
    /// Any value (and, with an empty key, any taint).
    Exists,
}

/// A pod's `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    /// Accepted, not yet running (unscheduled, or pulling images).
    Pending,
    /// Bound to a node with at least one container running.
    Running,
    /// All containers exited successfully and will not restart.
    Succeeded,
    /// All containers exited and at least one failed.
    Failed,
    /// The node stopped reporting.
    Unknown,
}

/// The controlling owner of a pod (`ownerReferences[?(@.controller)]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnerRef {
    /// `kind`, e.g. `ReplicaSet`, `StatefulSet`, `DaemonSet`, `Job`.
    pub kind: String,
    /// The owner's `name`; it lives in the pod's own namespace.
    pub name: String,
}

/// Options of an eviction (the `deleteOptions` of the Eviction body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictOptions {
    /// Override the pod's termination grace period.
    pub grace_period_seconds: Option<i64>,
    /// Evict only the pod with this uid (`deleteOptions.preconditions.uid`): a pod of the same
    /// name made since (a StatefulSet's replacement, bound elsewhere) is not the one asked
    /// for, and the answer is [`EvictionOutcome::Gone`].
    pub uid: Option<String>,
}

/// What the Eviction API answered.
///
/// Transport and permission failures are [`Error`](crate::Error)s; these are the answers a
/// drain acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionOutcome {
    /// 200/201: the pod is now terminating.
    Evicted,
    /// 429: a PodDisruptionBudget does not allow this disruption right now. Normal during a
    /// drain; retry with backoff.
    Blocked {
        /// The server's explanation, naming the budget.
        message: String,
        /// How long the server asked us to wait, if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// 404: the pod is already gone, which is what an eviction wants.
    Gone,
    /// 500 for a misconfiguration that retrying cannot fix, such as a pod covered by more than
    /// one PodDisruptionBudget.
    Failed {
        /// The server's explanation.
        message: String,
    },
}

// === impl Toleration ===

impl Toleration {
    /// Tolerates every taint (`operator: Exists` with no key), as many agents' pods do.
    pub fn everything() -> Self {
        Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        }
    }

    /// Tolerates any value of the taint `key` with `effect`.
    pub fn exists(key: impl Into<String>, effect: impl Into<String>) -> Self {
        Toleration {
            key: key.into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: effect.into(),
        }
    }

    /// Whether it matches a taint (the scheduler's `ToleratesTaint`).
    pub fn matches(&self, key: &str, value: &str, effect: &str) -> bool {
        if !self.effect.is_empty() && self.effect != effect {
            return false;
        }
        if !self.key.is_empty() && self.key != key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => !self.key.is_empty() && self.value == value,
        }
    }
}

// === impl Pod ===

impl Pod {
    /// A running, ready pod with no owner, not yet bound to a node.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Pod {
            namespace: namespace.into(),
            name: name.into(),
            uid: String::new(),
            resource_version: String::new(),
            node_name: None,
            controller: None,
            mirror: false,
            empty_dir: false,
            phase: PodPhase::Running,
            ready: true,
            termination_grace_period_seconds: 30,
            deletion_timestamp: None,
            labels: BTreeMap::new(),
            tolerations: Vec::new(),
        }
    }

    /// Bound to `node`.
    pub fn on(mut self, node: impl Into<String>) -> Self {
        self.node_name = Some(node.into());
        self
    }

    /// Controlled by an owner of this kind and name.
    pub fn owned_by(mut self, kind: impl Into<String>, name: impl Into<String>) -> Self {
        self.controller = Some(OwnerRef {
            kind: kind.into(),
            name: name.into(),
        });
        self
    }

    /// The mirror of a static pod.
    pub fn mirror(mut self) -> Self {
        self.mirror = true;
        self
    }

    /// Mounting an `emptyDir` volume.
    pub fn with_empty_dir(mut self) -> Self {
        self.empty_dir = true;
        self
    }

    /// In this phase; `Succeeded`/`Failed` pods are also not ready.
    pub fn phase(mut self, phase: PodPhase) -> Self {
        self.phase = phase;
        if !matches!(phase, PodPhase::Running) {
            self.ready = false;
        }
        self
    }

    /// Not passing its readiness probe.
    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }

    /// With this termination grace period.
    pub fn grace_period(mut self, seconds: i64) -> Self {
        self.termination_grace_period_seconds = seconds;
        self
    }

    /// With one more label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// With one more toleration.
    pub fn tolerate(mut self, toleration: Toleration) -> Self {
        self.tolerations.push(toleration);
        self
    }

    /// Whether the pod accepts a taint, as the scheduler decides it.
    pub fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        self.tolerations
            .iter()
            .any(|t| t.matches(key, value, effect))
    }

    /// Whether the scheduler may still place this pod on a cordoned node (it tolerates
    /// `node.kubernetes.io/unschedulable:NoSchedule`, as every DaemonSet pod does).
    pub fn tolerates_cordon(&self) -> bool {
        self.tolerates(UNSCHEDULABLE_TAINT, "", "NoSchedule")
    }

    /// Whether the pod is terminating (has a deletion timestamp).
    pub fn is_terminating(&self) -> bool {
        self.deletion_timestamp.is_some()
    }

    /// Whether the pod has finished for good (`Succeeded` or `Failed`).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, PodPhase::Succeeded | PodPhase::Failed)
    }

    /// Whether its controller is a DaemonSet.
    pub fn is_daemonset_pod(&self) -> bool {
        self.controller
            .as_ref()
            .is_some_and(|o| o.kind == "DaemonSet")
    }
}

impl fmt::Display for Pod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Which pods a list or watch covers. The default covers every pod in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFilter {
    /// Only pods bound to this node (field selector `spec.nodeName`).
    pub node: Option<String>,
    /// Only pods in this namespace.
    pub namespace: Option<String>,
    /// Only pods whose labels match.
    pub labels: Option<crate::LabelSelector>,
}

// === impl PodFilter ===

impl PodFilter {
    /// Every pod bound to `node`.
    pub fn on_node(node: impl Into<String>) -> Self {
        PodFilter {
            node: Some(node.into()),
            ..Default::default()
        }
    }

    /// Whether `pod` is covered.
    pub fn matches(&self, pod: &Pod) -> bool {
        self.node
            .as_ref()
            .is_none_or(|n| pod.node_name.as_ref() == Some(n))
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| &pod.namespace == ns)
            && self.labels.as_ref().is_none_or(|s| s.matches(&pod.labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_match_as_the_scheduler_matches_them() {
        let cordon = |p: &Pod| p.tolerates_cordon();
        let pod = Pod::new("ns", "p");
        assert!(!cordon(&pod), "no tolerations, no cordoned nodes");
        assert!(cordon(&pod.clone().tolerate(Toleration::everything())));
        assert!(cordon(&pod.clone().tolerate(Toleration::exists(
            UNSCHEDULABLE_TAINT,
            "NoSchedule"
        ))));
        assert!(cordon(
            &pod.clone()
                .tolerate(Toleration::exists(UNSCHEDULABLE_TAINT, ""))
        ));
        assert!(!cordon(
            &pod.clone()
                .tolerate(Toleration::exists(UNSCHEDULABLE_TAINT, "NoExecute"))
        ));
        assert!(!cordon(
            &pod.clone()
                .tolerate(Toleration::exists(NOT_READY_TAINT, "NoSchedule"))
        ));
        // `Equal` with the taint's (empty) value matches; an empty key with `Equal` does not.
        let equal = Toleration {
            key: UNSCHEDULABLE_TAINT.into(),
            ..Default::default()
        };
        assert!(cordon(&pod.clone().tolerate(equal)));
        assert!(!cordon(&pod.tolerate(Toleration::default())));
    }
}
