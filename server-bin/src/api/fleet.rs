//! Node reboots as people see them: the fleet, and pausing a reboot group.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cluster_api::PodFilter;
use fleetlock_core::drain::DrainOptions;
use fleetlock_core::{FleetSnapshot, Kind, NodePlan, Refusal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use super::access::{ApiPath, Caller, cluster_read};
use super::error::{ApiError, ErrorBody, Guarded, NotAForm, Unauthenticated};
use crate::AppState;
use crate::auth::Action;

/// Every reboot group and node, as this replica sees them.
#[utoipa::path(
    get,
    path = "/api/v1/fleet",
    tag = "fleet",
    responses((status = 200, description = "The fleet", body = FleetSnapshot), Guarded, Unauthenticated)
)]
pub(crate) async fn fleet(
    State(app): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<FleetSnapshot>, ApiError> {
    app.auth.may(&who, Action::ViewFleet).await?;
    Ok(Json(app.fleetlock.snapshot()))
}

/// The path of one Node.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct NodePath {
    /// The Node's name.
    #[param(
        pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length = 253,
        example = "worker-1"
    )]
    node: String,
}

/// What a drain of the node would do now, and whether it could finish: the pods it would
/// evict (with their grace periods), leave, or stop at; the disruption budgets covering them;
/// a rough duration. The same plan a `pre-reboot` is checked against before the cordon.
#[utoipa::path(
    get,
    path = "/api/v1/fleet/nodes/{node}/plan",
    tag = "fleet",
    params(NodePath),
    responses(
        (status = 200, description = "The plan; `blocked` says why it could not finish", body = NodePlan),
        (status = 404, description = "`unknown_node`: no Node by that name", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn plan(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiPath(NodePath { node }): ApiPath<NodePath>,
) -> Result<Json<NodePlan>, ApiError> {
    // The plan lists the node's pods, of every namespace: seeing them needs that right
    // besides the fleet's.
    app.auth.may(&who, Action::ViewFleet).await?;
    app.auth.may(&who, Action::ViewPods("")).await?;
    cluster_read(&app, &who)?;
    plan_on_callers_budget(&app, &node)
        .await
        .map(Json)
        .map_err(refused)
}

/// The plan [`Coordinator::plan_node`](fleetlock_core::Coordinator::plan_node) makes, over
/// pods and budgets read through the callers' own budget ([`crate::Shared::caller_reads`]),
/// so that many plans never hold up a drain's evictions and lock writes. The decision is
/// fleetlock-core's own pure [`plan_node`](fleetlock_core::preflight::plan_node), with the
/// drain settings the coordinator uses.
async fn plan_on_callers_budget(app: &AppState, node: &str) -> Result<NodePlan, Refusal> {
    if !app
        .fleetlock
        .snapshot()
        .nodes
        .iter()
        .any(|n| n.name == node)
    {
        return Err(Refusal::new(
            Kind::UnknownNode,
            format!("no Node is named {node}"),
        ));
    }
    let config = app.fleetlock.config();
    let pods = app
        .caller_reads
        .list_pods(&PodFilter::on_node(node))
        .await
        .map_err(|e| Refusal::from_cluster("listing the node's pods", &e))?;
    let budgets = app
        .caller_reads
        .list_disruption_budgets()
        .await
        .map_err(|e| Refusal::from_cluster("listing disruption budgets", &e))?;
    let options = DrainOptions {
        delete_unmanaged: config.drain.delete_unmanaged,
        delete_empty_dir_data: config.drain.delete_empty_dir_data,
        own_pod: config.own_pod.clone(),
        rules: config.drain.rules.clone(),
    };
    Ok(fleetlock_core::preflight::plan_node(
        node,
        &pods,
        &budgets,
        &options,
        &config.drain,
    ))
}

/// A FleetLock refusal in the API's shape; an unknown group or node is a 404 here.
fn refused(r: Refusal) -> ApiError {
    let status = match r.kind {
        Kind::UnknownGroup | Kind::UnknownNode => StatusCode::NOT_FOUND,
        _ => StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    ApiError {
        status,
        kind: r.kind.as_str(),
        message: r.value,
        lock: None,
        retry_after: None,
    }
}

/// The path of one reboot group.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct GroupPath {
    /// The group, as Zincati names it.
    #[param(pattern = "^[a-zA-Z0-9.-]+$", max_length = 200, example = "default")]
    group: String,
}

/// A group's pause, as it now stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupPause {
    /// The group named in the path.
    group: String,
    /// Whether new reboots in it wait.
    paused: bool,
}

/// What pausing or resuming a group may be answered besides [`Guarded`] and
/// [`Unauthenticated`].
#[derive(IntoResponses)]
#[allow(dead_code)] // a description of answers, never built
enum GroupRefusals {
    /// `invalid_group`: not a group name.
    #[response(status = 400)]
    Invalid(ErrorBody<'static>),
    /// `unknown_group`: neither configured nor holding a Lease.
    #[response(status = 404)]
    Unknown(ErrorBody<'static>),
    /// `invalid_request`: a browser's POST (one with `Origin` or a cookie) without
    /// `Content-Type: application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody<'static>),
    /// `internal`: the group's Lease could not be written.
    #[response(status = 500)]
    Internal(ErrorBody<'static>),
}

/// Pauses a reboot group: no new slot is granted in it until it is resumed (admins).
#[utoipa::path(
    post,
    path = "/api/v1/fleet/groups/{group}/pause",
    tag = "fleet",
    params(GroupPath),
    responses(
        (status = 200, description = "Paused", body = GroupPause),
        GroupRefusals,
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn pause(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    _: NotAForm,
    ApiPath(GroupPath { group }): ApiPath<GroupPath>,
) -> Result<Json<GroupPause>, ApiError> {
    set_paused(&app, &who, &headers, group, true).await
}

/// Resumes a paused reboot group (admins).
#[utoipa::path(
    post,
    path = "/api/v1/fleet/groups/{group}/resume",
    tag = "fleet",
    params(GroupPath),
    responses(
        (status = 200, description = "Resumed", body = GroupPause),
        GroupRefusals,
        Guarded,
        Unauthenticated,
    )
)]
pub(crate) async fn resume(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    _: NotAForm,
    ApiPath(GroupPath { group }): ApiPath<GroupPath>,
) -> Result<Json<GroupPause>, ApiError> {
    set_paused(&app, &who, &headers, group, false).await
}

async fn set_paused(
    app: &AppState,
    who: &restart_core::Identity,
    headers: &HeaderMap,
    group: String,
    paused: bool,
) -> Result<Json<GroupPause>, ApiError> {
    app.auth.check_origin(headers)?;
    // Names first: a made-up group is 404 before any access review is spent on it.
    app.fleetlock.check_pausable(&group).map_err(refused)?;
    app.auth.may(who, Action::PauseGroup(&group)).await?;
    app.fleetlock
        .set_paused(&group, paused)
        .await
        .map_err(refused)?;
    tracing::info!(%group, paused, by = %who, "reboot group pause changed through the API");
    Ok(Json(GroupPause { group, paused }))
}
