//! The node index: which Node a client id names, kept current from the node watch.

use std::collections::HashMap;
use std::sync::Arc;

use cluster_api::Node;

use crate::id::{normalize_id, zincati_id};

/// Annotation (or label) an operator sets on a Node whose Zincati config overrides its id
/// (`identity.node_uuid`), or to map any other FleetLock client.
pub const ID_OVERRIDE: &str = "restart-manager.io/fleetlock-id";
/// Annotation listing more addresses or ranges (comma-separated) a node's FleetLock requests
/// may come from, for network plugins whose tunnel address lies outside the node's pod range
/// (Calico's `projectcalico.org/IPv4IPIPTunnelAddr`, for one).
pub const CALLER_ADDRESSES: &str = "restart-manager.io/fleetlock-addresses";
/// Annotation saying where the node is in its reboot: `ready`, `draining`, `rebooting`,
/// `back`.
pub const STATE_ANNOTATION: &str = "restart-manager.io/reboot-state";
/// Annotation set (with the cordon, in one write) when restart-manager cordoned the node, so
/// that only its own cordon is ever undone.
pub const CORDONED_ANNOTATION: &str = "restart-manager.io/cordoned";
/// Annotation with the node's bootID when its reboot was approved.
pub const APPROVED_BOOT_ID_ANNOTATION: &str = "restart-manager.io/approved-boot-id";
/// Annotation with the time of the last state change.
pub const STATE_SINCE_ANNOTATION: &str = "restart-manager.io/reboot-state-since";

/// What the coordinator keeps of a Node: a few hundred bytes instead of the API's tens of
/// kilobytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// `metadata.uid`, which our Events carry so that `kubectl describe node` shows them.
    pub uid: String,
    /// `status.nodeInfo.bootID`.
    pub boot_id: String,
    /// Ready condition.
    pub ready: bool,
    /// Cordoned.
    pub unschedulable: bool,
    /// We cordoned it.
    pub cordoned_by_us: bool,
    /// Our state annotation.
    pub state: Option<String>,
    /// When our state annotation last changed.
    pub state_since: Option<cluster_api::Timestamp>,
    /// The reboot group its group label names, if it has the label.
    pub group: Option<String>,
    /// Where its own traffic may come from: its addresses, its pod ranges (the gateway or
    /// tunnel address of many network plugins), and [`CALLER_ADDRESSES`].
    pub networks: Vec<ipnet::IpNet>,
    /// The ids this node answers to.
    ids: Vec<String>,
}

/// What an id lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one node.
    Found(Arc<NodeView>),
    /// No node.
    NotFound,
    /// Several nodes claim the id (cloned machine ids); none is picked.
    Ambiguous(Vec<String>),
}

/// Nodes by name, and node names by every id that maps to them.
#[derive(Debug, Default)]
pub struct NodeIndex {
    nodes: HashMap<String, Arc<NodeView>>,
    ids: HashMap<String, Vec<String>>,
    /// The label naming a node's reboot group (none: not read).
    group_label: String,
}

// === impl NodeView ===

impl NodeView {
    /// Keeps what the coordinator needs of a Node, and computes the ids it answers to: the
    /// Zincati id derived from its machineID, the machineID itself, and an explicit override.
    /// `group_label` names the label that carries its reboot group (empty: none).
    pub fn of(node: &Node, group_label: &str) -> Self {
        let mut ids = Vec::with_capacity(3);
        if !node.machine_id.is_empty() {
            ids.push(normalize_id(&node.machine_id));
            if let Ok(id) = zincati_id(&node.machine_id) {
                ids.push(id);
            }
        }
        if let Some(id) = node
            .annotations
            .get(ID_OVERRIDE)
            .or_else(|| node.labels.get(ID_OVERRIDE))
        {
            ids.push(normalize_id(id));
        }
        ids.sort();
        ids.dedup();
        NodeView {
            name: node.name.clone(),
            uid: node.uid.clone(),
            boot_id: node.boot_id.clone(),
            ready: node.ready,
            unschedulable: node.unschedulable,
            cordoned_by_us: node
                .annotations
                .get(CORDONED_ANNOTATION)
                .is_some_and(|v| v == "true"),
            state: node.annotations.get(STATE_ANNOTATION).cloned(),
            state_since: node
                .annotations
                .get(STATE_SINCE_ANNOTATION)
                .and_then(|t| t.parse().ok()),
            group: (!group_label.is_empty())
                .then(|| node.labels.get(group_label).cloned())
                .flatten(),
            networks: networks(node),
            ids,
        }
    }
}

/// Parses an address (`10.0.0.7`, a host network) or a range (`10.244.3.0/24`).
fn network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn networks(node: &Node) -> Vec<ipnet::IpNet> {
    let extra = node
        .annotations
        .get(CALLER_ADDRESSES)
        .map(|v| v.split(',').collect::<Vec<_>>())
        .unwrap_or_default();
    node.addresses
        .iter()
        .map(String::as_str)
        .chain(node.pod_cidrs.iter().map(String::as_str))
        .chain(extra)
        .filter_map(network)
        .collect()
}

