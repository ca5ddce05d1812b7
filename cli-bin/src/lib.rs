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
//! | `workloads.rs`, `fleet.rs` | the commands; [`run`] only dispatches |

use fleetlock_core::config::parse_duration;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use cluster_api::{SystemClock, WorkloadKind, WorkloadRef};
use restart_core::Identity;

pub mod backend;
pub mod direct;
mod fleet;
pub mod fleetlock;
pub mod output;
pub mod remote;
mod sets;
mod workloads;

use backend::{Backend, CliError, Exit};
use output::{Format, Io};

/// restartctl: restart workloads and look after node reboots, through restart-manager.
#[derive(Debug, Clone, Parser)]
#[command(name = "restartctl", version, about, long_about = None)]
pub struct Cli {
    /// Talk to a running restart-manager at this URL instead of the cluster.
    #[arg(long, global = true, env = "RESTARTCTL_SERVER")]
    pub server: Option<String>,

    /// Bearer token for --server.
    #[arg(long, global = true, env = "RESTARTCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// File holding the bearer token for --server.
    #[arg(long, global = true, env = "RESTARTCTL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Kubeconfig to use (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,

    /// Namespace for `KIND/NAME` arguments.
    #[arg(short, long, global = true, default_value = "default")]
    pub namespace: String,

    /// Where restart-manager runs: its ConfigMap, and its Leases unless the configuration's
    /// `fleetlock.namespace` names another namespace (the rule the server follows).
    #[arg(
        long,
        global = true,
        env = "RESTARTCTL_MANAGER_NAMESPACE",
        default_value = "restart-manager"
    )]
    pub manager_namespace: String,

    /// restart-manager's configuration file (direct mode; default: its ConfigMap).
    #[arg(long, global = true, env = "RESTARTCTL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Who to record as the restarter in direct mode (default: $USER).
    #[arg(long, global = true, env = "RESTARTCTL_IDENTITY")]
    pub identity: Option<String>,

    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List the workloads that may be restarted, with their status.
    #[command(visible_alias = "ls")]
    List,
    /// Show one workload's status.
    Status {
        /// `KIND/NAMESPACE/NAME`, or `KIND/NAME` with -n.
        workload: String,
    },
    /// Restart a workload, exactly as `kubectl rollout restart` does; or, as
    /// `restart set NAME`, run a restart set (its members in order).
    Restart {
        /// `KIND/NAMESPACE/NAME`, or `KIND/NAME` with -n; or `set`, followed by the set's
        /// name.
        workload: String,
        /// The set's name, after `set`.
        #[arg(value_name = "SET")]
        set: Option<String>,
        /// Why; recorded with the restart.
        #[arg(long)]
        reason: Option<String>,
        /// Wait until the rollout completes (a set: until its run ends, member by member);
        /// exit 6 if it fails, times out or is cancelled.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
        /// Say what a restart would do (allowed or why not, the lock, the pods it would
        /// replace, the budgets over them) and change nothing; exit 4 if it would be refused.
        #[arg(long, conflicts_with = "wait")]
        dry_run: bool,
    },
    /// List the restart sets with their last run, or show one member by member.
    Sets {
        /// One set.
        name: Option<String>,
    },
    /// Cancel a restart set's run: no further member starts; those restarting finish.
    Cancel {
        /// What to cancel.
        #[command(subcommand)]
        target: CancelTarget,
    },
    /// Watch status changes live.
    Watch {
        /// Only this workload.
        workload: Option<String>,
        /// Stop after this many changes.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Show a workload's recent restarts, refusals and outcomes.
    History {
        /// `KIND/NAMESPACE/NAME`, or `KIND/NAME` with -n.
        workload: String,
    },
    /// List held restart locks and reboot slots.
    Locks,
    /// Break a workload's restart lock.
    Unlock {
        /// `KIND/NAMESPACE/NAME`, or `KIND/NAME` with -n.
        workload: String,
        /// Why (required; recorded in an Event).
        #[arg(long, required = true)]
        reason: String,
    },
    /// Show the fleet's nodes and their reboot state.
    Nodes,
    /// Show what a drain would do now, and whether it could finish (exit 7 if not).
    Plan {
        /// What to plan.
        #[command(subcommand)]
        target: PlanTarget,
    },
    /// Pause or resume a reboot group.
    Fleet {
        /// What to do.
        #[command(subcommand)]
        action: FleetAction,
    },
    /// Act as a FleetLock client, to test a deployment.
    Fleetlock {
        /// `pre-reboot` or `steady-state`.
        #[command(subcommand)]
        call: FleetLockCall,
    },
    /// Print the id Zincati sends for a machine id.
    ZincatiId {
        /// The machine id (/etc/machine-id, or `kubectl get node -o jsonpath={.status.nodeInfo.machineID}`).
        machine_id: String,
    },
    /// Print shell completions.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `restartctl plan ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum PlanTarget {
    /// The drain of a node: the pods it would evict, leave or stop at, the disruption budgets
    /// covering them, a rough duration. A `pre-reboot` is checked against the same plan.
    Node {
        /// The Node's name.
        node: String,
    },
}

