//! How the API says no: [`ApiError`] and its JSON body, the limited request body, the check
//! that a browser's POST is no form ([`NotAForm`]), and the sets of refusals the OpenAPI
//! document lists for each operation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use restart_core::{ErrorKind, LockInfo, RestartError};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

use crate::auth::AuthError;
use crate::body::{BodyError, read_limited};

/// An API error: a status, a stable `kind`, a sentence, and the lock when that is the reason.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) lock: Option<Box<LockInfo>>,
    /// Seconds for `Retry-After`.
    pub(crate) retry_after: Option<u64>,
}

/// The body of every refusal of the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    /// A stable name a program can branch on: `unauthenticated`, `forbidden`,
    /// `foreign_origin`, `too_many_requests`, `timeout`, `invalid_request`, `bad_kind`,
    /// `body_too_large`, `not_found`, `not_allowlisted`, `workload_not_found`, `locked`,
    /// `paused`, `unsupported_strategy`, `cluster_unavailable`, `cluster_error`, or a FleetLock
    /// kind (`unknown_group`, `invalid_group`, ...) for reboot groups.
    #[schema(example = "locked")]
    pub kind: &'a str,
    /// What happened, in a sentence for a person.
    pub message: &'a str,
    /// Who holds the lock, when a lock is why (`locked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<&'a LockInfo>,
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

    /// A 400 `invalid_request`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            kind: self.kind,
            message: &self.message,
            lock: self.lock.as_deref(),
        };
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
/// own JSON shape (axum's own limit answers in plain text, and only at 2 MiB); from a browser,
/// only as JSON ([`NotAForm`]).
pub(crate) struct ApiBody(pub(crate) Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, ApiError> {
        NotAForm::check(request.headers())?;
        let deadline = request
            .extensions()
            .get::<crate::body::BodyDeadline>()
            .copied();
        match read_limited(request.into_body(), MAX_API_BODY, deadline).await {
            Ok(bytes) => Ok(ApiBody(bytes)),
            Err(BodyError::TooLarge) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over the limit of {MAX_API_BODY} bytes"),
            )),
            Err(BodyError::Unreadable(e)) => Err(ApiError::invalid(format!(
                "could not read the request body: {e}"
            ))),
            Err(BodyError::TooSlow(within)) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_too_slow",
                format!(
                    "the request body did not arrive within {} s",
                    within.as_secs()
                ),
            )),
        }
    }
}

/// A POST that an HTML form on another site could not have sent: one from a browser (with
/// `Origin` or a cookie) must carry `Content-Type: application/json`, which a form cannot set
/// (cross-site request forgery). Every POST handler takes it, directly or through
/// the API's body extractor.
pub struct NotAForm;

impl NotAForm {
    pub(crate) fn check(headers: &HeaderMap) -> Result<NotAForm, ApiError> {
        let browser = headers.contains_key(header::ORIGIN) || headers.contains_key(header::COOKIE);
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if browser && !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "a browser's POST must send Content-Type: application/json",
            ));
        }
        Ok(NotAForm)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for NotAForm {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        NotAForm::check(&parts.headers)
    }
}

/// The HTTP status each kind of restart refusal is answered with.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotAllowlisted | ErrorKind::WorkloadNotFound | ErrorKind::UnknownSet => {
            StatusCode::NOT_FOUND
        }
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Locked
        | ErrorKind::SetRunning
        | ErrorKind::Paused
        | ErrorKind::UnsupportedStrategy
        | ErrorKind::OutsideWindow => StatusCode::CONFLICT,
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

/// What any request to the people-facing listener may be answered before its handler has a
/// say: a foreign page or `Host`, too many requests, too slow an answer. Listed on every
/// operation of the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)] // a description of answers, never built
pub(crate) enum Guarded {
    /// `forbidden`: the caller may not do this; `foreign_origin`: a page of another origin,
    /// or an unknown `Host`.
    #[response(status = 403)]
    Forbidden(ErrorBody<'static>),
    /// `too_many_requests`: over this client's allowance; `Retry-After` says when to ask again.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds")))]
    TooManyRequests(ErrorBody<'static>),
    /// `timeout`: the answer took longer than `--request-timeout`; `cluster_unavailable`: the
    /// cluster could not be reached. Both are worth trying again.
    #[response(status = 503)]
    Unavailable(ErrorBody<'static>),
}

/// What an operation that identifies its caller may be answered besides [`Guarded`].
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "`unauthenticated`: no credentials, or ones this server does not accept.",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"restart-manager\"`"))
)]
#[allow(dead_code)] // a description of answers, never built
pub(crate) struct Unauthenticated(ErrorBody<'static>);

/// What a POST with a body may be answered besides [`Guarded`].
#[derive(IntoResponses)]
#[allow(dead_code)] // a description of answers, never built
pub(crate) enum BodyRefusals {
    /// `invalid_request`: the body is not what the operation takes; `bad_kind`: the path's
    /// kind is none of the three.
    #[response(status = 400)]
    Invalid(ErrorBody<'static>),
    /// `body_too_large`: the body is over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody<'static>),
    /// `invalid_request`: a browser's POST (one with `Origin` or a cookie) without
    /// `Content-Type: application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody<'static>),
}
