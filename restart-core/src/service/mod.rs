//! The restart service: [`Restarter`] and the parts it is made of.
//!
//! Each part is a type in its own file that owns its state; `core.rs` holds them together,
//! and the files that act (`restart.rs` and those after it) go from part to part through
//! their methods. A restart reads top to bottom: admit (`admission.rs`), lock and act
//! (`restart.rs`), announce (`restart.rs`, `signing.rs`), and later end (`track.rs`,
//! `release.rs`).
//!
//! | file | what it holds |
//! |---|---|
//! | `restarter.rs` | [`Restarter`], the API embedders call |
//! | `builder.rs` | [`RestarterBuilder`] |
//! | `settings.rs` | [`RestartConfig`] and the names written into the cluster |
//! | `observer.rs` | [`RestartObserver`], the hooks metrics hang on |
//! | `core.rs` | the parts together, the loops `run` joins, readiness, ids |
//! | **parts** | |
//! | `role.rs` | `Role`: leading, or only what a direct `restartctl` waits for |
//! | `admission.rs` | `Admission`: the checks before the lock, for restarts, dry runs and set runs |
//! | `workloads.rs` | `Workloads`: the workload watches' caches |
//! | `locks.rs` | `Locks`: the lock Leases and how long each has been seen unchanged |
//! | `board.rs` | `Board`: the statuses last published and their broadcast |
//! | `set_runs.rs` | `SetRuns`: the sets, their run Leases, statuses and the driver's wake-up |
//! | `schedules.rs` | `Schedules`: every schedule and its due-time Lease |
//! | `config_trigger.rs` | `ConfigTrigger`: ConfigMap and Secret caches, what is due, baselines |
//! | `signing.rs` | `EventLog`: the one Event recorder and the key Events are marked with |
//! | **what they do** | |
//! | `ask.rs` | how a restart is asked for, and its reason |
//! | `restart.rs` | a restart: admit, lock, act, announce |
//! | `release.rs` | a restart's end: released with its outcome, or broken |
//! | `dry_run.rs` | what a restart would do, from the same admission |
//! | `track.rs` | the watches, the resync, judging rollouts, publishing statuses |
//! | `set_requests.rs` | starting and cancelling set runs, writing a run into its Lease |
//! | `set_driver.rs` | moving set runs forward |
//! | `schedule_loop.rs` | claiming and acting on due times |
//! | `config_loop.rs` | restarting on configuration changes |

mod admission;
mod ask;
mod board;
mod builder;
mod config_loop;
mod config_trigger;
mod core;
mod dry_run;
mod locks;
mod observer;
mod release;
mod restart;
mod restarter;
mod role;
mod schedule_loop;
mod schedules;
mod set_driver;
mod set_requests;
mod set_runs;
mod settings;
mod signing;
mod track;
mod workloads;

pub use builder::RestarterBuilder;
/// How long a cache whose watch is failing still counts as ready (see
/// [`CoreBuilder::cache_grace`](cluster_api::CoreBuilder::cache_grace)).
pub use cluster_api::DEFAULT_CACHE_GRACE;
pub use config_trigger::CONFIG_CHANGE_USER;
pub use dry_run::{GoverningBudget, PlanRefusal, PodToReplace, RestartPlan};
pub use observer::{NoopRestartObserver, RestartObserver};
pub use restarter::Restarter;
pub use schedules::SCHEDULE_USER;
pub use settings::{CONTROLLER, MAX_REASON_LEN, RESTARTED_AT, RestartConfig};
pub use signing::{KEY_ENTRY, KEY_SECRET, LEGACY_KEY_ANNOTATION};
