//! `restartctl`, the admin CLI of restart-manager, as a library so tests can drive it.
//!
//! Every command works two ways: **directly** against the cluster with the user's kubeconfig
//! (the same cores and the same Leases as the server, so a restart from here and one from the
//! page exclude each other), or **through a running server** (`--server`) over its HTTP API.
//!
//! | module | what it holds |
//! |---|---|
//! | [`backend`] | what the commands need, and the exit codes |
//! | [`direct`] | the cores on a cluster |
//! | [`remote`] | a server's HTTP API |
//! | [`output`] | tables, JSON, YAML |
//! | [`fleetlock`] | `restartctl fleetlock`, and the FleetLock request as a library call |
//! | `cli.rs` | the command line: [`Cli`] and its commands |
//! | `connect.rs` | the backend the flags choose |
//! | `workloads.rs`, `sets.rs`, `fleet.rs` | the commands; [`run`] only dispatches |

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub mod backend;
mod cli;
mod connect;
pub mod direct;
mod fleet;
pub mod fleetlock;
pub mod output;
pub mod remote;
mod sets;
mod workloads;

pub use cli::{CancelTarget, Cli, Command, FleetAction, PlanTarget, parse_workload};
pub use fleetlock::{FleetLockArgs, FleetLockCall};

use backend::{Backend, CliError, Exit};
use output::Io;

/// Parses the command line and runs; the whole of `main`.
pub fn main_entry() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("restartctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        terminal,
        format: cli.output,
    };
    let code = runtime.block_on(run(&cli, None, &mut io));
    ExitCode::from(code as u8)
}

/// Runs a command. `backend` replaces the one the flags would choose (tests pass a simulated
/// cluster).
pub async fn run(cli: &Cli, backend: Option<&dyn Backend>, io: &mut Io<'_>) -> Exit {
    match execute(cli, backend, io).await {
        Ok(exit) => exit,
        Err(e) => {
            let _ = writeln!(io.err, "restartctl: {}", output::clean(&e.message));
            if let Some(hint) = &e.hint {
                let _ = writeln!(io.err, "  hint: {}", output::clean(hint));
            }
            e.exit
        }
    }
}

/// Runs `cli`'s command on `injected`, or on the backend its flags choose.
async fn execute(
    cli: &Cli,
    injected: Option<&dyn Backend>,
    io: &mut Io<'_>,
) -> Result<Exit, CliError> {
    if let Some(done) = without_backend(cli, io).await {
        return done;
    }
    let owned;
    let backend: &dyn Backend = match injected {
        Some(b) => b,
        None => {
            owned = connect::connect(cli, io).await?;
            owned.as_ref()
        }
    };
    dispatch(cli, backend, io).await
}

/// The commands that need no backend; `None` for the others.
async fn without_backend(cli: &Cli, io: &mut Io<'_>) -> Option<Result<Exit, CliError>> {
    match &cli.command {
        Command::ZincatiId { machine_id } => Some(zincati_id(machine_id, io)),
        Command::Completion { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "restartctl", io.out);
            Some(Ok(Exit::Ok))
        }
        Command::Fleetlock { call } => Some(fleetlock::call(call, io).await),
        _ => None,
    }
}

/// `restartctl zincati-id`.
fn zincati_id(machine_id: &str, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let id = fleetlock_core::zincati_id(machine_id)
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    if !io.structured(&serde_json::json!({ "machineId": machine_id, "zincatiId": id })) {
        io.line(&id);
    }
    Ok(Exit::Ok)
}

/// Runs a command that needs a backend.
async fn dispatch(cli: &Cli, backend: &dyn Backend, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let workload = |s: &str| parse_workload(s, &cli.namespace);
    match &cli.command {
        Command::List => workloads::list(backend, io).await,
        Command::Status { workload: w } => workloads::status(backend, io, &workload(w)?).await,
        Command::Restart { .. } => restart(cli, backend, io).await,
        Command::Sets { name } => sets::list(backend, io, name.as_deref()).await,
        Command::Cancel {
            target: CancelTarget::Set { name },
        } => sets::cancel(backend, io, name).await,
        Command::Watch { workload: w, count } => {
            let only = w.as_deref().map(workload).transpose()?;
            workloads::watch(backend, io, only.as_ref(), *count).await
        }
        Command::History { workload: w } => workloads::history(backend, io, &workload(w)?).await,
        Command::Unlock {
            workload: w,
            reason,
        } => workloads::unlock(backend, io, &workload(w)?, reason).await,
        Command::Locks => fleet::locks(backend, io).await,
        Command::Nodes => fleet::nodes(backend, io).await,
        Command::Plan {
            target: PlanTarget::Node { node },
        } => fleet::plan(backend, io, node).await,
        Command::Fleet { action } => match action {
            FleetAction::Pause { group } => fleet::pause(backend, io, group, true).await,
            FleetAction::Resume { group } => fleet::pause(backend, io, group, false).await,
        },
        Command::ZincatiId { .. } | Command::Completion { .. } | Command::Fleetlock { .. } => {
            Ok(Exit::Ok)
        }
    }
}

/// `restartctl restart`: a set, a dry run of one workload, or a restart of one.
async fn restart(cli: &Cli, backend: &dyn Backend, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let workload = |s: &str| parse_workload(s, &cli.namespace);
    match &cli.command {
        Command::Restart {
            workload: w,
            set: Some(name),
            reason,
            wait,
            timeout,
            dry_run,
        } => {
            if w != "set" {
                return Err(CliError::new(
                    Exit::Usage,
                    format!("unexpected argument {name:?} after the workload {w:?}"),
                )
                .hint("restart one workload (KIND/NAMESPACE/NAME), or a set: restart set NAME"));
            }
            if *dry_run {
                return Err(CliError::new(
                    Exit::Usage,
                    "--dry-run is for one workload; `restartctl sets NAME` shows a set",
                ));
            }
            sets::start(backend, io, name, reason.as_deref(), *wait, *timeout).await
        }
        Command::Restart {
            workload: w,
            dry_run: true,
            reason,
            ..
        } => workloads::dry_run(backend, io, &workload(w)?, reason.as_deref()).await,
        Command::Restart {
            workload: w,
            reason,
            wait,
            timeout,
            ..
        } => {
            let w = workload(w)?;
            workloads::restart(backend, io, &w, reason.as_deref(), *wait, *timeout).await
        }
        // Only `restart` is dispatched here.
        _ => Ok(Exit::Ok),
    }
}
