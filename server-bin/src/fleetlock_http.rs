//! The FleetLock endpoints: `POST {prefix}v1/pre-reboot` and `POST {prefix}v1/steady-state`.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use fleetlock_core::protocol::{
    MAX_BODY_BYTES, PROTOCOL_HEADER, check_protocol_header, parse_body,
};
use fleetlock_core::{Kind, Refusal};
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::AppState;

/// A FleetLock endpoint; its value indexes the request series in `Metrics`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint {
    PreReboot = 0,
    SteadyState = 1,
}

impl Endpoint {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Endpoint::PreReboot => "pre-reboot",
            Endpoint::SteadyState => "steady-state",
        }
    }
}

/// Normalises a prefix to start and end with `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

/// The FleetLock routes under `prefix`.
pub fn routes(prefix: &str) -> Router<AppState> {
    let prefix = normalize_prefix(prefix);
    Router::new()
        .route(
            &format!("{prefix}v1/pre-reboot"),
            any(|state, request| handle(state, Endpoint::PreReboot, request)),
        )
        .route(
            &format!("{prefix}v1/steady-state"),
            any(|state, request| handle(state, Endpoint::SteadyState, request)),
        )
}

async fn handle(State(app): State<AppState>, endpoint: Endpoint, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // The connection's address, which verifyCaller matches against the node's (absent for
    // requests handed to the router in process).
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Each client's allowance first: a flood costs no parsing and no cluster call.
    if let (Some(limiter), Some(ip)) = (&app.fleetlock_rate, peer)
        && let Err(wait) = limiter.check(ip)
    {
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
    let result = answer(&app, endpoint, &parts.method, &parts.headers, body, peer).await;
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

async fn answer(
    app: &AppState,
    endpoint: Endpoint,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
    peer: Option<IpAddr>,
) -> Result<(), Refusal> {
    if method != Method::POST {
        return Err(Refusal::new(
            Kind::MethodNotAllowed,
            format!("{method} is not allowed here; FleetLock requests are POSTs"),
        ));
    }
    check_protocol_header(headers.get(PROTOCOL_HEADER).map(HeaderValue::as_bytes))?;
    // Read at most one byte past the limit, whatever Content-Length claims.
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES + 1);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Refusal::new(
                Kind::BodyTooLarge,
                format!("body is over the limit of {MAX_BODY_BYTES} bytes"),
            ));
        }
        Err(e) => {
            return Err(Refusal::new(
                Kind::InvalidBody,
                format!("could not read the body: {e}"),
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
