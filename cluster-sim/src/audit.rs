//! What the simulated API server remembers of the writes it served, for tests to check
//! invariants against ("no eviction without a slot holder") rather than against the state a
//! test happens to look at afterwards.

use std::collections::BTreeMap;

use cluster_api::{EvictionOutcome, Lease, Node, Timestamp, Workload, WorkloadRef};

/// How many eviction records are kept before the oldest are dropped.
pub(crate) const EVICTION_LIMIT: usize = 100_000;

/// One eviction request the cluster answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionRecord {
    /// When it was answered (simulated wall clock).
    pub at: Timestamp,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid, if the pod existed.
    pub uid: Option<String>,
    /// The node the pod was bound to, if it existed and was bound.
    pub node: Option<String>,
    /// What the Eviction API answered.
    pub outcome: EvictionOutcome,
}

/// Who made a write the cluster accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A client of the API: the cores through [`ClusterApi`](cluster_api::ClusterApi), or
    /// anything that reaches the API endpoint.
    Client,
    /// A test's own hand on the cluster ([`SimCluster::edit_node`](crate::SimCluster::edit_node)
    /// and the other controls): an administrator's `kubectl`.
    Operator,
}

/// One write the cluster accepted, as the cluster saw it: the object before and after.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Write<'a> {
    /// A Lease was created (`before` is `None`), replaced, or deleted (`after` is `None`).
    Lease {
        /// The Lease before the write.
        before: Option<&'a Lease>,
        /// The Lease as stored.
        after: Option<&'a Lease>,
    },
    /// A Node changed.
    Node {
        /// The Node before the write.
        before: &'a Node,
        /// The Node as stored.
        after: &'a Node,
        /// Who changed it.
        by: Writer,
    },
    /// An eviction request arrived, before any injected latency or fault delays or fails it:
    /// the moment its sender sent it.
    EvictionRequested {
        /// The pod's namespace.
        namespace: &'a str,
        /// The pod's name.
        name: &'a str,
        /// The node the pod is bound to, if it exists and is bound (and is the pod a uid
        /// precondition names, if there is one).
        node: Option<&'a str>,
    },
    /// An eviction was answered (the pod's node, if it had one, is in the record).
    Eviction(&'a EvictionRecord),
    /// A patch of a workload's pod template annotations arrived, before any injected latency
    /// or fault delays or fails it: the moment its sender sent it.
    WorkloadPatchRequested {
        /// The workload the patch names, which may not exist (the answer says so, not this
        /// record).
        workload: &'a WorkloadRef,
        /// The annotations set (`Some`) or removed (`None`).
        changes: &'a BTreeMap<String, Option<String>>,
    },
    /// A workload's pod template annotations were patched through the API.
    Workload {
        /// The workload before the patch.
        before: &'a Workload,
        /// The workload as stored.
        after: &'a Workload,
    },
}
