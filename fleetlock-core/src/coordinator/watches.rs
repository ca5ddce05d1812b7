//! The watches that feed the caches, and what a change in them sets off: a drain whose grant
//! moved on is stopped, and the maintenance looks sooner at what may have changed.

use cluster_api::{Lease, Node, WatchCache, feed};

use super::Inner;
use crate::group::{self, GroupState};
use crate::nodes::STATE_ANNOTATION;

impl Inner {
    pub(super) async fn watch_nodes(&self) {
        feed(
            "node",
            || self.api.watch_nodes(),
            self as &dyn WatchCache<Node>,
            self.caches.nodes_health(),
        )
        .await;
    }

    pub(super) async fn watch_leases(&self) {
        let selector = group::lease_selector();
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        feed(
            "group lock",
            open,
            self as &dyn WatchCache<Lease>,
            self.caches.leases_health(),
        )
        .await;
    }
}

/// The node index takes lists in pieces: at 100,000 nodes, holding a list whole while the
/// index is built from it would double the memory a sync needs.
impl WatchCache<Node> for Inner {
    fn reset(&self, rest: Vec<Node>) {
        self.caches.reset_nodes(rest);
        self.poke.notify_one();
    }

    fn takes_lists_in_pieces(&self) -> bool {
        true
    }

    fn listed(&self, node: Node) {
        self.caches.list_node(node);
    }

    fn broken(&self) {
        self.caches.abandon_node_list();
    }

    fn apply(&self, node: Node) {
        // A recovering node that changes (Ready again, say) may have healed: look now rather
        // than at the next maintenance pass.
        let recovering = node
            .annotations
            .get(STATE_ANNOTATION)
            .is_some_and(|s| s == "recovering");
        self.caches.store_node(node);
        if recovering {
            self.poke.notify_one();
        }
    }

    fn delete(&self, node: Node) {
        self.caches.remove_node(&node.name);
        self.poke.notify_one();
    }
}

impl WatchCache<Lease> for Inner {
    fn reset(&self, all: Vec<Lease>) {
        self.caches.reset_groups(all.iter().filter_map(parse_lease));
        self.stop_orphaned_drains();
        self.poke.notify_one();
    }

    fn apply(&self, lease: Lease) {
        if let Some(state) = parse_lease(&lease) {
            self.store_group(state);
        }
    }

    fn delete(&self, lease: Lease) {
        if let Some(group) = lease.annotations.get(group::GROUP_ANNOTATION)
            && self.caches.remove_group(group)
        {
            self.stop_orphaned_drains();
        }
    }
}

fn parse_lease(lease: &Lease) -> Option<GroupState> {
    match GroupState::from_lease(lease) {
        Ok(state) => Some(state),
        Err(e) => {
            // Left out of the cache: the next grant reads the Lease itself and refuses.
            tracing::error!(error = %e, "unreadable group lock");
            None
        }
    }
}
