//! The bearer token a caller presents: the `Authorization` header, or the page's session
//! cookie, which the server sets itself (`POST /api/v1/session`).

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};

use super::error::AuthError;
use super::headers::header;

/// The longest bearer token taken, in bytes: a Kubernetes token is about 1 KiB, an OIDC token
/// with many groups a few. Longer ones are refused before anything is asked of anyone.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The cookie the server keeps the page's bearer token in, over plain HTTP (same-site,
/// HttpOnly).
pub const TOKEN_COOKIE: &str = "restart_manager_token";

/// The same cookie when the page is served over HTTPS: `Secure`, and bound to this host and
/// path `/` by its `__Host-` prefix.
pub const SECURE_TOKEN_COOKIE: &str = "__Host-restart_manager_token";

/// The bytes a token keeps as they are in its cookie; everything else is percent-encoded.
const COOKIE_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The `Set-Cookie` value that keeps `token` for the page (percent-encoded, so that any token
/// survives), or, with `None`, the one that forgets it.
pub fn session_cookie(token: Option<&str>, secure: bool) -> String {
    let name = if secure {
        SECURE_TOKEN_COOKIE
    } else {
        TOKEN_COOKIE
    };
    let attributes = if secure {
        "Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Strict"
    };
    match token {
        Some(token) => format!(
            "{name}={}; {attributes}",
            percent_encoding::utf8_percent_encode(token, COOKIE_ESCAPES)
        ),
        None => format!("{name}=; Max-Age=0; {attributes}"),
    }
}

/// The caller's bearer token, from the Authorization header or the page's cookie; one
/// longer than [`MAX_TOKEN_LEN`] is refused.
pub(super) fn bearer(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let token = presented(headers);
    if token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN_LEN) {
        return Err(AuthError::Unauthenticated(format!(
            "the bearer token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(token)
}

fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = header(headers, AUTHORIZATION.as_str()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            let ours = k == TOKEN_COOKIE || k == SECURE_TOKEN_COOKIE;
            (ours && !v.is_empty()).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
}
