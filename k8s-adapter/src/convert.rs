//! Between k8s-openapi's objects and the plain types of `cluster-api`: only what the cores
//! use is kept, which is what keeps a 5,000-node cache small.

use std::collections::BTreeMap;

use cluster_api::{
    Condition, ConfigKind, ConfigObject, ConfigRef, DisruptionBudget, Event, EventType,
    LabelSelector, Lease, Node, ObjectRef, Operator, OwnerRef, Pod, PodPhase, Requirement, Secret,
    Toleration, TolerationOperator, UpdateStrategy, Workload, WorkloadKind, WorkloadStatus,
    config_digest,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

fn map(m: Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default()
}

fn string(s: Option<String>) -> String {
    s.unwrap_or_default()
}

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

// === leases ===

/// A Lease.
pub fn lease(l: coordination::Lease) -> Lease {
    let spec = l.spec.unwrap_or_default();
    Lease {
        namespace: string(l.metadata.namespace),
        name: string(l.metadata.name),
        resource_version: string(l.metadata.resource_version),
        uid: string(l.metadata.uid),
        labels: map(l.metadata.labels),
        annotations: map(l.metadata.annotations),
        holder_identity: spec.holder_identity,
        lease_duration_seconds: spec.lease_duration_seconds,
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        lease_transitions: spec.lease_transitions,
    }
}

/// The Lease to write; an empty resourceVersion is left out (creates).
pub fn to_lease(l: &Lease) -> coordination::Lease {
    let non_empty = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    coordination::Lease {
        metadata: meta::ObjectMeta {
            name: Some(l.name.clone()),
            namespace: Some(l.namespace.clone()),
            resource_version: (!l.resource_version.is_empty()).then(|| l.resource_version.clone()),
            labels: non_empty(&l.labels),
            annotations: non_empty(&l.annotations),
            ..Default::default()
        },
        spec: Some(coordination::LeaseSpec {
            holder_identity: l.holder_identity.clone(),
            lease_duration_seconds: l.lease_duration_seconds,
            acquire_time: l.acquire_time.map(meta::MicroTime),
            renew_time: l.renew_time.map(meta::MicroTime),
            lease_transitions: l.lease_transitions,
            ..Default::default()
        }),
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

// === workloads ===

fn selector(s: Option<meta::LabelSelector>) -> LabelSelector {
    let s = s.unwrap_or_default();
    LabelSelector {
        match_labels: map(s.match_labels),
        match_expressions: s
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                let operator = match r.operator.as_str() {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    _ => return None,
                };
                Some(Requirement {
                    key: r.key,
                    operator,
                    values: r.values.unwrap_or_default(),
                })
            })
            .collect(),
    }
}

/// The three workload condition types have the same fields but are distinct types.
macro_rules! conditions {
    ($list:expr) => {
        $list
            .unwrap_or_default()
            .into_iter()
            .map(|c| Condition {
                type_: c.type_,
                status: c.status,
                reason: string(c.reason),
                message: string(c.message),
            })
            .collect()
    };
}

fn base(kind: WorkloadKind, m: meta::ObjectMeta) -> Workload {
    Workload {
        kind,
        namespace: string(m.namespace),
        name: string(m.name),
        uid: string(m.uid),
        resource_version: string(m.resource_version),
        generation: m.generation.unwrap_or(0),
        labels: map(m.labels),
        annotations: map(m.annotations),
        replicas: None,
        paused: false,
        strategy: UpdateStrategy::RollingUpdate { partition: None },
        progress_deadline_seconds: None,
        selector: LabelSelector::default(),
        template_annotations: BTreeMap::new(),
        config_refs: Vec::new(),
        status: WorkloadStatus::default(),
    }
}

fn template_annotations(t: core::PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata.and_then(|m| m.annotations).unwrap_or_default()
}

/// The ConfigMaps and Secrets a pod template mounts (volumes, projected volumes) or reads
/// (`env` and `envFrom` of its containers and init containers). Image pull secrets are not
/// configuration the pods run with, and are left out.
fn config_refs(t: &core::PodTemplateSpec) -> Vec<ConfigRef> {
    let Some(spec) = &t.spec else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(c) = &v.config_map {
            found.push(ConfigRef::config_map(&c.name));
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
            found.push(ConfigRef::secret(s));
        }
        for p in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(c) = &p.config_map {
                found.push(ConfigRef::config_map(&c.name));
            }
            if let Some(s) = &p.secret {
                found.push(ConfigRef::secret(&s.name));
            }
        }
    }
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for e in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
            if let Some(k) = &e.config_map_key_ref {
                found.push(ConfigRef::config_map(&k.name));
            }
            if let Some(k) = &e.secret_key_ref {
                found.push(ConfigRef::secret(&k.name));
            }
        }
        for e in c.env_from.iter().flatten() {
            if let Some(r) = &e.config_map_ref {
                found.push(ConfigRef::config_map(&r.name));
            }
            if let Some(r) = &e.secret_ref {
                found.push(ConfigRef::secret(&r.name));
            }
        }
    }
    cluster_api::config_refs(found)
}

