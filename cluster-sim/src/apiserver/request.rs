//! What the handlers share about a request: its target, its caller, and the small helpers
//! for queries and JSON answers.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::discovery::Resource;
use super::shared::Shared;

/// A request to one resource.
pub(crate) struct Target {
    pub(crate) resource: Resource,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
}

/// The user a bearer token belongs to: the administrator's, or one of the scenario's users.
pub(crate) fn authenticate(shared: &Shared, token: &str) -> Option<Caller> {
    if token == &*shared.token {
        return Some(Caller {
            user: "cluster-sim-admin".into(),
            groups: vec![
                crate::access::ADMIN_GROUP.into(),
                "system:authenticated".into(),
            ],
        });
    }
    let who = shared.sim.access().authenticate(token, &[])?;
    Some(Caller {
        user: who.user,
        groups: who.groups,
    })
}

pub(crate) fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) fn decode(s: &str) -> String {
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

pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
