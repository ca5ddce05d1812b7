//! Restart sets: their status, starting a run and cancelling it.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use cluster_api::WorkloadRef;
use restart_core::{Identity, RestartError, SetStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{ApiPath, Caller, visible};
use super::error::{
    ApiBody, ApiError, BodyRefusals, ErrorBody, Guarded, NotAForm, Unauthenticated,
};
use super::workloads::{RestartBody, body_of};
use crate::AppState;
use crate::auth::Action;

/// The path of one set.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SetPath {
    /// The set's name.
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    set: String,
}

/// What cancelling did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Cancelled {
    /// Whether a run was going on (and is now cancelling).
    cancelled: bool,
    /// The set's status now.
    set: SetStatus,
}

/// The set's members, if the caller may do `action` to every one (403 naming the first
/// they may not). Unknown sets are 404 before any access review.
async fn members_for(
    app: &AppState,
    who: &Identity,
    set: &str,
    action: for<'a> fn(&'a WorkloadRef) -> Action<'a>,
) -> Result<Vec<WorkloadRef>, ApiError> {
    let members = app.restarter.set_status(set)?.set.members;
    for w in &members {
        app.auth.may(who, action(w)).await?;
    }
    Ok(members)
}

/// Every restart set whose members the caller may all see, with its run.
#[utoipa::path(
    get,
    path = "/api/v1/sets",
    tag = "sets",
    responses((status = 200, description = "The sets, in configuration order", body = Vec<SetStatus>), Guarded, Unauthenticated)
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Vec<SetStatus>>, ApiError> {
    let visible = visible(&app, &who).await?;
    let sets = app
        .restarter
        .set_statuses()
        .into_iter()
        .filter(|s| visible.sees_all(&s.set.members))
        .collect();
    Ok(Json(sets))
}

/// One set, with its run going on or its last.
#[utoipa::path(
    get,
    path = "/api/v1/sets/{set}",
    tag = "sets",
    params(SetPath),
    responses(
        (status = 200, description = "Its status", body = SetStatus),
        (status = 404, description = "`unknown_set`: no set has this name", body = ErrorBody),
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn one(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<SetPath>,
) -> Result<Json<SetStatus>, ApiError> {
    members_for(&app, &who, &path.set, |w| Action::View(w)).await?;
    Ok(Json(app.restarter.set_status(&path.set)?))
}

/// Starts a run of the set: its members restart in order, `concurrency` at a time, each
/// under its own lock; the run ends when the last rolls out (or, under `onFailure: stop`,
/// when one fails). Needs the right to restart every member.
#[utoipa::path(
    post,
    path = "/api/v1/sets/{set}/restart",
    tag = "sets",
    params(SetPath),
    request_body(content = Option<RestartBody>, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Started; the set with its run", body = SetStatus),
        (status = 404, description = "`unknown_set`", body = ErrorBody),
        (status = 409, description = "`set_running`: a run goes on already; `outside_window`: a member is outside its restart windows (a caller with the `unlock` right on every member who gives a reason starts anyway)", body = ErrorBody),
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
    ApiPath(path): ApiPath<SetPath>,
    ApiBody(body): ApiBody,
) -> Result<Json<SetStatus>, ApiError> {
    app.auth.check_origin(&headers)?;
    let RestartBody { reason } = body_of(&body, Some(RestartBody::default()))?;
    let members = members_for(&app, &who, &path.set, |w| Action::Restart(w)).await?;
    let started = match app
        .restarter
        .start_set(&path.set, &who, reason.as_deref())
        .await
    {
        Err(e @ RestartError::OutsideWindow { .. }) => {
            let Some(reason) = reason.as_deref() else {
                return Err(e.into());
            };
            for w in &members {
                if app.auth.may(&who, Action::Unlock(w)).await.is_err() {
                    return Err(e.into());
                }
            }
            app.restarter
                .start_set_outside_windows(&path.set, &who, reason)
                .await?
        }
        other => other?,
    };
    Ok(Json(started))
}

/// Cancels the set's run: no further member starts; those restarting finish. Needs the
/// right to restart every member.
#[utoipa::path(
    post,
    path = "/api/v1/sets/{set}/cancel",
    tag = "sets",
    params(SetPath),
    responses(
        (status = 200, description = "Whether a run was cancelled, and the set now", body = Cancelled),
        (status = 404, description = "`unknown_set`", body = ErrorBody),
        (status = 415, description = "`invalid_request`: a browser's POST (one with `Origin` or a cookie) without `Content-Type: application/json`", body = ErrorBody),
        (status = 500, description = "`cluster_error`: the cluster refused the change", body = ErrorBody),
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn cancel(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    _: NotAForm,
    ApiPath(path): ApiPath<SetPath>,
) -> Result<Json<Cancelled>, ApiError> {
    app.auth.check_origin(&headers)?;
    members_for(&app, &who, &path.set, |w| Action::Restart(w)).await?;
    let cancelled = app.restarter.cancel_set(&path.set, &who).await?;
    Ok(Json(Cancelled {
        cancelled: cancelled.is_some(),
        set: match cancelled {
            Some(set) => set,
            None => app.restarter.set_status(&path.set)?,
        },
    }))
}
