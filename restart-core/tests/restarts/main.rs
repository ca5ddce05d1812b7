//! Restarts on the simulated cluster: all three kinds, refusals, locks between replicas,
//! expiry, failed and stalled rollouts, Events and counters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_api::{Clock, CoreBuilder, Error, Node, Timestamp, WorkloadKind, WorkloadRef};
use cluster_sim::{Operation, SimCluster, StrategyName, WorkloadSpec};
use restart_core::{
    Allowlist, ErrorKind, Identity, Outcome, Phase, RESTARTED_AT, RestartConfig, RestartError,
    RestartObserver, Restarter, ServiceEntry,
};
use tokio::time::advance;

#[derive(Default)]
struct Counts {
    restarted: Mutex<Vec<String>>,
    failed: Mutex<Vec<String>>,
    finished: Mutex<Vec<(String, Outcome)>>,
    notices: Mutex<Vec<restart_core::RestartNotice>>,
}

impl RestartObserver for Counts {
    fn restarted(&self, w: &WorkloadRef) {
        self.restarted.lock().unwrap().push(w.to_string());
    }
    fn restart_failed(&self, w: &WorkloadRef) {
        self.failed.lock().unwrap().push(w.to_string());
    }
    fn rollout_finished(&self, w: &WorkloadRef, outcome: Outcome, _took: Duration) {
        self.finished.lock().unwrap().push((w.to_string(), outcome));
    }
    fn restart_notice(&self, notice: &restart_core::RestartNotice) {
        self.notices.lock().unwrap().push(notice.clone());
    }
}

fn web() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, "shop", "web")
}

fn db() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::StatefulSet, "shop", "db")
}

fn agent() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::DaemonSet, "kube-system", "agent")
}

fn cluster() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        sim.add_node(Node::new(n));
    }
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(3)
            .pod_start_secs(5)
            .grace_period(5)
            .progress_deadline(120),
    )
    .unwrap();
    sim.add_workload(
        WorkloadSpec::statefulset("shop", "db")
            .replicas(2)
            .pod_start_secs(5)
            .grace_period(5),
    )
    .unwrap();
    sim.add_workload(
        WorkloadSpec::daemonset("kube-system", "agent")
            .pod_start_secs(5)
            .grace_period(5),
    )
    .unwrap();
    sim
}

fn allowlist(extra: Vec<ServiceEntry>) -> Allowlist {
    let mut entries: Vec<ServiceEntry> = [web(), db(), agent()]
        .into_iter()
        .map(ServiceEntry::new)
        .collect();
    entries.extend(extra);
    Allowlist::new(entries).unwrap()
}

/// Another replica's wall clock: the simulated cluster's, `offset` ahead (behind, if
/// negative). The replicas still share one monotonic clock (Tokio's), as real ones share the
/// passing of time whatever their clocks read.
struct Skewed(SimCluster, jiff::SignedDuration);

impl Clock for Skewed {
    fn now(&self) -> Timestamp {
        self.0.now() + self.1
    }
}

/// How a test replica runs.
struct As {
    /// Its wall clock's offset from the cluster's.
    skew: jiff::SignedDuration,
    /// Whether it leads (judges rollouts, drives sets, schedules and config restarts).
    leading: bool,
}

impl As {
    /// A replica whose clock is `secs` ahead of the cluster's (behind, if negative).
    fn skewed(secs: i64) -> Self {
        As {
            skew: jiff::SignedDuration::from_secs(secs),
            leading: true,
        }
    }

    /// Told by its election that another replica leads.
    fn follower(self) -> Self {
        As {
            leading: false,
            ..self
        }
    }

    /// Builds it on `sim`.
    fn builder(&self, sim: &SimCluster, allowlist: Allowlist) -> restart_core::RestarterBuilder {
        let b = Restarter::builder(Arc::new(sim.clone()), allowlist)
            .clock(Arc::new(Skewed(sim.clone(), self.skew)));
        if self.leading {
            b
        } else {
            b.leadership(tokio::sync::watch::channel(false).1)
        }
    }
}

async fn replica(
    sim: &SimCluster,
    allowlist: Allowlist,
    config: RestartConfig,
    name: &str,
) -> (Restarter, Arc<Counts>, tokio::task::JoinHandle<()>) {
    replica_as(sim, allowlist, config, name, As::skewed(0)).await
}

async fn replica_as(
    sim: &SimCluster,
    allowlist: Allowlist,
    config: RestartConfig,
    name: &str,
    how: As,
) -> (Restarter, Arc<Counts>, tokio::task::JoinHandle<()>) {
    let counts = Arc::new(Counts::default());
    let r = how
        .builder(sim, allowlist)
        .config(config)
        .instance(name)
        .observer(counts.clone())
        .build();
    let handle = tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r.wait_ready().await;
    (r, counts, handle)
}

fn alice() -> Identity {
    Identity::user("alice")
}

/// restart-manager's Events about a workload (the cluster's controllers write their own), each
/// as often as it happened (repeats of one Event are counted on it).
fn reasons(sim: &SimCluster, w: &WorkloadRef) -> Vec<String> {
    sim.events()
        .into_iter()
        .filter(|e| e.regarding.names_same(&w.object_ref()))
        .filter(|e| e.reporting_controller == restart_core::CONTROLLER)
        .flat_map(|e| std::iter::repeat_n(e.reason, usize::try_from(e.count).unwrap_or(1)))
        .collect()
}

mod announcements;
mod config_trigger;
mod dry_runs;
mod history;
mod locks;
mod rollouts;
mod schedules;
mod set_drivers;
mod sets;
mod shutdown;
mod skew;