/// `restartctl cancel ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum CancelTarget {
    /// A restart set's run.
    Set {
        /// The set.
        name: String,
    },
}

/// `restartctl fleet ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum FleetAction {
    /// Grant no new reboot slots in the group.
    Pause {
        /// The group.
        group: String,
    },
    /// Grant reboot slots in the group again.
    Resume {
        /// The group.
        group: String,
    },
}

/// `restartctl fleetlock ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum FleetLockCall {
    /// Ask for a reboot slot.
    PreReboot(FleetLockArgs),
    /// Give a reboot slot back.
    SteadyState(FleetLockArgs),
}

/// Where and as whom to speak FleetLock.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetLockArgs {
    /// The base URL, as in Zincati's fleet_lock.base_url.
    #[arg(long)]
    pub url: String,
    /// The client id (what Zincati sends: see `restartctl zincati-id`).
    #[arg(long)]
    pub id: String,
    /// The group.
    #[arg(long, default_value = "default")]
    pub group: String,
}

/// `KIND/NAMESPACE/NAME` or `KIND/NAME` (namespace from -n).
pub fn parse_workload(s: &str, namespace: &str) -> Result<WorkloadRef, CliError> {
    let parts: Vec<&str> = s.split('/').collect();
    let (kind, ns, name) = match parts.as_slice() {
        [kind, name] => (*kind, namespace, *name),
        [kind, ns, name] => (*kind, *ns, *name),
        _ => {
            return Err(
                CliError::new(Exit::Usage, format!("{s:?} is not a workload")).hint(
                    "write KIND/NAMESPACE/NAME or KIND/NAME with -n, e.g. deployment/web -n shop",
                ),
            );
        }
    };
    let kind: WorkloadKind = kind
        .parse()
        .map_err(|e: cluster_api::UnknownKind| CliError::new(Exit::Usage, e.to_string()))?;
    if ns.is_empty() || name.is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            format!("{s:?} is missing a namespace or a name"),
        ));
    }
    Ok(WorkloadRef::new(kind, ns, name))
}

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

/// The bearer token for `--server`: from `--token-file` first, then `RESTARTCTL_TOKEN` or
/// `--token`; a token typed on the command line is warned about (other users see it in `ps`).
fn server_token(cli: &Cli, io: &mut Io<'_>) -> Result<Option<String>, CliError> {
    if let Some(path) = &cli.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::new(
                Exit::Usage,
                format!("cannot read the token file {}: {e}", path.display()),
            )
        })?;
        return Ok(Some(text.trim().to_string()));
    }
    let Some(token) = &cli.token else {
        return Ok(None);
    };
    if std::env::var("RESTARTCTL_TOKEN").ok().as_ref() != Some(token) {
        let _ = writeln!(
            io.err,
            "warning: a token given with --token can be read by other users of this machine \
             (ps, shell history); prefer --token-file or RESTARTCTL_TOKEN"
        );
    }
    Ok(Some(token.clone()))
}

