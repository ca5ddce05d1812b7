//! Where the FleetLock endpoints are served.

use std::net::SocketAddr;

use clap::Args as ClapArgs;

/// FleetLock endpoints.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "FleetLock")]
pub struct FleetLockArgs {
    /// Path prefix of the FleetLock endpoints: with `/fleetlock/`, Zincati's
    /// `base_url = "http://host/fleetlock/"` reaches `/fleetlock/v1/pre-reboot`.
    #[arg(
        long = "fleetlock-prefix",
        env = "FLEETLOCK_PATH_PREFIX",
        default_value = "/"
    )]
    pub prefix: String,

    /// Where Zincati reaches the FleetLock endpoints: an address of their own (`:8081`, every
    /// interface), so that a NetworkPolicy can admit only the nodes to it; or `same`, to serve
    /// them on `--listen` beside the page and the API, as earlier versions did.
    #[arg(id = "fleetlock_listen", long = "fleetlock-listen", env = "FLEETLOCK_LISTEN_ADDRESS", default_value = ":8081", value_parser = parse_fleetlock_listen)]
    pub listen: FleetLockListen,
}

/// Where the FleetLock endpoints are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetLockListen {
    /// On a listener of their own.
    Separate(SocketAddr),
    /// On the main listener, with everything else.
    Same,
}

fn parse_fleetlock_listen(s: &str) -> Result<FleetLockListen, String> {
    if s == "same" {
        return Ok(FleetLockListen::Same);
    }
    parse_listen(s)
        .map(FleetLockListen::Separate)
        .map_err(|e| format!("{e}, or \"same\""))
}

/// Parses `:8080`, `0.0.0.0:8080`, `[::]:8080` or `127.0.0.1:9000`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("{s:?} is not an address like \":8080\" or \"127.0.0.1:8080\""))
}
