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
//! The token file has kube-apiserver's static token format, one per line:
//! `token,user,uid,"group1,group2"` (`#` starts a comment).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use cluster_api::WorkloadRef;
use k8s_adapter::Access;
use restart_core::Identity;

mod kubernetes;

pub use kubernetes::{DEFAULT_CACHE_TTL, KubeAuth};

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
}

/// One line of the token file.
#[derive(Clone)]
pub struct TokenEntry {
    token: String,
    identity: Identity,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("token", &"<redacted>")
            .field("identity", &self.identity)
            .finish()
    }
}

/// Trusted reverse-proxy headers.
#[derive(Debug, Clone)]
pub struct ProxyAuth {
    /// The header carrying the user name.
    pub user_header: String,
    /// The header carrying comma-separated groups.
    pub groups_header: String,
    /// Only requests from these networks may assert an identity.
    pub trusted: Vec<Cidr>,
    /// What the proxy sends in [`PROXY_SECRET_HEADER`], so that another workload on the
    /// proxy's network cannot assert an identity; `None` when the proxy proves itself with a
    /// client certificate instead.
    pub secret: Option<String>,
    /// Whether the proxy must connect with a client certificate that the listener verified
    /// (`--auth-proxy-client-ca-file`).
    pub client_certificate: bool,
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

/// The header an authenticating proxy proves itself with (`--auth-proxy-secret-file`).
pub const PROXY_SECRET_HEADER: &str = "x-restart-manager-proxy-secret";

/// An IP network like `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
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
            Authenticator::Tokens(entries) => {
                let token = bearer(headers)?.ok_or_else(|| {
                    AuthError::Unauthenticated(
                        "this server needs a bearer token (Authorization: Bearer <token>)".into(),
                    )
                })?;
                // Compare against every entry, in constant time per entry.
                let mut found = None;
                for entry in entries {
                    if constant_time_eq(entry.token.as_bytes(), token.as_bytes()) {
                        found = Some(entry.identity.clone());
                    }
                }
                found.ok_or_else(|| {
                    AuthError::Unauthenticated("the bearer token is not valid".into())
                })
            }
            Authenticator::Proxy(proxy) => {
                let trusted = peer.is_some_and(|ip| proxy.trusted.iter().any(|c| c.contains(ip)));
                if !trusted {
                    return Err(AuthError::Unauthenticated(format!(
                        "requests must come through the authenticating proxy (from {})",
                        proxy
                            .trusted
                            .iter()
                            .map(Cidr::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                if proxy.client_certificate && !verified_client {
                    return Err(AuthError::Unauthenticated(
                        "the authenticating proxy must connect with its client certificate".into(),
                    ));
                }
                if let Some(expected) = &proxy.secret {
                    let secret = header(headers, PROXY_SECRET_HEADER).unwrap_or_default();
                    if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
                        return Err(AuthError::Unauthenticated(format!(
                            "the proxy's {PROXY_SECRET_HEADER} header is missing or wrong"
                        )));
                    }
                }
                if headers.get_all(proxy.user_header.as_str()).iter().count() > 1 {
                    return Err(AuthError::Unauthenticated(format!(
                        "several {} headers: the proxy must set exactly one",
                        proxy.user_header
                    )));
                }
                let user = header(headers, &proxy.user_header).ok_or_else(|| {
                    AuthError::Unauthenticated(format!(
                        "the proxy did not send {}",
                        proxy.user_header
                    ))
                })?;
                let groups = header(headers, &proxy.groups_header)
                    .map(|g| {
                        g.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Identity {
                    groups,
                    ..Identity::user(user)
                })
            }
            Authenticator::Kubernetes(kube) => {
                let token = bearer(headers)?.ok_or_else(|| {
                    AuthError::Unauthenticated("this server needs a Kubernetes bearer token (Authorization: Bearer <token>)".into())
                })?;
                kube.identity(&token).await
            }
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
            (_, Action::Restart(_)) => true,
            (_, Action::Unlock(_) | Action::PauseGroup(_)) => self.is_admin(who),
            (_, Action::View(_) | Action::ViewFleet) => self.is_viewer(who),
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

/// The caller's bearer token, from the Authorization header or the page's cookie; one
/// longer than [`MAX_TOKEN_LEN`] is refused.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a token file.
pub fn load_tokens(path: &Path) -> Result<Vec<TokenEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    parse_tokens(&text).with_context(|| path.display().to_string())
}

/// Parses `token,user,uid,"group1,group2"` lines.
pub fn parse_tokens(text: &str) -> Result<Vec<TokenEntry>> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line);
        let (Some(token), Some(user)) = (fields.first(), fields.get(1)) else {
            bail!("line {}: expected token,user[,uid[,\"groups\"]]", n + 1);
        };
        if token.len() < 16 {
            bail!(
                "line {}: the token for {user} is shorter than 16 characters",
                n + 1
            );
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        entries.push(TokenEntry {
            token: token.clone(),
            identity: Identity {
                groups,
                ..Identity::user(user.clone())
            },
        });
    }
    if entries.is_empty() {
        bail!("no tokens");
    }
    Ok(entries)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current).trim().to_string()),
            c => current.push(c),
        }
    }
    fields.push(current.trim().to_string());
    fields
}

