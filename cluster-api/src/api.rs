//! [`ClusterApi`], the trait every cluster implementation answers: its own module so that the
//! modules that call it (such as [`lease::modify`](crate::lease::modify)) need not import the
//! crate root, which imports them.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{
    ConfigKind, ConfigObject, DisruptionBudget, Event, EvictOptions, EvictionOutcome,
    LabelSelector, Lease, Node, NodePatch, ObjectRef, Pod, PodFilter, Result, Secret, WatchStream,
    Workload, WorkloadFilter, WorkloadRef,
};

/// Everything the cores ask of a cluster.
///
/// Object-safe, so the cores hold an `Arc<dyn ClusterApi>` and do not care whether a real API
/// server or a simulation answers. Implementations must give these operations Kubernetes
/// semantics; `cluster-sim`'s documentation lists them and its tests pin them down.
#[async_trait]
pub trait ClusterApi: Send + Sync + 'static {
    // --- nodes ---

    /// Reads one Node. [`Error::NotFound`](crate::Error::NotFound) if there is none by that name.
    async fn get_node(&self, name: &str) -> Result<Node>;

    /// Lists every Node.
    async fn list_nodes(&self) -> Result<Vec<Node>>;

    /// Watches every Node: a [`WatchEvent::Restarted`](crate::WatchEvent::Restarted) with all of
    /// them, then each change.
    async fn watch_nodes(&self) -> Result<WatchStream<Node>>;

    /// Applies a merge patch to a Node; a compare-and-swap when the patch carries a
    /// `resource_version`. Returns the Node as written.
    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node>;

    // --- pods ---

    /// Lists pods, all namespaces unless the filter says otherwise.
    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>>;

    /// Watches pods. A pod that gets bound to the filter's node arrives as
    /// [`WatchEvent::Applied`](crate::WatchEvent::Applied); one that is removed arrives as
    /// [`WatchEvent::Deleted`](crate::WatchEvent::Deleted).
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

    /// Reads one Lease. [`Error::NotFound`](crate::Error::NotFound) if it does not exist.
    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease>;

    /// Lists the Leases of a namespace whose labels match.
    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>>;

    /// Watches the Leases of a namespace whose labels match: a
    /// [`WatchEvent::Restarted`](crate::WatchEvent::Restarted) with all of them, then each change.
    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>>;

    /// Creates a Lease. [`Error::AlreadyExists`](crate::Error::AlreadyExists) if the name is taken.
    async fn create_lease(&self, lease: &Lease) -> Result<Lease>;

    /// Replaces a Lease if it is still at `lease.resource_version`;
    /// [`Error::Conflict`](crate::Error::Conflict) if it changed since it was read,
    /// [`Error::NotFound`](crate::Error::NotFound) if it was deleted.
    async fn replace_lease(&self, lease: &Lease) -> Result<Lease>;

    /// Deletes a Lease, if it is still at `resource_version` when one is given.
    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()>;

    // --- secrets ---

    /// Reads one Secret, data and all. [`Error::NotFound`](crate::Error::NotFound) if it does not
    /// exist.
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Secret>;

    /// Creates a Secret. [`Error::AlreadyExists`](crate::Error::AlreadyExists) if the name is
    /// taken.
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
    /// [`WatchEvent::Restarted`](crate::WatchEvent::Restarted) with all of them, then each change.
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
