//! The node index: which Node a client id names, kept current from the node watch.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use cluster_api::Node;

use crate::id::{hex16, normalize_id, parse_machine_id, zincati_id_bytes};

/// Annotation (or label) an operator sets on a Node whose Zincati config overrides its id
/// (`identity.node_uuid`), or to map any other FleetLock client.
pub const ID_OVERRIDE: &str = "restart-manager.io/fleetlock-id";
/// Annotation listing more addresses or ranges (comma-separated) a node's FleetLock requests
/// may come from, for network plugins whose tunnel address lies outside the node's pod range
/// (Calico's `projectcalico.org/IPv4IPIPTunnelAddr`, for one).
pub const CALLER_ADDRESSES: &str = "restart-manager.io/fleetlock-addresses";
/// Annotation saying where the node is in its reboot: `ready`, `draining`, `rebooting`,
/// `back`, `recovering`.
pub const STATE_ANNOTATION: &str = "restart-manager.io/reboot-state";
/// Annotation set (with the cordon, in one write) when restart-manager cordoned the node, so
/// that only its own cordon is ever undone.
pub const CORDONED_ANNOTATION: &str = "restart-manager.io/cordoned";
/// Annotation naming the grant our cordon is for (when its slot was granted, as the group
/// Lease has it). Releasing a grant undoes only its own cordon: a later grant of the same node,
/// whose drain found the earlier grant's cordon still there, takes it over in one write, so
/// that the earlier release's uncordon, if late, leaves it alone.
pub const CORDONED_FOR_ANNOTATION: &str = "restart-manager.io/cordoned-for";
/// Annotation with the node's bootID when its reboot was approved.
pub const APPROVED_BOOT_ID_ANNOTATION: &str = "restart-manager.io/approved-boot-id";
/// Annotation with the time of the last state change.
pub const STATE_SINCE_ANNOTATION: &str = "restart-manager.io/reboot-state-since";
/// Annotation an operator sets on a Node that must not reboot for now; its value says why.
/// Its `pre-reboot` requests are refused (`node_opted_out`) until it is removed.
pub const OPT_OUT_ANNOTATION: &str = "restart-manager.io/no-reboot";

/// What the coordinator keeps of a Node: a few hundred bytes instead of the API's tens of
/// kilobytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// `metadata.name`, the key the index keeps it under and what every id maps to.
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
    /// Why an operator keeps it from rebooting ([`OPT_OUT_ANNOTATION`]); `None`: it may.
    pub opted_out: Option<Box<str>>,
    /// Where its own traffic may come from: its addresses, its pod ranges (the gateway or
    /// tunnel address of many network plugins), and [`CALLER_ADDRESSES`].
    pub networks: Vec<ipnet::IpNet>,
    /// The ids this node answers to.
    ids: Box<[Id]>,
}

/// An id in the form ids are compared in ([`normalize_id`]): 32 hex digits (every machine id
/// and Zincati id) packed into a number, anything else (an operator's override) as text.
/// A 100,000-node index holds two or three per node, so the packing is worth it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Id {
    /// Bytes rather than a `u128`, whose alignment would make every key 32 bytes, not 24.
    Hex([u8; 16]),
    Text(Box<str>),
}

