//! Requests: discovery, then per resource get, list, watch, create, update, patch, delete.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Axum;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cluster_api::{
    ClusterApi, Event, EventType, EvictOptions, EvictionOutcome, Lease, NodePatch, ObjectRef,
    WorkloadKind, WorkloadRef,
};
use serde_json::{Map, Value, json};

use super::Shared;
use super::render;
use super::select::{Selection, page};
use super::status::ApiError;
use crate::faults::Operation;
use crate::state::State;

/// The resources served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Nodes,
    Pods,
    Events,
    Namespaces,
    Leases,
    Workloads(WorkloadKind),
    ReplicaSets,
    Budgets,
    TokenReviews,
    SubjectAccessReviews,
    SelfSubjectAccessReviews,
}

/// One entry of discovery.
struct Kind {
    group: &'static str,
    version: &'static str,
    name: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
    short: &'static [&'static str],
    resource: Option<Resource>,
}

const READ: &[&str] = &["get", "list", "watch"];
const READ_PATCH: &[&str] = &["get", "list", "watch", "patch"];

const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        name: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        verbs: READ_PATCH,
        short: &["no"],
        resource: Some(Resource::Nodes),
    },
    Kind {
        group: "",
        version: "v1",
        name: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        verbs: &["get", "list", "watch", "delete"],
        short: &["po"],
        resource: Some(Resource::Pods),
    },
    Kind {
        group: "",
        version: "v1",
        name: "pods/eviction",
        singular: "",
        kind: "Eviction",
        namespaced: true,
        verbs: &["create"],
        short: &[],
        resource: None,
    },
    Kind {
        group: "",
        version: "v1",
        name: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: &["create", "get", "list", "patch"],
        short: &["ev"],
        resource: Some(Resource::Events),
    },
    Kind {
        group: "",
        version: "v1",
        name: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        verbs: &["get", "list"],
        short: &["ns"],
        resource: Some(Resource::Namespaces),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        verbs: READ_PATCH,
        short: &["deploy"],
        resource: Some(Resource::Workloads(WorkloadKind::Deployment)),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        verbs: READ_PATCH,
        short: &["sts"],
        resource: Some(Resource::Workloads(WorkloadKind::StatefulSet)),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        verbs: READ_PATCH,
        short: &["ds"],
        resource: Some(Resource::Workloads(WorkloadKind::DaemonSet)),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        verbs: READ,
        short: &["rs"],
        resource: Some(Resource::ReplicaSets),
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        name: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        short: &[],
        resource: Some(Resource::Leases),
    },
    Kind {
        group: "policy",
        version: "v1",
        name: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        verbs: &["get", "list"],
        short: &["pdb"],
        resource: Some(Resource::Budgets),
    },
    Kind {
        group: "authentication.k8s.io",
        version: "v1",
        name: "tokenreviews",
        singular: "",
        kind: "TokenReview",
        namespaced: false,
        verbs: &["create"],
        short: &[],
        resource: Some(Resource::TokenReviews),
    },
    Kind {
        group: "authorization.k8s.io",
        version: "v1",
        name: "subjectaccessreviews",
        singular: "",
        kind: "SubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short: &[],
        resource: Some(Resource::SubjectAccessReviews),
    },
    Kind {
        group: "authorization.k8s.io",
        version: "v1",
        name: "selfsubjectaccessreviews",
        singular: "",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short: &[],
        resource: Some(Resource::SelfSubjectAccessReviews),
    },
];

fn kind_of(resource: Resource) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.resource == Some(resource))
        .unwrap_or(&KINDS[0])
}

fn group_version(k: &Kind) -> String {
    if k.group.is_empty() {
        k.version.to_string()
    } else {
        format!("{}/{}", k.group, k.version)
    }
}

pub(crate) fn router(shared: Shared) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A request to one resource.
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

