//! TLS on the listeners.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args as ClapArgs;
use fleetlock_core::config::parse_duration;

/// TLS on the listeners, from PEM files that are read again when they change.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Serve the page and API over HTTPS with this certificate chain (PEM), with
    /// `--tls-key-file`. With `--fleetlock-listen same`, FleetLock too.
    #[arg(long = "tls-cert-file", env = "TLS_CERT_FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert-file`.
    #[arg(long = "tls-key-file", env = "TLS_KEY_FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// Serve FleetLock's own listener over HTTPS with this certificate chain (PEM), with
    /// `--fleetlock-tls-key-file`. Zincati must then trust its issuer.
    #[arg(
        long = "fleetlock-tls-cert-file",
        env = "FLEETLOCK_TLS_CERT_FILE",
        requires = "fleetlock_key_file"
    )]
    pub fleetlock_cert_file: Option<PathBuf>,

    /// The private key (PEM) of `--fleetlock-tls-cert-file`.
    #[arg(
        long = "fleetlock-tls-key-file",
        env = "FLEETLOCK_TLS_KEY_FILE",
        requires = "fleetlock_cert_file"
    )]
    pub fleetlock_key_file: Option<PathBuf>,

    /// How often the certificate files are checked for a change (a renewed Secret); a new
    /// pair is served from the next handshake on.
    #[arg(long = "tls-reload-interval", env = "TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub reload_interval: Duration,
}
