//! The simulation's own controls, under `/sim/v1/`, for a cluster served by another process
//! (`cluster-sim serve`): fault injection and call counters, as [`SimCluster`] offers them in
//! process. Only the administrator may use them; they are not part of the Kubernetes API.
//!
//! | request | body | does |
//! |---|---|---|
//! | `POST /sim/v1/faults/errors` | `{"operation", "error": {"code", "message", "retryAfterSeconds"?}, "times"?, "skip"?, "afterEffect"?, "always"?}` | fail calls |
//! | `POST /sim/v1/faults/conflicts` | `{"operation", "times"}` | answer writes with 409 Conflict |
//! | `POST /sim/v1/faults/latency` | `{"operation", "millis"}` | delay calls |
//! | `DELETE /sim/v1/faults` | | clear every fault |
//! | `POST /sim/v1/watches/break` | | end every open watch with an error |
//! | `GET /sim/v1/calls` | | calls per operation, and HTTP requests served |
//! | `DELETE /sim/v1/calls` | | reset the counters |

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use cluster_api::Error;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::request::{Caller, json_response};
use super::shared::Shared;
use super::status::ApiError;
use crate::SimCluster;
use crate::faults::Operation;

/// An error to inject, as the API server would answer it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ErrorSpec {
    code: u16,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    retry_after_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ErrorFault {
    operation: String,
    error: ErrorSpec,
    #[serde(default = "one")]
    times: usize,
    /// Let this many calls through first.
    #[serde(default)]
    skip: usize,
    /// The call takes effect and only its answer is lost.
    #[serde(default)]
    after_effect: bool,
    /// Every call fails until the faults are cleared.
    #[serde(default)]
    always: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConflictFault {
    operation: String,
    #[serde(default = "one")]
    times: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LatencyFault {
    operation: String,
    millis: u64,
}

fn one() -> usize {
    1
}

/// Serves one control request.
pub(crate) fn handle(
    shared: &Shared,
    caller: &Caller,
    method: &Method,
    rest: &[&str],
    body: &Bytes,
) -> Result<Response, ApiError> {
    admin_only(caller)?;
    let sim = &shared.sim;
    let done = || {
        json_response(
            StatusCode::OK,
            &json!({"kind": "Status", "status": "Success"}),
        )
    };
    match (method, rest) {
        (&Method::POST, ["faults", "errors"]) => {
            inject_errors(sim, parse(body)?)?;
            Ok(done())
        }
        (&Method::POST, ["faults", "conflicts"]) => {
            let f: ConflictFault = parse(body)?;
            sim.force_conflicts(operation(&f.operation)?, f.times);
            Ok(done())
        }
        (&Method::POST, ["faults", "latency"]) => {
            let f: LatencyFault = parse(body)?;
            sim.set_latency(operation(&f.operation)?, Duration::from_millis(f.millis));
            Ok(done())
        }
        (&Method::DELETE, ["faults"]) => {
            sim.clear_faults();
            Ok(done())
        }
        (&Method::POST, ["watches", "break"]) => {
            sim.break_watches();
            Ok(done())
        }
        (&Method::GET, ["calls"]) => Ok(json_response(StatusCode::OK, &calls(shared))),
        (&Method::DELETE, ["calls"]) => {
            sim.reset_calls();
            shared.reset_requests();
            Ok(done())
        }
        _ => Err(ApiError::not_found("sim controls", &rest.join("/"))),
    }
}

/// Refuses anyone but the administrator.
fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller
        .groups
        .iter()
        .any(|g| g == crate::access::ADMIN_GROUP)
    {
        return Ok(());
    }
    Err(ApiError::forbidden(
        format!(
            "User \"{}\" cannot use the simulation's controls: only the administrator can",
            caller.user
        ),
        "",
        "",
    ))
}

fn inject_errors(sim: &SimCluster, f: ErrorFault) -> Result<(), ApiError> {
    let op = operation(&f.operation)?;
    let error = error(f.error)?;
    match (f.always, f.after_effect) {
        (true, _) => sim.fail_always(op, error),
        (false, true) => sim.fail_after_next(op, f.times, error),
        (false, false) => sim.fail_later(op, f.skip, f.times, error),
    }
    Ok(())
}

/// The counters: calls per operation, and HTTP requests served.
fn calls(shared: &Shared) -> Value {
    let calls = shared.sim.calls();
    let by_operation: Map<String, Value> = calls
        .iter()
        .map(|(op, n)| (op.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "total": calls.total(),
        "writes": calls.writes(),
        "operations": by_operation,
        "requests": shared.requests(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the control's body: {e}")))
}

fn operation(name: &str) -> Result<Operation, ApiError> {
    Operation::ALL
        .into_iter()
        .find(|op| op.as_str() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = Operation::ALL.iter().map(|op| op.as_str()).collect();
            ApiError::bad_request(format!(
                "unknown operation {name:?}; one of: {}",
                known.join(", ")
            ))
        })
}

/// The error a code stands for, worded as the API server words it unless a message is given.
/// A 429 is priority and fairness's throttling (plain text, `Retry-After`); a budget's refusal
/// of an eviction comes from a real budget.
fn error(spec: ErrorSpec) -> Result<Error, ApiError> {
    let message = |default: &str| spec.message.clone().unwrap_or_else(|| default.to_string());
    Ok(match spec.code {
        403 => Error::Forbidden {
            message: message("forbidden by the simulation"),
        },
        404 => Error::NotFound {
            message: message("not found (injected by the simulation)"),
        },
        409 => Error::Conflict {
            message: message(
                "Operation cannot be fulfilled: the object has been modified; please apply your \
                 changes to the latest version and try again",
            ),
        },
        422 => Error::Invalid {
            message: message("invalid (injected by the simulation)"),
        },
        429 => Error::TooManyRequests {
            message: message("Too many requests, please try again later."),
            retry_after: spec.retry_after_seconds.map(Duration::from_secs),
        },
        500..=599 => Error::Unavailable {
            message: message("the server is currently unable to handle the request"),
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "cannot inject status {other}: use 403, 404, 409, 422, 429 or 5xx"
            )));
        }
    })
}
