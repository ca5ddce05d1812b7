//! Who is calling: the authentication settings ([`Auth`]), the caller's identity from a
//! request, and the checks that keep other sites' pages out (Host and Origin).

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use restart_core::Identity;

use super::error::AuthError;
use super::headers::header;
use super::kubernetes::KubeAuth;
use super::proxy::{PROXY_SECRET_HEADER, ProxyAuth};
use super::session::bearer;
use super::tokens::{self, TokenEntry};

/// How callers are identified.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Everyone is `anonymous`.
    None,
    /// Bearer tokens from a file.
    Tokens(Vec<TokenEntry>),
    /// Headers from a trusted proxy.
    Proxy(ProxyAuth),
    /// Kubernetes tokens and RBAC.
    Kubernetes(Arc<KubeAuth>),
}

/// Where a request came from, for authentication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    /// The connection's remote address.
    pub ip: Option<IpAddr>,
    /// Whether the connection presented a client certificate the listener verified.
    pub verified_client: bool,
}

impl From<Option<IpAddr>> for Peer {
    fn from(ip: Option<IpAddr>) -> Self {
        Peer {
            ip,
            verified_client: false,
        }
    }
}

/// Authentication plus authorisation settings.
#[derive(Debug, Clone)]
pub struct Auth {
    /// How callers are identified.
    pub authenticator: Authenticator,
    /// Who may break locks (users or `group:<name>`); everyone when authentication is off.
    pub admins: Vec<String>,
    /// Who may see workloads and the fleet (users or `group:<name>`); empty: everyone
    /// authenticated. With Kubernetes authentication RBAC decides instead.
    pub viewers: Vec<String>,
    /// Browser origins besides the server's own that may use the API.
    pub allowed_origins: Vec<String>,
}

// === impl Auth ===

impl Auth {
    /// No authentication.
    pub fn none() -> Self {
        Auth {
            authenticator: Authenticator::None,
            admins: Vec::new(),
            viewers: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }

    /// Identifies the caller of a request.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: impl Into<Peer>,
    ) -> Result<Identity, AuthError> {
        let Peer {
            ip: peer,
            verified_client,
        } = peer.into();
        match &self.authenticator {
            Authenticator::None => Ok(Identity::user("anonymous")),
            Authenticator::Tokens(entries) => tokens::identify(entries, headers),
            Authenticator::Proxy(proxy) => proxy.identify(headers, peer, verified_client),
            Authenticator::Kubernetes(kube) => {
                let token = bearer(headers)?.ok_or_else(|| {
                    AuthError::Unauthenticated("this server needs a Kubernetes bearer token (Authorization: Bearer <token>)".into())
                })?;
                kube.identity(&token, peer).await
            }
        }
    }

    /// Identifies a caller of `/metrics`. As [`authenticate`](Self::authenticate), except
    /// that with Kubernetes authentication a token for the API server's own audience is
    /// taken as well as one for restart-manager's: Prometheus presents its ServiceAccount's
    /// token, and `/metrics` only reads what `get` on the non-resource URL allows.
    pub async fn authenticate_scraper(
        &self,
        headers: &HeaderMap,
        peer: impl Into<Peer>,
    ) -> Result<Identity, AuthError> {
        let peer = peer.into();
        let Authenticator::Kubernetes(kube) = &self.authenticator else {
            return self.authenticate(headers, peer).await;
        };
        let token = bearer(headers)?.ok_or_else(|| {
            AuthError::Unauthenticated(
                "the metrics need a Kubernetes bearer token (Authorization: Bearer <token>) \
                 allowed to get the non-resource URL /metrics"
                    .into(),
            )
        })?;
        match kube.identity(&token, peer.ip).await {
            Err(AuthError::Unauthenticated(_)) => kube.scraper_identity(&token, peer.ip).await,
            other => other,
        }
    }

    pub(super) fn is_kubernetes(&self) -> bool {
        matches!(self.authenticator, Authenticator::Kubernetes(_))
    }

