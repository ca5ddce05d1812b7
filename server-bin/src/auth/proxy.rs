//! `--auth proxy`: the user and groups from headers set by an authenticating reverse proxy,
//! believed only from the proxy's networks and with its proof (a shared secret, a client
//! certificate, or both).

use std::net::IpAddr;

use axum::http::HeaderMap;
use restart_core::Identity;

use super::error::AuthError;
use super::headers::{constant_time_eq, group_list, header};

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

/// The header an authenticating proxy proves itself with (`--auth-proxy-secret-file`).
pub const PROXY_SECRET_HEADER: &str = "x-restart-manager-proxy-secret";

/// An IP network like `10.0.0.0/8`, or one address (`::1`): ipnet's, plus the rules a proxy
/// list needs (a bare address is a network of one, and an IPv4 network contains the IPv4
/// addresses a dual-stack listener reports as IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

// === impl ProxyAuth ===

impl ProxyAuth {
    /// Who the proxy says is calling, if the request came from the proxy (`peer` in its
    /// networks, with its client certificate or secret as configured).
    pub(super) fn identify(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        verified_client: bool,
    ) -> Result<Identity, AuthError> {
        let trusted = peer.is_some_and(|ip| self.trusted.iter().any(|c| c.contains(ip)));
        if !trusted {
            return Err(AuthError::Unauthenticated(format!(
                "requests must come through the authenticating proxy (from {})",
                self.trusted
                    .iter()
                    .map(Cidr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if self.client_certificate && !verified_client {
            return Err(AuthError::Unauthenticated(
                "the authenticating proxy must connect with its client certificate".into(),
            ));
        }
        if let Some(expected) = &self.secret {
            let secret = header(headers, PROXY_SECRET_HEADER).unwrap_or_default();
            if !constant_time_eq(secret.as_bytes(), expected.as_bytes()) {
                return Err(AuthError::Unauthenticated(format!(
                    "the proxy's {PROXY_SECRET_HEADER} header is missing or wrong"
                )));
            }
        }
        // A second user or groups header is a client's own, passed through beside the
        // proxy's: whichever came first, believing it would let the client choose.
        for name in [&self.user_header, &self.groups_header] {
            if headers.get_all(name.as_str()).iter().count() > 1 {
                return Err(AuthError::Unauthenticated(format!(
                    "several {name} headers: the proxy must set exactly one"
                )));
            }
        }
        let user = header(headers, &self.user_header).ok_or_else(|| {
            AuthError::Unauthenticated(format!("the proxy did not send {}", self.user_header))
        })?;
        let groups = header(headers, &self.groups_header)
            .map(|g| group_list(&g))
            .unwrap_or_default();
        Ok(Identity {
            groups,
            ..Identity::user(user)
        })
    }
}

// === impl Cidr ===

impl Cidr {
    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.0, ip) {
            (ipnet::IpNet::V4(_), IpAddr::V6(v6)) => {
                v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip)
            }
            _ => ip,
        };
        self.0.contains(&ip)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a network like 10.0.0.0/8 or ::1/128");
        let net = match s.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => ipnet::IpNet::from(s.parse::<IpAddr>().map_err(|_| bad())?),
        };
        Ok(Cidr(net))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::headers;
    use super::super::*;

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
            // Two groups headers, one the client's: taking either would let a client
            // name its own groups (`sre` makes an admin).
            headers(&[
                ("x-forwarded-user", "carol"),
                ("x-forwarded-groups", "sre"),
                ("x-forwarded-groups", "dev"),
                (PROXY_SECRET_HEADER, "proxy-secret-0123456789"),
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
        assert!("10.0.0.0/8/8".parse::<Cidr>().is_err());
        assert_eq!(
            one.to_string(),
            "::1/128",
            "a bare address is a network of one"
        );
        let written_loosely: Cidr = "10.1.2.3/8".parse().unwrap();
        assert!(written_loosely.contains("10.200.0.1".parse().unwrap()));
        assert!(!written_loosely.contains("11.0.0.1".parse().unwrap()));
    }
}