async fn connect(cli: &Cli, io: &mut Io<'_>) -> Result<Box<dyn Backend>, CliError> {
    if let Some(server) = &cli.server {
        let token = server_token(cli, io)?;
        let remote = remote::Remote::new(server, token)?;
        if let Some(warning) = remote.exposure_warning() {
            let _ = writeln!(io.err, "warning: {}", output::clean(&warning));
        }
        return Ok(Box::new(remote));
    }
    let kube = k8s_adapter::KubeCluster::connect(
        cli.kubeconfig.as_deref(),
        cli.context.as_deref(),
        k8s_adapter::KubeOptions::default(),
    )
    .await
    .map_err(|e| {
        CliError::new(Exit::Failure, e.to_string())
            .hint("pass --kubeconfig, or --server to go through a running restart-manager")
    })?;
    let text = match &cli.config {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            CliError::new(Exit::Usage, format!("cannot read {}: {e}", path.display()))
        })?,
        None => read_configmap(&kube, &cli.manager_namespace).await?,
    };
    let mut config = manager_config::FileConfig::parse(&text, "restart-manager's configuration")
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    // The locks are where the server keeps them: the file's namespace if it names one, else
    // the namespace the server runs in.
    config.settle_namespace(None, Some(&cli.manager_namespace));
    let user = cli
        .identity
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "restartctl".into());
    let follow = match &cli.command {
        Command::Restart {
            wait: true,
            workload,
            set,
            ..
        } => match set {
            Some(name) => direct::Follow::Set(name.clone()),
            None => direct::Follow::Workload(parse_workload(workload, &cli.namespace)?),
        },
        _ => direct::Follow::Nothing,
    };
    Ok(Box::new(direct::Direct::start(
        Arc::new(kube),
        Arc::new(SystemClock),
        config,
        Identity::user(user),
        follow,
    )?))
}

async fn read_configmap(
    kube: &k8s_adapter::KubeCluster,
    namespace: &str,
) -> Result<String, CliError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(kube.client(), namespace);
    let cm = api.get("restart-manager").await.map_err(|e| {
        CliError::new(
            Exit::Failure,
            format!("cannot read the ConfigMap restart-manager in namespace {namespace}: {e}"),
        )
        .hint("pass --config with restart-manager's configuration file, or --manager-namespace")
    })?;
    cm.data
        .and_then(|d| d.get("config.yaml").cloned())
        .ok_or_else(|| {
            CliError::new(
                Exit::Failure,
                format!("the ConfigMap restart-manager in {namespace} has no config.yaml"),
            )
        })
}

async fn execute(
    cli: &Cli,
    injected: Option<&dyn Backend>,
    io: &mut Io<'_>,
) -> Result<Exit, CliError> {
    // Commands that need no backend.
    match &cli.command {
        Command::ZincatiId { machine_id } => {
            let id = fleetlock_core::zincati_id(machine_id)
                .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
            if !io.structured(&serde_json::json!({ "machineId": machine_id, "zincatiId": id })) {
                io.line(&id);
            }
            return Ok(Exit::Ok);
        }
        Command::Completion { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "restartctl", io.out);
            return Ok(Exit::Ok);
        }
        Command::Fleetlock { call } => return fleetlock::call(call, io).await,
        _ => {}
    }
    let owned;
    let backend: &dyn Backend = match injected {
        Some(b) => b,
        None => {
            owned = connect(cli, io).await?;
            owned.as_ref()
        }
    };
    let workload = |s: &str| parse_workload(s, &cli.namespace);
    match &cli.command {
        Command::List => workloads::list(backend, io).await,
        Command::Status { workload: w } => workloads::status(backend, io, &workload(w)?).await,
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
