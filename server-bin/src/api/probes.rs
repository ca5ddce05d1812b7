//! Health, readiness and metrics: what Kubernetes and Prometheus ask.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::peer_of;
use super::error::{ApiError, ErrorBody, Guarded, Unauthenticated};
use crate::AppState;
use crate::auth::Action;

/// Alive: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"), Guarded),
    security(())
)]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready: both services' caches have synced and follow the cluster.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "Not ready: what is missing, as text; or `timeout` as JSON",
            content((String = "text/plain"), (ErrorBody = "application/json"))),
        (status = 403, description = "`foreign_origin`: an unknown `Host`", body = ErrorBody),
        (status = 429, description = "`too_many_requests`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ),
    security(())
)]
pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    match app
        .fleetlock
        .readiness_problem()
        .or_else(|| app.restarter.readiness_problem())
    {
        None => (StatusCode::OK, "ready").into_response(),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem).into_response(),
    }
}

/// Ready, as FleetLock sees it: its node and lock caches have synced and follow the cluster.
/// Served on the FleetLock listener, where the pods' readiness probe asks, so that a problem
/// of the restart service alone (a config-trigger watch of ConfigMaps or Secrets, say) does
/// not take FleetLock out of its Service; the main listener's `/readyz` reports both.
pub(crate) async fn fleetlock_readyz(State(app): State<AppState>) -> Response {
    match app.fleetlock.readiness_problem() {
        None => (StatusCode::OK, "ready").into_response(),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem).into_response(),
    }
}

/// Prometheus metrics, in the text exposition format. They name the allowlisted workloads,
/// so they need the API's authentication and the right to read them: with `--auth
/// kubernetes`, `get` on the non-resource URL `/metrics` (a token for the API server's own
/// audience is taken too, as Prometheus presents its ServiceAccount's); otherwise a viewer.
/// `--metrics-open` serves them to anyone.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn metrics(
    State(app): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    if !app.metrics_open {
        let who = app
            .auth
            .authenticate_scraper(request.headers(), peer_of(request.extensions()))
            .await?;
        app.auth.may(&who, Action::ReadMetrics).await?;
    }
    app.metrics.update_fleet(&app.fleetlock.groups());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response())
}
