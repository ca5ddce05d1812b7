//! The command line: [`Cli`], its commands and their arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cluster_api::{WorkloadKind, WorkloadRef};
use fleetlock_core::config::parse_duration;

use crate::backend::{CliError, Exit};
use crate::fleetlock::FleetLockCall;
use crate::output::Format;

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
        /// Which shell's completion script to print on standard output.
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
        /// The set's name, as the configuration's `restartSets` gives it.
        name: String,
    },
}

/// `restartctl fleet ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum FleetAction {
    /// Grant no new reboot slots in the group.
    Pause {
        /// The group as Zincati names it (`identity.group`): a configured one, or, where
        /// unknown groups are allowed, one that holds a Lease.
        group: String,
    },
    /// Grant reboot slots in the group again.
    Resume {
        /// The group as Zincati names it (`identity.group`): a configured one, or, where
        /// unknown groups are allowed, one that holds a Lease.
        group: String,
    },
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
