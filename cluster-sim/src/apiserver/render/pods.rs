//! Pods, with the owner references and status the controllers and the kubelet write.

use std::collections::BTreeMap;

use cluster_api::{Pod, PodPhase, TolerationOperator};
use serde_json::{Map, Value, json};

use crate::state::State;

use super::meta::{derived_uid, metadata, time};
use super::nodes::node_address;

/// A Pod with one container.
pub(crate) fn pod(st: &State, p: &Pod) -> Value {
    let meta = pod_metadata(st, p);
    let spec = pod_spec(p);
    let status = pod_status(st, p);
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status})
}

/// `metadata`: the mirror annotation, the controller's reference, and the deletion.
fn pod_metadata(st: &State, p: &Pod) -> Map<String, Value> {
    let created = st
        .pods
        .get(&(p.namespace.clone(), p.name.clone()))
        .map_or(st.config.start_time, |sp| sp.created);
    let mut meta = metadata(
        &p.name,
        Some(&p.namespace),
        &p.uid,
        &p.resource_version,
        created,
        &p.labels,
        &BTreeMap::new(),
    );
    if p.mirror {
        meta.insert(
            "annotations".into(),
            json!({cluster_api::MIRROR_POD_ANNOTATION: "simulated"}),
        );
    }
    if let Some(owner) = &p.controller {
        let api_version = match owner.kind.as_str() {
            "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            _ => "v1",
        };
        let uid = owner_uid(st, p, &owner.kind, &owner.name);
        meta.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": api_version,
                "kind": owner.kind,
                "name": owner.name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }]),
        );
    }
    if let Some(deleted) = p.deletion_timestamp {
        meta.insert("deletionTimestamp".into(), json!(time(deleted)));
        meta.insert(
            "deletionGracePeriodSeconds".into(),
            json!(p.termination_grace_period_seconds),
        );
    }
    meta
}

/// `spec`: one pause container, with the pod's node, scratch volume and tolerations.
fn pod_spec(p: &Pod) -> Value {
    let mut spec = json!({
        "containers": [{
            "name": "main",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": p.termination_grace_period_seconds,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "schedulerName": "default-scheduler",
        "priority": 0,
    });
    if let Some(node) = &p.node_name {
        spec["nodeName"] = json!(node);
    }
    if p.empty_dir {
        spec["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
        spec["containers"][0]["volumeMounts"] =
            json!([{"name": "scratch", "mountPath": "/scratch"}]);
    }
    if !p.tolerations.is_empty() {
        spec["tolerations"] = tolerations(p);
    }
    spec
}

fn tolerations(p: &Pod) -> Value {
    Value::Array(
        p.tolerations
            .iter()
            .map(|t| {
                let mut o = Map::new();
                if !t.key.is_empty() {
                    o.insert("key".into(), json!(t.key));
                }
                o.insert(
                    "operator".into(),
                    json!(match t.operator {
                        TolerationOperator::Equal => "Equal",
                        TolerationOperator::Exists => "Exists",
                    }),
                );
                if !t.value.is_empty() {
                    o.insert("value".into(), json!(t.value));
                }
                if !t.effect.is_empty() {
                    o.insert("effect".into(), json!(t.effect));
                }
                Value::Object(o)
            })
            .collect(),
    )
}

/// `status`: the phase, the conditions, and the container's state once the pod is bound.
fn pod_status(st: &State, p: &Pod) -> Value {
    let phase = match p.phase {
        PodPhase::Pending => "Pending",
        PodPhase::Running => "Running",
        PodPhase::Succeeded => "Succeeded",
        PodPhase::Failed => "Failed",
        PodPhase::Unknown => "Unknown",
    };
    let started = time(st.config.start_time);
    let truth = |b: bool| if b { "True" } else { "False" };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": truth(p.node_name.is_some()), "lastProbeTime": null, "lastTransitionTime": started},
            {"type": "Ready", "status": truth(p.ready), "lastProbeTime": null, "lastTransitionTime": started},
            {"type": "ContainersReady", "status": truth(p.ready), "lastProbeTime": null, "lastTransitionTime": started},
        ],
        "qosClass": "BestEffort",
    });
    if let Some(node) = &p.node_name {
        status["hostIP"] = json!(node_address(st, node));
        status["startTime"] = json!(started);
        let running = matches!(p.phase, PodPhase::Running);
        status["containerStatuses"] = json!([{
            "name": "main",
            "ready": p.ready,
            "restartCount": 0,
            "image": "registry.k8s.io/pause:3.10",
            "imageID": "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
            "started": running,
            "state": if running { json!({"running": {"startedAt": started}}) } else { json!({"waiting": {"reason": "ContainerCreating"}}) },
        }]);
    }
    status
}

/// The uid of a pod's owner where the simulation has one (its workload; a ReplicaSet gets one
/// derived from the Deployment's).
fn owner_uid(st: &State, p: &Pod, kind: &str, name: &str) -> String {
    let owner = st
        .pods
        .get(&(p.namespace.clone(), p.name.clone()))
        .and_then(|sp| sp.owner.as_ref())
        .and_then(|r| st.workloads.get(r));
    match (owner, kind) {
        (Some(sw), "ReplicaSet") => derived_uid(&sw.w.uid, name),
        (Some(sw), _) => sw.w.uid.clone(),
        (None, _) => derived_uid("00000000-0000-4000-8000-000000000000", name),
    }
}