impl Id {
    fn parse(id: &str) -> Id {
        // The usual case, a Zincati id as sent: no copy to normalise first.
        if let Some(bytes) = hex16(id.as_bytes()) {
            return Id::Hex(bytes);
        }
        let id = normalize_id(id);
        match hex16(id.as_bytes()) {
            Some(bytes) => Id::Hex(bytes),
            None => Id::Text(id.into_boxed_str()),
        }
    }
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

/// Nodes by name, and by every id that maps to them.
#[derive(Debug, Default)]
pub struct NodeIndex {
    nodes: HashSet<ByName>,
    ids: HashMap<Id, Owners, foldhash::fast::RandomState>,
    /// The label naming a node's reboot group (none: not read).
    group_label: String,
    /// A full list in progress.
    listing: Option<Listing>,
}

/// What a list in progress has brought so far.
#[derive(Debug)]
enum Listing {
    /// The index was empty when it began: the list can delete nothing, so nothing is noted.
    First,
    /// The names listed so far: at the end, every other node is gone.
    Relist(HashSet<Box<str>>),
}

// === impl NodeView ===

impl NodeView {
    /// Keeps what the coordinator needs of a Node, and computes the ids it answers to: the
    /// Zincati id derived from its machineID, the machineID itself, and an explicit override.
    /// `group_label` names the label that carries its reboot group (empty: none).
    pub fn of(mut node: Node, group_label: &str) -> Self {
        let mut ids = Vec::with_capacity(3);
        if let Ok(raw) = parse_machine_id(&node.machine_id) {
            ids.push(Id::Hex(raw));
            if let Ok(id) = zincati_id_bytes(&node.machine_id) {
                ids.push(Id::Hex(id));
            }
        } else if !node.machine_id.is_empty() {
            ids.push(Id::parse(&node.machine_id));
        }
        if let Some(id) = node
            .annotations
            .get(ID_OVERRIDE)
            .or_else(|| node.labels.get(ID_OVERRIDE))
        {
            ids.push(Id::parse(id));
        }
        ids.sort();
        ids.dedup();
        let networks = networks(&node);
        let group = (!group_label.is_empty())
            .then(|| node.labels.remove(group_label))
            .flatten();
        let annotations = &mut node.annotations;
        NodeView {
            name: node.name,
            uid: node.uid,
            boot_id: node.boot_id,
            ready: node.ready,
            unschedulable: node.unschedulable,
            cordoned_by_us: annotations
                .get(CORDONED_ANNOTATION)
                .is_some_and(|v| v == "true"),
            state: annotations.remove(STATE_ANNOTATION),
            opted_out: annotations
                .remove(OPT_OUT_ANNOTATION)
                .map(|why| why.trim().to_string().into_boxed_str()),
            state_since: annotations
                .get(STATE_SINCE_ANNOTATION)
                .and_then(|t| t.parse().ok()),
            group,
            networks,
            ids: ids.into_boxed_slice(),
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

    /// One node of a full list still arriving; [`reset`](Self::reset) ends the list. Each
    /// node is indexed as it comes, so a large list is never held whole, and until the list
    /// ends the nodes it has not brought yet stay as they were.
    pub fn list(&mut self, node: Node) {
        if let Listing::Relist(seen) = self.listing() {
            seen.insert(node.name.as_str().into());
        }
        self.apply(node);
    }

    /// Ends a full list (after a watch restart) with its last nodes, `rest` (the whole list
    /// if it was not given in pieces with [`list`](Self::list)): every node the list did not
    /// bring is removed. Takes the nodes by value, so each is freed once its view is built.
    pub fn reset(&mut self, rest: Vec<Node>) {
        if matches!(self.listing(), Listing::First) {
            // Sized once: a growing table keeps its old copy while it rehashes.
            self.nodes.reserve(rest.len());
            self.ids.reserve(rest.len() * 2);
        }
        for node in rest {
            self.list(node);
        }
        if let Some(Listing::Relist(seen)) = self.listing.take() {
            let gone: Vec<Arc<NodeView>> = self
                .nodes
                .iter()
                .filter(|n| !seen.contains(n.0.name.as_str()))
                .map(|n| n.0.clone())
                .collect();
            for view in gone {
                self.remove(&view.name);
            }
        }
    }

    /// Forgets a list that broke off: the next one starts afresh.
    pub fn abandon_list(&mut self) {
        self.listing = None;
    }

    fn listing(&mut self) -> &mut Listing {
        let empty = self.nodes.is_empty();
        self.listing.get_or_insert_with(|| {
            if empty {
                Listing::First
            } else {
                Listing::Relist(HashSet::new())
            }
        })
    }

    /// Adds or updates one node.
    pub fn apply(&mut self, node: Node) {
        let view = Arc::new(NodeView::of(node, &self.group_label));
        if let Some(ByName(old)) = self.nodes.take(view.name.as_str()) {
            self.unindex(&old);
        }
        for id in &view.ids {
            match self.ids.get_mut(id) {
                None => {
                    self.ids.insert(id.clone(), Owners::One(view.clone()));
                }
                Some(owners) => owners.add(view.clone()),
            }
        }
        self.nodes.insert(ByName(view));
    }

    /// Removes one node.
    pub fn remove(&mut self, name: &str) {
        if let Some(ByName(old)) = self.nodes.take(name) {
            self.unindex(&old);
        }
    }

    fn unindex(&mut self, old: &NodeView) {
        for id in &old.ids {
            if let Some(owners) = self.ids.get_mut(id)
                && owners.drop_named(&old.name)
            {
                self.ids.remove(id);
            }
        }
    }

    /// The node a client id names.
    pub fn lookup(&self, id: &str) -> Lookup {
        match self.ids.get(&Id::parse(id)) {
            None => Lookup::NotFound,
            Some(Owners::One(view)) => Lookup::Found(view.clone()),
            Some(Owners::Many(views)) => {
                let mut names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
                names.sort();
                Lookup::Ambiguous(names)
            }
        }
    }

    /// A node by name.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeView>> {
        self.nodes.get(name).map(|n| &n.0)
    }

    /// Every node.
    pub fn iter(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.iter().map(|n| &*n.0)
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

/// A node in the index's set, found by its name.
#[derive(Debug)]
struct ByName(Arc<NodeView>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.as_str().hash(state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName {}

/// The nodes one id maps to: one, or (cloned machine ids) several.
#[derive(Debug)]
enum Owners {
    One(Arc<NodeView>),
    Many(Vec<Arc<NodeView>>),
}

impl Owners {
    fn add(&mut self, view: Arc<NodeView>) {
        match self {
            Owners::One(old) if old.name == view.name => *old = view,
            Owners::One(old) => *self = Owners::Many(vec![old.clone(), view]),
            Owners::Many(views) => match views.iter_mut().find(|v| v.name == view.name) {
                Some(old) => *old = view,
                None => views.push(view),
            },
        }
    }

    /// Drops the node named `name`; whether none is left.
    fn drop_named(&mut self, name: &str) -> bool {
        match self {
            Owners::One(old) => old.name == name,
            Owners::Many(views) => {
                views.retain(|v| v.name != name);
                match views.as_slice() {
                    [] => true,
                    [only] => {
                        *self = Owners::One(only.clone());
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
