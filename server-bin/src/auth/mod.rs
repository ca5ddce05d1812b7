//! Who is calling: pluggable authentication, and the checks every state-changing request
//! passes.
//!
//! | mode | identity from | for |
//! |---|---|---|
//! | `none` | nobody: everyone is `anonymous` and an admin | `--simulate`, a laptop |
//! | `tokens` | `Authorization: Bearer <token>` (or the page's cookie), looked up in a file | small teams, CI jobs |
//! | `proxy` | headers set by a trusted reverse proxy (oauth2-proxy and the like) | SSO |
//! | `kubernetes` | Kubernetes bearer tokens (TokenReview); rights by SubjectAccessReview | restart-only RBAC |
//!
//! With `kubernetes`, restarting needs the custom verb `restart` on the workload's resource
//! (`deployments.apps`, ...), breaking a lock the verb `unlock`, pausing a reboot group
//! `update` on its Lease, seeing a workload's status and history `get` on it, and seeing the
//! fleet `list` on nodes; see docs/operations.md for the Role to grant. In the other modes,
//! `--viewers` (everyone authenticated unless set) may see, and `--admins` break locks and
//! pause groups.
//!
//! | module | what it holds |
//! |---|---|
//! | `identify.rs` | [`Auth`]: who is calling, and the Host and Origin checks |
//! | `rights.rs` | [`Action`]s and [`Auth::may`]: what the caller may do |
//! | `tokens.rs`, `proxy.rs`, `kubernetes.rs` | one mode each |
//! | `session.rs` | the bearer token, from the header or the page's cookie |
//! | `headers.rs`, `error.rs` | what the others share: header values, [`AuthError`] |

mod error;
mod headers;
mod identify;
mod kubernetes;
mod proxy;
mod rights;
mod session;
mod tokens;

pub use error::AuthError;
pub use identify::{Auth, Authenticator, Peer};
pub use kubernetes::{DEFAULT_CACHE_TTL, KubeAuth};
pub use proxy::{Cidr, PROXY_SECRET_HEADER, ProxyAuth};
pub use rights::{Action, METRICS_PATH};
pub use session::{MAX_TOKEN_LEN, SECURE_TOKEN_COOKIE, TOKEN_COOKIE, session_cookie};
pub use tokens::{TokenEntry, load_tokens, parse_tokens};

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    pub(super) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    pub(super) fn tokens() -> Auth {
        Auth {
            authenticator: Authenticator::Tokens(
                parse_tokens("# team tokens\n0123456789abcdef0001,alice,1,\"sre,shop\"\n0123456789abcdef0002,bob,2\n").unwrap(),
            ),
            admins: vec!["group:sre".into()],
            viewers: vec![],
            allowed_origins: vec![],
        }
    }

    #[test]
    fn origins_must_be_our_own() {
        let mut auth = Auth::none();
        assert!(
            auth.check_origin(&headers(&[("host", "rm.example:8080")]))
                .is_ok(),
            "no Origin: not a browser page"
        );
        assert!(
            auth.check_origin(&headers(&[
                ("host", "rm.example:8080"),
                ("origin", "https://rm.example:8080")
            ]))
            .is_ok()
        );
        let err = auth
            .check_origin(&headers(&[
                ("host", "rm.example:8080"),
                ("origin", "https://evil.example"),
            ]))
            .unwrap_err();
        assert!(matches!(err, AuthError::ForeignOrigin(_)));
        auth.allowed_origins.push("https://portal.example".into());
        assert!(
            auth.check_origin(&headers(&[
                ("host", "rm.example"),
                ("origin", "https://portal.example")
            ]))
            .is_ok()
        );
        assert!(
            auth.check_origin(&headers(&[("host", "rm.example"), ("origin", "null")]))
                .is_err()
        );
    }
}
