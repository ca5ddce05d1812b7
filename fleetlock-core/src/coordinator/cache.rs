//! The node index and the group-lock cache, kept current from watches.

use std::net::IpAddr;
use std::sync::Arc;

use cluster_api::{Error, Lease, Node, WatchCache, feed};

use super::Inner;
use super::writes::Whose;
use crate::config::GroupConfig;
use crate::group::{self, GroupState, Holder, HolderPhase};
use crate::nodes::{Lookup, NodeView, STATE_ANNOTATION};
use crate::protocol::{Kind, Refusal};

/// Where one grant of a slot stands: a drain acts for the grant it was started for, and only
/// while that grant is draining. The node is not enough to tell: the same node may be
/// granted again once its slot is back, and another replica may have approved the grant, or
/// seen its node through the reboot, while this one's watch lagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GrantNow {
    /// The grant still holds its slot, in this phase.
    Held(HolderPhase),
    /// The node holds no slot in the group.
    Released,
    /// The node holds a slot from another grant.
    Replaced,
}

impl GrantNow {
    /// Where `grant` stands in `state`.
    pub(super) fn of(state: &GroupState, grant: &Holder) -> Self {
        match state.grant(grant) {
            Some(h) => GrantNow::Held(h.phase),
            None if state.holder_of(&grant.node).is_some() => GrantNow::Replaced,
            None => GrantNow::Released,
        }
    }
}

// === impl Inner: caches ===

impl Inner {
    pub(super) fn group_config(&self, group: &str) -> Result<&GroupConfig, Refusal> {
        self.config.group(group).ok_or_else(|| {
            let known: Vec<&str> = self.config.groups.keys().map(String::as_str).collect();
            Refusal::new(
                Kind::UnknownGroup,
                format!(
                    "group {group:?} is not configured (known: {}); fix the node's Zincati \
                     fleet_lock group or add the group",
                    known.join(", ")
                ),
            )
        })
    }

    pub(super) fn lookup(&self, id: &str) -> Lookup {
        self.nodes.read().lookup(id)
    }

