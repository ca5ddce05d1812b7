//! The coordinator: answers `pre-reboot` and `steady-state`, drains, and looks after holders.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the public API |
//! | `requests.rs` | the answers to `pre-reboot` and `steady-state` |
//! | `policy.rs` | the grant policy, as plain functions |
//! | `cache.rs` | the node index and lock cache, fed by watches |
//! | `writes.rs` | Events, annotations, cordons, release and approval |
//! | `drains.rs`, `drainer/` | the per-node drain tasks |
//! | `preflight.rs`, `gates.rs` | what is checked before a grant |
//! | `recovery.rs` | a holder's slot kept after its steady-state until it has healed |
//! | `maintain.rs` | looking after holders; snapshots |

mod cache;
mod drainer;
mod drains;
mod gates;
mod maintain;
mod notices;
mod policy;
mod preflight;
mod recovery;
mod requests;
mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{CacheHealth, Clock, ClusterApi, CoreBuilder, CoreOptions, Recorder, Store};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{FleetLockConfig, UnknownGroups};
use crate::drain::DrainStatus;
use crate::group::GroupState;
use crate::nodes::NodeIndex;
use crate::protocol::{Kind, Refusal};
use crate::snapshot::{FleetSnapshot, GroupSnapshot};

/// How often holders are checked (resumed drains, reboots seen, stuck holders, deleted
/// nodes) besides whenever something changes.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(15);
/// The `reportingController` of our Events.
const CONTROLLER: &str = "restart-manager.io/fleetlock";
/// How long a cache whose watch is failing still counts as ready (see
/// [`CoreBuilder::cache_grace`]).
pub use cluster_api::DEFAULT_CACHE_GRACE;

/// Hooks for metrics; every method has a no-op default.
pub trait Observer: Send + Sync + 'static {
    /// An eviction was answered: `evicted`, `gone`, `blocked` (a
    /// disruption budget), `throttled` (the API server asked us to slow down), `failed` or
    /// `error`.
    fn eviction(&self, _outcome: &'static str) {}
    /// A drain ended: `completed`, `timed_out` or `cancelled`.
    fn drain_finished(&self, _group: &str, _outcome: &'static str, _duration: Duration) {}
    /// Whether [`reboot`](Self::reboot) is wanted: announcing a transition that is seen
    /// rather than written costs a Lease write (see [`crate::notices`]), spared when nobody
    /// listens.
    fn wants_notices(&self) -> bool {
        false
    }
    /// A reboot transition, announced once across replicas. Must not block.
    fn reboot(&self, _notice: &crate::RebootNotice) {}
}

/// An [`Observer`] that records nothing.
#[derive(Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// Decides who may reboot, drains, and keeps the group Leases, for one server replica.
///
/// Cheap to clone. Call [`run`](Coordinator::run) (usually in a spawned task) to keep its
/// caches current and to look after holders; answer requests with
/// [`pre_reboot`](Coordinator::pre_reboot) and [`steady_state`](Coordinator::steady_state).
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

/// Builds a [`Coordinator`].
///
/// The options it shares with the restart service's builder (clock, instance, leadership,
/// cache grace, shutdown) are set through [`CoreBuilder`].
pub struct CoordinatorBuilder {
    api: Arc<dyn ClusterApi>,
    config: FleetLockConfig,
    options: CoreOptions,
    observer: Arc<dyn Observer>,
    alerts: Option<Arc<dyn crate::alerts::AlertSource>>,
    #[cfg(feature = "sabotage")]
    sabotage: Option<Sabotage>,
}

/// A deliberate defect, for showing that the reliability tests catch it (feature `sabotage`,
/// never in a real build).
#[cfg(feature = "sabotage")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sabotage {
    /// A release on another replica does not stop this replica's drain, and the drain no
    /// longer confirms its slot before evicting: the defect the first multi-replica version
    /// had.
    IgnoreRemoteReleases,
    /// A drain timeout (`onTimeout: release`) gives back its grant's slot whatever the grant's
    /// phase: an approved node, rebooting, loses its slot (the defect issue 26 found).
    TimeOutAnyPhase,
}

