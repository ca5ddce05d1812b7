//! Reading the API server's throttling answers, which kube-client alone cannot.
//!
//! The API server's priority-and-fairness and max-in-flight filters refuse with a `429` whose
//! body is plain text ("Too many requests, please try again later.") and whose wait is only
//! in a `Retry-After` header. kube-client keeps the body and drops the headers, so the wait
//! is lost, and a throttled eviction looks like any other 429. [`RetryAfterLayer`] sits in
//! the client's service stack and rewrites such an answer (a `429` or `503` carrying
//! `Retry-After`) into the `Status` the API server sends for its own 429s, with
//! `details.retryAfterSeconds` set from the header. A `Status` body that lacks the field gets
//! it too. Everything else passes untouched.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Value, json};
use tower::{BoxError, Layer, Service};

/// The response body the layer hands on.
pub type ThrottleBody = UnsyncBoxBody<Bytes, BoxError>;

/// How much of an error body is read to rewrite it; throttling bodies are a line of text.
const BODY_LIMIT: usize = 64 * 1024;

/// Adds [`RetryAfter`] to a client's service stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryAfterLayer;

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryAfter { inner }
    }
}

/// See the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct RetryAfter<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RetryAfter<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ThrottleBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await.map_err(Into::into)?;
            let retry_after = match retry_after_seconds(&response) {
                Some(seconds) => seconds,
                None => return Ok(response.map(|b| b.map_err(Into::into).boxed_unsync())),
            };
            let (mut parts, body) = response.into_parts();
            let bytes = Limited::new(body, BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| -> BoxError { e })?
                .to_bytes();
            let status = rewrite(parts.status, &bytes, retry_after);
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            parts.headers.remove(http::header::CONTENT_LENGTH);
            let body = Full::new(Bytes::from(status.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync();
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// The wait a `429` or `503` asks for in its `Retry-After` header, in seconds (the API
/// server sends seconds, never a date).
fn retry_after_seconds<B>(response: &Response<B>) -> Option<u64> {
    if !matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The `Status` to hand on: the body's own with `retryAfterSeconds` filled in, or one made
/// from a plain-text body.
fn rewrite(code: StatusCode, body: &[u8], retry_after: u64) -> Value {
    if let Ok(mut status) = serde_json::from_slice::<Value>(body)
        && status.get("kind").and_then(Value::as_str) == Some("Status")
    {
        let details = &mut status["details"];
        if !details.is_object() {
            *details = json!({});
        }
        if details["retryAfterSeconds"].as_u64().unwrap_or(0) == 0 {
            details["retryAfterSeconds"] = json!(retry_after);
        }
        return status;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    let reason = if code == StatusCode::TOO_MANY_REQUESTS {
        "TooManyRequests"
    } else {
        "ServiceUnavailable"
    };
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": if text.is_empty() { code.to_string() } else { text },
        "reason": reason,
        "details": {"retryAfterSeconds": retry_after},
        "code": code.as_u16(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_throttling_becomes_a_status_with_the_wait() {
        let status = rewrite(
            StatusCode::TOO_MANY_REQUESTS,
            b"Too many requests, please try again later.\n",
            3,
        );
        assert_eq!(
            status["message"],
            "Too many requests, please try again later."
        );
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(status["details"]["retryAfterSeconds"], 3);
        assert_eq!(status["code"], 429);
    }

    #[test]
    fn a_status_body_keeps_its_own_wait_and_causes() {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"m","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"x"}],"retryAfterSeconds":10},"code":429}"#;
        let status = rewrite(StatusCode::TOO_MANY_REQUESTS, body, 1);
        assert_eq!(status["details"]["retryAfterSeconds"], 10);
        assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
        let bare = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"m","code":429}"#;
        let status = rewrite(StatusCode::TOO_MANY_REQUESTS, bare, 7);
        assert_eq!(status["details"]["retryAfterSeconds"], 7);
    }
}