    /// Refuses a grant that would make a Lease for yet another unknown group once
    /// `maxUnknownGroups` of them hold one (`existing`: the groups that do). Configured
    /// groups, and groups that already have a Lease, always have room.
    pub(super) fn check_room_for_group<'a>(
        &self,
        group: &str,
        existing: impl Iterator<Item = &'a String>,
    ) -> Result<(), Refusal> {
        let config = &self.config;
        if config.groups.contains_key(group) {
            return Ok(());
        }
        let mut unknown = 0usize;
        for name in existing {
            if name == group {
                return Ok(());
            }
            if !config.groups.contains_key(name) {
                unknown += 1;
            }
        }
        let cap = usize::try_from(config.max_unknown_groups).unwrap_or(usize::MAX);
        if unknown < cap {
            return Ok(());
        }
        tracing::warn!(%group, unknown, cap, "refused a slot in a new unknown group: maxUnknownGroups reached");
        Err(Refusal::new(
            Kind::TooManyGroups,
            format!(
                "group {group:?} is not configured, and the {cap} unknown groups allowed \
                 (fleetlock.maxUnknownGroups) already exist: configure it, or delete the \
                 Lease of an unused one"
            ),
        ))
    }

    /// Refuses a request that names another group than the node's own (its group label's, or
    /// `default` without one), unless the binding is off.
    pub(super) fn check_group(&self, node: &NodeView, group: &str) -> Result<(), Refusal> {
        let label = &self.config.group_label;
        if label.is_empty() {
            return Ok(());
        }
        let own = node.group.as_deref().unwrap_or("default");
        if own == group {
            return Ok(());
        }
        Err(Refusal::new(
            Kind::WrongGroup,
            format!(
                "this node is in reboot group {own:?} (its {label} label), not {group:?}: \
                 set that group in Zincati's [identity] group"
            ),
        ))
    }

    /// With `verifyCaller` on, refuses a request that did not come from the node (or whose
    /// origin is unknown). The refusal names nothing; the log says who asked from where.
    pub(super) fn check_caller(
        &self,
        node: &NodeView,
        peer: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        if !self.config.verify_caller {
            return Ok(());
        }
        if let Some(peer) = peer
            && node.sent_from(peer)
        {
            return Ok(());
        }
        tracing::warn!(
            node = %node.name,
            peer = %peer.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
            networks = ?node.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "refused a FleetLock request that did not come from the node its id belongs to"
        );
        Err(Refusal::new(
            Kind::UnverifiedCaller,
            "this request did not come from the node its id belongs to",
        ))
    }

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

    pub(super) fn cached_group(&self, group: &str) -> Option<GroupState> {
        self.groups.get(group)
    }

    /// The groups in which `whose` holds a slot, as the lock cache has it.
    pub(super) fn cached_holdings(&self, whose: Whose<'_>) -> Vec<String> {
        self.groups.read(|groups| {
            groups
                .values()
                .filter(|g| whose.find(g).is_some())
                .map(|g| g.group.clone())
                .collect()
        })
    }

    /// The slot `node` holds in any group, as the lock cache has it: the group and the grant.
    pub(super) fn cached_slot_of(&self, node: &str) -> Option<(String, Holder)> {
        self.groups.read(|groups| {
            groups
                .values()
                .find_map(|g| Some((g.group.clone(), g.holder_of(node)?.clone())))
        })
    }

    /// [`group::modify`] on this replica's cluster and clock, keeping what it wrote (or read)
    /// in the lock cache.
    pub(super) async fn modify_group<R>(
        &self,
        group: &str,
        change: impl FnMut(&mut GroupState) -> Result<R, Refusal>,
    ) -> Result<(GroupState, R), Refusal> {
        let (state, result) = group::modify(
            self.api.as_ref(),
            &self.config.namespace,
            group,
            || self.clock.now(),
            change,
        )
        .await?;
        self.store_group(state.clone());
        Ok((state, result))
    }

    /// Puts a group state into the cache unless the cache already has a newer one.
    pub(super) fn store_group(&self, state: GroupState) {
        if self.groups.insert(state.group.clone(), state) {
            self.stop_orphaned_drains();
        }
    }

    /// Where the grant `holder` was given stands in the cluster now. The lock cache answers
    /// [`GrantNow::Released`] without asking when it shows no slot for the client: it learns
    /// of grants before any drain starts, and only ever lags behind what follows them.
    pub(super) async fn grant_now(&self, group: &str, holder: &Holder) -> Result<GrantNow, Error> {
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(super::Sabotage::IgnoreRemoteReleases) {
            return Ok(GrantNow::Held(HolderPhase::Draining));
        }
        if self
            .cached_group(group)
            .is_none_or(|g| g.holder_of(&holder.node).is_none())
        {
            return Ok(GrantNow::Released);
        }
        let lease = match self
            .api
            .get_lease(&self.config.namespace, &group::lease_name(group))
            .await
        {
            Ok(lease) => lease,
            Err(Error::NotFound { .. }) => return Ok(GrantNow::Released),
            Err(e) => return Err(e),
        };
        let state = GroupState::from_lease(&lease).map_err(|e| Error::invalid(e.to_string()))?;
        let now = GrantNow::of(&state, holder);
        self.store_group(state);
        Ok(now)
    }

    /// Our state annotation on a node, as last seen.
    pub(super) fn node_state(&self, node: &str) -> Option<String> {
        self.nodes.read().get(node).and_then(|v| v.state.clone())
    }

    pub(super) fn store_node(&self, node: Node) {
        self.nodes.write().apply(node);
    }

    /// The groups in which `whose` holds a slot, as the cluster says now.
    pub(super) async fn fresh_holdings(&self, whose: Whose<'_>) -> Result<Vec<String>, Refusal> {
        let leases = self
            .api
            .list_leases(&self.config.namespace, &group::lease_selector())
            .await
            .map_err(|e| Refusal::from_cluster("listing the group locks", &e))?;
        let mut groups = Vec::new();
        for lease in &leases {
            let state = GroupState::from_lease(lease)
                .map_err(|e| Refusal::new(Kind::Internal, e.to_string()))?;
            if whose.find(&state).is_some() {
                groups.push(state.group.clone());
            }
            self.store_group(state);
        }
        Ok(groups)
    }

    /// `whose` holder in `group`, as the cluster has it now (the group's state is cached too).
    pub(super) async fn fresh_holder(
        &self,
        group: &str,
        whose: Whose<'_>,
    ) -> Result<Option<Holder>, Refusal> {
        let lease = match self
            .api
            .get_lease(&self.config.namespace, &group::lease_name(group))
            .await
        {
            Ok(lease) => lease,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Refusal::from_cluster("reading the group lock", &e)),
        };
        let state = GroupState::from_lease(&lease)
            .map_err(|e| Refusal::new(Kind::Internal, e.to_string()))?;
        let holder = whose.find(&state).cloned();
        self.store_group(state);
        Ok(holder)
    }

    pub(super) async fn watch_nodes(&self) {
        feed(
            "node",
            || self.api.watch_nodes(),
            self as &dyn WatchCache<Node>,
            &self.nodes_health,
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
            &self.leases_health,
        )
        .await;
    }
}

/// The node index takes lists in pieces: at 100,000 nodes, holding a list whole while the
/// index is built from it would double the memory a sync needs.
impl WatchCache<Node> for Inner {
    fn reset(&self, rest: Vec<Node>) {
        self.nodes.write().reset(rest);
        self.poke.notify_one();
    }

    fn takes_lists_in_pieces(&self) -> bool {
        true
    }

    fn listed(&self, node: Node) {
        self.nodes.write().list(node);
    }

    fn broken(&self) {
        self.nodes.write().abandon_list();
    }

    fn apply(&self, node: Node) {
        // A recovering node that changes (Ready again, say) may have healed: look now rather
        // than at the next maintenance pass.
        let recovering = node
            .annotations
            .get(STATE_ANNOTATION)
            .is_some_and(|s| s == "recovering");
        self.store_node(node);
        if recovering {
            self.poke.notify_one();
        }
    }

    fn delete(&self, node: Node) {
        self.nodes.write().remove(&node.name);
        self.poke.notify_one();
    }
}

impl WatchCache<Lease> for Inner {
    fn reset(&self, all: Vec<Lease>) {
        let states = all
            .iter()
            .filter_map(parse_lease)
            .map(|s| (s.group.clone(), s));
        self.groups.reset(states);
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
            && self.groups.remove(group)
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
