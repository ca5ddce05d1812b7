//! The `restartctl` binary.

fn main() -> std::process::ExitCode {
    restartctl::main_entry()
}
