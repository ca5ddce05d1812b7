//! Who is asking, what they may see, and the workload a path names.

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use cluster_api::{WorkloadKind, WorkloadRef};
use restart_core::{Identity, ServiceStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use utoipa::openapi::{Object, ObjectBuilder, schema::Type};

use super::ApiError;
use crate::AppState;
use crate::auth::{Action, AuthError, Peer};

/// The authenticated caller.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Caller(
            state
                .auth
                .authenticate(&parts.headers, peer_of(&parts.extensions))
                .await?,
        ))
    }
}

/// Where a request came from: its address, and whether its connection showed a verified
/// client certificate.
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> Peer {
    Peer {
        ip: extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        verified_client: extensions.get::<crate::tls::VerifiedClient>().is_some(),
    }
}

/// Path parameters, refused in the API's JSON shape when they cannot be read (axum's own
/// rejection is plain text).
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(e) => Err(ApiError::invalid(format!("cannot read the path: {e}"))),
        }
    }
}

/// The path of one workload: `{kind}/{namespace}/{name}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct WorkloadPath {
    /// The workload's kind (see the schema for the names it is known by).
    #[param(schema_with = kind_schema, example = "Deployment")]
    pub(crate) kind: String,
    /// The workload's namespace.
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    pub(crate) namespace: String,
    /// The workload's name.
    #[param(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length = 253)]
    pub(crate) name: String,
}

/// The names a path's `{kind}` may take.
fn kind_schema() -> Object {
    let canonical = WorkloadKind::ALL.iter().map(|k| k.as_str());
    let aliases = WorkloadKind::NAMES.iter().map(|(name, _)| *name);
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "`Deployment`, `StatefulSet` or `DaemonSet`, or a name kubectl knows them by \
             (`deployments`, `deploy`, `sts`, `ds`, ...), in any case.",
        ))
        .enum_values(Some(canonical.chain(aliases)))
        .build()
}

impl WorkloadPath {
    /// The workload, or 400 `bad_kind` for a kind that is none of the three.
    pub(crate) fn workload(self) -> Result<WorkloadRef, ApiError> {
        let kind: WorkloadKind = self.kind.parse().map_err(|e: cluster_api::UnknownKind| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_kind", e.to_string())
        })?;
        Ok(WorkloadRef::new(kind, self.namespace, self.name))
    }
}

/// The allowlisted workloads a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Visible {
    /// All of them (kept as a word, not a copy of the allowlist, for each stream client).
    All,
    /// These.
    Only(HashSet<WorkloadRef>),
}

impl Visible {
    /// Whether every one of `workloads` is visible (a set is shown only then).
    pub(crate) fn sees_all(&self, workloads: &[WorkloadRef]) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(set) => workloads.iter().all(|w| set.contains(w)),
        }
    }

    pub(crate) fn sees(&self, s: &ServiceStatus) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(set) => set
                .iter()
                .any(|w| w.kind == s.kind && w.namespace == s.namespace && w.name == s.name),
        }
    }
}

/// The allowlisted workloads the caller may see.
pub(crate) async fn visible(app: &AppState, who: &Identity) -> Result<Visible, AuthError> {
    let allowlist = app.restarter.allowlist();
    let seen = app
        .auth
        .visible(who, allowlist.iter().map(|a| &a.workload))
        .await?;
    Ok(if seen.len() == allowlist.len() {
        Visible::All
    } else {
        Visible::Only(seen.into_iter().cloned().collect())
    })
}

/// A workload the caller may see: allowlisted (404 otherwise, before any access review) and
/// visible to them.
pub(crate) async fn viewable(
    app: &AppState,
    who: &Identity,
    path: WorkloadPath,
) -> Result<WorkloadRef, ApiError> {
    let w = path.workload()?;
    app.restarter.status(&w)?;
    app.auth.may(who, Action::View(&w)).await?;
    Ok(w)
}

/// The checks before acting on a workload: a page from our own origin, a known kind, an
/// allowlisted workload, and the caller's right to do `action`.
pub(crate) async fn target(
    app: &AppState,
    who: &Identity,
    headers: &HeaderMap,
    path: WorkloadPath,
    action: for<'a> fn(&'a WorkloadRef) -> Action<'a>,
) -> Result<WorkloadRef, ApiError> {
    app.auth.check_origin(headers)?;
    let w = path.workload()?;
    app.restarter.status(&w)?;
    app.auth.may(who, action(&w)).await?;
    Ok(w)
}

/// Takes one of the caller's allowance of requests that read the cluster on their behalf
/// (dry runs, drain plans, history: `--cluster-read-rate`), or refuses with 429 and
/// `Retry-After`, naming the limit.
pub(crate) fn cluster_read(app: &AppState, who: &Identity) -> Result<(), ApiError> {
    let Some(limiter) = &app.cluster_read_rate else {
        return Ok(());
    };
    let Err(wait) = limiter.check_key(&who.user) else {
        return Ok(());
    };
    let seconds = crate::ratelimit::retry_after(wait);
    let rate = limiter.rate();
    let mut refused = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!(
            "{who} has asked for too many dry runs, drain plans and histories (each reads the \
             cluster; --cluster-read-rate allows {} per second per user, {} at once); try \
             again in {seconds} s",
            rate.per_second, rate.burst
        ),
    );
    refused.retry_after = Some(seconds);
    Err(refused)
}
