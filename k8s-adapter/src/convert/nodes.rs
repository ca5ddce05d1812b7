//! Nodes, pods and disruption budgets: what a drain reads.

use cluster_api::{
    DisruptionBudget, Node, OwnerRef, Pod, PodPhase, Toleration, TolerationOperator,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::fields::{map, selector, string};

// === nodes ===

/// A Node, as read (only the fields the cores use were decoded).
pub fn node(n: crate::slim::SlimNode) -> Node {
    let status = n.status.unwrap_or_default();
    let info = status.node_info.unwrap_or_default();
    let condition = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready");
    let ready = condition.as_ref().is_some_and(|c| c.status == "True");
    let heartbeat = condition.and_then(|c| c.last_heartbeat_time);
    let addresses = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        .map(|a| a.address)
        .collect();
    let spec = n.spec.unwrap_or_default();
    let mut pod_cidrs = spec.pod_cidrs.unwrap_or_default();
    if pod_cidrs.is_empty() {
        pod_cidrs.extend(spec.pod_cidr);
    }
    Node {
        name: string(n.metadata.name),
        uid: string(n.metadata.uid),
        resource_version: string(n.metadata.resource_version),
        machine_id: info.machine_id,
        boot_id: info.boot_id,
        ready,
        heartbeat,
        unschedulable: spec.unschedulable.unwrap_or(false),
        labels: map(n.metadata.labels),
        annotations: map(n.metadata.annotations),
        addresses,
        pod_cidrs,
    }
}

// === pods ===

/// A Pod, trimmed to what a drain needs.
pub fn pod(p: core::Pod) -> Pod {
    let spec = p.spec.unwrap_or_default();
    let status = p.status.unwrap_or_default();
    let annotations = map(p.metadata.annotations);
    let controller = p
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .find(|o| o.controller == Some(true))
        .map(|o| OwnerRef {
            kind: o.kind,
            name: o.name,
        });
    let phase = match status.phase.as_deref() {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Pending") => PodPhase::Pending,
        _ => PodPhase::Unknown,
    };
    Pod {
        namespace: string(p.metadata.namespace),
        name: string(p.metadata.name),
        uid: string(p.metadata.uid),
        resource_version: string(p.metadata.resource_version),
        node_name: spec.node_name,
        controller,
        mirror: annotations.contains_key(cluster_api::MIRROR_POD_ANNOTATION),
        empty_dir: spec
            .volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.empty_dir.is_some()),
        phase,
        ready: status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        termination_grace_period_seconds: spec.termination_grace_period_seconds.unwrap_or(30),
        deletion_timestamp: p.metadata.deletion_timestamp.map(|t| t.0),
        labels: map(p.metadata.labels),
        tolerations: spec
            .tolerations
            .unwrap_or_default()
            .into_iter()
            .map(|t| Toleration {
                key: string(t.key),
                operator: match t.operator.as_deref() {
                    Some("Exists") => TolerationOperator::Exists,
                    _ => TolerationOperator::Equal,
                },
                value: string(t.value),
                effect: string(t.effect),
            })
            .collect(),
    }
}

// === disruption budgets ===

/// A PodDisruptionBudget with its status; a budget the disruption controller has not
/// evaluated yet (no status) allows nothing, as the Eviction API treats it.
pub fn disruption_budget(b: PodDisruptionBudget) -> DisruptionBudget {
    let status = b.status.unwrap_or_default();
    let spec = b.spec.unwrap_or_default();
    let always_allow_unhealthy =
        spec.unhealthy_pod_eviction_policy.as_deref() == Some("AlwaysAllow");
    DisruptionBudget {
        namespace: string(b.metadata.namespace),
        name: string(b.metadata.name),
        selector: spec.selector.map(|s| selector(Some(s))),
        expected_pods: status.expected_pods,
        desired_healthy: status.desired_healthy,
        current_healthy: status.current_healthy,
        disruptions_allowed: status.disruptions_allowed,
        always_allow_unhealthy,
    }
}
