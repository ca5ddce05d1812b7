//! The restart API, compatible with k8s-restart-app's paths, and the live status stream.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/service` | every allowlisted workload with its status |
//! | `GET /api/v1/service/status` | websocket: a snapshot, then every change (`?kind=&namespace=&name=` for one; [`crate::status_stream`]) |
//! | `GET /api/v1/service/{kind}/{namespace}/{name}` | one workload's status |
//! | `GET /api/v1/service/{kind}/{namespace}/{name}/history` | its recent restarts, newest first |
//! | `POST /api/v1/service/{kind}/{namespace}/{name}/restart` | restart it; body `{"reason": ".."}` optional |
//! | `POST /api/v1/service/{kind}/{namespace}/{name}/unlock` | break its lock (admins); body `{"reason": ".."}` required |
//! | `POST /api/v1/fleet/groups/{group}/pause`, `.../resume` | pause or resume a reboot group (admins) |
//! | `GET /api/v1/whoami` | who the server thinks you are |

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use cluster_api::{WorkloadKind, WorkloadRef};
use fleetlock_core::{Kind, Refusal};
use restart_core::{ErrorKind, Identity, LockInfo, RestartError, ServiceStatus};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Action, AuthError, Peer};

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
/// involved (DNS rebinding), and JSON bodies for a browser's POSTs, which an HTML form cannot
/// send (cross-site request forgery).
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
    let browser = headers.contains_key(header::ORIGIN) || headers.contains_key(header::COOKIE);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if browser && request.method() == axum::http::Method::POST && !json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "a browser's POST must send Content-Type: application/json",
        )
        .into_response();
    }
    next.run(request).await
}

/// The restart routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/service", get(list))
        .route(
            "/api/v1/service/status",
            get(crate::status_stream::status_stream),
        )
        .route("/api/v1/service/{kind}/{namespace}/{name}", get(one))
        .route(
            "/api/v1/service/{kind}/{namespace}/{name}/history",
            get(history),
        )
        .route(
            "/api/v1/service/{kind}/{namespace}/{name}/restart",
            post(restart),
        )
        .route(
            "/api/v1/service/{kind}/{namespace}/{name}/unlock",
            post(unlock),
        )
        .route("/api/v1/fleet/groups/{group}/{action}", post(pause_group))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/session", post(sign_in).delete(sign_out))
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

use crate::auth::MAX_TOKEN_LEN;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// Whether the browser reached us over HTTPS (directly or through a TLS-terminating proxy),
/// so that the session cookie can be `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    proto || origin
}

/// The page signs in: the token is checked as any request's would be, and kept in an HttpOnly
/// cookie the page's scripts cannot read.
async fn sign_in(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    app.auth.check_origin(&headers)?;
    let invalid =
        |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message);
    if !app.auth.uses_tokens() {
        return Err(invalid(
            "this server does not sign in with tokens (its --auth mode identifies callers otherwise)",
        ));
    }
    if body.len() > MAX_TOKEN_LEN + 64 {
        return Err(invalid("the token is too long"));
    }
    let SignIn { token } = serde_json::from_slice(&body)
        .map_err(|e| invalid(&format!("expected {{\"token\": \"...\"}}: {e}")))?;
    let token = token.trim();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| invalid("the token contains characters a token cannot have"))?;
    let mut presented = HeaderMap::new();
    presented.insert(header::AUTHORIZATION, bearer);
    let who = app.auth.authenticate(&presented, Some(peer.ip())).await?;
    let cookie = crate::auth::session_cookie(Some(token), over_https(&headers));
    let mut response = axum::Json(json!({"user": who.user, "groups": who.groups})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The page signs out: both cookie names are forgotten.
async fn sign_out(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    app.auth.check_origin(&headers)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for secure in [false, true] {
        if let Ok(v) = HeaderValue::from_str(&crate::auth::session_cookie(None, secure)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// An API error: a status, a stable `kind`, a sentence, and the lock when that is the reason.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    lock: Option<Box<LockInfo>>,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            lock: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"kind": self.kind, "message": self.message});
        if let Some(lock) = &self.lock {
            body["lock"] = json!(lock);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"restart-manager\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The most a request body of this API may hold: a reason is at most 500 characters, a
/// token at most 16 KiB.
pub const MAX_API_BODY: usize = 64 * 1024;

/// A request body of this API, read up to [`MAX_API_BODY`] and refused past it in the API's
/// own JSON shape (axum's own limit answers in plain text, and only at 2 MiB).
pub(crate) struct ApiBody(pub(crate) Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, ApiError> {
        use http_body_util::BodyExt;
        let limited = http_body_util::Limited::new(request.into_body(), MAX_API_BODY);
        match limited.collect().await {
            Ok(collected) => Ok(ApiBody(collected.to_bytes())),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over the limit of {MAX_API_BODY} bytes"),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("could not read the request body: {e}"),
            )),
        }
    }
}

/// The HTTP status each kind of restart refusal is answered with.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotAllowlisted | ErrorKind::WorkloadNotFound => StatusCode::NOT_FOUND,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Locked | ErrorKind::Paused | ErrorKind::UnsupportedStrategy => {
            StatusCode::CONFLICT
        }
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::ClusterUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<RestartError> for ApiError {
    fn from(e: RestartError) -> Self {
        let lock = match &e {
            RestartError::Locked { lock, .. } => Some(lock.clone()),
            _ => None,
        };
        ApiError {
            status: status_of(e.kind()),
            kind: e.kind().as_str(),
            message: e.to_string(),
            lock,
            retry_after: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m)
            }
            AuthError::ForeignOrigin(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "foreign_origin", m)
            }
            AuthError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            AuthError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cluster_unavailable", m)
            }
            AuthError::Busy {
                message,
                retry_after,
            } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
            },
        }
    }
}

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

