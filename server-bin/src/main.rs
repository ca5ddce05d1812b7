//! The `restart-manager` binary.

fn main() {
    eprintln!(
        "restart-manager {}: the server arrives with the FleetLock work",
        env!("CARGO_PKG_VERSION")
    );
}
