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

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anstyle::AnsiColor;
use clap::{CommandFactory, Parser, Subcommand};
use cluster_api::{SystemClock, WorkloadKind, WorkloadRef};
use futures::StreamExt;
use restart_core::{Identity, Phase, ServiceStatus};

pub mod backend;
pub mod direct;
pub mod output;
pub mod remote;

use backend::{Backend, CliError, Exit};
use output::{Format, Io, age};

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

    /// Where restart-manager keeps its Leases and its ConfigMap.
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
    /// Restart a workload, exactly as `kubectl rollout restart` does.
    Restart {
        /// `KIND/NAMESPACE/NAME`, or `KIND/NAME` with -n.
        workload: String,
        /// Why; recorded with the restart.
        #[arg(long)]
        reason: Option<String>,
        /// Wait until the rollout completes; exit 6 if it fails or times out.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    fleetlock_core::config::parse_duration(s)
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
            let _ = writeln!(io.err, "restartctl: {}", e.message);
            if let Some(hint) = &e.hint {
                let _ = writeln!(io.err, "  hint: {hint}");
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
            let _ = writeln!(io.err, "warning: {warning}");
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
    let mut config = direct::ManagerConfig::parse(&text, "restart-manager's configuration")?;
    config.fleetlock.namespace = cli.manager_namespace.clone();
    let user = cli
        .identity
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "restartctl".into());
    let track = matches!(cli.command, Command::Restart { wait: true, .. });
    Ok(Box::new(direct::Direct::start(
        Arc::new(kube),
        Arc::new(SystemClock),
        config,
        Identity::user(user),
        track,
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
        Command::Fleetlock { call } => return fleetlock_call(call, io).await,
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
        Command::List => {
            let statuses = backend.statuses().await?;
            if !io.structured(&statuses) {
                let now = jiff::Timestamp::now();
                let rows: Vec<Vec<String>> =
                    statuses.iter().map(|s| status_row(io, s, now)).collect();
                io.table(
                    &[
                        "KIND",
                        "NAMESPACE",
                        "NAME",
                        "PHASE",
                        "UPDATED",
                        "READY",
                        "LOCKED BY",
                        "LAST RESTART",
                    ],
                    &rows,
                );
            }
            Ok(Exit::Ok)
        }
        Command::Status { workload: w } => {
            let s = backend.status(&workload(w)?).await?;
            if !io.structured(&s) {
                print_status(io, &s);
            }
            Ok(Exit::Ok)
        }
        Command::Restart {
            workload: w,
            reason,
            wait,
            timeout,
        } => {
            let w = workload(w)?;
            let started = backend.restart(&w, reason.as_deref()).await?;
            if !*wait {
                if !io.structured(&started) {
                    io.line(&format!(
                        "{w} restarting (locked by {})",
                        started.lock.as_ref().map_or("you", |l| l.holder.as_str())
                    ));
                }
                return Ok(Exit::Ok);
            }
            let done = tokio::time::timeout(*timeout, wait_for(backend, &w, io)).await;
            let Ok(done) = done else {
                return Err(CliError::new(
                    Exit::RolloutFailed,
                    format!("{w} did not finish within {}s", timeout.as_secs()),
                )
                .hint("`restartctl watch` follows it further"));
            };
            let done = done?;
            if !io.structured(&done) {
                io.line(&format!("{w}: {}", done.message));
            }
            Ok(if done.phase == Phase::Complete {
                Exit::Ok
            } else {
                Exit::RolloutFailed
            })
        }
        Command::Watch { workload: w, count } => {
            let only = w.as_deref().map(workload).transpose()?;
            let mut updates = backend.updates(only.as_ref()).await?;
            let mut seen = 0;
            while let Some(s) = updates.next().await {
                if !io.structured(&s) {
                    let line = format!(
                        "{}  {}/{}/{}  {}  {}/{} updated, {} ready{}",
                        jiff::Timestamp::now().strftime("%H:%M:%S"),
                        s.kind,
                        s.namespace,
                        s.name,
                        phase(io, s.phase),
                        s.updated,
                        s.desired,
                        s.ready,
                        s.lock
                            .as_ref()
                            .map(|l| format!(", locked by {}", l.holder))
                            .unwrap_or_default()
                    );
                    io.line(&line);
                }
                let _ = io.out.flush();
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
            Ok(Exit::Ok)
        }
        Command::History { workload: w } => {
            let history = backend.history(&workload(w)?).await?;
            if !io.structured(&history) {
                let rows: Vec<Vec<String>> = history
                    .iter()
                    .map(|h| {
                        vec![
                            h.time
                                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                                .unwrap_or_default(),
                            format!("{:?}", h.type_),
                            h.reason.clone(),
                            if h.count > 1 {
                                format!("{} (x{})", h.message, h.count)
                            } else {
                                h.message.clone()
                            },
                        ]
                    })
                    .collect();
                io.table(&["TIME", "TYPE", "REASON", "MESSAGE"], &rows);
            }
            Ok(Exit::Ok)
        }
        Command::Locks => {
            let statuses = backend.statuses().await?;
            let fleet = backend.fleet().await?;
            let now = fleet.time;
            let restart: Vec<_> = statuses.iter().filter(|s| s.lock.is_some()).collect();
            if io.structured(&serde_json::json!({
                "restartLocks": restart.iter().map(|s| serde_json::json!({"kind": s.kind, "namespace": s.namespace, "name": s.name, "lock": s.lock})).collect::<Vec<_>>(),
                "rebootSlots": fleet.groups.iter().map(|g| serde_json::json!({"group": g.name, "slots": g.slots, "holders": g.holders})).collect::<Vec<_>>(),
            })) {
                return Ok(Exit::Ok);
            }
            let rows: Vec<Vec<String>> = restart
                .iter()
                .filter_map(|s| {
                    let l = s.lock.as_ref()?;
                    Some(vec![
                        format!("{}/{}/{}", s.kind, s.namespace, s.name),
                        l.holder.clone(),
                        age(l.since, now),
                        l.reason.clone().unwrap_or_default(),
                    ])
                })
                .collect();
            io.line(&io.bold("Restart locks"));
            io.table(&["WORKLOAD", "HOLDER", "AGE", "REASON"], &rows);
            io.line("");
            io.line(&io.bold("Reboot slots"));
            let rows: Vec<Vec<String>> = fleet
                .groups
                .iter()
                .flat_map(|g| {
                    let used = format!("{}/{}", g.holders.len(), g.slots);
                    let paused = if g.paused {
                        " (paused)".to_string()
                    } else {
                        String::new()
                    };
                    let holders: Vec<Vec<String>> = g
                        .holders
                        .iter()
                        .map(|h| {
                            vec![
                                g.name.clone(),
                                used.clone(),
                                h.node.clone(),
                                format!("{:?}", h.phase).to_lowercase(),
                                age(h.since, now),
                            ]
                        })
                        .collect();
                    if holders.is_empty() {
                        vec![vec![
                            format!("{}{paused}", g.name),
                            used,
                            "-".into(),
                            String::new(),
                            String::new(),
                        ]]
                    } else {
                        holders
                    }
                })
                .collect();
            io.table(&["GROUP", "SLOTS", "NODE", "PHASE", "AGE"], &rows);
            Ok(Exit::Ok)
        }
        Command::Unlock {
            workload: w,
            reason,
        } => {
            let w = workload(w)?;
            let released = backend.unlock(&w, reason).await?;
            if !io.structured(&serde_json::json!({ "released": released })) {
                match released {
                    Some(l) => io.line(&format!(
                        "{w}: broke the lock held by {} since {}",
                        l.holder,
                        l.since.strftime("%Y-%m-%d %H:%M:%S")
                    )),
                    None => io.line(&format!("{w}: no lock was held")),
                }
            }
            Ok(Exit::Ok)
        }
        Command::Nodes => {
            let fleet = backend.fleet().await?;
            if !io.structured(&fleet.nodes) {
                let holders: std::collections::HashMap<
                    &str,
                    &fleetlock_core::snapshot::HolderSnapshot,
                > = fleet
                    .groups
                    .iter()
                    .flat_map(|g| g.holders.iter().map(|h| (h.node.as_str(), h)))
                    .collect();
                let rows: Vec<Vec<String>> = fleet
                    .nodes
                    .iter()
                    .map(|n| {
                        let holder = holders.get(n.name.as_str());
                        let cordon = match (n.unschedulable, n.cordoned_by_us) {
                            (true, true) => "by us",
                            (true, false) => "by others",
                            _ => "no",
                        };
                        let drain = holder
                            .and_then(|h| h.drain.as_ref())
                            .map(|d| format!("{} left", d.pods_left))
                            .unwrap_or_default();
                        let rebooted = match holder.and_then(|h| h.rebooted) {
                            Some(true) => "yes",
                            Some(false) => "not yet",
                            None => "",
                        };
                        vec![
                            n.name.clone(),
                            n.holds_slot_in.clone().unwrap_or_default(),
                            n.state.clone(),
                            n.state_since
                                .map(|t| age(t, fleet.time))
                                .unwrap_or_default(),
                            if n.ready {
                                "yes".into()
                            } else {
                                io.paint("no", AnsiColor::Red)
                            },
                            cordon.into(),
                            drain,
                            rebooted.into(),
                        ]
                    })
                    .collect();
                io.table(
                    &[
                        "NODE",
                        "SLOT IN",
                        "STATE",
                        "SINCE",
                        "READY",
                        "CORDONED",
                        "DRAIN",
                        "BOOT ID CHANGED",
                    ],
                    &rows,
                );
            }
            Ok(Exit::Ok)
        }
        Command::Fleet { action } => {
            let (group, paused) = match action {
                FleetAction::Pause { group } => (group, true),
                FleetAction::Resume { group } => (group, false),
            };
            backend.pause(group, paused).await?;
            if !io.structured(&serde_json::json!({ "group": group, "paused": paused })) {
                io.line(&format!(
                    "reboot group {group} {}",
                    if paused { "paused" } else { "resumed" }
                ));
            }
            Ok(Exit::Ok)
        }
        Command::ZincatiId { .. } | Command::Completion { .. } | Command::Fleetlock { .. } => {
            Ok(Exit::Ok)
        }
    }
}

fn phase(io: &Io<'_>, p: Phase) -> String {
    let (text, color) = match p {
        Phase::Idle => ("idle", AnsiColor::Green),
        Phase::Complete => ("complete", AnsiColor::Green),
        Phase::Restarting => ("restarting", AnsiColor::Blue),
        Phase::Progressing => ("progressing", AnsiColor::Blue),
        Phase::Failed => ("failed", AnsiColor::Red),
        Phase::TimedOut => ("timed out", AnsiColor::Red),
    };
    io.paint(text, color)
}

fn status_row(io: &Io<'_>, s: &ServiceStatus, now: jiff::Timestamp) -> Vec<String> {
    vec![
        s.kind.to_string(),
        s.namespace.clone(),
        s.name.clone(),
        if s.exists {
            phase(io, s.phase)
        } else {
            io.paint("missing", AnsiColor::Red)
        },
        format!("{}/{}", s.updated, s.desired),
        s.ready.to_string(),
        s.lock
            .as_ref()
            .map(|l| format!("{} ({})", l.holder, age(l.since, now)))
            .unwrap_or_default(),
        s.last_restart
            .as_ref()
            .map(|r| format!("{} ago by {}", age(r.at, now), r.by))
            .unwrap_or_default(),
    ]
}

fn print_status(io: &mut Io<'_>, s: &ServiceStatus) {
    let now = jiff::Timestamp::now();
    let phase = if s.exists {
        phase(io, s.phase)
    } else {
        io.paint("missing", AnsiColor::Red)
    };
    let mut lines = vec![
        format!("Workload:      {}/{}/{}", s.kind, s.namespace, s.name),
        format!("Phase:         {phase}"),
        format!(
            "Replicas:      {} desired, {} updated, {} ready, {} available",
            s.desired, s.updated, s.ready, s.available
        ),
        format!("Rollout:       {}", s.message),
    ];
    if let Some(d) = &s.description {
        lines.insert(1, format!("Description:   {d}"));
    }
    if let Some(l) = &s.lock {
        lines.push(format!(
            "Locked by:     {} for {}{}",
            l.holder,
            age(l.since, now),
            l.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    if let Some(r) = &s.last_restart {
        let outcome = r
            .outcome
            .map(|o| format!(" ({})", o.as_str()))
            .unwrap_or_default();
        lines.push(format!(
            "Last restart:  {} ago by {}{outcome}{}",
            age(r.at, now),
            r.by,
            r.reason
                .as_ref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        ));
    }
    for l in lines {
        io.line(&l);
    }
}

/// Follows a restart to its end, with a progress bar on a terminal.
async fn wait_for(
    backend: &dyn Backend,
    w: &WorkloadRef,
    io: &mut Io<'_>,
) -> Result<ServiceStatus, CliError> {
    let mut updates = backend.updates(Some(w)).await?;
    let bar = io.terminal.then(|| {
        let bar = indicatif::ProgressBar::new(1);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} updated  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(w.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut last = None;
    while let Some(s) = updates.next().await {
        match &bar {
            Some(bar) => {
                bar.set_length(u64::try_from(s.desired.max(1)).unwrap_or(1));
                bar.set_position(u64::try_from(s.updated.max(0)).unwrap_or(0));
                bar.set_message(format!("{} ready · {:?}", s.ready, s.phase).to_lowercase());
            }
            None if last != Some((s.phase, s.updated, s.ready)) => {
                io.line(&format!(
                    "{w}: {} {}/{} updated, {} ready",
                    phase(io, s.phase),
                    s.updated,
                    s.desired,
                    s.ready
                ));
                last = Some((s.phase, s.updated, s.ready));
            }
            None => {}
        }
        let finished = s.lock.is_none() && !matches!(s.phase, Phase::Restarting);
        if finished {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(s);
        }
    }
    Err(CliError::new(
        Exit::Failure,
        "the status stream ended before the rollout did",
    )
    .hint("`restartctl status` shows where it is"))
}

/// `restartctl fleetlock pre-reboot|steady-state`: the request Zincati would send.
async fn fleetlock_call(call: &FleetLockCall, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let (endpoint, args) = match call {
        FleetLockCall::PreReboot(a) => ("pre-reboot", a),
        FleetLockCall::SteadyState(a) => ("steady-state", a),
    };
    let base = if args.url.ends_with('/') {
        args.url.clone()
    } else {
        format!("{}/", args.url)
    };
    let url = format!("{base}v1/{endpoint}");
    let body = format!(
        "{{\n  \"client_params\": {{\n    \"id\": {},\n    \"group\": {}\n  }}\n}}",
        serde_json::Value::String(args.id.clone()),
        serde_json::Value::String(args.group.clone())
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("fleet-lock-protocol", "true")
        .body(body)
        .send()
        .await
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if !io.structured(&serde_json::json!({"status": status.as_u16(), "kind": parsed.get("kind"), "value": parsed.get("value")})) {
        if status.is_success() {
            io.line(&format!("{endpoint}: {} ({})", io.paint("allowed", AnsiColor::Green), status.as_u16()));
        } else {
            let kind = parsed["kind"].as_str().unwrap_or("?");
            let value = parsed["value"].as_str().unwrap_or(text.as_str());
            io.line(&format!("{endpoint}: {} {} {kind}: {value}", io.paint("refused", AnsiColor::Red), status.as_u16()));
        }
    }
    Ok(if status.is_success() {
        Exit::Ok
    } else {
        Exit::FleetLockRefused
    })
}
