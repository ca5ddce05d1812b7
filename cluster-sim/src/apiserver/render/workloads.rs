//! Deployments, StatefulSets, DaemonSets and the ReplicaSets behind Deployments, as the
//! API server returns them.

use std::collections::BTreeMap;

use cluster_api::{UpdateStrategy, Workload, WorkloadKind};
use serde_json::{Map, Value, json};

use crate::budget::IntOrPercent;
use crate::state::{REVISION_HISTORY_LIMIT, SimWorkload, State};
use cluster_api::ConfigKind;

use super::meta::{derived_uid, int_or_percent, metadata, string_map, time};

/// A Deployment, StatefulSet or DaemonSet.
pub(crate) fn workload(st: &State, w: &Workload) -> Value {
    let sw = st.workloads.get(&w.reference());
    let kind = w.kind.as_str();
    let mut meta = metadata(
        &w.name,
        Some(&w.namespace),
        &w.uid,
        &w.resource_version,
        st.config.start_time,
        &w.labels,
        &w.annotations,
    );
    meta.insert("generation".into(), json!(w.generation));
    if let Some(current) = sw.and_then(|sw| sw.history.last()) {
        meta.entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|a| a.insert(REVISION.into(), json!(current.number.to_string())));
    }
    let mut spec = json!({
        "selector": {"matchLabels": string_map(&w.selector.match_labels)},
        "template": pod_template(sw, &w.selector.match_labels, &w.template_annotations),
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
    });
    let s = &w.status;
    let conditions: Vec<Value> = s
        .conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.type_,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastUpdateTime": time(st.wall()),
                "lastTransitionTime": time(st.config.start_time),
            })
        })
        .collect();
    let status = match w.kind {
        WorkloadKind::Deployment => deployment(w, sw, &mut spec, conditions),
        WorkloadKind::StatefulSet => statefulset(w, &mut spec),
        WorkloadKind::DaemonSet => daemonset(w, sw, &mut spec),
    };
    json!({"kind": kind, "apiVersion": "apps/v1", "metadata": meta, "spec": spec, "status": status})
}

/// A Deployment's replicas, strategy and pause in `spec`; its `status`.
fn deployment(
    w: &Workload,
    sw: Option<&SimWorkload>,
    spec: &mut Value,
    conditions: Vec<Value>,
) -> Value {
    let s = &w.status;
    let replicas = w.replicas.unwrap_or(1);
    spec["replicas"] = json!(replicas);
    spec["paused"] = json!(w.paused);
    spec["progressDeadlineSeconds"] = json!(w.progress_deadline_seconds.unwrap_or(600));
    spec["strategy"] = match w.strategy {
        UpdateStrategy::Recreate => json!({"type": "Recreate"}),
        _ => {
            let (surge, unavailable) = sw.map_or((None, None), |sw: &SimWorkload| {
                (sw.spec.max_surge, sw.spec.max_unavailable)
            });
            json!({"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": int_or_percent(surge.unwrap_or(IntOrPercent::Percent(25))),
                "maxUnavailable": int_or_percent(unavailable.unwrap_or(IntOrPercent::Percent(25))),
            }})
        }
    };
    if w.paused {
        spec["paused"] = json!(true);
    }
    json!({
        "observedGeneration": s.observed_generation.unwrap_or(0),
        "replicas": s.replicas,
        "updatedReplicas": s.updated_replicas,
        "readyReplicas": s.ready_replicas,
        "availableReplicas": s.available_replicas,
        // Omitted at 0, as the API server's omitempty does.
        "unavailableReplicas": Some((s.replicas - s.available_replicas).max(0)).filter(|n| *n > 0),
        "conditions": conditions,
    })
}

/// A StatefulSet's replicas and update strategy in `spec`; its `status`.
fn statefulset(w: &Workload, spec: &mut Value) -> Value {
    let s = &w.status;
    spec["replicas"] = json!(w.replicas.unwrap_or(1));
    spec["serviceName"] = json!(w.name);
    spec["podManagementPolicy"] = json!("OrderedReady");
    spec["updateStrategy"] = match w.strategy {
        UpdateStrategy::OnDelete => json!({"type": "OnDelete"}),
        UpdateStrategy::RollingUpdate { partition } => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": partition.unwrap_or(0)}})
        }
        UpdateStrategy::Recreate => json!({"type": "RollingUpdate"}),
    };
    let mut status = json!({
        "observedGeneration": s.observed_generation.unwrap_or(0),
        "replicas": s.replicas,
        "readyReplicas": s.ready_replicas,
        "currentReplicas": s.replicas - s.updated_replicas.min(s.replicas)
            + if s.current_revision == s.update_revision { s.updated_replicas } else { 0 },
        "updatedReplicas": s.updated_replicas,
        "availableReplicas": s.available_replicas,
        "collisionCount": 0,
    });
    if let Some(r) = &s.current_revision {
        status["currentRevision"] = json!(r);
    }
    if let Some(r) = &s.update_revision {
        status["updateRevision"] = json!(r);
    }
    status
}

