//! Creates: one function per kind of object, through the simulation's ClusterApi.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use cluster_api::{ClusterApi, Event, EventType, ObjectRef, WorkloadKind};
use serde_json::{Value, json};

use super::bodies::{lease_from, parse_body, timestamp, workload_spec};
use super::discovery::{Resource, resource_label};
use super::reads::{event_name, namespace_json, namespaces};
use super::render;
use super::request::{Caller, Target, json_response};
use super::reviews::{access_review, token_review};
use super::shared::Shared;
use super::status::ApiError;
use crate::faults::Operation;

pub(crate) async fn create(
    shared: &Shared,
    caller: &Caller,
    target: &Target,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let v = create_body(target, content_type, body)?;
    let namespace = target.namespace.clone().unwrap_or_else(|| "default".into());
    match target.resource {
        Resource::Leases => create_lease(shared, &v, &namespace).await,
        Resource::Secrets => create_secret(shared, &v, &namespace).await,
        Resource::Events => create_event(shared, &v, &namespace).await,
        Resource::Namespaces => create_namespace(shared, &v),
        Resource::Workloads(kind) => create_workload(shared, kind, &v, &namespace),
        Resource::Budgets => create_budget(shared, &v, &namespace),
        Resource::TokenReviews => Ok(token_review(shared, &v)),
        Resource::SubjectAccessReviews | Resource::SelfSubjectAccessReviews => {
            Ok(access_review(shared, caller, target.resource, &v))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} cannot be created through the simulated API",
            resource_label(target.resource)
        ))),
    }
}

/// A create's body: JSON, or protobuf for the access reviews alone.
fn create_body(target: &Target, content_type: &str, body: &Bytes) -> Result<Value, ApiError> {
    if !content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return parse_body(body);
    }
    match target.resource {
        Resource::SubjectAccessReviews | Resource::SelfSubjectAccessReviews => {
            super::pb::access_review(body)
                .ok_or_else(|| ApiError::bad_request("unreadable protobuf access review"))
        }
        _ => Err(ApiError::unsupported_media_type(
            "the simulated API reads protobuf only for access reviews; send JSON",
        )),
    }
}

async fn create_lease(shared: &Shared, v: &Value, namespace: &str) -> Result<Response, ApiError> {
    let mut lease = lease_from(v, namespace)?;
    lease.resource_version.clear();
    let written = ClusterApi::create_lease(&shared.sim, &lease).await?;
    let json = shared.sim.with(|st| render::lease(st, &written));
    Ok(json_response(StatusCode::CREATED, &json))
}

async fn create_secret(shared: &Shared, v: &Value, namespace: &str) -> Result<Response, ApiError> {
    let secret = secret_from(v, namespace)?;
    let written = ClusterApi::create_secret(&shared.sim, &secret).await?;
    let json = shared.sim.with(|st| render::secret(st, &written));
    Ok(json_response(StatusCode::CREATED, &json))
}

fn create_namespace(shared: &Shared, v: &Value) -> Result<Response, ApiError> {
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

fn create_workload(
    shared: &Shared,
    kind: WorkloadKind,
    v: &Value,
    namespace: &str,
) -> Result<Response, ApiError> {
    let spec = workload_spec(kind, v, namespace)?;
    let written = shared.sim.add_workload(spec)?;
    let json = shared.sim.with(|st| render::workload(st, &written));
    Ok(json_response(StatusCode::CREATED, &json))
}

fn create_budget(shared: &Shared, v: &Value, namespace: &str) -> Result<Response, ApiError> {
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

/// A core/v1 Event (or an events.k8s.io one) as the simulation records it.
async fn create_event(shared: &Shared, v: &Value, namespace: &str) -> Result<Response, ApiError> {
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
