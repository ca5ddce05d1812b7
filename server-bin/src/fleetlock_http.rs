//! The FleetLock endpoints: `POST {prefix}v1/pre-reboot` and `POST {prefix}v1/steady-state`.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleetlock_core::protocol::{
    MAX_BODY_BYTES, PROTOCOL_HEADER, RequestBody, check_protocol_header, parse_body,
};
use fleetlock_core::{Kind, Refusal};
use tokio::time::Instant;
use utoipa::{IntoParams, IntoResponses};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::AppState;
use crate::body::{BodyError, read_limited};
use crate::metrics::Endpoint;

/// Normalises a prefix to start and end with `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

/// The FleetLock routes under `prefix`, with their part of the OpenAPI document. Other methods
/// than POST get FleetLock's own `method_not_allowed` answer, counted like any refusal.
pub fn routes(prefix: &str) -> OpenApiRouter<AppState> {
    let prefix = normalize_prefix(prefix);
    let endpoints = OpenApiRouter::new()
        .routes(with_fallback(routes!(pre_reboot), Endpoint::PreReboot))
        .routes(with_fallback(routes!(steady_state), Endpoint::SteadyState));
    match prefix.trim_end_matches('/') {
        "" => endpoints,
        nested => OpenApiRouter::new().nest(nested, endpoints),
    }
}

/// A FleetLock route that answers every method: POST with its documented handler, the others
/// with FleetLock's `method_not_allowed` refusal.
fn with_fallback(
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
    endpoint: Endpoint,
) -> UtoipaMethodRouter<AppState> {
    let method_router = method_router
        .fallback(move |state: State<AppState>, request: Request| handle(state, endpoint, request));
    (schemas, paths, method_router)
}

/// The `fleet-lock-protocol` header every FleetLock request carries.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by `check_protocol_header`; here for the document
struct ProtocolHeader {
    /// `true` (in any case): this endpoint speaks FleetLock.
    #[param(
        rename = "fleet-lock-protocol",
        pattern = "^[Tt][Rr][Uu][Ee]$",
        example = "true"
    )]
    fleet_lock_protocol: String,
}

/// Asks for a reboot slot. The answer is 200 only once the node holds a slot, is cordoned
/// and its pods are gone; until then a 423 says why (Zincati asks again).
#[utoipa::path(
    post,
    path = "/v1/pre-reboot",
    tag = "fleetlock",
    params(ProtocolHeader),
    request_body(content = RequestBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Reboot now: the node holds a slot and is drained"),
        FleetLockRefusals,
    ),
    security(())
)]
fn pre_reboot(state: State<AppState>, request: Request) -> impl Future<Output = Response> {
    handle(state, Endpoint::PreReboot, request)
}

/// Says the node is back: its slot is released and our cordon undone. Answered 200 once the
/// node is tidy, so that Zincati stops asking.
#[utoipa::path(
    post,
    path = "/v1/steady-state",
    tag = "fleetlock",
    params(ProtocolHeader),
    request_body(content = RequestBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The slot is released and the node uncordoned (or it held none)"),
        FleetLockRefusals,
    ),
    security(())
)]
fn steady_state(state: State<AppState>, request: Request) -> impl Future<Output = Response> {
    handle(state, Endpoint::SteadyState, request)
}

/// FleetLock's refusals by status; `kind` names the reason (see `fleetlock_core::protocol`).
#[derive(IntoResponses)]
#[allow(dead_code)] // a description of answers, never built
enum FleetLockRefusals {
    /// `missing_protocol_header`, `invalid_body`, `invalid_id`, `invalid_group`,
    /// `unknown_group`.
    #[response(status = 400)]
    BadRequest(Refusal),
    /// `wrong_group`, `unverified_caller`.
    #[response(status = 403)]
    Forbidden(Refusal),
    /// `unknown_node`: no Node has this id (or several do).
    #[response(status = 404)]
    UnknownNode(Refusal),
    /// `method_not_allowed`: FleetLock requests are POSTs.
    #[response(status = 405, headers(("Allow" = String)))]
    MethodNotAllowed(Refusal),
    /// `body_too_large`.
    #[response(status = 413)]
    TooLarge(Refusal),
    /// Not now, ask again: `lock_held`, `too_many_groups`, `draining`, `drain_blocked`,
    /// `drain_would_block`, `drain_timed_out`, `group_paused`, `node_recovering`,
    /// `node_opted_out`, `health_gate_closed`, `outside_window`, `blocked_by_pods`,
    /// `too_soon`, `rate_limited`.
    #[response(status = 423)]
    Locked(Refusal),
    /// `too_many_requests`; `Retry-After` says when to ask again.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds")))]
    TooManyRequests(Refusal),
    /// `internal`.
    #[response(status = 500)]
    Internal(Refusal),
    /// `cluster_unavailable`: the Kubernetes API could not be reached; ask again.
    #[response(status = 503)]
    Unavailable(Refusal),
}

