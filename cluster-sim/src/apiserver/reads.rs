//! Reads: get and list, and the objects of each resource in the API's JSON.

use std::collections::{BTreeSet, HashMap};

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cluster_api::{Event, WorkloadKind};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::discovery::*;
use super::render;
use super::request::*;
use super::select::{Cursor, Selection, key_of, page_counted};
use super::shared::Shared;
use super::status::ApiError;
use super::table::{self, Include};
use crate::faults::Operation;
use crate::state::State;

/// The fault-injection key of a read, where the simulation has one.
pub(crate) fn read_op(resource: Resource, one: bool) -> Option<Operation> {
    Some(match (resource, one) {
        (Resource::Nodes, true) => Operation::GetNode,
        (Resource::Nodes, false) => Operation::ListNodes,
        (Resource::Pods, _) => Operation::ListPods,
        (Resource::Budgets, _) => Operation::ListBudgets,
        (Resource::Leases, true) => Operation::GetLease,
        (Resource::Leases, false) => Operation::ListLeases,
        (Resource::Secrets, true) => Operation::GetSecret,
        (Resource::Workloads(_), true) => Operation::GetWorkload,
        (Resource::Workloads(_), false) => Operation::ListWorkloads,
        (Resource::Events | Resource::EventsV1, _) => Operation::ListEvents,
        _ => return None,
    })
}

/// The name the endpoint gives an Event recorded in the simulation.
pub(crate) fn event_name(e: &Event, seq: u64) -> String {
    format!("{}.{seq:016x}", e.regarding.name)
}

/// Every object of a resource (in a namespace, when given), in the API's JSON.
pub(crate) fn objects(st: &State, resource: Resource, namespace: Option<&str>) -> Vec<Value> {
    let in_ns = |ns: &str| namespace.is_none_or(|n| n == ns);
    match resource {
        Resource::Nodes => st.nodes.values().map(|n| render::node(st, n)).collect(),
        Resource::Pods => st
            .pods
            .values()
            .filter(|sp| in_ns(&sp.pod.namespace))
            .map(|sp| render::pod(st, &sp.pod))
            .collect(),
        Resource::Leases => st
            .leases
            .values()
            .filter(|l| in_ns(&l.namespace))
            .map(|l| render::lease(st, l))
            .collect(),
        Resource::Secrets => st
            .secrets
            .values()
            .filter(|s| in_ns(&s.namespace))
            .map(|s| render::secret(st, s))
            .collect(),
        Resource::Workloads(kind) => st
            .workloads
            .values()
            .filter(|sw| sw.w.kind == kind && in_ns(&sw.w.namespace))
            .map(|sw| render::workload(st, &sw.w))
            .collect(),
        Resource::Budgets => st
            .budgets
            .values()
            .filter(|b| in_ns(&b.namespace))
            .map(|b| render::budget(st, b))
            .collect(),
        Resource::Events | Resource::EventsV1 => {
            let shape = if resource == Resource::Events {
                render::event
            } else {
                render::event_v1
            };
            st.events
                .iter()
                .filter(|(_, e)| in_ns(e.regarding.namespace.as_deref().unwrap_or("default")))
                .map(|(seq, e)| shape(st, *seq, e, &event_name(e, *seq)))
                .collect()
        }
        Resource::Namespaces => namespaces(st)
            .into_iter()
            .map(|ns| namespace_json(st, &ns))
            .collect(),
        Resource::ReplicaSets => st
            .workloads
            .values()
            .filter(|sw| sw.w.kind == WorkloadKind::Deployment && in_ns(&sw.w.namespace))
            .flat_map(|sw| render::replica_sets(st, sw))
            .collect(),
        Resource::TokenReviews
        | Resource::SubjectAccessReviews
        | Resource::SelfSubjectAccessReviews => Vec::new(),
    }
}

pub(crate) fn namespaces(st: &State) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .into_iter()
        .map(String::from)
        .collect();
    all.extend(st.pods.keys().map(|(ns, _)| ns.clone()));
    all.extend(st.leases.keys().map(|(ns, _)| ns.clone()));
    all.extend(st.workloads.keys().map(|r| r.namespace.clone()));
    all.extend(st.budgets.keys().map(|(ns, _)| ns.clone()));
    all.extend(st.namespaces.iter().cloned());
    all
}

pub(crate) fn namespace_json(st: &State, ns: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": ns,
            "uid": render::derived_uid("namespace", ns),
            "resourceVersion": "1",
            "creationTimestamp": render::time(st.config.start_time),
            "labels": {"kubernetes.io/metadata.name": ns},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

pub(crate) async fn namespaced_object(
    shared: &Shared,
    method: &Method,
    ns: &str,
) -> Result<Response, ApiError> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(
            "a namespace can be read, created and deleted here",
        ));
    }
    shared.sim.with(|st| {
        if namespaces(st).contains(ns) {
            Ok(json_response(StatusCode::OK, &namespace_json(st, ns)))
        } else {
            Err(ApiError::not_found("namespaces", ns))
        }
    })
}

