//! The boundary between restart-manager's cores and a Kubernetes cluster.
//!
//! The cores (`fleetlock-core`, `restart-core`) decide; they never see kube or k8s-openapi
//! types. Everything they read from or write to the cluster goes through the [`ClusterApi`]
//! trait, in the plain types of this crate. Two implementations exist: `k8s-adapter`'s
//! `KubeCluster` over a real API server, and `cluster-sim`'s `SimCluster`, an in-memory cluster
//! with the same semantics for tests, demos and benchmarks.
//!
//! | module | what it holds |
//! |---|---|
//! | [`Node`], [`NodePatch`] | what a reboot coordinator knows and changes about a Node |
//! | [`Pod`], [`PodFilter`], [`EvictionOutcome`] | what a drain knows about pods and what an eviction answered |
//! | [`Lease`] | the cluster-side locks, written with compare-and-swap |
//! | [`DisruptionBudget`] | what a PodDisruptionBudget allows, for planning a drain |
//! | [`Workload`], [`WorkloadRef`], [`WorkloadStatus`] | Deployments, StatefulSets, DaemonSets and their rollout state |
//! | [`Event`], [`ObjectRef`] | the audit trail |
//! | [`LabelSelector`] | label selectors in both their string and object forms |
//! | [`WatchEvent`], [`WatchStream`], [`follow`] | ordered streams of changes, and the loop that follows one |
//! | [`WatchCache`], [`feed`], [`Store`] | watch-fed caches: the one driver, and objects by key that never go back in time |
//! | [`CacheHealth`] | whether a watch-fed cache is synced and current |
//! | [`Error`] | the failures the cores act on |
//! | [`Clock`] | wall-clock time, real or simulated |
//!
//! Every write that guards a lock is a compare-and-swap on `resourceVersion`: a stale write
//! fails with [`Error::Conflict`], and the caller reads again and decides again.

use std::collections::BTreeMap;

pub use jiff::Timestamp;

mod api;
mod budget;
mod cache;
mod clock;
pub mod cron;
pub mod duration;
mod error;
mod event;
mod health;
pub mod lease;
mod names;
mod node;
mod options;
mod pod;
mod recorder;
mod secret;
mod selector;
mod watch;
pub mod window;
mod workload;

pub use api::ClusterApi;
pub use budget::DisruptionBudget;
pub use cache::{Store, Versioned, WatchCache, feed, replaces};
pub use clock::{Clock, SystemClock};
pub use error::{Error, Result};
pub use event::{
    Event, EventSeries, EventType, NOTE_LIMIT, ObjectRef, SERIES_WINDOW, bounded_note,
};
pub use health::CacheHealth;
pub use lease::Lease;
pub use names::{InvalidName, is_object_name, is_older_version, validate_name, validate_namespace};
pub use node::{Node, NodePatch};
pub use options::{CoreBuilder, CoreOptions, DEFAULT_CACHE_GRACE};
pub use pod::{
    EvictOptions, EvictionOutcome, MIRROR_POD_ANNOTATION, NOT_READY_TAINT, OwnerRef, Pod,
    PodFilter, PodPhase, Toleration, TolerationOperator, UNREACHABLE_TAINT, UNSCHEDULABLE_TAINT,
};
pub use recorder::Recorder;
pub use secret::Secret;
pub use selector::{LabelSelector, Operator, Requirement, SelectorParseError};
pub use watch::{WatchEvent, WatchStream, follow, whole_lists};
pub use workload::{
    Condition, ConfigKind, ConfigObject, ConfigRef, UnknownKind, UpdateStrategy, Workload,
    WorkloadFilter, WorkloadKind, WorkloadRef, WorkloadStatus, config_digest, config_refs,
};

/// Applies a map of `Some` (set) / `None` (remove) changes, as a merge patch does.
pub fn apply_changes(
    target: &mut BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) {
    node::apply_map(target, changes);
}
