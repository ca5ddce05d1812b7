//! The coordinator: answers `pre-reboot` and `steady-state`, drains, and looks after holders.
//!
//! [`Coordinator`] is one `Inner` made of parts that own their state, each in its own file
//! with a narrow API, and of the steps of the requests, each a file that reads top to bottom.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the public API, `Inner` and its parts, `run` (watches, maintenance, shutdown) |
//! | **parts** | |
//! | `caches.rs` | `Caches`: the node index and the group-lock cache, with their watches' health |
//! | `drains.rs` | `Drains`: the table of running drains and the tasks a shutdown waits for |
//! | `gates.rs` | `Gates`: the alerts' last read and the node counts behind the health gates |
//! | `reports.rs` | `Reports`: holders already reported stuck or not rebooted |
//! | **a pre-reboot, in order** | |
//! | `pre_reboot.rs` | the handler: answer from the caches, or grant, then wait for the drain |
//! | `admit.rs`, `gates.rs`, `preflight.rs` | admit: who may ask; health gates; the drain's pre-flight |
//! | `locks.rs` | lock: the group Leases, written with compare-and-swap, kept in the cache |
//! | `drainer/` | act: one node's drain (cordon, evict, wait, approve) |
//! | `writes.rs` | what is written to Nodes: state annotation, cordon, uncordon |
//! | `slots.rs` | approval, and giving a slot back (release, timeout, heal) |
//! | `notices.rs` | announce: Events and reboot notices |
//! | **the rest** | |
//! | `steady_state.rs`, `recovery.rs` | the answer to `steady-state`; a recovering holder's heal |
//! | `maintain.rs`, `watches.rs` | looking after holders; what the watches set off |
//! | `snapshots.rs` | the fleet's state as data |
//! | `grants.rs`, `policy.rs` | plain words for a grant; the grant policy as plain functions |
//! | `sabotage.rs` | deliberate defects for the reliability tests (feature `sabotage`) |

mod admit;
mod caches;
mod drainer;
mod drains;
mod gates;
mod grants;
mod locks;
mod maintain;
mod notices;
mod policy;
mod pre_reboot;
mod preflight;
mod recovery;
mod reports;
#[cfg(feature = "sabotage")]
mod sabotage;
mod slots;
mod snapshots;
mod steady_state;
mod watches;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Clock, ClusterApi, CoreBuilder, CoreOptions, Recorder};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{FleetLockConfig, UnknownGroups};
use crate::protocol::{Kind, Refusal};
use crate::snapshot::{FleetSnapshot, GroupSnapshot};
use caches::Caches;
use drains::Drains;
use gates::Gates;
use reports::Reports;
#[cfg(feature = "sabotage")]
pub use sabotage::Sabotage;

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

/// One replica's coordinator: the cluster, the settings, and the parts that own the state.
struct Inner {
    api: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    config: FleetLockConfig,
    instance: String,
    observer: Arc<dyn Observer>,
    caches: Caches,
    drains: Drains,
    gates: Gates,
    reports: Reports,
    /// Wakes the maintenance before its next pass.
    poke: Notify,
    leadership: Option<watch::Receiver<bool>>,
    recorder: Recorder,
    /// Cancelled to stop: drains stop at their next safe point, `run` returns.
    shutdown: CancellationToken,
    #[cfg(feature = "sabotage")]
    sabotage: Option<Sabotage>,
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

    /// Where the groups' alert gates read firing alerts (`alerts` in the configuration says
    /// how often and what to do when it cannot be read). Without one, an alert gate stays
    /// closed (or open, with `onUnreachable: allow`).
    pub fn alerts(mut self, source: Arc<dyn crate::alerts::AlertSource>) -> Self {
        self.alerts = Some(source);
        self
    }

    /// The coordinator.
    pub fn build(self) -> Coordinator {
        let options = self.options;
        let recorder = Recorder::new(self.api.clone(), CONTROLLER, &options);
        Coordinator {
            inner: Arc::new(Inner {
                caches: Caches::new(self.config.group_label.clone(), options.cache_grace),
                drains: Drains::default(),
                gates: Gates::new(self.alerts, self.config.alerts.clone()),
                reports: Reports::default(),
                api: self.api,
                clock: options.clock,
                config: self.config,
                instance: options.instance,
                observer: self.observer,
                poke: Notify::new(),
                leadership: options.leadership,
                recorder,
                shutdown: options.shutdown,
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
        /// Aborts the drains if `run` is dropped before its shutdown finished.
        struct Crash<'a> {
            drains: &'a Drains,
            armed: bool,
        }
        impl Drop for Crash<'_> {
            fn drop(&mut self) {
                if self.armed {
                    self.drains.abort_all();
                }
            }
        }
        let inner = &self.inner;
        let mut crash = Crash {
            drains: &inner.drains,
            armed: true,
        };
        tokio::select! {
            () = async {
                tokio::join!(
                    inner.watch_nodes(),
                    inner.watch_leases(),
                    inner.gates.read_alerts(),
                    self.maintain_forever()
                );
            } => {}
            () = inner.shutdown.cancelled() => {}
        }
        inner.drains.wait_stopped().await;
        crash.armed = false;
    }

    /// Whether the node and lock caches have synced and neither watch has been failing for
    /// longer than the grace time, so requests can be answered.
    pub fn is_ready(&self) -> bool {
        self.readiness_problem().is_none()
    }

    /// Why [`is_ready`](Self::is_ready) says no, for a readiness probe.
    pub fn readiness_problem(&self) -> Option<String> {
        self.inner.caches.problem()
    }

    /// Waits until both caches have synced.
    pub async fn wait_ready(&self) {
        self.inner.caches.wait_synced().await;
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
                && self.inner.caches.read_groups(|g| g.contains_key(group)));
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