// === impl Cidr ===

impl Cidr {
    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0)
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a network like 10.0.0.0/8 or ::1/128");
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                b.parse::<u8>().map_err(|_| bad())?,
            ),
            None => {
                let a = s.parse::<IpAddr>().map_err(|_| bad())?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { addr, bits })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn tokens() -> Auth {
        Auth {
            authenticator: Authenticator::Tokens(
                parse_tokens("# team tokens\n0123456789abcdef0001,alice,1,\"sre,shop\"\n0123456789abcdef0002,bob,2\n").unwrap(),
            ),
            admins: vec!["group:sre".into()],
            viewers: vec![],
            allowed_origins: vec![],
        }
    }

    #[tokio::test]
    async fn bearer_tokens_identify_users_with_groups() {
        let auth = tokens();
        let alice = auth
            .authenticate(
                &headers(&[("authorization", "Bearer 0123456789abcdef0001")]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.groups, ["sre", "shop"]);
        assert_eq!(auth.admin(&alice), Some(true));
        let bob = auth
            .authenticate(
                &headers(&[("cookie", "x=1; restart_manager_token=0123456789abcdef0002")]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(bob.user, "bob");
        assert_eq!(auth.admin(&bob), Some(false));
        for bad in [
            headers(&[]),
            headers(&[("authorization", "Bearer nope")]),
            headers(&[("authorization", "Basic 0123456789abcdef0001")]),
        ] {
            assert!(matches!(
                auth.authenticate(&bad, None).await,
                Err(AuthError::Unauthenticated(_))
            ));
        }
    }

    #[tokio::test]
    async fn a_base64_token_survives_its_cookie() {
        let token = "dGhpcyBpcyBhIHRva2Vu+/w==";
        let auth = Auth {
            authenticator: Authenticator::Tokens(
                parse_tokens(&format!("{token},carol,3\n")).unwrap(),
            ),
            admins: vec![],
            viewers: vec![],
            allowed_origins: vec![],
        };
        for secure in [false, true] {
            let set = session_cookie(Some(token), secure);
            let (pair, attributes) = set.split_once("; ").unwrap();
            assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict"));
            assert_eq!(attributes.contains("Secure"), secure, "{set}");
            assert_eq!(pair.starts_with("__Host-"), secure, "{set}");
            assert!(!pair.contains(['+', '/']), "{pair}");
            let who = auth
                .authenticate(&headers(&[("cookie", &format!("other=1; {pair}"))]), None)
                .await
                .unwrap();
            assert_eq!(who.user, "carol");
        }
        // What an earlier page set: the token URL-encoded by the browser.
        let who = auth
            .authenticate(
                &headers(&[(
                    "cookie",
                    "restart_manager_token=dGhpcyBpcyBhIHRva2Vu%2B%2Fw%3D%3D",
                )]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(who.user, "carol");
        assert!(session_cookie(None, true).contains("Max-Age=0"));
    }

    #[test]
    fn token_files_are_checked() {
        assert!(
            parse_tokens("short,alice\n")
                .unwrap_err()
                .to_string()
                .contains("shorter than 16")
        );
        assert!(
            parse_tokens("\n# nothing\n")
                .unwrap_err()
                .to_string()
                .contains("no tokens")
        );
        assert!(
            parse_tokens("onlyonefieldhere1234\n")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }

    #[tokio::test]
    async fn proxy_headers_count_only_from_the_proxy() {
        let auth = Auth {
            authenticator: Authenticator::Proxy(ProxyAuth {
                user_header: "x-forwarded-user".into(),
                groups_header: "x-forwarded-groups".into(),
                trusted: vec!["10.1.0.0/16".parse().unwrap()],
                secret: Some("proxy-secret-0123456789".into()),
                client_certificate: false,
            }),
            admins: vec![],
            viewers: vec![],
            allowed_origins: vec![],
        };
        let h = headers(&[
            ("x-forwarded-user", "carol"),
            ("x-forwarded-groups", "ops, dev"),
            (PROXY_SECRET_HEADER, "proxy-secret-0123456789"),
        ]);
        let carol = auth
            .authenticate(&h, Some("10.1.2.3".parse().unwrap()))
            .await
            .unwrap();
        assert_eq!((carol.user.as_str(), carol.groups.len()), ("carol", 2));
        assert!(
            auth.authenticate(&h, Some("10.2.0.1".parse().unwrap()))
                .await
                .is_err(),
            "not from the proxy"
        );
        assert!(auth.authenticate(&h, None).await.is_err());
        assert!(
            auth.authenticate(&headers(&[]), Some("10.1.2.3".parse().unwrap()))
                .await
                .is_err()
        );
        // From the proxy's network, but without the proxy's secret (another pod there), or
        // with two user headers (one the client's, one the proxy's): refused.
        let from_proxy = Some("10.1.2.3".parse().unwrap());
        for bad in [
            headers(&[("x-forwarded-user", "carol")]),
            headers(&[
                ("x-forwarded-user", "carol"),
                (PROXY_SECRET_HEADER, "a-guess-0123456789abc"),
            ]),
            headers(&[
                ("x-forwarded-user", "root"),
                ("x-forwarded-user", "carol"),
                (PROXY_SECRET_HEADER, "proxy-secret-0123456789"),
            ]),
        ] {
            let refused = auth.authenticate(&bad, from_proxy).await.unwrap_err();
            assert!(
                matches!(refused, AuthError::Unauthenticated(_)),
                "{refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_proxy_with_a_client_certificate_needs_no_secret() {
        let auth = Auth {
            authenticator: Authenticator::Proxy(ProxyAuth {
                user_header: "x-forwarded-user".into(),
                groups_header: "x-forwarded-groups".into(),
                trusted: vec!["10.1.0.0/16".parse().unwrap()],
                secret: None,
                client_certificate: true,
            }),
            admins: vec![],
            viewers: vec![],
            allowed_origins: vec![],
        };
        let h = headers(&[("x-forwarded-user", "carol")]);
        let ip = Some("10.1.2.3".parse().unwrap());
        let over_mtls = Peer {
            ip,
            verified_client: true,
        };
        assert_eq!(
            auth.authenticate(&h, over_mtls).await.unwrap().user,
            "carol"
        );
        let refused = auth.authenticate(&h, ip).await.unwrap_err();
        assert!(
            refused.to_string().contains("client certificate"),
            "{refused}"
        );
        // Still only from the proxy's network.
        let elsewhere = Peer {
            ip: Some("10.2.0.1".parse().unwrap()),
            verified_client: true,
        };
        assert!(auth.authenticate(&h, elsewhere).await.is_err());
    }

    #[test]
    fn cidrs() {
        let net: Cidr = "192.168.0.0/23".parse().unwrap();
        assert!(net.contains("192.168.1.255".parse().unwrap()));
        assert!(!net.contains("192.168.2.0".parse().unwrap()));
        assert!(
            net.contains("::ffff:192.168.0.7".parse().unwrap()),
            "v4-mapped v6"
        );
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
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
