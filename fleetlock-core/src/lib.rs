//! FleetLock for Zincati, the update agent of Fedora CoreOS: reboot slots held in the
//! cluster, and nodes drained before their reboot is approved.
//!
//! Before a node reboots, Zincati asks `POST /v1/pre-reboot`. The [`Coordinator`] maps the
//! client id to a Node ([`zincati_id`]), checks the group's policies (pause, reboot windows,
//! blocking pods, minimum gap, free slots), takes a slot in the group's Lease with
//! compare-and-swap, cordons the node, evicts its pods through the Eviction API with bounded
//! parallelism and backoff on PodDisruptionBudget refusals, and answers yes only once the
//! node is empty. `POST /v1/steady-state` undoes our cordon (never an admin's) and gives the
//! slot back once the node has healed: Ready, rebooted, and the workloads its drain evicted
//! available again ([`recovery`]). Everything lives in the cluster, so replicas share it and
//! restarts lose nothing.
//!
//! It talks to the cluster only through [`cluster_api::ClusterApi`], so it runs the same on a
//! real cluster and on `cluster-sim`:
//!
//! ```
//! use std::sync::Arc;
//! use cluster_api::Node;
//! use cluster_sim::{SimCluster, WorkloadSpec};
//! use fleetlock_core::{ClientParams, Coordinator, CoreBuilder, FleetLockConfig, Kind, zincati_id};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let sim = SimCluster::new();
//! for (name, machine) in [("n1", "0123456789abcdef0123456789abcdef"), ("n2", "e0f3745b108f471cbd4883c6fbed8cdd")] {
//!     sim.add_node(Node::new(name).machine_id(machine));
//! }
//! sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(2).grace_period(5)).unwrap();
//!
//! let coordinator = Coordinator::builder(Arc::new(sim.clone()), FleetLockConfig::default())
//!     .clock(Arc::new(sim.clone()))
//!     .build();
//! tokio::spawn({ let c = coordinator.clone(); async move { c.run().await } });
//! coordinator.wait_ready().await;
//!
//! let n1 = ClientParams { id: zincati_id("0123456789abcdef0123456789abcdef").unwrap(), group: "default".into() };
//! let n2 = ClientParams { id: zincati_id("e0f3745b108f471cbd4883c6fbed8cdd").unwrap(), group: "default".into() };
//!
//! // n1 gets the slot; the answer comes once its pod has moved to n2.
//! coordinator.pre_reboot(&n1).await.unwrap();
//! assert!(sim.node("n1").unwrap().unschedulable);
//! assert!(sim.pods_on("n1").is_empty());
//!
//! // The group has one slot, so n2 waits its turn.
//! assert_eq!(coordinator.pre_reboot(&n2).await.unwrap_err().kind, Kind::LockHeld);
//!
//! // After its reboot n1 says it is back: node uncordoned, and as the web pods already run
//! // again on n2, nothing is left to heal: the slot is released.
//! coordinator.steady_state(&n1).await.unwrap();
//! assert!(!sim.node("n1").unwrap().unschedulable);
//! # }
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | request validation and the table of refusal kinds and statuses |
//! | [`mod@id`] | the Zincati id derived from a machine id |
//! | [`config`] | groups, policies, drain and stuck-holder settings |
//! | [`window`] | reboot windows |
//! | [`group`] | the group Leases and compare-and-swap on them |
//! | [`nodes`] | the id → Node index and our Node annotations |
//! | [`drain`] | the drain plan and progress |
//! | [`recovery`] | when a rebooted node counts as healed |
//! | [`rules`] | drain rules: skip, wait for completion, eviction order |
//! | [`notices`] | what is announced of each reboot transition, and by whom |
//! | [`Coordinator`] | the service itself |
//! | [`snapshot`] | the fleet's state as data |

pub mod alerts;
pub mod config;
mod coordinator;
pub mod drain;
pub mod group;
pub mod id;
pub mod nodes;
pub mod notices;
pub mod preflight;
pub mod protocol;
pub mod recovery;
pub mod rules;
pub mod snapshot;
/// Reboot windows (the shared [`cluster_api::window`]).
pub mod window {
    pub use cluster_api::window::{Window as RebootWindow, *};
}

/// The options both cores share, and the builder methods that set them.
pub use cluster_api::{CoreBuilder, CoreOptions};
pub use config::{
    AlertsApi, AlertsConfig, BasicAuth, DEFAULT_GROUP_LABEL, DEFAULT_MAX_UNKNOWN_GROUPS,
    DrainConfig, FleetLockConfig, GateScope, GroupConfig, HealthGates, InvalidConfig,
    InvalidDuration, OnDrainTimeout, OnUnreachable, RateLimit, RecoveryConfig, StuckConfig,
    UnchangedBootId, UnknownGroups,
};
#[cfg(feature = "sabotage")]
pub use coordinator::Sabotage;
pub use coordinator::{
    Coordinator, CoordinatorBuilder, DEFAULT_CACHE_GRACE, NoopObserver, Observer,
};
pub use drain::{DrainPhase, DrainStatus};
pub use group::{Holder, HolderPhase, UnreadableLock};
pub use id::zincati_id;
pub use notices::{RebootNotice, RebootTransition};
pub use preflight::NodePlan;
pub use protocol::{ClientParams, Kind, Refusal};
pub use snapshot::{FleetSnapshot, GroupSnapshot};
