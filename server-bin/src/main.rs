//! The `restart-manager` binary.

fn main() -> std::process::ExitCode {
    restart_manager::parse_and_run()
}
