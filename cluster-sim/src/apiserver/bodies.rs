//! Request bodies into what the simulation keeps: JSON, the three kinds of patch, Lease and
//! workload manifests.

use std::collections::BTreeMap;

use axum::body::Bytes;
use cluster_api::{Lease, WorkloadKind};
use serde_json::{Value, json};

use super::status::ApiError;

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))
}

pub(crate) fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn timestamp(v: &Value) -> Result<Option<cluster_api::Timestamp>, ApiError> {
    match v.as_str() {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("invalid time {s:?}: {e}"))),
    }
}

/// A Lease from its JSON (create and update bodies).
pub(crate) fn lease_from(v: &Value, namespace: &str) -> Result<Lease, ApiError> {
    let meta = &v["metadata"];
    let name = meta["name"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("Lease.coordination.k8s.io: metadata.name: Required value: name or generateName is required"))?;
    let spec = &v["spec"];
    let int = |v: &Value| v.as_i64().and_then(|n| i32::try_from(n).ok());
    Ok(Lease {
        namespace: namespace.to_string(),
        name: name.to_string(),
        resource_version: meta["resourceVersion"].as_str().unwrap_or("").to_string(),
        uid: meta["uid"].as_str().unwrap_or("").to_string(),
        labels: string_map(&meta["labels"]),
        annotations: string_map(&meta["annotations"]),
        holder_identity: spec["holderIdentity"].as_str().map(str::to_string),
        lease_duration_seconds: int(&spec["leaseDurationSeconds"]),
        acquire_time: timestamp(&spec["acquireTime"])?,
        renew_time: timestamp(&spec["renewTime"])?,
        lease_transitions: int(&spec["leaseTransitions"]),
    })
}

/// Applies a patch of any of the three kinds kubectl and client libraries send.
pub(crate) fn apply_patch(
    doc: &mut Value,
    content_type: &str,
    body: &Bytes,
) -> Result<(), ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let patch = parse_body(body)?;
    match media {
        // For the fields the simulation lets change (maps and scalars), a strategic merge
        // patch merges as a JSON merge patch does.
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            json_patch::merge(doc, &patch);
            Ok(())
        }
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(doc, &ops)
                .map_err(|e| ApiError::invalid(format!("the JSON patch does not apply: {e}")))
        }
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/strategic-merge-patch+json (got {other:?})"
        ))),
    }
}

/// Set and removed entries that turn `old` into `new`.
pub(crate) fn map_changes(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> BTreeMap<String, Option<String>> {
    let mut changes: BTreeMap<String, Option<String>> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        changes.insert(k.clone(), None);
    }
    changes
}

/// A Deployment, StatefulSet or DaemonSet from its manifest, as the simulation runs it: the
/// replicas, pod labels, grace period, node selector, tolerations, strategy and emptyDir
/// volumes are taken; how long pods take to start comes from the annotation
/// `cluster-sim.restart-manager.io/pod-start-seconds` (2 when absent).
pub(crate) fn workload_spec(
    kind: WorkloadKind,
    v: &Value,
    namespace: &str,
) -> Result<crate::WorkloadSpec, ApiError> {
    let meta = &v["metadata"];
    let spec = &v["spec"];
    let template = &spec["template"];
    let pod = &template["spec"];
    let strategy = match kind {
        WorkloadKind::Deployment => spec["strategy"]["type"].clone(),
        _ => spec["updateStrategy"]["type"].clone(),
    };
    let rolling = match kind {
        WorkloadKind::Deployment => &spec["strategy"]["rollingUpdate"],
        _ => &spec["updateStrategy"]["rollingUpdate"],
    };
    let pod_start = meta["annotations"]["cluster-sim.restart-manager.io/pod-start-seconds"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(2);
    let mut object = json!({
        "kind": kind.as_str(),
        "namespace": namespace,
        "name": meta["name"],
        "podLabels": template["metadata"]["labels"],
        "nodeSelector": pod["nodeSelector"],
        "paused": spec["paused"].as_bool().unwrap_or(false),
        "strategy": strategy,
        "partition": rolling["partition"],
        "maxSurge": rolling["maxSurge"],
        "maxUnavailable": rolling["maxUnavailable"],
        "progressDeadlineSeconds": spec["progressDeadlineSeconds"],
        "podStartSeconds": pod_start,
        "terminationGracePeriodSeconds": pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30),
        "emptyDir": pod["volumes"].as_array().is_some_and(|vs| vs.iter().any(|v| v["emptyDir"].is_object())),
        "tolerations": pod["tolerations"],
        "annotations": meta["annotations"],
    });
    if kind != WorkloadKind::DaemonSet {
        object["replicas"] = json!(spec["replicas"].as_i64().unwrap_or(1));
    }
    // Absent fields are left to the simulation's defaults.
    if let Some(map) = object.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(object).map_err(|e| {
        ApiError::invalid(format!(
            "{} {namespace}/{}: {e}",
            kind.as_str(),
            meta["name"].as_str().unwrap_or("")
        ))
    })
}
