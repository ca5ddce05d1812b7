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
//! Each mode has a file of its own here (`tokens.rs`, `proxy.rs`, `kubernetes.rs`);
//! `session.rs` reads the bearer token from the header or the page's cookie.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use cluster_api::WorkloadRef;
use k8s_adapter::Access;
use restart_core::Identity;

mod kubernetes;
mod proxy;
mod session;
mod tokens;

pub use kubernetes::{DEFAULT_CACHE_TTL, KubeAuth};
pub use proxy::{Cidr, PROXY_SECRET_HEADER, ProxyAuth};
pub use session::{SECURE_TOKEN_COOKIE, TOKEN_COOKIE, session_cookie};
pub use tokens::{TokenEntry, load_tokens, parse_tokens};

use session::bearer;

/// The longest bearer token taken, in bytes: a Kubernetes token is about 1 KiB, an OIDC token
/// with many groups a few. Longer ones are refused before anything is asked of anyone.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Where Prometheus reads the metrics; with Kubernetes authentication also the non-resource
/// URL a scraper needs `get` on.
pub const METRICS_PATH: &str = "/metrics";

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

/// Something a caller wants to do, for authorisation.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Restart a workload.
    Restart(&'a WorkloadRef),
    /// Break a workload's restart lock.
    Unlock(&'a WorkloadRef),
    /// Pause or resume a reboot group.
    PauseGroup(&'a str),
    /// See a workload's status and restart history.
    View(&'a WorkloadRef),
    /// See the fleet: nodes, groups and slots.
    ViewFleet,
    /// See the pods of a namespace (`""`: of every namespace), as a dry run and a drain plan
    /// list them.
    ViewPods(&'a str),
    /// Read `/metrics`, which names the allowlisted workloads.
    ReadMetrics,
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

/// Why a caller is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: no credentials, or wrong ones.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a browser page from another site.
    #[error("{0}")]
    ForeignOrigin(String),
    /// 403: authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 503: the authority could not be asked.
    #[error("{0}")]
    Unavailable(String),
    /// 429: too many callers are being checked at once; try again after `retry_after`
    /// seconds.
    #[error("{message}")]
    Busy {
        /// What could not be done.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
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

    /// Whether the caller may do `action`: with Kubernetes authentication, asked of the
    /// cluster's RBAC; otherwise restarts are governed by the allowlist and the rest by
    /// `--admins`.
    pub async fn may(&self, who: &Identity, action: Action<'_>) -> Result<(), AuthError> {
        let allowed = match (&self.authenticator, action) {
            (Authenticator::Kubernetes(kube), Action::Restart(w) | Action::Unlock(w)) => {
                let verb = if matches!(action, Action::Restart(_)) {
                    "restart"
                } else {
                    "unlock"
                };
                kube.may(
                    who,
                    &Access {
                        verb,
                        group: "apps",
                        resource: w.kind.resource(),
                        namespace: &w.namespace,
                        name: &w.name,
                    },
                )
                .await?
            }
            (Authenticator::Kubernetes(kube), Action::PauseGroup(group)) => {
                let lease = fleetlock_core::group::lease_name(group);
                kube.may(
                    who,
                    &Access {
                        verb: "update",
                        group: "coordination.k8s.io",
                        resource: "leases",
                        namespace: &kube.namespace,
                        name: &lease,
                    },
                )
                .await?
            }
            (Authenticator::Kubernetes(kube), Action::View(w)) => kube.may(who, &view(w)).await?,
            (Authenticator::Kubernetes(kube), Action::ViewFleet) => {
                kube.may(
                    who,
                    &Access {
                        verb: "list",
                        group: "",
                        resource: "nodes",
                        namespace: "",
                        name: "",
                    },
                )
                .await?
            }
            (Authenticator::Kubernetes(kube), Action::ViewPods(namespace)) => {
                kube.may(
                    who,
                    &Access {
                        verb: "list",
                        group: "",
                        resource: "pods",
                        namespace,
                        name: "",
                    },
                )
                .await?
            }
            // The non-resource URL, as controller-runtime's and kube-rbac-proxy's metrics
            // filters ask: `nonResourceURLs: ["/metrics"], verbs: ["get"]` in a ClusterRole.
            (Authenticator::Kubernetes(kube), Action::ReadMetrics) => {
                kube.may(
                    who,
                    &Access {
                        verb: "get",
                        group: "",
                        resource: METRICS_PATH,
                        namespace: "",
                        name: "",
                    },
                )
                .await?
            }
            (_, Action::Restart(_)) => true,
            (_, Action::Unlock(_) | Action::PauseGroup(_)) => self.is_admin(who),
            (
                _,
                Action::View(_) | Action::ViewFleet | Action::ViewPods(_) | Action::ReadMetrics,
            ) => self.is_viewer(who),
        };
        if allowed {
            return Ok(());
        }
        Err(AuthError::Forbidden(match action {
            Action::Restart(w) => format!(
                "{who} may not restart {w} (needs the verb restart on {}.apps)",
                w.kind.resource()
            ),
            Action::Unlock(w) => {
                format!("{who} may not break the restart lock of {w} (not an admin)")
            }
            Action::PauseGroup(g) => format!("{who} may not pause reboot group {g} (not an admin)"),
            Action::View(w) if self.is_kubernetes() => format!(
                "{who} may not see {w} (needs the verb get on {}.apps)",
                w.kind.resource()
            ),
            Action::View(w) => format!("{who} may not see {w} (not a viewer)"),
            Action::ViewFleet if self.is_kubernetes() => {
                format!("{who} may not see the fleet (needs the verb list on nodes)")
            }
            Action::ViewFleet => format!("{who} may not see the fleet (not a viewer)"),
            Action::ViewPods(namespace) if self.is_kubernetes() => match namespace {
                "" => format!(
                    "{who} may not see the pods of every namespace (needs the verb list on pods \
                     cluster-wide)"
                ),
                ns => format!(
                    "{who} may not see the pods in {ns} (needs the verb list on pods in {ns})"
                ),
            },
            Action::ViewPods(_) => format!("{who} may not see pods (not a viewer)"),
            Action::ReadMetrics if self.is_kubernetes() => format!(
                "{who} may not read the metrics (needs the verb get on the non-resource URL \
                 {METRICS_PATH})"
            ),
            Action::ReadMetrics => format!("{who} may not read the metrics (not a viewer)"),
        }))
    }

    /// Which of `workloads` the caller may see. With Kubernetes authentication one review
    /// asks for each kind and namespace at once (`get` on every Deployment in `shop`), and
    /// only where that is denied is each workload asked about by name; answers are cached.
    pub async fn visible<'a>(
        &self,
        who: &Identity,
        workloads: impl IntoIterator<Item = &'a WorkloadRef>,
    ) -> Result<BTreeSet<&'a WorkloadRef>, AuthError> {
        let Authenticator::Kubernetes(kube) = &self.authenticator else {
            return Ok(if self.is_viewer(who) {
                workloads.into_iter().collect()
            } else {
                BTreeSet::new()
            });
        };
        let mut by_place: BTreeMap<(&str, &str), Vec<&WorkloadRef>> = BTreeMap::new();
        for w in workloads {
            by_place
                .entry((w.kind.resource(), w.namespace.as_str()))
                .or_default()
                .push(w);
        }
        let mut seen = BTreeSet::new();
        for list in by_place.into_values() {
            let all = Access {
                name: "",
                ..view(list[0])
            };
            if kube.may(who, &all).await? {
                seen.extend(list);
                continue;
            }
            for w in list {
                if kube.may(who, &view(w)).await? {
                    seen.insert(w);
                }
            }
        }
        Ok(seen)
    }

    fn is_kubernetes(&self) -> bool {
        matches!(self.authenticator, Authenticator::Kubernetes(_))
    }

    fn is_viewer(&self, who: &Identity) -> bool {
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

    fn is_admin(&self, who: &Identity) -> bool {
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

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// What Kubernetes authorisation asks for seeing a workload.
fn view(w: &WorkloadRef) -> Access<'_> {
    Access {
        verb: "get",
        group: "apps",
        resource: w.kind.resource(),
        namespace: &w.namespace,
        name: &w.name,
    }
}

/// Comma-separated group names, trimmed, empty ones left out.
fn group_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
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