impl NodeView {
    /// Whether `peer` is one of the addresses this node's traffic comes from.
    pub fn sent_from(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.networks.iter().any(|n| n.contains(&peer))
    }
}

// === impl NodeIndex ===

impl NodeIndex {
    /// An empty index that reads each node's reboot group from `group_label` (empty: none).
    pub fn new(group_label: impl Into<String>) -> Self {
        NodeIndex {
            group_label: group_label.into(),
            ..NodeIndex::default()
        }
    }

    /// Replaces everything (after a watch restart).
    pub fn reset(&mut self, nodes: &[Node]) {
        self.nodes.clear();
        self.ids.clear();
        for node in nodes {
            self.apply(node);
        }
    }

    /// Adds or updates one node.
    pub fn apply(&mut self, node: &Node) {
        let view = NodeView::of(node, &self.group_label);
        if let Some(old) = self.nodes.get(&node.name) {
            if old.ids != view.ids {
                let old_ids = old.ids.clone();
                self.unindex(&node.name, &old_ids);
            } else {
                self.nodes.insert(node.name.clone(), Arc::new(view));
                return;
            }
        }
        for id in &view.ids {
            let names = self.ids.entry(id.clone()).or_default();
            if !names.contains(&node.name) {
                names.push(node.name.clone());
            }
        }
        self.nodes.insert(node.name.clone(), Arc::new(view));
    }

    /// Removes one node.
    pub fn remove(&mut self, name: &str) {
        if let Some(old) = self.nodes.remove(name) {
            self.unindex(name, &old.ids);
        }
    }

    fn unindex(&mut self, name: &str, ids: &[String]) {
        for id in ids {
            if let Some(names) = self.ids.get_mut(id) {
                names.retain(|n| n != name);
                if names.is_empty() {
                    self.ids.remove(id);
                }
            }
        }
    }

    /// The node a client id names.
    pub fn lookup(&self, id: &str) -> Lookup {
        match self.ids.get(&normalize_id(id)).map(Vec::as_slice) {
            None | Some([]) => Lookup::NotFound,
            Some([name]) => self
                .nodes
                .get(name)
                .cloned()
                .map_or(Lookup::NotFound, Lookup::Found),
            Some(names) => {
                let mut names = names.to_vec();
                names.sort();
                Lookup::Ambiguous(names)
            }
        }
    }

    /// A node by name.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeView>> {
        self.nodes.get(name)
    }

    /// Every node.
    pub fn iter(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.values().map(|v| &**v)
    }

    /// How many nodes are known.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_kind_of_id_to_its_node() {
        let mut index = NodeIndex::default();
        index.apply(&Node::new("n1").machine_id("0123456789abcdef0123456789abcdef"));
        index.apply(&Node::new("n2").machine_id("1c09ca98-649c-4c7a-bc77-9cd04c96812e"));
        index.apply(
            &Node::new("n3")
                .machine_id("e0f3745b108f471cbd4883c6fbed8cdd")
                .annotation(ID_OVERRIDE, "custom-node-uuid"),
        );
        let name = |id: &str| match index.lookup(id) {
            Lookup::Found(v) => v.name.clone(),
            other => panic!("{id}: {other:?}"),
        };
        // The verified Zincati ids.
        assert_eq!(name("583627a932274834a8ebd99f4ed41c0d"), "n1");
        assert_eq!(name("978a225b3d7b40e9acd7ce9b62f68444"), "n2");
        assert_eq!(name("8f040e49ad9a45a8b0c617313becf153"), "n3");
        // Raw machine ids, as other clients send them, in any case, with dashes or not.
        assert_eq!(name("0123456789ABCDEF0123456789ABCDEF"), "n1");
        assert_eq!(name("1c09ca98649c4c7abc779cd04c96812e"), "n2");
        // The override.
        assert_eq!(name("custom-node-uuid"), "n3");
        // Never a substring match.
        assert_eq!(index.lookup("583627a9"), Lookup::NotFound);
    }

    #[test]
    fn updates_and_removals_keep_the_index_exact() {
        let mut index = NodeIndex::default();
        index.apply(&Node::new("n1").annotation(ID_OVERRIDE, "old"));
        index.apply(&Node::new("n1").annotation(ID_OVERRIDE, "new"));
        assert_eq!(index.lookup("old"), Lookup::NotFound);
        assert!(matches!(index.lookup("new"), Lookup::Found(v) if v.name == "n1"));
        index.remove("n1");
        assert_eq!(index.lookup("new"), Lookup::NotFound);
        assert!(index.is_empty());
    }

    #[test]
    fn cloned_machine_ids_are_ambiguous_not_guessed() {
        let mut index = NodeIndex::default();
        for n in ["b", "a"] {
            index.apply(&Node::new(n).machine_id("0123456789abcdef0123456789abcdef"));
        }
        assert_eq!(
            index.lookup("583627a932274834a8ebd99f4ed41c0d"),
            Lookup::Ambiguous(vec!["a".into(), "b".into()])
        );
    }
}
