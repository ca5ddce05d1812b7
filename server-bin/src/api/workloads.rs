//! The allowlisted workloads: their status and history, restarts, and breaking a lock.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use restart_core::{HistoryEntry, LockInfo, RestartError, RestartPlan, ServiceStatus};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{ApiPath, Caller, WorkloadPath, cluster_read, target, viewable, visible};
use super::error::{ApiBody, ApiError, BodyRefusals, ErrorBody, Guarded, Unauthenticated};
use crate::AppState;
use crate::auth::Action;

/// The optional body of a restart.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestartBody {
    /// Why, for the lock, the Event and the history: at most 500 characters, one line, no
    /// characters that turn the direction of text (restart-core checks the same).
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$",
        example = "pick up the rotated certificate"
    )]
    pub(super) reason: Option<String>,
}

/// The body of breaking a lock: a reason is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnlockBody {
    /// Why the lock is broken: as a restart's reason, and not blank.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\s\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069][^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$",
        example = "the rollout is stuck on a bad node"
    )]
    reason: String,
}

/// `?dryRun=true`: say what a restart would do, changing nothing.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RestartQuery {
    /// `true` (or Kubernetes' `All`): the restart's checks and what it would touch, with
    /// nothing changed or recorded; `false` or absent: restart.
    #[param(rename = "dryRun", pattern = "^(true|false|All)$")]
    #[expect(
        dead_code,
        reason = "describes the parameter for the OpenAPI document; RestartQuery::parse reads it"
    )]
    dry_run: Option<String>,
}

impl RestartQuery {
    /// Reads the query string: `dryRun` only, once.
    fn parse(raw: Option<&str>) -> Result<bool, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::invalid(format!("the query string cannot be read: {e}")))?;
        let mut dry_run = None;
        for (key, value) in pairs {
            if key != "dryRun" {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter {key:?}: only dryRun is accepted"
                )));
            }
            if dry_run.is_some() {
                return Err(ApiError::invalid("dryRun is given more than once"));
            }
            dry_run = Some(match value.as_str() {
                "true" | "All" => true,
                "false" => false,
                other => {
                    return Err(ApiError::invalid(format!(
                        "dryRun={other:?}: expected true, false or All"
                    )));
                }
            });
        }
        Ok(dry_run.unwrap_or(false))
    }
}

/// A restart's answer: the workload restarted, or, with `dryRun`, what would happen.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum RestartAnswer {
    /// Restarted; its status, with the lock.
    Restarted(Box<ServiceStatus>),
    /// `dryRun`: what a restart would do now.
    DryRun(Box<RestartPlan>),
}

/// What breaking a lock did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Unlocked {
    /// The lock that was broken; `null`: none was held.
    released: Option<LockInfo>,
}

/// A JSON body of type `T`, whatever its Content-Type says (the seed's clients send none).
/// An empty body (or JSON `null`) is `empty` where that is given, and refused otherwise.
pub(super) fn body_of<T: DeserializeOwned>(body: &Bytes, empty: Option<T>) -> Result<T, ApiError> {
    let trimmed = body.trim_ascii();
    if (trimmed.is_empty() || trimmed == b"null")
        && let Some(default) = empty
    {
        return Ok(default);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("expected {{\"reason\": \"...\"}}: {e}")))
}

/// Every allowlisted workload the caller may see, with its status.
#[utoipa::path(
    get,
    path = "/api/v1/service",
    tag = "workloads",
    responses((status = 200, description = "The workloads, in allowlist order", body = Vec<ServiceStatus>), Guarded, Unauthenticated)
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Vec<ServiceStatus>>, ApiError> {
    let visible = visible(&app, &who).await?;
    let statuses: Vec<ServiceStatus> = app
        .restarter
        .statuses()
        .into_iter()
        .filter(|s| visible.sees(s))
        .collect();
    Ok(Json(statuses))
}

