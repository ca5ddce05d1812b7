//! Errors as the API server sends them: `Status` bodies with reason and code, and the
//! plain-text throttling 429 of priority and fairness.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cluster_api::Error;
use serde_json::{Value, json};

/// A failed request, answered as a `Status`.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
    details: Option<Value>,
    retry_after: Option<u64>,
    plain: bool,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            plain: false,
        }
    }

    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"));
        e.details = Some(json!({"name": name, "kind": resource}));
        e
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// RBAC said no, worded as the API server words it.
    pub(crate) fn forbidden(message: impl Into<String>, name: &str, kind: &str) -> Self {
        let mut e = Self::new(403, "Forbidden", message);
        e.details = Some(json!({"name": name, "kind": kind}));
        e
    }

    /// A 422 whose message reads `KIND "NAME" is invalid: FIELD: DETAIL`, with the field's
    /// cause in the details as the API server lists it (`FieldValueTooLong`, ...).
    pub(crate) fn invalid_with_cause(message: String) -> Self {
        let cause = message
            .split_once(" is invalid: ")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(field, detail)| {
                let reason = [
                    ("Too long", "FieldValueTooLong"),
                    ("Required value", "FieldValueRequired"),
                    ("Unsupported value", "FieldValueNotSupported"),
                    ("Duplicate value", "FieldValueDuplicate"),
                    ("Forbidden", "FieldValueForbidden"),
                ]
                .iter()
                .find(|(lead, _)| detail.starts_with(lead))
                .map_or("FieldValueInvalid", |(_, reason)| reason);
                json!({"reason": reason, "message": detail, "field": field})
            });
        let mut e = Self::new(422, "Invalid", message);
        if let Some(cause) = cause {
            e.details = Some(json!({"causes": [cause]}));
        }
        e
    }

    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// A budget's refusal of an eviction, with the budget's words as a cause.
    pub(crate) fn disruption_budget(message: &str) -> Self {
        const LEAD: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
        let cause = message.strip_prefix(LEAD).unwrap_or(message).trim();
        let mut e = Self::new(429, "TooManyRequests", LEAD);
        e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}));
        e
    }

    /// The 500 the Eviction API gives for a pod under two budgets: no reason, no details.
    /// A 409 `Conflict` with these words (a failed delete precondition, say).
    pub(crate) fn conflict_message(message: impl Into<String>) -> Self {
        Self::new(409, "Conflict", message)
    }

    pub(crate) fn internal_bare(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    /// The `Status` body.
    pub(crate) fn status(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        });
        if !self.reason.is_empty() {
            body["reason"] = json!(self.reason);
        }
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body["code"] = json!(self.code);
        body
    }
}

/// A cluster error (an injected fault, or a refused write) as the API server would send it.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound { message } => Self::new(404, "NotFound", message),
            Error::Conflict { message } => Self::new(409, "Conflict", message),
            Error::AlreadyExists { message } => Self::new(409, "AlreadyExists", message),
            Error::TooManyRequests {
                message,
                retry_after,
            } => {
                // Priority and fairness: plain text, the wait in a header.
                let mut e = Self::new(429, "TooManyRequests", message);
                e.retry_after = Some(retry_after.map_or(1, |d| d.as_secs().max(1)));
                e.plain = true;
                e
            }
            Error::Forbidden { message } => Self::new(403, "Forbidden", message),
            Error::Invalid { message } => Self::invalid_with_cause(message),
            Error::Unavailable { message } => Self::new(500, "InternalError", message),
            other => Self::new(500, "InternalError", other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if self.plain {
            (
                code,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Too many requests, please try again later.\n",
            )
                .into_response()
        } else {
            (
                code,
                [(header::CONTENT_TYPE, "application/json")],
                self.status().to_string(),
            )
                .into_response()
        };
        if let Some(wait) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&wait.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