/// A Deployment.
pub fn deployment(d: Deployment) -> Workload {
    let mut w = base(WorkloadKind::Deployment, d.metadata);
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    w.replicas = Some(spec.replicas.unwrap_or(1));
    w.paused = spec.paused.unwrap_or(false);
    w.strategy = match spec.strategy.and_then(|s| s.type_).as_deref() {
        Some("Recreate") => UpdateStrategy::Recreate,
        _ => UpdateStrategy::RollingUpdate { partition: None },
    };
    w.progress_deadline_seconds = Some(spec.progress_deadline_seconds.unwrap_or(600));
    w.selector = selector(Some(spec.selector));
    w.config_refs = config_refs(&spec.template);
    w.template_annotations = template_annotations(spec.template);
    w.status = WorkloadStatus {
        observed_generation: status.observed_generation,
        replicas: status.replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        desired_number_scheduled: 0,
        current_revision: None,
        update_revision: None,
        conditions: conditions!(status.conditions),
    };
    w
}

/// A StatefulSet.
pub fn statefulset(s: StatefulSet) -> Workload {
    let mut w = base(WorkloadKind::StatefulSet, s.metadata);
    let spec = s.spec.unwrap_or_default();
    let status = s.status.unwrap_or_default();
    w.replicas = Some(spec.replicas.unwrap_or(1));
    w.strategy = match spec.update_strategy {
        Some(u) if u.type_.as_deref() == Some("OnDelete") => UpdateStrategy::OnDelete,
        Some(u) => UpdateStrategy::RollingUpdate {
            partition: u.rolling_update.and_then(|r| r.partition),
        },
        None => UpdateStrategy::RollingUpdate { partition: None },
    };
    w.selector = selector(Some(spec.selector));
    w.config_refs = config_refs(&spec.template);
    w.template_annotations = template_annotations(spec.template);
    w.status = WorkloadStatus {
        observed_generation: status.observed_generation,
        replicas: status.replicas,
        updated_replicas: status.updated_replicas.unwrap_or(0),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        desired_number_scheduled: 0,
        current_revision: status.current_revision,
        update_revision: status.update_revision,
        conditions: conditions!(status.conditions),
    };
    w
}

/// A DaemonSet.
pub fn daemonset(d: DaemonSet) -> Workload {
    let mut w = base(WorkloadKind::DaemonSet, d.metadata);
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    w.strategy = match spec.update_strategy.and_then(|u| u.type_).as_deref() {
        Some("OnDelete") => UpdateStrategy::OnDelete,
        _ => UpdateStrategy::RollingUpdate { partition: None },
    };
    w.selector = selector(Some(spec.selector));
    w.config_refs = config_refs(&spec.template);
    w.template_annotations = template_annotations(spec.template);
    w.status = WorkloadStatus {
        observed_generation: status.observed_generation,
        replicas: status.current_number_scheduled,
        updated_replicas: status.updated_number_scheduled.unwrap_or(0),
        ready_replicas: status.number_ready,
        available_replicas: status.number_available.unwrap_or(0),
        desired_number_scheduled: status.desired_number_scheduled,
        current_revision: None,
        update_revision: None,
        conditions: conditions!(status.conditions),
    };
    w
}

// === configuration ===

/// A ConfigMap, as the digest of its `data` and `binaryData`.
pub fn config_map(c: core::ConfigMap) -> ConfigObject {
    let data = c.data.unwrap_or_default();
    let binary = c.binary_data.unwrap_or_default();
    let entries = data
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .chain(binary.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())));
    config_object(ConfigKind::ConfigMap, c.metadata, config_digest(entries))
}

/// A Secret, as the digest of its (decoded) `data`; the data itself is dropped here.
pub fn secret(s: core::Secret) -> ConfigObject {
    let data = s.data.unwrap_or_default();
    let entries = data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice()));
    config_object(ConfigKind::Secret, s.metadata, config_digest(entries))
}