/// A DaemonSet's update strategy in `spec`; its `status`.
fn daemonset(w: &Workload, sw: Option<&SimWorkload>, spec: &mut Value) -> Value {
    let s = &w.status;
    spec["updateStrategy"] = match w.strategy {
        UpdateStrategy::OnDelete => json!({"type": "OnDelete"}),
        _ => {
            let unavailable = sw
                .and_then(|sw| sw.spec.max_unavailable)
                .unwrap_or(IntOrPercent::Int(1));
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": int_or_percent(unavailable), "maxSurge": 0}})
        }
    };
    json!({
        "observedGeneration": s.observed_generation.unwrap_or(0),
        "currentNumberScheduled": s.replicas,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": s.desired_number_scheduled,
        "numberReady": s.ready_replicas,
        "updatedNumberScheduled": s.updated_replicas,
        "numberAvailable": s.available_replicas,
        "numberUnavailable": (s.desired_number_scheduled - s.available_replicas).max(0),
    })
}

/// A workload's pod template: its labels and annotations, one container.
fn pod_template(
    sw: Option<&SimWorkload>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Value {
    let mut meta = Map::new();
    meta.insert("labels".into(), string_map(labels));
    if !annotations.is_empty() {
        meta.insert("annotations".into(), string_map(annotations));
    }
    let grace = sw.map_or(30, |sw| sw.spec.termination_grace_period_seconds);
    let mut spec = json!({
        "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10", "resources": {}}],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": grace,
    });
    if let Some(sw) = sw
        && !sw.spec.node_selector.is_empty()
    {
        spec["nodeSelector"] = string_map(&sw.spec.node_selector);
    }
    // ConfigMaps as volumes mounted at /etc/<name>, Secrets through envFrom.
    let refs = sw.map(|sw| sw.w.config_refs.as_slice()).unwrap_or_default();
    let (mut volumes, mut mounts, mut env_from) = (Vec::new(), Vec::new(), Vec::new());
    for r in refs {
        match r.kind {
            ConfigKind::ConfigMap => {
                volumes.push(
                    json!({"name": r.name, "configMap": {"name": r.name, "defaultMode": 420}}),
                );
                mounts.push(json!({"name": r.name, "mountPath": format!("/etc/{}", r.name)}));
            }
            ConfigKind::Secret => env_from.push(json!({"secretRef": {"name": r.name}})),
        }
    }
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
        spec["containers"][0]["volumeMounts"] = Value::Array(mounts);
    }
    if !env_from.is_empty() {
        spec["containers"][0]["envFrom"] = Value::Array(env_from);
    }
    json!({"metadata": meta, "spec": spec})
}

/// The annotation that numbers a Deployment's revisions, on it and on its ReplicaSets.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// A Deployment's ReplicaSets, as the deployment controller keeps them: one per revision in
/// its history, the current one scaled to the Deployment's replicas, old ones to the pods
/// they still have.
pub(crate) fn replica_sets(st: &State, sw: &SimWorkload) -> Vec<Value> {
    let w = &sw.w;
    let desired = w.replicas.unwrap_or(1);
    let mut counts: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    for key in st.pods_of(&w.reference()) {
        let sp = &st.pods[&key];
        if sp.pod.is_terminating() {
            continue;
        }
        let c = counts.entry(sp.revision.as_str()).or_default();
        c.0 += 1;
        c.1 += i32::from(sp.pod.ready);
    }
    sw.history
        .iter()
        .map(|rev| {
            let name = format!("{}-{}", w.name, rev.hash);
            let (replicas, ready) = counts.get(rev.hash.as_str()).copied().unwrap_or((0, 0));
            let current = rev.hash == sw.target_revision;
            let wanted = if current && !w.paused {
                desired
            } else {
                replicas
            };
            let mut labels = w.selector.match_labels.clone();
            labels.insert("pod-template-hash".into(), rev.hash.clone());
            let annotations = BTreeMap::from([
                (REVISION.to_string(), rev.number.to_string()),
                (
                    "deployment.kubernetes.io/desired-replicas".into(),
                    desired.to_string(),
                ),
                (
                    "deployment.kubernetes.io/max-replicas".into(),
                    desired.to_string(),
                ),
            ]);
            let mut meta = metadata(
                &name,
                Some(&w.namespace),
                &derived_uid(&w.uid, &name),
                &w.resource_version,
                rev.created,
                &labels,
                &annotations,
            );
            meta.insert("generation".into(), json!(1));
            meta.insert(
                "ownerReferences".into(),
                json!([{
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": w.name,
                    "uid": w.uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }]),
            );
            json!({
                "kind": "ReplicaSet",
                "apiVersion": "apps/v1",
                "metadata": meta,
                "spec": {
                    "replicas": wanted,
                    "selector": {"matchLabels": string_map(&labels)},
                    "template": pod_template(Some(sw), &labels, &rev.template_annotations),
                },
                "status": {
                    "replicas": replicas,
                    "fullyLabeledReplicas": replicas,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "observedGeneration": 1,
                },
            })
        })
        .collect()
}