async fn handle(
    Axum(shared): Axum<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(&*shared.token) {
        return ApiError::unauthorized().into_response();
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    match dispatch(&shared, &method, uri.path(), &query, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn dispatch(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest): (&str, &str, &[&str]) = match parts.as_slice() {
        ["version"] => return Ok(json_response(StatusCode::OK, &version_info())),
        ["healthz" | "readyz" | "livez"] => return Ok("ok".into_response()),
        ["api"] => {
            return Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            ));
        }
        ["apis"] => return Ok(json_response(StatusCode::OK, &group_list())),
        ["api", "v1"] => return Ok(json_response(StatusCode::OK, &resource_list("", "v1"))),
        ["apis", g] => {
            return group_list()["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|x| x["name"] == *g).cloned())
                .map(|mut g| {
                    g["kind"] = json!("APIGroup");
                    g["apiVersion"] = json!("v1");
                    json_response(StatusCode::OK, &g)
                })
                .ok_or_else(|| ApiError::not_found("groups", g));
        }
        ["apis", g, v] if KINDS.iter().any(|k| k.group == *g && k.version == *v) => {
            return Ok(json_response(StatusCode::OK, &resource_list(g, v)));
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::not_found("paths", path)),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        ["namespaces", ns] => {
            // The Namespace object itself.
            return namespaced_object(shared, method, ns).await;
        }
        rest => (None, rest),
    };
    let (resource_name, name, sub) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(ApiError::not_found("paths", path)),
    };
    let Some(kind) = KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.name == resource_name)
    else {
        return Err(ApiError::not_found("resources", resource_name));
    };
    let Some(resource) = kind.resource else {
        return Err(ApiError::not_found("resources", resource_name));
    };
    let target = Target {
        resource,
        namespace,
        name,
        sub,
    };
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match (method, &target.name, target.sub.as_deref()) {
        (&Method::GET, None, None) if is_watch => {
            let selection = Selection::from_query(target.namespace.clone(), query)?;
            super::watch::watch(shared, target.resource, selection, query).await
        }
        (&Method::GET, None, None) => list(shared, &target, query).await,
        (&Method::GET, Some(name), None) => get(shared, &target, name).await,
        (&Method::POST, Some(name), Some("eviction")) if target.resource == Resource::Pods => {
            evict(
                shared,
                target.namespace.as_deref().unwrap_or("default"),
                name,
                body,
            )
            .await
        }
        (&Method::POST, None, None) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            create(shared, &target, content_type, body).await
        }
        (&Method::PUT, Some(name), None) => replace(shared, &target, name, body).await,
        (&Method::PATCH, Some(name), None) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            patch(shared, &target, name, content_type, body).await
        }
        (&Method::DELETE, Some(name), None) => delete(shared, &target, name, body).await,
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {path})"
        ))),
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "gitVersion": "v1.33.4+cluster-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-05T09:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_list() -> Value {
    let mut groups: Vec<&str> = KINDS
        .iter()
        .map(|k| k.group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups.iter().map(|g| json!({
            "name": g,
            "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
            "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"},
        })).collect::<Vec<_>>(),
    })
}

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            let mut r = json!({
                "name": k.name,
                "singularName": k.singular,
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": k.verbs,
            });
            if !k.short.is_empty() {
                r["shortNames"] = json!(k.short);
            }
            if k.name == "pods/eviction" {
                r["group"] = json!("policy");
                r["version"] = json!("v1");
            }
            r
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        "resources": resources,
    })
}

/// The fault-injection key of a read, where the simulation has one.
fn read_op(resource: Resource, one: bool) -> Option<Operation> {
    Some(match (resource, one) {
        (Resource::Nodes, true) => Operation::GetNode,
        (Resource::Nodes, false) => Operation::ListNodes,
        (Resource::Pods, _) => Operation::ListPods,
        (Resource::Leases, true) => Operation::GetLease,
        (Resource::Leases, false) => Operation::ListLeases,
        (Resource::Workloads(_), true) => Operation::GetWorkload,
        (Resource::Workloads(_), false) => Operation::ListWorkloads,
        (Resource::Events, _) => Operation::ListEvents,
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
        Resource::Events => st
            .events
            .iter()
            .filter(|(_, e)| in_ns(e.regarding.namespace.as_deref().unwrap_or("default")))
            .map(|(seq, e)| render::event(st, *seq, e, &event_name(e, *seq)))
            .collect(),
        Resource::Namespaces => namespaces(st)
            .into_iter()
            .map(|ns| namespace_json(st, &ns))
            .collect(),
        Resource::ReplicaSets
        | Resource::TokenReviews
        | Resource::SubjectAccessReviews
        | Resource::SelfSubjectAccessReviews => Vec::new(),
    }
}

fn namespaces(st: &State) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .into_iter()
        .map(String::from)
        .collect();
    all.extend(st.pods.keys().map(|(ns, _)| ns.clone()));
    all.extend(st.leases.keys().map(|(ns, _)| ns.clone()));
    all.extend(st.workloads.keys().map(|r| r.namespace.clone()));
    all.extend(st.budgets.keys().map(|(ns, _)| ns.clone()));
    all
}