    pub(super) fn is_viewer(&self, who: &Identity) -> bool {
        self.viewers.is_empty() || self.is_admin(who) || who.is_any_of(&self.viewers)
    }

    /// What of `headers` identifies the caller, kept to identify them again later (a
    /// status-stream client, for as long as it stays connected): the bearer token, or the
    /// proxy's headers; nothing else the client sent.
    pub fn credentials(&self, headers: &HeaderMap) -> HeaderMap {
        let mut kept = HeaderMap::new();
        match &self.authenticator {
            Authenticator::None => {}
            Authenticator::Tokens(_) | Authenticator::Kubernetes(_) => {
                if let Ok(Some(token)) = bearer(headers)
                    && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
                {
                    kept.insert(AUTHORIZATION, value);
                }
            }
            Authenticator::Proxy(proxy) => {
                for name in [
                    proxy.user_header.as_str(),
                    proxy.groups_header.as_str(),
                    PROXY_SECRET_HEADER,
                ] {
                    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                        continue;
                    };
                    for value in headers.get_all(&name) {
                        kept.append(name.clone(), value.clone());
                    }
                }
            }
        }
        kept
    }

    /// Whether callers present bearer tokens (`--auth tokens` or `kubernetes`), which the page
    /// can sign in with.
    pub fn uses_tokens(&self) -> bool {
        matches!(
            self.authenticator,
            Authenticator::Tokens(_) | Authenticator::Kubernetes(_)
        )
    }

    /// Whether callers are identified at all (not `--auth none`).
    pub fn authenticates(&self) -> bool {
        !matches!(self.authenticator, Authenticator::None)
    }

    /// Whether the caller may break locks and pause reboot groups; `None` when the cluster's
    /// RBAC decides per workload.
    pub fn admin(&self, who: &Identity) -> Option<bool> {
        match self.authenticator {
            Authenticator::Kubernetes(_) => None,
            _ => Some(self.is_admin(who)),
        }
    }

    pub(super) fn is_admin(&self, who: &Identity) -> bool {
        matches!(self.authenticator, Authenticator::None) || who.is_any_of(&self.admins)
    }

    /// Refuses a request for a host name this server does not know, where a browser may be
    /// involved (it carries an Origin or a cookie) or nobody is authenticated: a page that
    /// re-binds its own DNS name to this server's address (DNS rebinding) is then same-origin
    /// with itself and would pass [`check_origin`](Self::check_origin). Known hosts are IP
    /// addresses, `localhost`, and the hosts of `--allowed-origins`.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let browser = headers.contains_key(ORIGIN) || headers.contains_key(COOKIE);
        if !browser && self.authenticates() {
            return Ok(());
        }
        // A request without a Host (HTTP/1.0, or handed to the router in process) is not
        // a browser's.
        let Some(host) = header(headers, HOST.as_str()) else {
            return Ok(());
        };
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h),
        };
        let known = name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.allowed_origins.iter().any(|o| {
                o.split_once("://")
                    .map(|(_, h)| h)
                    .is_some_and(|h| h.eq_ignore_ascii_case(&host) || h.eq_ignore_ascii_case(name))
            });
        if known {
            return Ok(());
        }
        Err(AuthError::ForeignOrigin(format!(
            "this server is not served as {host:?}; if that is its name, add its URL (https://{host}) to --allowed-origins"
        )))
    }

    /// Refuses a browser request made by a page from another site. Requests without an
    /// Origin (curl, restartctl) pass: they cannot carry a victim's cookie by accident.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let Some(origin) = header(headers, ORIGIN.as_str()) else {
            return Ok(());
        };
        if self.allowed_origins.iter().any(|o| o == &origin) {
            return Ok(());
        }
        let host = header(headers, HOST.as_str()).unwrap_or_default();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        if !host.is_empty() && origin_host.eq_ignore_ascii_case(&host) {
            return Ok(());
        }
        Err(AuthError::ForeignOrigin(format!(
            "requests from pages at {origin} are not allowed (add it to --allowed-origins)"
        )))
    }
}