fn workload(kind: &str, namespace: String, name: String) -> Result<WorkloadRef, ApiError> {
    let kind: WorkloadKind = kind.parse().map_err(|e: cluster_api::UnknownKind| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_kind", e.to_string())
    })?;
    Ok(WorkloadRef::new(kind, namespace, name))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

/// An optional JSON body, whatever its Content-Type says (the seed's clients send none).
fn reason_of(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: ReasonBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("expected {{\"reason\": \"...\"}}: {e}"),
        )
    })?;
    Ok(parsed.reason)
}

async fn list(State(app): State<AppState>, Caller(who): Caller) -> Result<Response, ApiError> {
    let visible = visible(&app, &who).await?;
    let statuses: Vec<ServiceStatus> = app
        .restarter
        .statuses()
        .into_iter()
        .filter(|s| visible.sees(s))
        .collect();
    Ok(axum::Json(statuses).into_response())
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
    (kind, namespace, name): (String, String, String),
) -> Result<WorkloadRef, ApiError> {
    let w = workload(&kind, namespace, name)?;
    app.restarter.status(&w)?;
    app.auth.may(who, Action::View(&w)).await?;
    Ok(w)
}

async fn one(
    State(app): State<AppState>,
    Caller(who): Caller,
    Path(path): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let w = viewable(&app, &who, path).await?;
    Ok(axum::Json(app.restarter.status(&w)?).into_response())
}

async fn history(
    State(app): State<AppState>,
    Caller(who): Caller,
    Path(path): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let w = viewable(&app, &who, path).await?;
    Ok(axum::Json(app.restarter.history(&w).await?).into_response())
}

/// The checks before acting on a workload: a page from our own origin, a known kind, an
/// allowlisted workload, and the caller's right to do `action`.
async fn target(
    app: &AppState,
    who: &Identity,
    headers: &HeaderMap,
    (kind, namespace, name): (String, String, String),
    action: for<'a> fn(&'a WorkloadRef) -> Action<'a>,
) -> Result<WorkloadRef, ApiError> {
    app.auth.check_origin(headers)?;
    let w = workload(&kind, namespace, name)?;
    app.restarter.status(&w)?;
    app.auth.may(who, action(&w)).await?;
    Ok(w)
}

async fn restart(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let reason = reason_of(&body)?;
    let w = target(&app, &who, &headers, path, |w| Action::Restart(w)).await?;
    let status = app.restarter.restart(&w, &who, reason.as_deref()).await?;
    Ok(axum::Json(status).into_response())
}

async fn unlock(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let w = target(&app, &who, &headers, path, |w| Action::Unlock(w)).await?;
    let reason = reason_of(&body)?.unwrap_or_default();
    let released = app.restarter.force_unlock(&w, &who, &reason).await?;
    Ok(axum::Json(json!({"released": released})).into_response())
}

async fn pause_group(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Path((group, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    app.auth.check_origin(&headers)?;
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action {other:?}: use pause or resume"),
            ));
        }
    };
    // Names first: a made-up group is 404 before any access review is spent on it.
    let refused = |r: Refusal| {
        let status = match r.kind {
            Kind::UnknownGroup => StatusCode::NOT_FOUND,
            _ => StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        ApiError {
            status,
            kind: r.kind.as_str(),
            message: r.value,
            lock: None,
            retry_after: None,
        }
    };
    app.fleetlock.check_pausable(&group).map_err(refused)?;
    app.auth.may(&who, Action::PauseGroup(&group)).await?;
    app.fleetlock
        .set_paused(&group, paused)
        .await
        .map_err(refused)?;
    tracing::info!(%group, paused, by = %who, "reboot group pause changed through the API");
    Ok(axum::Json(json!({"group": group, "paused": paused})).into_response())
}

async fn whoami(State(app): State<AppState>, Caller(who): Caller) -> Response {
    let admin = app.auth.admin(&who);
    let authenticated = app.auth.authenticates();
    axum::Json(json!({"user": who.user, "groups": who.groups, "admin": admin, "authenticated": authenticated}))
        .into_response()
}
