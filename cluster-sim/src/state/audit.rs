//! What an [`Auditor`](super::Auditor) sees of the cluster ([`ClusterView`]), and how every accepted write
//! reaches the auditors.

use cluster_api::{Lease, Node, Pod, Timestamp};

use super::{Boot, ClusterView, State};
use crate::audit::{EVICTION_LIMIT, EvictionRecord, Write};

impl ClusterView<'_> {
    /// The simulated wall-clock time of the write.
    pub fn now(&self) -> Timestamp {
        self.state.wall()
    }

    /// A Node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.state.nodes.get(name)
    }

    /// Whether the node's operating system runs, so that its Zincati can speak: what the
    /// simulation knows and the Node may not show yet ([`SimCluster::os_up`]). `None` for a
    /// node that does not exist.
    ///
    /// [`SimCluster::os_up`]: crate::SimCluster::os_up
    pub fn os_up(&self, name: &str) -> Option<bool> {
        self.state.nodes.contains_key(name).then(|| {
            self.state
                .rebooting
                .get(name)
                .is_none_or(|(_, boot)| *boot != Boot::Down)
        })
    }

    /// The pods bound to a node, terminating ones included.
    pub fn pods_on(&self, node: &str) -> Vec<&Pod> {
        self.state
            .pods_on_node(node)
            .iter()
            .filter_map(|k| self.state.pods.get(k).map(|sp| &sp.pod))
            .collect()
    }

    /// The Leases of a namespace.
    pub fn leases(&self, namespace: &str) -> impl Iterator<Item = &Lease> {
        self.state
            .leases
            .iter()
            .filter(move |((ns, _), _)| ns == namespace)
            .map(|(_, lease)| lease)
    }

    /// One Lease.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<&Lease> {
        self.state
            .leases
            .get(&(namespace.to_string(), name.to_string()))
    }
}

// === impl State: auditing ===

impl State {
    /// Shows a write to every auditor.
    pub(crate) fn audit(&self, write: &Write<'_>) {
        if self.auditors.is_empty() {
            return;
        }
        let view = ClusterView { state: self };
        for auditor in &self.auditors {
            auditor.audit(write, &view);
        }
    }

    /// Keeps the record of an answered eviction (the oldest go past [`EVICTION_LIMIT`]) and
    /// shows it to the auditors.
    pub(crate) fn record_eviction(&mut self, record: EvictionRecord) {
        if self.evictions.len() == EVICTION_LIMIT {
            self.evictions.pop_front();
        }
        self.evictions.push_back(record);
        if let Some(record) = self.evictions.back() {
            self.audit(&Write::Eviction(record));
        }
    }
}
