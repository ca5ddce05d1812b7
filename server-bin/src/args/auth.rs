//! How callers are identified, and who may do what.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use fleetlock_core::config::parse_duration;

/// Authentication.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// How callers of the restart API and page are identified.
    #[arg(long = "auth", env = "AUTH_MODE", value_enum, default_value_t = AuthMode::None)]
    pub mode: AuthMode,

    /// With `--auth tokens`: a file of `token,user,uid,"group1,group2"` lines.
    #[arg(long = "auth-token-file", env = "AUTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// With `--auth proxy`: the header carrying the user name.
    #[arg(
        long = "auth-proxy-user-header",
        env = "AUTH_PROXY_USER_HEADER",
        default_value = "X-Forwarded-User"
    )]
    pub proxy_user_header: String,

    /// With `--auth proxy`: the header carrying comma-separated groups.
    #[arg(
        long = "auth-proxy-groups-header",
        env = "AUTH_PROXY_GROUPS_HEADER",
        default_value = "X-Forwarded-Groups"
    )]
    pub proxy_groups_header: String,

    /// With `--auth proxy`: networks the proxy connects from (comma-separated CIDRs).
    #[arg(
        long = "auth-proxy-trusted",
        env = "AUTH_PROXY_TRUSTED",
        value_delimiter = ',',
        default_value = "127.0.0.1/32,::1/128"
    )]
    pub proxy_trusted: Vec<String>,

    /// With `--auth proxy`: a file holding the secret the proxy sends in the
    /// `X-Restart-Manager-Proxy-Secret` header (at least 16 characters). Required: without
    /// it, any workload on the proxy's network could claim to be anyone.
    #[arg(long = "auth-proxy-secret-file", env = "AUTH_PROXY_SECRET_FILE")]
    pub proxy_secret_file: Option<PathBuf>,

    /// With `--auth proxy`: the proxy must connect over TLS with a client certificate signed
    /// by an authority in this PEM file (mTLS); then the shared secret is optional. Needs
    /// `--tls-cert-file`.
    #[arg(long = "auth-proxy-client-ca-file", env = "AUTH_PROXY_CLIENT_CA_FILE")]
    pub proxy_client_ca_file: Option<PathBuf>,

    /// Users or `group:<name>` allowed to break restart locks and pause reboot groups
    /// (comma-separated). Without authentication everyone is.
    #[arg(long = "admins", env = "AUTH_ADMINS", value_delimiter = ',')]
    pub admins: Vec<String>,

    /// Users or `group:<name>` allowed to see workloads, their history and the fleet
    /// (comma-separated); unset: everyone authenticated. With `--auth kubernetes` RBAC decides
    /// (`get` on the workload, `list` on nodes) and this is not used.
    #[arg(long = "viewers", env = "AUTH_VIEWERS", value_delimiter = ',')]
    pub viewers: Vec<String>,

    /// With `--auth kubernetes`: the audiences a token must have been issued for
    /// (comma-separated), as `kubectl create token --audience restart-manager` makes one. A
    /// token made for the API server itself is then refused, so a token handed to this
    /// server cannot be used against the cluster. Set it empty (`""`) to take tokens for the
    /// API server's own audiences instead.
    #[arg(
        long = "auth-token-audiences",
        env = "AUTH_TOKEN_AUDIENCES",
        value_delimiter = ',',
        default_value = "restart-manager"
    )]
    pub token_audiences: Vec<String>,

    /// With `--auth kubernetes`: how long an accepted token or an allowed access review is
    /// trusted before the cluster is asked again; a revoked token or RoleBinding takes up to
    /// this long to count (refusals are kept at most 10 s).
    #[arg(long = "auth-cache-ttl", env = "AUTH_CACHE_TTL", default_value = "30s", value_parser = parse_duration)]
    pub cache_ttl: Duration,

    /// Browser origins, besides the server's own, allowed to use the API
    /// (comma-separated, e.g. `https://portal.example.com`).
    #[arg(
        long = "allowed-origins",
        env = "ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
}

/// Authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Nobody is authenticated; everyone is `anonymous`. For `--simulate` and local use.
    None,
    /// Bearer tokens from `--auth-token-file`.
    Tokens,
    /// User and groups from headers set by a trusted reverse proxy.
    Proxy,
    /// Kubernetes bearer tokens, checked with TokenReview; rights checked with
    /// SubjectAccessReview for the verbs `restart` and `unlock` on the workload.
    Kubernetes,
}
