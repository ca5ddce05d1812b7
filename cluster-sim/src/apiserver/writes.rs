//! Writes to objects that exist: update, patch, delete and evict, through the simulation's
//! ClusterApi.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use cluster_api::{
    ClusterApi, EvictOptions, EvictionOutcome, NodePatch, WorkloadKind, WorkloadRef,
};
use serde_json::{Value, json};

use super::bodies::{apply_patch, lease_from, map_changes, parse_body, string_map, timestamp};
use super::discovery::{Resource, resource_label};
use super::reads::{namespace_json, namespaces};
use super::render;
use super::request::{Target, json_response};
use super::shared::Shared;
use super::status::ApiError;

pub(crate) async fn replace(
    shared: &Shared,
    target: &Target,
    name: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    if target.resource != Resource::Leases {
        return Err(ApiError::method_not_allowed(format!(
            "{} cannot be updated through the simulated API; patch it",
            resource_label(target.resource)
        )));
    }
    let v = parse_body(body)?;
    let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
    let mut lease = lease_from(&v, &namespace)?;
    if lease.name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            lease.name
        )));
    }
    let Some(stored) = shared.sim.lease(&namespace, name) else {
        // Leases are created by an update too (the registry allows create on update),
        // whatever resourceVersion the body carries: 201, as kube-apiserver answers.
        lease.resource_version.clear();
        let written = ClusterApi::create_lease(&shared.sim, &lease).await?;
        let json = shared.sim.with(|st| render::lease(st, &written));
        return Ok(json_response(StatusCode::CREATED, &json));
    };
    if lease.resource_version.is_empty() {
        // An unconditional update: the API server takes it over whatever is stored.
        lease.resource_version = stored.resource_version;
    }
    let written = ClusterApi::replace_lease(&shared.sim, &lease).await?;
    let json = shared.sim.with(|st| render::lease(st, &written));
    Ok(json_response(StatusCode::OK, &json))
}

pub(crate) async fn patch(
    shared: &Shared,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
    match target.resource {
        Resource::Nodes => patch_node(shared, name, content_type, body).await,
        Resource::Workloads(kind) => {
            patch_workload(shared, kind, &namespace, name, content_type, body).await
        }
        Resource::Leases => patch_lease(shared, &namespace, name, content_type, body).await,
        Resource::Events => patch_event(shared, name, body),
        _ => Err(ApiError::method_not_allowed(format!(
            "{} cannot be patched through the simulated API",
            resource_label(target.resource)
        ))),
    }
}

/// A Node patch: only labels, annotations and `spec.unschedulable` change.
async fn patch_node(
    shared: &Shared,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let node = shared
        .sim
        .node(name)
        .ok_or_else(|| ApiError::not_found("nodes", name))?;
    let before = shared.sim.with(|st| render::node(st, &node));
    let mut after = before.clone();
    apply_patch(&mut after, content_type, body)?;
    let meta = &after["metadata"];
    let mut patch = NodePatch {
        annotations: map_changes(&node.annotations, &string_map(&meta["annotations"])),
        labels: map_changes(&node.labels, &string_map(&meta["labels"])),
        ..Default::default()
    };
    let unschedulable = after["spec"]["unschedulable"].as_bool().unwrap_or(false);
    if unschedulable != node.unschedulable {
        patch.unschedulable = Some(unschedulable);
    }
    if let Some(rv) = meta["resourceVersion"].as_str()
        && rv != node.resource_version
    {
        patch.resource_version = Some(rv.to_string());
    }
    let written = ClusterApi::patch_node(&shared.sim, name, &patch).await?;
    let json = shared.sim.with(|st| render::node(st, &written));
    Ok(json_response(StatusCode::OK, &json))
}

/// A workload patch: only the pod template's annotations may change.
async fn patch_workload(
    shared: &Shared,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let r = WorkloadRef::new(kind, namespace, name);
    let w = shared
        .sim
        .workload(&r)
        .ok_or_else(|| ApiError::not_found(&resource_label(Resource::Workloads(kind)), name))?;
    let before = shared.sim.with(|st| render::workload(st, &w));
    let mut after = before.clone();
    apply_patch(&mut after, content_type, body)?;
    let template = string_map(&after["spec"]["template"]["metadata"]["annotations"]);
    let changes = map_changes(&w.template_annotations, &template);
    let unsupported = {
        let mut a = after.clone();
        let mut b = before.clone();
        for v in [&mut a, &mut b] {
            v["spec"]["template"]["metadata"]["annotations"] = Value::Null;
            v["metadata"]["resourceVersion"] = Value::Null;
        }
        a != b
    };
    if unsupported {
        return Err(ApiError::invalid(
            "the simulated API changes only spec.template.metadata.annotations of a \
             workload (what `kubectl rollout restart` patches)",
        ));
    }
    let written = ClusterApi::patch_template_annotations(&shared.sim, &r, &changes).await?;
    let json = shared.sim.with(|st| render::workload(st, &written));
    Ok(json_response(StatusCode::OK, &json))
}