fn namespace_json(st: &State, ns: &str) -> Value {
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

async fn namespaced_object(
    shared: &Shared,
    method: &Method,
    ns: &str,
) -> Result<Response, ApiError> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(
            "namespaces are read-only here",
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

fn resource_label(resource: Resource) -> String {
    let k = kind_of(resource);
    if k.group.is_empty() {
        k.name.to_string()
    } else {
        format!("{}.{}", k.name, k.group)
    }
}

async fn get(shared: &Shared, target: &Target, name: &str) -> Result<Response, ApiError> {
    if let Some(op) = read_op(target.resource, true) {
        shared.sim.enter(op).await?;
    }
    let found = shared.sim.with(|st| {
        objects(st, target.resource, target.namespace.as_deref())
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
    });
    match found {
        Some(object) => Ok(json_response(StatusCode::OK, &object)),
        None => Err(ApiError::not_found(&resource_label(target.resource), name)),
    }
}

async fn list(
    shared: &Shared,
    target: &Target,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    if let Some(op) = read_op(target.resource, false) {
        shared.sim.enter(op).await?;
    }
    let selection = Selection::from_query(target.namespace.clone(), query)?;
    let limit = query.get("limit").and_then(|l| l.parse().ok());
    let token = query.get("continue").map(String::as_str);
    let (items, rv) = shared.sim.with(|st| {
        let items: Vec<Value> = list_candidates(st, target.resource, &selection)
            .into_iter()
            .filter(|o| selection.matches(o))
            .collect();
        (items, st.current_rv())
    });
    let (items, next, rv) = page(items, limit, token, rv)?;
    let k = kind_of(target.resource);
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(next) = next {
        metadata.insert("continue".into(), json!(next));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", k.kind),
            "apiVersion": group_version(k),
            "metadata": metadata,
            "items": items,
        }),
    ))
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

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn timestamp(v: &Value) -> Result<Option<cluster_api::Timestamp>, ApiError> {
    match v.as_str() {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("invalid time {s:?}: {e}"))),
    }
}

/// A Lease from its JSON (create and update bodies).
fn lease_from(v: &Value, namespace: &str) -> Result<Lease, ApiError> {
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
        labels: string_map(&meta["labels"]),
        annotations: string_map(&meta["annotations"]),
        holder_identity: spec["holderIdentity"].as_str().map(str::to_string),
        lease_duration_seconds: int(&spec["leaseDurationSeconds"]),
        acquire_time: timestamp(&spec["acquireTime"])?,
        renew_time: timestamp(&spec["renewTime"])?,
        lease_transitions: int(&spec["leaseTransitions"]),
    })
}

async fn create(
    shared: &Shared,
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
        Resource::Events => create_event(shared, &v, &namespace).await,
        Resource::TokenReviews => {
            let token = v["spec"]["token"].as_str().unwrap_or("");
            let mut review = v.clone();
            review["status"] = if token == &*shared.token {
                json!({"authenticated": true, "user": {"username": "cluster-sim-admin", "groups": ["system:masters", "system:authenticated"]}, "audiences": ["https://kubernetes.default.svc"]})
            } else {
                json!({"authenticated": false, "error": "invalid bearer token"})
            };
            Ok(json_response(StatusCode::CREATED, &review))
        }
        Resource::SubjectAccessReviews => {
            let groups: Vec<&str> = v["spec"]["groups"]
                .as_array()
                .map(|g| g.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let allowed = groups.contains(&"system:masters");
            let mut review = v.clone();
            review["status"] = if allowed {
                json!({"allowed": true, "reason": "the simulated cluster allows system:masters everything"})
            } else {
                json!({"allowed": false, "reason": "no RBAC rule of the simulated cluster allows it"})
            };
            Ok(json_response(StatusCode::CREATED, &review))
        }
        Resource::SelfSubjectAccessReviews => {
            // Only the administrator's token is accepted, and it may do everything.
            let mut review = v.clone();
            review["status"] =
                json!({"allowed": true, "reason": "the simulated cluster's administrator"});
            Ok(json_response(StatusCode::CREATED, &review))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} cannot be created through the simulated API",
            resource_label(target.resource)
        ))),
    }
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

async fn replace(
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
    if lease.resource_version.is_empty() {
        // An unconditional update: the API server takes it over whatever is stored.
        lease.resource_version = shared
            .sim
            .lease(&namespace, name)
            .map(|l| l.resource_version)
            .ok_or_else(|| ApiError::not_found("leases.coordination.k8s.io", name))?;
    }
    let written = ClusterApi::replace_lease(&shared.sim, &lease).await?;
    let json = shared.sim.with(|st| render::lease(st, &written));
    Ok(json_response(StatusCode::OK, &json))
}

/// Applies a patch of any of the three kinds kubectl and client libraries send.
fn apply_patch(doc: &mut Value, content_type: &str, body: &Bytes) -> Result<(), ApiError> {
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
fn map_changes(
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

async fn patch(
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

async fn delete(
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

async fn evict(
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
    };
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