/// One workload's status.
#[utoipa::path(
    get,
    path = "/api/v1/service/{kind}/{namespace}/{name}",
    tag = "workloads",
    params(WorkloadPath),
    responses(
        (status = 200, description = "Its status", body = ServiceStatus),
        (status = 400, description = "`bad_kind`: the kind is none of the three", body = ErrorBody),
        (status = 404, description = "`not_allowlisted`: not a workload this server restarts", body = ErrorBody),
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn one(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<WorkloadPath>,
) -> Result<Json<ServiceStatus>, ApiError> {
    let w = viewable(&app, &who, path).await?;
    Ok(Json(app.restarter.status(&w)?))
}

/// Its recent restarts, newest first (the workload's Events).
#[utoipa::path(
    get,
    path = "/api/v1/service/{kind}/{namespace}/{name}/history",
    tag = "workloads",
    params(WorkloadPath),
    responses(
        (status = 200, description = "Newest first", body = Vec<HistoryEntry>),
        (status = 400, description = "`bad_kind`: the kind is none of the three", body = ErrorBody),
        (status = 404, description = "`not_allowlisted`: not a workload this server restarts", body = ErrorBody),
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn history(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<WorkloadPath>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let w = viewable(&app, &who, path).await?;
    cluster_read(&app, &who)?;
    Ok(Json(app.restarter.history(&w).await?))
}

/// Restarts the workload as `kubectl rollout restart` does, under its lock; the lock frees
/// itself when the rollout ends or times out.
#[utoipa::path(
    post,
    path = "/api/v1/service/{kind}/{namespace}/{name}/restart",
    tag = "workloads",
    params(WorkloadPath, RestartQuery),
    request_body(content = Option<RestartBody>, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Restarted; its status, with the lock. With `dryRun`: what a restart would do (allowed or the refusal it would get, the lock, the pods it would replace, the budgets over them), nothing changed", body = RestartAnswer),
        (status = 404, description = "`not_allowlisted`, or `workload_not_found`: allowlisted but not in the cluster", body = ErrorBody),
        (status = 409, description = "`locked` (with the lock), `paused` Deployment, `unsupported_strategy`, or `outside_window` (the message says when the next opens; a caller with the `unlock` right who gives a reason restarts anyway)", body = ErrorBody),
        (status = 500, description = "`cluster_error`: the cluster refused the change", body = ErrorBody),
        BodyRefusals,
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn restart(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiPath(path): ApiPath<WorkloadPath>,
    RawQuery(query): RawQuery,
    ApiBody(body): ApiBody,
) -> Result<Json<RestartAnswer>, ApiError> {
    let dry_run = RestartQuery::parse(query.as_deref())?;
    let RestartBody { reason } = body_of(&body, Some(RestartBody::default()))?;
    let w = target(&app, &who, &headers, path, |w| Action::Restart(w)).await?;
    if dry_run {
        // A dry run shows the lock and the rollout (what seeing the workload shows) and its
        // pods with their nodes and readiness: it needs those rights besides the restart.
        app.auth.may(&who, Action::View(&w)).await?;
        app.auth.may(&who, Action::ViewPods(&w.namespace)).await?;
        cluster_read(&app, &who)?;
        return Ok(Json(RestartAnswer::DryRun(Box::new(
            app.restarter.dry_run(&w, &who, reason.as_deref()).await?,
        ))));
    }
    let restarted = match app.restarter.restart(&w, &who, reason.as_deref()).await {
        // Outside the windows, a caller who may break locks may restart too, saying why.
        Err(e @ RestartError::OutsideWindow { .. }) => match reason.as_deref() {
            Some(reason) if app.auth.may(&who, Action::Unlock(&w)).await.is_ok() => {
                app.restarter
                    .restart_outside_windows(&w, &who, reason)
                    .await?
            }
            _ => return Err(e.into()),
        },
        other => other?,
    };
    Ok(Json(RestartAnswer::Restarted(Box::new(restarted))))
}

/// Breaks the workload's restart lock (admins, or `unlock` rights).
#[utoipa::path(
    post,
    path = "/api/v1/service/{kind}/{namespace}/{name}/unlock",
    tag = "workloads",
    params(WorkloadPath),
    request_body(content = UnlockBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Whether a lock was released", body = Unlocked),
        (status = 404, description = "`not_allowlisted`: not a workload this server restarts", body = ErrorBody),
        (status = 500, description = "`cluster_error`: the cluster refused the change", body = ErrorBody),
        BodyRefusals,
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn unlock(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiPath(path): ApiPath<WorkloadPath>,
    ApiBody(body): ApiBody,
) -> Result<Json<Unlocked>, ApiError> {
    let w = target(&app, &who, &headers, path, |w| Action::Unlock(w)).await?;
    let UnlockBody { reason } = body_of(&body, None)?;
    let released = app.restarter.force_unlock(&w, &who, &reason).await?;
    Ok(Json(Unlocked { released }))
}