struct Inner {
    api: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    config: FleetLockConfig,
    instance: String,
    observer: Arc<dyn Observer>,
    nodes: RwLock<NodeIndex>,
    groups: Store<String, GroupState>,
    nodes_health: CacheHealth,
    leases_health: CacheHealth,
    cache_grace: Duration,
    drains: Mutex<HashMap<String, DrainTask>>,
    /// Holders (by node) this replica has reported stuck.
    reported_stuck: Mutex<HashSet<String>>,
    /// Holders (by node) this replica has warned about with `RebootNotObserved`.
    noted_unrebooted: Mutex<HashSet<String>>,
    /// The last count of nodes down or held back, and the alerts' source and last read, for
    /// the health gates.
    node_counts: Mutex<Option<(tokio::time::Instant, Arc<gates::NodeCounts>)>>,
    alerts: Option<Arc<dyn crate::alerts::AlertSource>>,
    alert_state: RwLock<crate::alerts::AlertState>,
    poke: Notify,
    leadership: Option<watch::Receiver<bool>>,
    recorder: Recorder,
    /// Cancelled to stop: drains stop at their next safe point, `run` returns.
    shutdown: CancellationToken,
    /// The drains and timers this replica spawned, for a shutdown to wait for.
    tasks: TaskTracker,
    #[cfg(feature = "sabotage")]
    sabotage: Option<Sabotage>,
}

struct DrainTask {
    /// The grant it drains for.
    grant: crate::group::Holder,
    group: String,
    status: watch::Receiver<DrainStatus>,
    handle: tokio::task::JoinHandle<()>,
    /// Asks the drain to stop and tidy up (its grant is no longer draining).
    stop: watch::Sender<bool>,
}

// === impl CoordinatorBuilder ===

impl CoreBuilder for CoordinatorBuilder {
    fn options_mut(&mut self) -> &mut CoreOptions {
        &mut self.options
    }
}

impl CoordinatorBuilder {
    /// Where to report evictions and drain durations.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Builds in a deliberate defect (feature `sabotage`, for the reliability tests only).
    #[cfg(feature = "sabotage")]
    pub fn sabotage(mut self, sabotage: Sabotage) -> Self {
        self.sabotage = Some(sabotage);
        self
    }

    /// The coordinator.
    pub fn build(self) -> Coordinator {
        let nodes = NodeIndex::new(self.config.group_label.clone());
        let options = self.options;
        let recorder = Recorder::new(self.api.clone(), CONTROLLER, &options);
        Coordinator {
            inner: Arc::new(Inner {
                api: self.api,
                clock: options.clock,
                config: self.config,
                instance: options.instance,
                observer: self.observer,
                nodes: RwLock::new(nodes),
                groups: Store::new(),
                nodes_health: CacheHealth::new("node"),
                leases_health: CacheHealth::new("group lock"),
                cache_grace: options.cache_grace,
                drains: Mutex::default(),
                reported_stuck: Mutex::default(),
                noted_unrebooted: Mutex::default(),
                node_counts: Mutex::default(),
                alerts: self.alerts,
                alert_state: RwLock::default(),
                poke: Notify::new(),
                leadership: options.leadership,
                recorder,
                shutdown: options.shutdown,
                tasks: TaskTracker::new(),
                #[cfg(feature = "sabotage")]
                sabotage: self.sabotage,
            }),
        }
    }
}

// === impl Coordinator ===