/// A Lease patch: the patched object replaces the stored one.
async fn patch_lease(
    shared: &Shared,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let lease = shared
        .sim
        .lease(namespace, name)
        .ok_or_else(|| ApiError::not_found("leases.coordination.k8s.io", name))?;
    let mut doc = shared.sim.with(|st| render::lease(st, &lease));
    apply_patch(&mut doc, content_type, body)?;
    let patched = lease_from(&doc, namespace)?;
    let written = ClusterApi::replace_lease(&shared.sim, &patched).await?;
    let json = shared.sim.with(|st| render::lease(st, &written));
    Ok(json_response(StatusCode::OK, &json))
}

/// An Event patch: a series' count and last time, as a recorder sends for a repeat.
fn patch_event(shared: &Shared, name: &str, body: &Bytes) -> Result<Response, ApiError> {
    let patch = parse_body(body)?;
    let seq = name
        .rsplit_once('.')
        .and_then(|(_, s)| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| ApiError::not_found("events", name))?;
    let count = patch["series"]["count"].as_u64();
    let at = timestamp(&patch["series"]["lastObservedTime"])?;
    let json = shared.sim.with(|st| {
        let wall = st.wall();
        let (s, e) = st.events.iter_mut().find(|(s, _)| *s == seq)?;
        if let Some(count) = count {
            e.count = u32::try_from(count).unwrap_or(u32::MAX);
        }
        e.time = Some(at.unwrap_or(wall));
        let (s, e) = (*s, e.clone());
        Some(render::event(st, s, &e, name))
    });
    json.map(|j| json_response(StatusCode::OK, &j))
        .ok_or_else(|| ApiError::not_found("events", name))
}

pub(crate) async fn delete(
    shared: &Shared,
    target: &Target,
    name: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
    match target.resource {
        Resource::Leases => {
            let precondition = if body.is_empty() {
                None
            } else {
                parse_body(body)?["preconditions"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string)
            };
            ClusterApi::delete_lease(&shared.sim, &namespace, name, precondition.as_deref())
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "group": "coordination.k8s.io", "kind": "leases"}}),
            ))
        }
        Resource::Pods => {
            let grace = if body.is_empty() {
                None
            } else {
                parse_body(body)?["gracePeriodSeconds"].as_i64()
            };
            let json = shared.sim.with(|st| {
                let key = (namespace.clone(), name.to_string());
                st.pods.get(&key)?;
                st.terminate_pod(&key, grace);
                Some(
                    st.pods
                        .get(&key)
                        .map(|sp| render::pod(st, &sp.pod))
                        .unwrap_or_else(|| json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})),
                )
            });
            json.map(|j| json_response(StatusCode::OK, &j))
                .ok_or_else(|| ApiError::not_found("pods", name))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} cannot be deleted through the simulated API",
            resource_label(target.resource)
        ))),
    }
}

pub(crate) async fn evict(
    shared: &Shared,
    namespace: &str,
    name: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let v = if body.is_empty() {
        Value::Null
    } else {
        parse_body(body)?
    };
    let options = EvictOptions {
        grace_period_seconds: v["deleteOptions"]["gracePeriodSeconds"].as_i64(),
        uid: v["deleteOptions"]["preconditions"]["uid"]
            .as_str()
            .map(String::from),
    };
    // A uid precondition that names another pod: the API server's 409.
    if let Some(uid) = &options.uid
        && let Some(pod) = shared.sim.pod(namespace, name)
        && &pod.uid != uid
    {
        return Err(ApiError::conflict_message(format!(
            "Operation cannot be fulfilled on Pod \"{name}\": the UID in the precondition \
             ({uid}) does not match the UID in record ({}). The object might have been deleted \
             and then recreated",
            pod.uid
        )));
    }
    match ClusterApi::evict_pod(&shared.sim, namespace, name, &options).await {
        Ok(EvictionOutcome::Evicted) => Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )),
        Ok(EvictionOutcome::Blocked { message, .. }) => Err(ApiError::disruption_budget(&message)),
        Ok(EvictionOutcome::Gone) => Err(ApiError::not_found("pods", name)),
        Ok(EvictionOutcome::Failed { message }) => Err(ApiError::internal_bare(message)),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a namespace and everything the simulation keeps in it: workloads (whose pods are
/// deleted after them), budgets, Leases, pods of no workload.
pub(crate) async fn delete_namespace(shared: &Shared, ns: &str) -> Result<Response, ApiError> {
    shared.sim.with(|st| {
        if !namespaces(st).contains(ns) {
            return Err(ApiError::not_found("namespaces", ns));
        }
        let workloads: Vec<WorkloadRef> = st
            .workloads
            .keys()
            .filter(|r| r.namespace == ns)
            .cloned()
            .collect();
        for r in &workloads {
            st.remove_workload(r);
        }
        st.budgets.retain(|(n, _), _| n != ns);
        let leases: Vec<(String, String)> =
            st.leases.keys().filter(|(n, _)| n == ns).cloned().collect();
        for key in &leases {
            st.remove_lease(key);
        }
        let pods: Vec<(String, String)> = st
            .pods
            .iter()
            .filter(|((n, _), sp)| n == ns && sp.owner.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for key in &pods {
            st.terminate_pod(key, None);
        }
        st.namespaces.remove(ns);
        let mut json = namespace_json(st, ns);
        json["status"]["phase"] = json!("Terminating");
        Ok(json_response(StatusCode::OK, &json))
    })
}
