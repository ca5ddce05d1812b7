//! Inspection that counts nothing, and the counters and faults themselves.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, Event, Lease, Node, Pod, Workload, WorkloadRef};

use crate::state::Auditor;
use crate::{CallCounts, EvictionRecord, Operation, SimCluster};

impl SimCluster {
    // --- inspection: no counters, no faults ---

    /// A Node as it is now.
    pub fn node(&self, name: &str) -> Option<Node> {
        self.with(|st| st.nodes.get(name).cloned())
    }

    /// Every Node.
    pub fn nodes(&self) -> Vec<Node> {
        self.with(|st| st.nodes.values().cloned().collect())
    }

    /// A pod as it is now.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.with(|st| {
            st.pods
                .get(&(namespace.to_string(), name.to_string()))
                .map(|sp| sp.pod.clone())
        })
    }

    /// The pods bound to a node, terminating ones included.
    pub fn pods_on(&self, node: &str) -> Vec<Pod> {
        self.with(|st| {
            st.pods_on_node(node)
                .iter()
                .map(|k| st.pods[k].pod.clone())
                .collect()
        })
    }

    /// The pods a simulated workload controls, terminating ones included.
    pub fn pods_of(&self, r: &WorkloadRef) -> Vec<Pod> {
        self.with(|st| {
            st.pods_of(r)
                .iter()
                .map(|k| st.pods[k].pod.clone())
                .collect()
        })
    }

    /// Every pod.
    pub fn pods(&self) -> Vec<Pod> {
        self.with(|st| st.pods.values().map(|sp| sp.pod.clone()).collect())
    }

    /// A workload as it is now.
    pub fn workload(&self, r: &WorkloadRef) -> Option<Workload> {
        self.with(|st| st.workloads.get(r).map(|sw| sw.w.clone()))
    }

    /// A Lease as it is now.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.with(|st| {
            st.leases
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        })
    }

    /// Every Lease.
    pub fn leases(&self) -> Vec<Lease> {
        self.with(|st| st.leases.values().cloned().collect())
    }

    /// Every Event recorded, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.with(|st| st.events.iter().map(|(_, e)| e.clone()).collect())
    }

    /// Shows every write the cluster accepts from now on to `auditor`, as it is accepted
    /// (see [`Auditor`]).
    pub fn add_auditor(&self, auditor: Arc<dyn Auditor>) {
        self.with(|st| st.auditors.push(auditor));
    }

    /// Every eviction request the cluster answered, oldest first (the most recent 100,000).
    pub fn evictions(&self) -> Vec<EvictionRecord> {
        self.with(|st| st.evictions.iter().cloned().collect())
    }

    // --- counters and faults ---

    /// How many calls of each operation have been made since creation or the last reset.
    pub fn calls(&self) -> CallCounts {
        self.lock().faults.counts.clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_calls(&self) {
        self.lock().faults.counts = CallCounts::default();
    }

    /// Makes the next `times` calls of `op` fail with `error` (after being counted).
    pub fn fail_next(&self, op: Operation, times: usize, error: Error) {
        self.lock().faults.fail_next(op, times, error);
    }

    /// Lets the next `skip` calls of `op` through, then makes `times` calls fail with
    /// `error`: for a failure in the middle of a sequence of calls.
    pub fn fail_later(&self, op: Operation, skip: usize, times: usize, error: Error) {
        self.lock().faults.fail_later(op, skip, times, error);
    }

    /// Makes every call of `op` fail with `error` until [`clear_faults`](Self::clear_faults).
    pub fn fail_always(&self, op: Operation, error: Error) {
        self.lock().faults.fail_always(op, error);
    }

    /// Makes the next `times` calls of `op` fail with a Conflict, as if another writer had got
    /// there first each time.
    pub fn force_conflicts(&self, op: Operation, times: usize) {
        self.fail_next(op, times, Error::conflict("objects", "forced"));
    }

    /// Delays every call of `op` by `latency` of Tokio time (zero removes the delay).
    pub fn set_latency(&self, op: Operation, latency: Duration) {
        self.lock().faults.set_latency(op, latency);
    }

    /// Makes the next `times` calls of `op` take effect and then fail with `error`, as a
    /// request whose answer is lost (a timeout after the API server committed it).
    pub fn fail_after_next(&self, op: Operation, times: usize, error: Error) {
        self.lock().faults.fail_after_next(op, times, error);
    }

    /// Ends every open watch with an error now (their consumers must watch again and get a
    /// fresh list), as an API server restart or a `410 Gone` does.
    pub fn break_watches(&self) {
        self.with(|st| st.break_watches("the watch was closed: too old resource version"));
    }

    /// Removes every injected failure and delay.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }
}
