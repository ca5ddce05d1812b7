//! The `restartctl` binary.

fn main() {
    eprintln!(
        "restartctl {}: the commands arrive with the CLI work",
        env!("CARGO_PKG_VERSION")
    );
}
