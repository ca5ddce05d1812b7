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

use async_trait::async_trait;
pub use jiff::Timestamp;

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

/// Everything the cores ask of a cluster.
///
/// Object-safe, so the cores hold an `Arc<dyn ClusterApi>` and do not care whether a real API
/// server or a simulation answers. Implementations must give these operations Kubernetes
/// semantics; `cluster-sim`'s documentation lists them and its tests pin them down.
#[async_trait]
pub trait ClusterApi: Send + Sync + 'static {
    // --- nodes ---

    /// Reads one Node. [`Error::NotFound`] if there is none by that name.
    async fn get_node(&self, name: &str) -> Result<Node>;

    /// Lists every Node.
    async fn list_nodes(&self) -> Result<Vec<Node>>;

    /// Watches every Node: a [`WatchEvent::Restarted`] with all of them, then each change.
    async fn watch_nodes(&self) -> Result<WatchStream<Node>>;

    /// Applies a merge patch to a Node; a compare-and-swap when the patch carries a
    /// `resource_version`. Returns the Node as written.
    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node>;

    // --- pods ---

    /// Lists pods, all namespaces unless the filter says otherwise.
    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>>;

    /// Watches pods. A pod that gets bound to the filter's node arrives as
    /// [`WatchEvent::Applied`]; one that is removed arrives as [`WatchEvent::Deleted`].
    async fn watch_pods(&self, filter: &PodFilter) -> Result<WatchStream<Pod>>;

    /// Asks the Eviction API to evict a pod, respecting PodDisruptionBudgets.
    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> Result<EvictionOutcome>;

    /// Lists the PodDisruptionBudgets of every namespace with their status, for planning a
    /// drain before it starts (the Eviction API applies them itself).
    async fn list_disruption_budgets(&self) -> Result<Vec<DisruptionBudget>>;

    // --- leases ---

    /// Reads one Lease. [`Error::NotFound`] if it does not exist.
    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease>;

    /// Lists the Leases of a namespace whose labels match.
    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>>;

    /// Watches the Leases of a namespace whose labels match: a [`WatchEvent::Restarted`] with
    /// all of them, then each change.
    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>>;

    /// Creates a Lease. [`Error::AlreadyExists`] if the name is taken.
    async fn create_lease(&self, lease: &Lease) -> Result<Lease>;

    /// Replaces a Lease if it is still at `lease.resource_version`; [`Error::Conflict`] if it
    /// changed since it was read, [`Error::NotFound`] if it was deleted.
    async fn replace_lease(&self, lease: &Lease) -> Result<Lease>;

    /// Deletes a Lease, if it is still at `resource_version` when one is given.
    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()>;

    // --- secrets ---

    /// Reads one Secret, data and all. [`Error::NotFound`] if it does not exist.
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Secret>;

    /// Creates a Secret. [`Error::AlreadyExists`] if the name is taken.
    async fn create_secret(&self, secret: &Secret) -> Result<Secret>;

    // --- workloads ---

    /// Reads one Deployment, StatefulSet or DaemonSet.
    async fn get_workload(&self, workload: &WorkloadRef) -> Result<Workload>;

    /// Lists workloads of one kind.
    async fn list_workloads(&self, filter: &WorkloadFilter) -> Result<Vec<Workload>>;

    /// Watches workloads of one kind.
    async fn watch_workloads(&self, filter: &WorkloadFilter) -> Result<WatchStream<Workload>>;

    /// Sets (`Some`) or removes (`None`) annotations of the pod template
    /// (`spec.template.metadata.annotations`) with a merge patch, which is what
    /// `kubectl rollout restart` does. Returns the workload as written.
    async fn patch_template_annotations(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Workload>;

    /// Watches the ConfigMaps (or the Secrets) of a namespace, as digests of their data: a
    /// [`WatchEvent::Restarted`] with all of them, then each change.
    async fn watch_config(
        &self,
        namespace: &str,
        kind: ConfigKind,
    ) -> Result<WatchStream<ConfigObject>>;

    // --- events ---

    /// Records an Event. The cluster fills in the time if the event has none.
    async fn record_event(&self, event: &Event) -> Result<()>;

    /// The Events recorded about one object, oldest first.
    async fn list_events(&self, regarding: &ObjectRef) -> Result<Vec<Event>>;
}

/// Applies a map of `Some` (set) / `None` (remove) changes, as a merge patch does.
pub fn apply_changes(
    target: &mut BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) {
    node::apply_map(target, changes);
}
