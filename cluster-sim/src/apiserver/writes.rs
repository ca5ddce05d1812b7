//! Writes: create, update, patch, delete and evict, through the simulation's ClusterApi.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use cluster_api::{
    ClusterApi, Event, EventType, EvictOptions, EvictionOutcome, NodePatch, ObjectRef, WorkloadRef,
};
use serde_json::{Value, json};

use super::bodies::*;
use super::discovery::*;
use super::reads::*;
use super::render;
use super::request::*;
use super::shared::Shared;
use super::status::ApiError;
use crate::access::API_AUDIENCE;
use crate::faults::Operation;

pub(crate) async fn create(
    shared: &Shared,
    caller: &Caller,
    target: &Target,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let v = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        match target.resource {
            Resource::SubjectAccessReviews | Resource::SelfSubjectAccessReviews => {
                super::pb::access_review(body)
                    .ok_or_else(|| ApiError::bad_request("unreadable protobuf access review"))?
            }
            _ => {
                return Err(ApiError::unsupported_media_type(
                    "the simulated API reads protobuf only for access reviews; send JSON",
                ));
            }
        }
    } else {
        parse_body(body)?
    };
    let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
    match target.resource {
        Resource::Leases => {
            let mut lease = lease_from(&v, &namespace)?;
            lease.resource_version.clear();
            let written = ClusterApi::create_lease(&shared.sim, &lease).await?;
            let json = shared.sim.with(|st| render::lease(st, &written));
            Ok(json_response(StatusCode::CREATED, &json))
        }
        Resource::Secrets => {
            let secret = secret_from(&v, &namespace)?;
            let written = ClusterApi::create_secret(&shared.sim, &secret).await?;
            let json = shared.sim.with(|st| render::secret(st, &written));
            Ok(json_response(StatusCode::CREATED, &json))
        }
        Resource::Events => create_event(shared, &v, &namespace).await,
        Resource::Namespaces => {
            let name = v["metadata"]["name"]
                .as_str()
                .ok_or_else(|| ApiError::invalid("Namespace: metadata.name: Required value"))?
                .to_string();
            cluster_api::validate_name(&name).map_err(|e| ApiError::invalid(e.to_string()))?;
            shared.sim.with(|st| {
                if namespaces(st).contains(&name) {
                    return Err(ApiError::from(cluster_api::Error::already_exists(
                        "namespaces",
                        &name,
                    )));
                }
                st.namespaces.insert(name.clone());
                Ok(json_response(
                    StatusCode::CREATED,
                    &namespace_json(st, &name),
                ))
            })
        }
        Resource::Workloads(kind) => {
            let spec = workload_spec(kind, &v, &namespace)?;
            let written = shared.sim.add_workload(spec)?;
            let json = shared.sim.with(|st| render::workload(st, &written));
            Ok(json_response(StatusCode::CREATED, &json))
        }
        Resource::Budgets => {
            let meta = &v["metadata"];
            let budget: crate::Budget = serde_json::from_value(json!({
                "namespace": namespace,
                "name": meta["name"],
                "selector": v["spec"]["selector"],
                "minAvailable": v["spec"]["minAvailable"],
                "maxUnavailable": v["spec"]["maxUnavailable"],
                "alwaysAllowUnhealthy":
                    v["spec"]["unhealthyPodEvictionPolicy"].as_str() == Some("AlwaysAllow"),
            }))
            .map_err(|e| ApiError::invalid(format!("PodDisruptionBudget: {e}")))?;
            shared.sim.add_budget(budget.clone());
            let json = shared.sim.with(|st| render::budget(st, &budget));
            Ok(json_response(StatusCode::CREATED, &json))
        }
        Resource::TokenReviews => {
            let token = v["spec"]["token"].as_str().unwrap_or("");
            let audiences: Vec<String> = v["spec"]["audiences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let mut review = v.clone();
            // The administrator's token is for the API server alone.
            let who = if token == &*shared.token {
                authenticate(shared, token)
                    .filter(|_| audiences.is_empty() || audiences.iter().any(|a| a == API_AUDIENCE))
                    .map(|c| crate::access::Authenticated {
                        user: c.user,
                        uid: String::new(),
                        groups: c.groups,
                        audiences: vec![API_AUDIENCE.to_string()],
                    })
            } else {
                shared.sim.access().authenticate(token, &audiences)
            };
            review["status"] = match who {
                Some(who) => {
                    let mut user = json!({"username": who.user, "groups": who.groups});
                    if !who.uid.is_empty() {
                        user["uid"] = json!(who.uid);
                    }
                    json!({"authenticated": true, "user": user, "audiences": who.audiences})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            Ok(json_response(StatusCode::CREATED, &review))
        }
        Resource::SubjectAccessReviews | Resource::SelfSubjectAccessReviews => {
            let spec = &v["spec"];
            let (user, groups) = if target.resource == Resource::SubjectAccessReviews {
                let groups: Vec<String> = spec["groups"]
                    .as_array()
                    .map(|g| {
                        g.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                (spec["user"].as_str().unwrap_or("").to_string(), groups)
            } else {
                (caller.user.clone(), caller.groups.clone())
            };
            let a = &spec["resourceAttributes"];
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            // A non-resource URL (`/metrics`) is asked about as a resource named by its path:
            // a rule grants it with `resources: ["/metrics"]` (RBAC's `nonResourceURLs`).
            let what = match spec["nonResourceAttributes"].as_object() {
                Some(n) if !a.is_object() => crate::access::Attributes {
                    verb: n.get("verb").map(text).unwrap_or_default(),
                    resource: n.get("path").map(text).unwrap_or_default(),
                    ..Default::default()
                },
                _ => crate::access::Attributes {
                    verb: text(&a["verb"]),
                    group: text(&a["group"]),
                    resource: text(&a["resource"]),
                    subresource: text(&a["subresource"]),
                    namespace: text(&a["namespace"]),
                    name: text(&a["name"]),
                },
            };
            let (allowed, reason) = shared.sim.access().allows(&user, &groups, &what);
            let mut review = v.clone();
            review["status"] = json!({"allowed": allowed, "reason": reason});
            Ok(json_response(StatusCode::CREATED, &review))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} cannot be created through the simulated API",
            resource_label(target.resource)
        ))),
    }
}

/// A core/v1 Event (or an events.k8s.io one) as the simulation records it.
pub(crate) async fn create_event(
    shared: &Shared,
    v: &Value,
    namespace: &str,
) -> Result<Response, ApiError> {
    let involved = if v["regarding"].is_object() {
        &v["regarding"]
    } else {
        &v["involvedObject"]
    };
    let reason = v["reason"].as_str().unwrap_or("").to_string();
    if reason.is_empty() {
        return Err(ApiError::invalid(
            "Event \"\" is invalid: reason: Required value",
        ));
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let regarding = ObjectRef {
        kind: text(&involved["kind"]),
        namespace: involved["namespace"].as_str().map(str::to_string),
        name: text(&involved["name"]),
        uid: involved["uid"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_string),
    };
    let event = Event {
        regarding,
        type_: if v["type"] == "Warning" {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason,
        action: text(&v["action"]),
        note: v["note"]
            .as_str()
            .or(v["message"].as_str())
            .unwrap_or("")
            .to_string(),
        reporting_controller: v["reportingController"]
            .as_str()
            .or(v["reportingComponent"].as_str())
            .filter(|s| !s.is_empty())
            .or(v["source"]["component"].as_str())
            .unwrap_or("")
            .to_string(),
        reporting_instance: v["reportingInstance"].as_str().unwrap_or("").to_string(),
        time: timestamp(&v["eventTime"])?
            .or(timestamp(&v["lastTimestamp"])?)
            .or(timestamp(&v["firstTimestamp"])?),
        count: 1,
    };
    // core/v1 validation: with an eventTime, the note is bounded.
    if event.time.is_some()
        && !v["eventTime"].is_null()
        && event.note.len() > cluster_api::NOTE_LIMIT
    {
        let meta = &v["metadata"];
        let name = meta["name"]
            .as_str()
            .or(meta["generateName"].as_str())
            .unwrap_or("");
        return Err(crate::state::note_too_long(name).into());
    }
    shared.sim.enter(Operation::RecordEvent).await?;
    let json = shared.sim.with(|st| {
        let seq = st.push_event(event);
        st.events
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(s, e)| render::event(st, *s, e, &event_name(e, *s)))
    });
    let _ = namespace;
    json.map(|j| json_response(StatusCode::CREATED, &j))
        .ok_or_else(|| ApiError::invalid("the event was not recorded"))
}

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
    match target.resource {
        Resource::Nodes => {
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
        Resource::Workloads(kind) => {
            let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
            let r = WorkloadRef::new(kind, &namespace, name);
            let w = shared
                .sim
                .workload(&r)
                .ok_or_else(|| ApiError::not_found(&resource_label(target.resource), name))?;
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
        Resource::Leases => {
            let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
            let lease = shared
                .sim
                .lease(&namespace, name)
                .ok_or_else(|| ApiError::not_found("leases.coordination.k8s.io", name))?;
            let mut doc = shared.sim.with(|st| render::lease(st, &lease));
            apply_patch(&mut doc, content_type, body)?;
            let patched = lease_from(&doc, &namespace)?;
            let written = ClusterApi::replace_lease(&shared.sim, &patched).await?;
            let json = shared.sim.with(|st| render::lease(st, &written));
            Ok(json_response(StatusCode::OK, &json))
        }
        Resource::Events => {
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
        _ => Err(ApiError::method_not_allowed(format!(
            "{} cannot be patched through the simulated API",
            resource_label(target.resource)
        ))),
    }
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

/// A Secret from a create's body: `data` base64-decoded, `stringData` as it is (and winning
/// over `data` for the same key, as on a real API server).
fn secret_from(v: &Value, namespace: &str) -> Result<cluster_api::Secret, ApiError> {
    use base64::Engine;
    let name = v["metadata"]["name"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("Secret: metadata.name: Required value"))?;
    let mut secret = cluster_api::Secret::new(namespace, name);
    if let Some(labels) = v["metadata"]["labels"].as_object() {
        for (k, l) in labels {
            let l = l.as_str().ok_or_else(|| {
                ApiError::invalid(format!("Secret {name}: metadata.labels.{k}: not a string"))
            })?;
            secret.labels.insert(k.clone(), l.to_string());
        }
    }
    if let Some(data) = v["data"].as_object() {
        for (k, d) in data {
            let bytes = d
                .as_str()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .ok_or_else(|| {
                    ApiError::invalid(format!("Secret {name}: data[{k}]: not base64"))
                })?;
            secret.data.insert(k.clone(), bytes);
        }
    }
    if let Some(data) = v["stringData"].as_object() {
        for (k, d) in data {
            let text = d.as_str().ok_or_else(|| {
                ApiError::invalid(format!("Secret {name}: stringData[{k}]: not a string"))
            })?;
            secret.data.insert(k.clone(), text.as_bytes().to_vec());
        }
    }
    Ok(secret)
}