impl Coordinator {
    /// Starts building a coordinator over a cluster. The config should have passed
    /// [`FleetLockConfig::validate`].
    pub fn builder(api: Arc<dyn ClusterApi>, config: FleetLockConfig) -> CoordinatorBuilder {
        CoordinatorBuilder {
            api,
            config,
            options: CoreOptions::default(),
            observer: Arc::new(NoopObserver),
            alerts: None,
            #[cfg(feature = "sabotage")]
            sabotage: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &FleetLockConfig {
        &self.inner.config
    }

    /// Keeps the node and lock caches current and looks after holders, until the shutdown
    /// signal ([`CoreBuilder::shutdown`]) is given; then asks the drains this replica runs to
    /// stop at their next safe point (never between a write and its record), waits for them
    /// and returns. Whichever replica runs next picks the drains up from the group Leases.
    ///
    /// Dropped without a shutdown (a test simulating a crash), it stops its drains at once,
    /// as a crash would.
    pub async fn run(&self) {
        struct Crash<'a> {
            inner: &'a Inner,
            armed: bool,
        }
        impl Drop for Crash<'_> {
            fn drop(&mut self) {
                if self.armed {
                    for (_, task) in self.inner.drains.lock().drain() {
                        task.handle.abort();
                    }
                }
            }
        }
        let inner = &self.inner;
        let mut crash = Crash { inner, armed: true };
        tokio::select! {
            () = async {
                tokio::join!(
                    inner.watch_nodes(),
                    inner.watch_leases(),
                    inner.read_alerts(),
                    self.maintain_forever()
                );
            } => {}
            () = inner.shutdown.cancelled() => {}
        }
        inner.tasks.close();
        inner.tasks.wait().await;
        crash.armed = false;
        inner.drains.lock().clear();
    }

    /// Whether the node and lock caches have synced and neither watch has been failing for
    /// longer than the grace time, so requests can be answered.
    pub fn is_ready(&self) -> bool {
        self.readiness_problem().is_none()
    }

    /// Why [`is_ready`](Self::is_ready) says no, for a readiness probe.
    pub fn readiness_problem(&self) -> Option<String> {
        let grace = self.inner.cache_grace;
        self.inner
            .nodes_health
            .problem(grace)
            .or_else(|| self.inner.leases_health.problem(grace))
    }

    /// Waits until both caches have synced.
    pub async fn wait_ready(&self) {
        self.inner.nodes_health.wait_synced().await;
        self.inner.leases_health.wait_synced().await;
    }

    /// Pauses or resumes a group at run time, for every replica.
    pub async fn set_paused(&self, group: &str, paused: bool) -> Result<(), Refusal> {
        let inner = &self.inner;
        self.check_pausable(group)?;
        inner
            .modify_group(group, |state| {
                state.paused = paused;
                Ok(())
            })
            .await?;
        tracing::info!(%group, paused, "reboot group pause changed");
        Ok(())
    }

    /// Whether `group` can be paused: a valid name, and a configured group (or, where unknown
    /// groups are allowed, one that already has its slot Lease). Check this before asking
    /// anyone about rights, so that made-up names cost nothing.
    pub fn check_pausable(&self, group: &str) -> Result<(), Refusal> {
        crate::protocol::validate_group(group)?;
        let config = &self.inner.config;
        let known = config.groups.contains_key(group)
            || (config.unknown_groups == UnknownGroups::Allow
                && self.inner.groups.read(|g| g.contains_key(group)));
        if known {
            Ok(())
        } else {
            Err(Refusal::new(
                Kind::UnknownGroup,
                format!("no reboot group {group:?} is configured"),
            ))
        }
    }

    /// The fleet's reboot state, for the UI and the CLI.
    pub fn snapshot(&self) -> FleetSnapshot {
        self.inner.snapshot()
    }

    /// Just the groups of [`snapshot`](Self::snapshot), without a row per node: what metrics
    /// need, at a fraction of the cost in a large fleet.
    pub fn groups(&self) -> Vec<GroupSnapshot> {
        self.inner.group_snapshots(self.inner.clock.now())
    }

    /// One pass over every holder: resume drains, notice reboots, release holders whose Node
    /// is gone, report (and if configured, release) stuck ones.
    pub async fn maintain(&self) {
        self.inner.maintain().await;
    }

    async fn maintain_forever(&self) {
        self.wait_ready().await;
        let mut leadership = self.inner.leadership.clone();
        loop {
            let leading = leadership.as_ref().is_none_or(|l| *l.borrow());
            if leading {
                self.inner.maintain().await;
            }
            let became_leader = async {
                match leadership.as_mut() {
                    Some(l) => {
                        let _ = l.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
                () = self.inner.poke.notified() => {}
                () = became_leader => {}
            }
        }
    }
}
