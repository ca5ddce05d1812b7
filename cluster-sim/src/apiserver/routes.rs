//! Requests: authentication, the path, and the handler for the verb.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Axum;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::creates::create;
use super::discovery::*;
use super::reads::*;
use super::request::{Caller, Target, authenticate, json_response, url_pairs};
use super::select::Selection;
use super::shared::Shared;
use super::status::ApiError;
use super::writes::*;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

pub(crate) async fn handle(
    Axum(shared): Axum<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.count_request();
    let credentials = headers.get(header::AUTHORIZATION);
    let caller = match credentials {
        // No credentials at all: the API server's anonymous authentication (on by default)
        // makes the request `system:anonymous`'s, which RBAC then refuses (403) unless a
        // rule names it; only the health and version endpoints are public. The simulation's
        // own controls still want a token.
        None if !path_is_controls(uri.path()) => Caller {
            user: ANONYMOUS.into(),
            groups: vec!["system:unauthenticated".into()],
        },
        _ => {
            let token = credentials
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let Some(caller) = token.and_then(|t| authenticate(&shared, t)) else {
                return ApiError::unauthorized().into_response();
            };
            caller
        }
    };
    if caller.user == ANONYMOUS && !is_public(uri.path()) && !is_resource_path(uri.path()) {
        return ApiError::forbidden(
            format!(
                "forbidden: User \"{ANONYMOUS}\" cannot {} path \"{}\"",
                method.as_str().to_lowercase(),
                uri.path()
            ),
            "",
            "",
        )
        .into_response();
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    match dispatch(
        &shared,
        &caller,
        &method,
        uri.path(),
        &query,
        &headers,
        &body,
    )
    .await
    {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The user of a request without credentials.
const ANONYMOUS: &str = "system:anonymous";

/// What `system:public-info-viewer` lets anyone read.
fn is_public(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/version" | "/healthz" | "/readyz" | "/livez"
    )
}

/// Whether a path names resources (authorised by RBAC on them), not discovery.
fn is_resource_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), ["api", _, _, ..] | ["apis", _, _, _, ..])
}

fn path_is_controls(path: &str) -> bool {
    path.trim_start_matches('/').starts_with("sim/")
}

pub(crate) async fn dispatch(
    shared: &Shared,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(answer) = discovery(&parts) {
        return answer;
    }
    let (group, version, rest): (&str, &str, &[&str]) = match parts.as_slice() {
        ["sim", "v1", rest @ ..] => {
            return super::control::handle(shared, caller, method, rest, body);
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::not_found("paths", path)),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        // The Namespace object itself.
        ["namespaces", ns] if method == Method::DELETE => {
            return delete_namespace(shared, ns).await;
        }
        ["namespaces", ns] => return namespaced_object(shared, method, ns).await,
        rest => (None, rest),
    };
    let target = target(path, group, version, namespace, rest)?;
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    authorize(shared, caller, method, &target, group, is_watch)?;
    let printing = super::table::wanted(headers)
        .then(|| super::table::Include::from_query(query.get("includeObject").map(String::as_str)));
    match (method, &target.name, target.sub.as_deref()) {
        // Secrets change only through the scenario, which watches over HTTP would not see.
        (&Method::GET, None, None) if is_watch && target.resource == Resource::Secrets => {
            Err(ApiError::method_not_allowed(
                "the simulated API does not watch secrets; in-process, watch_config does",
            ))
        }
        (&Method::GET, None, None) if is_watch => {
            let selection = Selection::from_query(target.namespace.clone(), query)?;
            selection.fields.check_supported(target.resource)?;
            super::watch::watch(shared, target.resource, selection, query, printing).await
        }
        (&Method::GET, None, None) => list(shared, &target, query, printing).await,
        (&Method::GET, Some(name), None) => get(shared, &target, name, printing).await,
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
            create(shared, caller, &target, content_type(headers), body).await
        }
        (&Method::PUT, Some(name), None) => replace(shared, &target, name, body).await,
        (&Method::PATCH, Some(name), None) => {
            patch(shared, &target, name, content_type(headers), body).await
        }
        (&Method::DELETE, Some(name), None) => delete(shared, &target, name, body).await,
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {path})"
        ))),
    }
}

/// The answers that name no resource: version, health, and discovery; `None` for any
/// other path.
fn discovery(parts: &[&str]) -> Option<Result<Response, ApiError>> {
    let answer = match parts {
        ["version"] => Ok(json_response(StatusCode::OK, &version_info())),
        ["healthz" | "readyz" | "livez"] => Ok("ok".into_response()),
        ["api"] => Ok(json_response(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        )),
        ["apis"] => Ok(json_response(StatusCode::OK, &group_list())),
        ["api", "v1"] => Ok(json_response(StatusCode::OK, &resource_list("", "v1"))),
        ["apis", g] => group_list()["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|x| x["name"] == *g).cloned())
            .map(|mut g| {
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                json_response(StatusCode::OK, &g)
            })
            .ok_or_else(|| ApiError::not_found("groups", g)),
        ["apis", g, v] if KINDS.iter().any(|k| k.group == *g && k.version == *v) => {
            Ok(json_response(StatusCode::OK, &resource_list(g, v)))
        }
        _ => return None,
    };
    Some(answer)
}

/// The resource, name and subresource `rest` names in `group`/`version`.
fn target(
    path: &str,
    group: &str,
    version: &str,
    namespace: Option<String>,
    rest: &[&str],
) -> Result<Target, ApiError> {
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
    Ok(Target {
        resource,
        namespace,
        name,
        sub,
    })
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// RBAC: may the caller do this? Any authenticated user may review its own access.
fn authorize(
    shared: &Shared,
    caller: &Caller,
    method: &Method,
    target: &Target,
    group: &str,
    is_watch: bool,
) -> Result<(), ApiError> {
    if target.resource == Resource::SelfSubjectAccessReviews {
        return Ok(());
    }
    let verb = match (method, &target.name) {
        (&Method::GET, None) if is_watch => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    };
    let kind = kind_of(target.resource);
    let resource = kind.name.split('/').next().unwrap_or(kind.name);
    let what = crate::access::Attributes {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: target.sub.clone().unwrap_or_default(),
        namespace: target.namespace.clone().unwrap_or_default(),
        name: target.name.clone().unwrap_or_default(),
    };
    if shared
        .sim
        .access()
        .allows(&caller.user, &caller.groups, &what)
        .0
    {
        return Ok(());
    }
    let full = if what.subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{}", what.subresource)
    };
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let object = match &target.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let scope = match &target.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    Err(ApiError::forbidden(
        format!(
            "{object} is forbidden: User \"{}\" cannot {verb} resource \"{full}\" in API group \"{group}\" {scope}",
            caller.user
        ),
        target.name.as_deref().unwrap_or(""),
        resource,
    ))
}
