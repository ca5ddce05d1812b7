//! The caches a replica answers from: the node index and the group locks, each with the
//! health of the watch that feeds it. They own their state; the watches feed them
//! (`watches.rs`) and everything else reads through the methods here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{CacheHealth, Node, Store};
use parking_lot::{RwLock, RwLockReadGuard};

use super::grants::{GrantNow, Whose};
use crate::group::{GroupState, Holder};
use crate::nodes::{Lookup, NodeIndex, NodeView};
use crate::protocol::{Kind, Refusal};

pub(super) struct Caches {
    nodes: RwLock<NodeIndex>,
    groups: Store<String, GroupState>,
    nodes_health: CacheHealth,
    leases_health: CacheHealth,
    /// How long a watch may fail before its cache stops counting as ready.
    grace: Duration,
}

// === impl Caches: readiness ===

impl Caches {
    pub(super) fn new(group_label: String, grace: Duration) -> Self {
        Caches {
            nodes: RwLock::new(NodeIndex::new(group_label)),
            groups: Store::new(),
            nodes_health: CacheHealth::new("node"),
            leases_health: CacheHealth::new("group lock"),
            grace,
        }
    }

    pub(super) fn nodes_health(&self) -> &CacheHealth {
        &self.nodes_health
    }

    pub(super) fn leases_health(&self) -> &CacheHealth {
        &self.leases_health
    }

    /// Why the caches cannot answer requests, if they cannot.
    pub(super) fn problem(&self) -> Option<String> {
        self.nodes_health
            .problem(self.grace)
            .or_else(|| self.leases_health.problem(self.grace))
    }

    pub(super) fn is_ready(&self) -> bool {
        self.nodes_health.is_ready(self.grace) && self.leases_health.is_ready(self.grace)
    }

    pub(super) async fn wait_synced(&self) {
        self.nodes_health.wait_synced().await;
        self.leases_health.wait_synced().await;
    }

    /// Whether the node watch works, so that a Node it lacks is really gone.
    pub(super) fn nodes_current(&self) -> bool {
        self.nodes_health.is_healthy()
    }

    /// Whether the lock watch works, so that what the lock cache shows may be answered from.
    pub(super) fn locks_current(&self) -> bool {
        self.leases_health.is_healthy()
    }
}

// === impl Caches: nodes ===

impl Caches {
    pub(super) fn lookup(&self, id: &str) -> Lookup {
        self.nodes.read().lookup(id)
    }

    pub(super) fn node(&self, name: &str) -> Option<Arc<NodeView>> {
        self.nodes.read().get(name).cloned()
    }

    /// Every node, under one read.
    pub(super) fn nodes(&self) -> RwLockReadGuard<'_, NodeIndex> {
        self.nodes.read()
    }

    /// Our state annotation on a node, as last seen.
    pub(super) fn node_state(&self, node: &str) -> Option<String> {
        self.nodes.read().get(node).and_then(|v| v.state.clone())
    }

    pub(super) fn node_uid(&self, node: &str) -> String {
        self.nodes
            .read()
            .get(node)
            .map(|v| v.uid.clone())
            .unwrap_or_default()
    }

    pub(super) fn store_node(&self, node: Node) {
        self.nodes.write().apply(node);
    }

    pub(super) fn list_node(&self, node: Node) {
        self.nodes.write().list(node);
    }

    pub(super) fn reset_nodes(&self, rest: Vec<Node>) {
        self.nodes.write().reset(rest);
    }

    pub(super) fn abandon_node_list(&self) {
        self.nodes.write().abandon_list();
    }

    pub(super) fn remove_node(&self, name: &str) {
        self.nodes.write().remove(name);
    }

    /// The Node a FleetLock id names, or the refusal that says why there is none.
    pub(super) fn node_for(&self, id: &str) -> Result<Arc<NodeView>, Refusal> {
        match self.lookup(id) {
            Lookup::Found(view) => Ok(view),
            // A broken node cache may just not know a new Node yet.
            _ if !self.nodes_health.is_healthy() => Err(Refusal::new(
                Kind::ClusterUnavailable,
                format!(
                    "cannot tell which Node has id {id}: the node watch is not working; try again"
                ),
            )),
            Lookup::NotFound => Err(Refusal::new(
                Kind::UnknownNode,
                format!(
                    "no Node has id {id}: it matches no node's machineID (as a Zincati id or \
                     raw) and no {} annotation",
                    crate::nodes::ID_OVERRIDE
                ),
            )),
            Lookup::Ambiguous(names) => {
                tracing::warn!(%id, nodes = ?names, "a FleetLock id matches several Nodes: their machine ids are duplicates; set {} on each", crate::nodes::ID_OVERRIDE);
                Err(Refusal::new(
                    Kind::UnknownNode,
                    format!(
                        "id {id} matches several Nodes (their machine ids are duplicates); an \
                         operator must set {} on each",
                        crate::nodes::ID_OVERRIDE
                    ),
                ))
            }
        }
    }
}

// === impl Caches: group locks ===

impl Caches {
    pub(super) fn group(&self, group: &str) -> Option<GroupState> {
        self.groups.get(group)
    }

    /// Every group state, under one read.
    pub(super) fn read_groups<R>(&self, f: impl FnOnce(&HashMap<String, GroupState>) -> R) -> R {
        self.groups.read(f)
    }

    /// Puts a group state in unless a newer one is there; whether it went in.
    pub(super) fn store_group(&self, state: GroupState) -> bool {
        self.groups.insert(state.group.clone(), state)
    }

    pub(super) fn reset_groups(&self, states: impl IntoIterator<Item = GroupState>) {
        self.groups
            .reset(states.into_iter().map(|s| (s.group.clone(), s)));
    }

    /// Whether a group was there to remove.
    pub(super) fn remove_group(&self, group: &str) -> bool {
        self.groups.remove(group)
    }

    /// Whether `node` holds a slot in `group`, as the lock cache has it.
    pub(super) fn holds_slot(&self, group: &str, node: &str) -> bool {
        self.groups.read(|groups| {
            groups
                .get(group)
                .is_some_and(|g| g.holder_of(node).is_some())
        })
    }

    /// The groups in which `whose` holds a slot.
    pub(super) fn holdings(&self, whose: Whose<'_>) -> Vec<String> {
        self.groups.read(|groups| {
            groups
                .values()
                .filter(|g| whose.find(g).is_some())
                .map(|g| g.group.clone())
                .collect()
        })
    }

    /// The slot `node` holds in any group: the group and the grant.
    pub(super) fn slot_of(&self, node: &str) -> Option<(String, Holder)> {
        self.groups.read(|groups| {
            groups
                .values()
                .find_map(|g| Some((g.group.clone(), g.holder_of(node)?.clone())))
        })
    }

    /// The nodes that hold a slot in any group.
    pub(super) fn holder_nodes(&self) -> HashSet<String> {
        self.groups.read(|groups| {
            groups
                .values()
                .flat_map(|g| g.holders.iter().map(|h| h.node.clone()))
                .collect()
        })
    }

    /// Where each of `grants` (group and grant) stands, under one read.
    pub(super) fn grants_now(&self, grants: Vec<(String, Holder)>) -> Vec<(Holder, GrantNow)> {
        self.groups.read(|groups| {
            grants
                .into_iter()
                .map(|(group, grant)| {
                    let now = groups
                        .get(&group)
                        .map_or(GrantNow::Released, |g| GrantNow::of(g, &grant));
                    (grant, now)
                })
                .collect()
        })
    }
}
