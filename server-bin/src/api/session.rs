//! Who the caller is, and the page's sign-in and sign-out.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::error::{ApiBody, ApiError, BodyRefusals, Guarded, Unauthenticated};
use crate::AppState;
use crate::auth::MAX_TOKEN_LEN;

/// The page's sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    /// A bearer token this server accepts (`--auth tokens`): printable ASCII, as an
    /// `Authorization` header carries it.
    #[schema(
        min_length = 1,
        max_length = 16384,
        pattern = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$"
    )]
    token: String,
}

/// Who signed in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SignedIn {
    /// The user name.
    user: String,
    /// The user's groups.
    groups: Vec<String>,
}

/// Who the server thinks the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WhoAmI {
    /// The user name (`anonymous` without authentication).
    user: String,
    /// The user's groups.
    groups: Vec<String>,
    /// Whether the caller is an admin (may break locks and pause reboot groups); `null` when
    /// the cluster's RBAC decides per workload (`--auth kubernetes`).
    admin: Option<bool>,
    /// Whether this server authenticates callers at all.
    authenticated: bool,
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

/// Signs the page in: the token is checked as any request's would be, and kept in an
/// HttpOnly cookie the page's scripts cannot read. Only with `--auth tokens`.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "session",
    request_body(content = SignIn, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedIn,
            headers(("Set-Cookie" = String, description = "the session, HttpOnly, SameSite=Strict"))),
        BodyRefusals,
        Guarded,
        Unauthenticated,
    ),
    security(())
)]
pub(crate) async fn sign_in(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    app.auth.check_origin(&headers)?;
    if !app.auth.uses_tokens() {
        return Err(ApiError::invalid(
            "this server does not sign in with tokens (its --auth mode identifies callers otherwise)",
        ));
    }
    if body.len() > MAX_TOKEN_LEN + 64 {
        return Err(ApiError::invalid("the token is too long"));
    }
    let SignIn { token } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("expected {{\"token\": \"...\"}}: {e}")))?;
    let token = token.trim();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ApiError::invalid("the token contains characters a token cannot have"))?;
    let mut presented = HeaderMap::new();
    presented.insert(header::AUTHORIZATION, bearer);
    let who = app.auth.authenticate(&presented, Some(peer.ip())).await?;
    let cookie = crate::auth::session_cookie(Some(token), over_https(&headers));
    let mut response = Json(SignedIn {
        user: who.user,
        groups: who.groups,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Signs the page out: both session cookies are forgotten.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "session",
    responses(
        (status = 204, description = "Signed out", headers(("Set-Cookie" = String, description = "expired session cookies"))),
        Guarded,
    ),
    security(())
)]
pub(crate) async fn sign_out(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.auth.check_origin(&headers)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for secure in [false, true] {
        if let Ok(v) = HeaderValue::from_str(&crate::auth::session_cookie(None, secure)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// Who the server thinks the caller is, and what that allows.
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    tag = "session",
    responses((status = 200, description = "The caller", body = WhoAmI), Guarded, Unauthenticated)
)]
pub(crate) async fn whoami(State(app): State<AppState>, Caller(who): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        admin: app.auth.admin(&who),
        authenticated: app.auth.authenticates(),
        user: who.user,
        groups: who.groups,
    })
}