/// A Secret with its data, for the service's own Secrets ([`ClusterApi::get_secret`]).
///
/// [`ClusterApi::get_secret`]: cluster_api::ClusterApi::get_secret
pub fn secret_data(s: core::Secret) -> Secret {
    Secret {
        namespace: string(s.metadata.namespace),
        name: string(s.metadata.name),
        resource_version: string(s.metadata.resource_version),
        labels: map(s.metadata.labels),
        data: s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
    }
}

/// The Secret to create: type `Opaque`, immutable (the service never changes one it made).
pub fn to_secret(s: &Secret) -> core::Secret {
    core::Secret {
        metadata: meta::ObjectMeta {
            name: Some(s.name.clone()),
            namespace: Some(s.namespace.clone()),
            labels: (!s.labels.is_empty()).then(|| s.labels.clone()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        immutable: Some(true),
        data: Some(
            s.data
                .iter()
                .map(|(k, v)| (k.clone(), k8s_openapi::ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

fn config_object(kind: ConfigKind, m: meta::ObjectMeta, digest: String) -> ConfigObject {
    ConfigObject {
        kind,
        namespace: string(m.namespace),
        name: string(m.name),
        resource_version: string(m.resource_version),
        digest,
    }
}

// === events ===

/// The apiVersion of the kinds we write Events about.
pub fn api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Lease" => "coordination.k8s.io/v1",
        _ => "v1",
    }
}

/// The namespace an Event about `regarding` lives in (cluster-scoped objects: `default`).
pub fn event_namespace(regarding: &ObjectRef) -> String {
    regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into())
}

/// A core/v1 Event to create, in the shape the events.k8s.io API writes: `eventTime` to the
/// microsecond (so a history within one second keeps its order), the reporting controller
/// and instance, and `involvedObject.uid` (which `kubectl describe` filters on). The
/// deprecated `firstTimestamp`/`lastTimestamp`/`count` are left to the API server; repeats
/// are counted in `series` (see [`series_patch`]).
pub fn to_event(e: &Event, now: jiff::Timestamp) -> core::Event {
    let time = e.time.unwrap_or(now);
    core::Event {
        metadata: meta::ObjectMeta {
            generate_name: Some(format!("{}.", e.regarding.name)),
            namespace: Some(event_namespace(&e.regarding)),
            ..Default::default()
        },
        involved_object: core::ObjectReference {
            api_version: Some(api_version(&e.regarding.kind).into()),
            kind: Some(e.regarding.kind.clone()),
            name: Some(e.regarding.name.clone()),
            namespace: e.regarding.namespace.clone(),
            uid: e.regarding.uid.clone(),
            ..Default::default()
        },
        reason: Some(e.reason.clone()),
        message: Some(e.note.clone()),
        type_: Some(match e.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        action: Some(e.action.clone()),
        reporting_component: Some(e.reporting_controller.clone()),
        reporting_instance: Some(e.reporting_instance.clone()),
        source: Some(core::EventSource {
            component: Some(e.reporting_controller.clone()),
            host: None,
        }),
        event_time: Some(meta::MicroTime(time)),
        ..Default::default()
    }
}

/// The merge patch that records the `count`th occurrence of an Event at `at`.
pub fn series_patch(count: u32, at: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({
        "series": {
            "count": count,
            "lastObservedTime": meta::MicroTime(at),
        }
    })
}

/// An Event as read back: the last time it happened and how often, from its series, or
/// from the deprecated fields of Events written the old way (the kubelet's, say).
pub fn event(e: core::Event) -> Event {
    let o = e.involved_object;
    let (count, last) = match &e.series {
        Some(series) => (
            u32::try_from(series.count.unwrap_or(1)).unwrap_or(1).max(1),
            series.last_observed_time.as_ref().map(|t| t.0),
        ),
        None => (
            u32::try_from(e.count.unwrap_or(1)).unwrap_or(1).max(1),
            None,
        ),
    };
    Event {
        regarding: ObjectRef {
            kind: string(o.kind),
            namespace: o.namespace,
            name: string(o.name),
            uid: o.uid.filter(|u| !u.is_empty()),
        },
        type_: if e.type_.as_deref() == Some("Warning") {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: string(e.reason),
        action: string(e.action),
        note: string(e.message),
        reporting_controller: e
            .reporting_component
            .filter(|c| !c.is_empty())
            .or(e.source.and_then(|s| s.component))
            .unwrap_or_default(),
        reporting_instance: string(e.reporting_instance),
        time: last
            .or(e.event_time.map(|t| t.0))
            .or(e.last_timestamp.map(|t| t.0))
            .or(e.first_timestamp.map(|t| t.0)),
        count,
    }
}