pub(crate) async fn get(
    shared: &Shared,
    target: &Target,
    name: &str,
    printing: Option<Include>,
) -> Result<Response, ApiError> {
    if let Some(op) = read_op(target.resource, true) {
        shared.sim.enter(op).await?;
    }
    let found = shared
        .sim
        .with(|st| one(st, target.resource, target.namespace.as_deref(), name));
    match (found, printing) {
        (Some(object), Some(include)) => {
            let now = shared.sim.with(|st| st.wall());
            let rv = object["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            let table = table::table(target.resource, &[object], rv.as_deref(), include, now);
            Ok(json_response(StatusCode::OK, &table))
        }
        (Some(object), None) => Ok(json_response(StatusCode::OK, &object)),
        (None, _) => Err(ApiError::not_found(&resource_label(target.resource), name)),
    }
}

/// One object by name: looked up where the simulation indexes it (Nodes, Pods, Leases),
/// so that reading one of many objects renders only that one.
fn one(st: &State, resource: Resource, namespace: Option<&str>, name: &str) -> Option<Value> {
    let key = || (namespace.unwrap_or("default").to_string(), name.to_string());
    match resource {
        Resource::Nodes => st.nodes.get(name).map(|n| render::node(st, n)),
        Resource::Pods => st.pods.get(&key()).map(|sp| render::pod(st, &sp.pod)),
        Resource::Leases => st.leases.get(&key()).map(|l| render::lease(st, l)),
        Resource::Secrets => st.secrets.get(&key()).map(|s| render::secret(st, s)),
        _ => objects(st, resource, namespace)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name),
    }
}

pub(crate) async fn list(
    shared: &Shared,
    target: &Target,
    query: &HashMap<String, String>,
    printing: Option<Include>,
) -> Result<Response, ApiError> {
    if let Some(op) = read_op(target.resource, false) {
        shared.sim.enter(op).await?;
    }
    let selection = Selection::from_query(target.namespace.clone(), query)?;
    selection.fields.check_supported(target.resource)?;
    let limit = query.get("limit").and_then(|l| l.parse().ok());
    let token = query.get("continue").map(String::as_str);
    // The API server counts what follows a page only for a list without selectors.
    let count_rest = selection.labels.is_none() && selection.fields.is_empty();
    let (items, next, remaining, rv, now, node_images) = shared.sim.with(|st| {
        let cursor = Cursor::parse(token, st.current_rv())?;
        let candidates = sorted_candidates(st, target.resource, &selection, &cursor);
        let (items, next, remaining) = page_counted(
            candidates.filter(|o| selection.matches(o)),
            limit,
            &cursor,
            count_rest,
        );
        Ok::<_, ApiError>((
            items,
            next,
            remaining,
            cursor.rv,
            st.wall(),
            st.config.node_images,
        ))
    })?;
    if let Some(include) = printing {
        let mut table = table::table(target.resource, &items, Some(&rv.to_string()), include, now);
        if let Some(next) = next {
            table["metadata"]["continue"] = json!(next);
        }
        return Ok(json_response(StatusCode::OK, &table));
    }
    let k = kind_of(target.resource);
    // Only Nodes are rendered without their images, for `list_item` to add.
    let images = if target.resource == Resource::Nodes {
        node_images
    } else {
        0
    };
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(next) = next {
        metadata.insert("continue".into(), json!(next));
    }
    if let Some(remaining) = remaining {
        metadata.insert("remainingItemCount".into(), json!(remaining));
    }
    let items: Vec<Box<RawValue>> = items
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            render::list_item(&o, images)
        })
        .collect();
    let body = ListBody {
        kind: format!("{}List", k.kind),
        api_version: group_version(k),
        metadata,
        items,
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&body).expect("a list serializes"),
    )
        .into_response())
}

/// A list response; its items are JSON text already.
struct ListBody {
    kind: String,
    api_version: String,
    metadata: Map<String, Value>,
    items: Vec<Box<RawValue>>,
}

impl serde::Serialize for ListBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("apiVersion", &self.api_version)?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("items", &self.items)?;
        map.end()
    }
}

/// The objects a list may return, in key order. Nodes are rendered lazily from where the
/// cursor resumes, so paging through a large fleet renders each Node once.
fn sorted_candidates<'a>(
    st: &'a State,
    resource: Resource,
    selection: &Selection,
    cursor: &Cursor,
) -> Box<dyn Iterator<Item = Value> + 'a> {
    if resource == Resource::Nodes {
        use std::ops::Bound;
        let from = match cursor.after.as_deref().and_then(|k| k.strip_prefix('/')) {
            Some(name) => Bound::Excluded(name.to_string()),
            None => Bound::Unbounded,
        };
        return Box::new(
            st.nodes
                .range((from, Bound::Unbounded))
                .map(move |(_, n)| render::node_without_images(st, n)),
        );
    }
    let mut all = list_candidates(st, resource, selection);
    all.sort_by_key(key_of);
    Box::new(all.into_iter())
}

/// The objects a selection may match, narrowed by the fields the simulation indexes (a
/// node's pods), so that listing one node's pods does not render every pod.
pub(crate) fn list_candidates(st: &State, resource: Resource, selection: &Selection) -> Vec<Value> {
    if resource == Resource::Pods
        && let Some(node) = selection.fields.required("spec.nodeName")
        && !node.is_empty()
    {
        return st
            .pods_on_node(node)
            .iter()
            .filter_map(|k| st.pods.get(k))
            .filter(|sp| {
                selection
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| *ns == sp.pod.namespace)
            })
            .map(|sp| render::pod(st, &sp.pod))
            .collect();
    }
    objects(st, resource, selection.namespace.as_deref())
}
