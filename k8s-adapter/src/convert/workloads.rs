//! Deployments, StatefulSets and DaemonSets, with the configuration their pod templates use.

use std::collections::BTreeMap;

use cluster_api::{
    Condition, ConfigRef, LabelSelector, UpdateStrategy, Workload, WorkloadKind, WorkloadStatus,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::fields::{map, selector, string};

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

/// A Deployment, with what the API server defaults filled in where unset: 1 replica, a
/// 600-second progress deadline, `RollingUpdate`.
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

/// A StatefulSet, with 1 replica where unset and its rolling update's `partition`, if any.
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

/// A DaemonSet: no replicas, its `*NumberScheduled` and `number*` counts mapped onto the
/// status the three kinds share ([`WorkloadStatus`]).
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
