//! The people-facing HTTP API: workloads (compatible with k8s-restart-app's paths), the
//! fleet, the session, the probes; and the OpenAPI document describing it.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/service` | every allowlisted workload with its status |
//! | `GET /api/v1/service/status` | websocket: a snapshot, then every change (`?kind=&namespace=&name=` for one; [`crate::status_stream`]) |
//! | `GET /api/v1/service/{kind}/{namespace}/{name}` | one workload's status |
//! | `GET /api/v1/service/{kind}/{namespace}/{name}/history` | its recent restarts, newest first |
//! | `POST /api/v1/service/{kind}/{namespace}/{name}/restart` | restart it; body `{"reason": ".."}` optional |
//! | `POST /api/v1/service/{kind}/{namespace}/{name}/unlock` | break its lock (admins); body `{"reason": ".."}` required |
//! | `GET /api/v1/fleet` | every reboot group and node |
//! | `POST /api/v1/fleet/groups/{group}/pause`, `.../resume` | pause or resume a reboot group (admins) |
//! | `GET /api/v1/fleet/nodes/{node}/plan` | the drain a node would get now, and whether it could finish |
//! | `GET /api/v1/whoami` | who the server thinks you are |
//! | `POST`, `DELETE /api/v1/session` | the page signs in and out |
//! | `GET /healthz`, `/readyz`, `/metrics` | probes and Prometheus metrics |
//! | `GET /openapi.json` | the OpenAPI document of the listener it is served on ([`openapi`]) |
//!
//! | module | what it holds |
//! |---|---|
//! | [`error`] | refusals: [`ApiError`], its JSON body, the limited request body |
//! | [`access`] | the caller, what it may see, the workload a path names |
//! | [`workloads`], [`fleet`], [`session`], [`probes`] | the handlers |
//! | [`openapi`] | the document, from the handlers' annotations |

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub mod access;
pub mod error;
pub mod fleet;
pub mod openapi;
pub mod probes;
pub mod session;
pub mod sets;
pub mod workloads;

pub use access::Caller;
pub use error::{ApiError, MAX_API_BODY, status_of};

/// Each client's allowance of API requests (over it, 429 with `Retry-After`), and a deadline
/// for each request (past it, 503).
pub async fn limits(
    State(app): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let (Some(limiter), Some(peer)) = (&app.api_rate, peer)
        && let Err(wait) = limiter.check(peer)
    {
        let seconds = crate::ratelimit::retry_after(wait);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many requests from this address; try again in {seconds} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    match tokio::time::timeout(app.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s; try again",
                app.request_timeout.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// What every people-facing request passes first: a known Host where a browser may be
/// involved (DNS rebinding), and a page of our own origin. (That a browser's POST carries
/// JSON is checked where the POST is handled, [`error::NotAForm`], so that a method a path
/// does not have is still 405.)
pub async fn browser_guard(
    State(app): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    if let Err(e) = app
        .auth
        .check_host(headers)
        .and_then(|()| app.auth.check_origin(headers))
    {
        return ApiError::from(e).into_response();
    }
    next.run(request).await
}

/// The people-facing routes, each registered with its part of the OpenAPI document. The
/// status websocket is served but not documented: OpenAPI has no words for a websocket.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(probes::healthz))
        .routes(routes!(probes::readyz))
        .routes(routes!(probes::metrics))
        .routes(routes!(fleet::fleet))
        .routes(routes!(fleet::pause))
        .routes(routes!(fleet::resume))
        .routes(routes!(fleet::plan))
        .routes(routes!(workloads::list))
        .routes(routes!(workloads::one))
        .routes(routes!(workloads::history))
        .routes(routes!(workloads::restart))
        .routes(routes!(workloads::unlock))
        .routes(routes!(sets::list))
        .routes(routes!(sets::one))
        .routes(routes!(sets::restart))
        .routes(routes!(sets::cancel))
        .routes(routes!(session::whoami))
        .routes(routes!(session::sign_in, session::sign_out))
        .route(
            "/api/v1/service/status",
            get(crate::status_stream::status_stream),
        )
        .route("/api/{*rest}", axum::routing::any(no_such_api))
}

/// Any other path under /api/: a 404 in the API's shape, naming the path.
async fn no_such_api(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no API at {}", uri.path()),
    )
}
