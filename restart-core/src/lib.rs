//! Workload restarts, exactly like `kubectl rollout restart`.
//!
//! An [`Allowlist`] says which Deployments, StatefulSets and DaemonSets may be restarted (and
//! by whom). A [`Restarter`] restarts one by setting the pod template's
//! `kubectl.kubernetes.io/restartedAt` annotation, refusing a paused Deployment as kubectl
//! does. A Lease per workload ([`lock`]) makes sure only one restart runs at a time across
//! every server replica and `restartctl`; it is released when the rollout completes or fails
//! (judged as `kubectl rollout status` judges it, [`rollout`]) and may be taken over once it
//! expires. Every restart, refusal and forced unlock is an Event on the workload, and every
//! status change is broadcast to subscribers.
//!
//! It talks to the cluster only through [`cluster_api::ClusterApi`]:
//!
//! ```
//! use std::sync::Arc;
//! use cluster_api::{Node, WorkloadKind, WorkloadRef};
//! use cluster_sim::{SimCluster, WorkloadSpec};
//! use restart_core::{Allowlist, CoreBuilder, Identity, Phase, Restarter, ServiceEntry};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let sim = SimCluster::new();
//! sim.add_node(Node::new("n1"));
//! sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(2).pod_start_secs(5)).unwrap();
//!
//! let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
//! let allowlist = Allowlist::new(vec![ServiceEntry::new(web.clone())]).unwrap();
//! let restarter = Restarter::builder(Arc::new(sim.clone()), allowlist)
//!     .clock(Arc::new(sim.clone()))
//!     .build();
//! tokio::spawn({ let r = restarter.clone(); async move { r.run().await } });
//! restarter.wait_ready().await;
//!
//! restarter.restart(&web, &Identity::user("alice"), Some("new config")).await.unwrap();
//! let done = restarter.wait(&web, |_| {}).await;
//! assert_eq!(done.phase, Phase::Complete);
//! assert_eq!(done.last_restart.unwrap().by, "alice");
//! # }
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`allowlist`] | the allowlist file format and identities |
//! | [`rollout`] | `kubectl rollout status` as a plain function |
//! | [`lock`] | the per-workload restart Lease |
//! | [`observed`] | Lease expiry as this replica has watched it, immune to clock skew |
//! | [`schedule`] | cron schedules on workloads and sets, and which due time to act on |
//! | [`sets`] | restart sets: their configuration, runs and the rules that move a run on |
//! | [`signing`] | the mark that tells the Events this service wrote from forged ones |
//! | [`status`] | what is shown about a workload; its phase and how a restart ended, as plain functions |
//! | [`Restarter`] | the service: restart, unlock, history, status stream |

pub mod allowlist;
mod error;
pub mod lock;
pub mod notices;
pub mod observed;
mod refresh;
pub mod rollout;
pub mod schedule;
mod service;
pub mod sets;
pub mod signing;
pub mod status;
pub mod trigger;

pub use allowlist::{Allowed, Allowlist, AllowlistError, Identity, ServiceEntry};
/// The options both cores share, and the builder methods that set them.
pub use cluster_api::{CoreBuilder, CoreOptions};
pub use error::{ErrorKind, RestartError};
pub use lock::{LastRestart, LockInfo, Outcome};
pub use notices::{RestartNotice, RestartTransition};
pub use rollout::{Rollout, Verdict};
pub use service::{
    CONFIG_CHANGE_USER, CONTROLLER, DEFAULT_CACHE_GRACE, GoverningBudget, KEY_ENTRY, KEY_SECRET,
    LEGACY_KEY_ANNOTATION, MAX_REASON_LEN, NoopRestartObserver, PlanRefusal, PodToReplace,
    RESTARTED_AT, RestartConfig, RestartObserver, RestartPlan, Restarter, RestarterBuilder,
    SCHEDULE_USER,
};
pub use sets::{RestartSet, SetStatus};
pub use status::{HistoryEntry, Phase, ServiceStatus};
