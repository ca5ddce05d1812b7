//! The review objects: `TokenReview` (who a token is) and `SubjectAccessReview` /
//! `SelfSubjectAccessReview` (whether someone may do something), answered from the
//! simulation's users and rules.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::discovery::Resource;
use super::request::{Caller, authenticate, json_response};
use super::shared::Shared;
use crate::access::{API_AUDIENCE, Attributes, Authenticated};

/// A `TokenReview`: the review sent, with its `status` filled in.
pub(crate) fn token_review(shared: &Shared, v: &Value) -> Response {
    let token = v["spec"]["token"].as_str().unwrap_or("");
    let audiences = strings(&v["spec"]["audiences"]);
    let mut review = v.clone();
    // The administrator's token is for the API server alone.
    let who = if token == &*shared.token {
        authenticate(shared, token)
            .filter(|_| audiences.is_empty() || audiences.iter().any(|a| a == API_AUDIENCE))
            .map(|c| Authenticated {
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
    json_response(StatusCode::CREATED, &review)
}

/// A `SubjectAccessReview` (about the user it names) or `SelfSubjectAccessReview` (about the
/// caller): the review sent, with its `status` filled in.
pub(crate) fn access_review(
    shared: &Shared,
    caller: &Caller,
    resource: Resource,
    v: &Value,
) -> Response {
    let spec = &v["spec"];
    let (user, groups) = if resource == Resource::SubjectAccessReviews {
        let groups = strings(&spec["groups"]);
        (spec["user"].as_str().unwrap_or("").to_string(), groups)
    } else {
        (caller.user.clone(), caller.groups.clone())
    };
    let a = &spec["resourceAttributes"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    // A non-resource URL (`/metrics`) is asked about as a resource named by its path:
    // a rule grants it with `resources: ["/metrics"]` (RBAC's `nonResourceURLs`).
    let what = match spec["nonResourceAttributes"].as_object() {
        Some(n) if !a.is_object() => Attributes {
            verb: n.get("verb").map(text).unwrap_or_default(),
            resource: n.get("path").map(text).unwrap_or_default(),
            ..Default::default()
        },
        _ => Attributes {
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
    json_response(StatusCode::CREATED, &review)
}

/// The strings of a JSON array; none for anything else.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