/// Answers a FleetLock request. What needs no waiting (the client's allowance, the method,
/// the header) is decided before the future is made, and the future keeps only the body:
/// the router boxes it for every request, and a small one is cheap to allocate and move.
fn handle(
    State(app): State<AppState>,
    endpoint: Endpoint,
    request: Request,
) -> impl Future<Output = Response> + use<> {
    let started = Instant::now();
    // The connection's address, which verifyCaller matches against the node's (absent for
    // requests handed to the router in process).
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Each client's allowance first: a flood costs no parsing and no cluster call.
    let limited = match (&app.fleetlock_rate, peer) {
        (Some(limiter), Some(ip)) => limiter.check(ip).err(),
        _ => None,
    };
    let head = check_head(request.method(), request.headers());
    let deadline = request
        .extensions()
        .get::<crate::body::BodyDeadline>()
        .copied();
    let body = request.into_body();
    async move {
        if let Some(wait) = limited {
            let seconds = crate::ratelimit::retry_after(wait);
            let refusal = Refusal::new(
                Kind::TooManyRequests,
                format!("too many requests from this address; ask again in {seconds} s"),
            );
            app.metrics
                .fleetlock_request(endpoint, Err(refusal.kind), started.elapsed());
            let mut response = refusal_response(&refusal);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        let result = match head {
            Ok(()) => answer(&app, endpoint, body, deadline, peer).await,
            Err(refusal) => Err(refusal),
        };
        let outcome = match &result {
            Ok(()) => Ok(()),
            Err(r) => Err(r.kind),
        };
        app.metrics
            .fleetlock_request(endpoint, outcome, started.elapsed());
        match result {
            Ok(()) => StatusCode::OK.into_response(),
            Err(refusal) => {
                if refusal.status() >= 500 {
                    tracing::warn!(endpoint = endpoint.as_str(), kind = %refusal.kind, value = %refusal.value, "FleetLock request failed");
                } else {
                    tracing::debug!(endpoint = endpoint.as_str(), kind = %refusal.kind, value = %refusal.value, "FleetLock request refused");
                }
                refusal_response(&refusal)
            }
        }
    }
}

/// A FleetLock request is a POST with the protocol header.
fn check_head(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    if method != Method::POST {
        return Err(Refusal::new(
            Kind::MethodNotAllowed,
            format!("{method} is not allowed here; FleetLock requests are POSTs"),
        ));
    }
    // A name made once: looked up by a string, a header name is parsed on every request.
    static PROTOCOL: HeaderName = HeaderName::from_static(PROTOCOL_HEADER);
    check_protocol_header(headers.get(&PROTOCOL).map(HeaderValue::as_bytes))
}

async fn answer(
    app: &AppState,
    endpoint: Endpoint,
    body: Body,
    deadline: Option<crate::body::BodyDeadline>,
    peer: Option<IpAddr>,
) -> Result<(), Refusal> {
    let bytes = match read_limited(body, MAX_BODY_BYTES, deadline).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => {
            return Err(Refusal::new(
                Kind::BodyTooLarge,
                format!("body is over the limit of {MAX_BODY_BYTES} bytes"),
            ));
        }
        Err(BodyError::Unreadable(e)) => {
            return Err(Refusal::new(
                Kind::InvalidBody,
                format!("could not read the body: {e}"),
            ));
        }
        Err(BodyError::TooSlow(within)) => {
            return Err(Refusal::new(
                Kind::InvalidBody,
                format!("the body did not arrive within {} s", within.as_secs()),
            ));
        }
    };
    let params = parse_body(&bytes)?;
    match endpoint {
        Endpoint::PreReboot => app.fleetlock.pre_reboot_from(&params, peer).await,
        Endpoint::SteadyState => app.fleetlock.steady_state_from(&params, peer).await,
    }
}

fn refusal_response(refusal: &Refusal) -> Response {
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        refusal.to_json(),
    )
        .into_response();
    if refusal.kind == Kind::MethodNotAllowed {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_normalise() {
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(normalize_prefix(""), "/");
        assert_eq!(normalize_prefix("fleetlock"), "/fleetlock/");
        assert_eq!(normalize_prefix("/fleetlock/"), "/fleetlock/");
        assert_eq!(normalize_prefix("/a/b"), "/a/b/");
    }
}
