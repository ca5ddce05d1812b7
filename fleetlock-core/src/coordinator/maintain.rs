//! Looking after holders, and the fleet snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use cluster_api::{EventType, Timestamp};
use jiff::SignedDuration;

use super::Inner;
use super::writes::Whose;
use crate::group::{GroupState, Holder, HolderPhase};
use crate::nodes::NodeView;
use crate::notices::RebootTransition;
use crate::snapshot::{FleetSnapshot, GroupSnapshot, HolderSnapshot, NodeSnapshot};
use crate::window::in_any_window;

// === impl Inner: maintenance and snapshots ===

impl Inner {
    pub(super) async fn maintain(self: &Arc<Self>) {
        let groups: Vec<GroupState> = self.groups.read(|g| g.values().cloned().collect());
        let now = self.clock.now();
        // Only a working node watch can say a Node is gone.
        let nodes_current = self.nodes_health.is_healthy();
        for state in groups {
            for holder in &state.holders {
                let view = self.nodes.read().get(&holder.node).cloned();
                let Some(view) = view else {
                    if nodes_current {
                        tracing::warn!(node = %holder.node, group = %state.group, "holder's Node was deleted; releasing its slot");
                        if let Err(e) = self
                            .release(&state.group, holder, "its Node was deleted")
                            .await
                        {
                            tracing::warn!(error = %e, "could not release the slot of a deleted node");
                        }
                    }
                    continue;
                };
                if state
                    .holder_of(&holder.node)
                    .is_some_and(|h| !h.same_grant(holder))
                {
                    // Another entry of the same node, left by a version that keyed holders by
                    // the id as spelt: the node's oldest answers for it, and its steady-state
                    // gives them all back. Looking after both would run two drains of one node.
                    continue;
                }
                match holder.phase {
                    HolderPhase::Draining => {
                        // Resume a drain this replica is not running (after a restart, or one
                        // another replica started).
                        self.ensure_drain(&state.group, holder);
                    }
                    HolderPhase::Recovering => self.heal(&state.group, holder).await,
                    HolderPhase::Approved => {
                        let rebooted = holder.boot_id.as_ref().is_some_and(|b| b != &view.boot_id);
                        if rebooted && view.ready && view.state.as_deref() == Some("back") {
                            self.without_steady_state(&state.group, holder, &view, now)
                                .await;
                        }
                        if rebooted && view.ready && view.state.as_deref() != Some("back") {
                            self.annotate(&holder.node, "back", &[]).await;
                            let message = format!(
                                "back with bootID {}; waiting for its steady-state",
                                view.boot_id
                            );
                            self.announce_seen(
                                RebootTransition::Back,
                                &state.group,
                                holder,
                                &holder.node,
                                &message,
                            )
                            .await;
                            self.event(
                                &holder.node,
                                EventType::Normal,
                                "NodeRebooted",
                                "Reboot",
                                message,
                            )
                            .await;
                        }
                    }
                }
                let held = now.duration_since(holder.since);
                let stuck_after = SignedDuration::try_from(self.config.stuck.after)
                    .unwrap_or(SignedDuration::MAX);
                if held >= stuck_after {
                    let first = self.reported_stuck.lock().insert(holder.node.clone());
                    if first {
                        let message = format!(
                            "has held a reboot slot of group {} for {}s ({})",
                            state.group,
                            held.as_secs(),
                            if self.config.stuck.release {
                                "releasing it"
                            } else {
                                "stuck.release is off, so it keeps it"
                            }
                        );
                        tracing::warn!(node = %holder.node, "{message}");
                        self.announce_seen(
                            RebootTransition::Stuck,
                            &state.group,
                            holder,
                            &holder.node,
                            &message,
                        )
                        .await;
                        self.event(
                            &holder.node,
                            EventType::Warning,
                            "RebootSlotStuck",
                            "Report",
                            message,
                        )
                        .await;
                    }
                    if self.config.stuck.release
                        && let Err(e) = self
                            .release(&state.group, holder, "held too long (stuck.release)")
                            .await
                    {
                        tracing::warn!(error = %e, "could not release a stuck slot");
                    }
                }
            }
        }
    }

    /// An approved `holder` whose node is back from its reboot (`view`, marked `back`): once
    /// it has been marked so for `steadyStateWait` (by the marking replica's clock against
    /// this one's, so that a replica's restart or a new leader does not start the wait over)
    /// without its steady-state reaching the slot, it is taken as returned, as its
    /// steady-state would have.
    async fn without_steady_state(
        self: &Arc<Self>,
        group: &str,
        holder: &Holder,
        view: &NodeView,
        now: Timestamp,
    ) {
        let wait = self
            .config
            .group(group)
            .unwrap_or(&self.config.group_defaults)
            .steady_state_wait;
        let Some(back_at) = view.state_since else {
            return;
        };
        let waited = now.duration_since(back_at);
        if wait.is_zero() || waited.is_negative() || waited.unsigned_abs() < wait {
            return;
        }
        let boot_id = &view.boot_id;
        let message = format!(
            "back with bootID {boot_id} for {}s without a steady-state that reached its slot \
             (lost, or answered by a replica that did not see the slot yet): taken as returned",
            wait.as_secs()
        );
        tracing::warn!(node = %holder.node, %group, "{message}");
        self.event(
            &holder.node,
            EventType::Warning,
            "SteadyStateMissing",
            "Recover",
            message,
        )
        .await;
        if let Err(e) = self.steady(group, Whose::Grant(holder)).await {
            tracing::warn!(node = %holder.node, error = %e, "could not take the node as returned; will retry");
        }
    }

    /// Every group, configured ones and any others that hold a Lease, by name.
    pub(super) fn group_snapshots(&self, now: Timestamp) -> Vec<GroupSnapshot> {
        let groups = self.groups.read(Clone::clone);
        let nodes = self.nodes.read();
        let mut names: Vec<String> = self.config.groups.keys().cloned().collect();
        names.extend(
            groups
                .keys()
                .filter(|g| !self.config.groups.contains_key(*g))
                .cloned(),
        );
        names.sort();
        names
            .iter()
            .map(|name| {
                let config = self
                    .config
                    .group(name)
                    .unwrap_or(&self.config.group_defaults);
                let state = groups
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| GroupState::empty(name));
                let holders = state
                    .holders
                    .iter()
                    .map(|h| {
                        let held = now.duration_since(h.since);
                        let view = nodes.get(&h.node);
                        HolderSnapshot {
                            id: h.id.clone(),
                            node: h.node.clone(),
                            phase: h.phase,
                            since: h.since,
                            held_seconds: held.as_secs(),
                            approved_at: h.approved_at,
                            rebooted: h.boot_id.as_ref().zip(view).map(|(b, v)| b != &v.boot_id),
                            stuck: held.as_secs()
                                >= i64::try_from(self.config.stuck.after.as_secs())
                                    .unwrap_or(i64::MAX),
                            drain: self.drain_status(h),
                            returned_at: h.returned_at,
                            waiting_for: h.waiting_for.clone(),
                            evicts: h.evicts.iter().map(ToString::to_string).collect(),
                        }
                    })
                    .collect();
                GroupSnapshot {
                    name: name.clone(),
                    configured: self.config.groups.contains_key(name),
                    slots: config.slots,
                    paused: config.paused || state.paused,
                    windows: config.windows.iter().map(|w| w.to_string()).collect(),
                    in_window: in_any_window(&config.windows, now),
                    min_gap_seconds: config.min_gap.as_secs(),
                    last_approval: state.last_approval,
                    holders,
                    closed_gates: self.closed_gates(name, &config.health_gates),
                }
            })
            .collect()
    }

    pub(super) fn snapshot(&self) -> FleetSnapshot {
        let now = self.clock.now();
        let groups = self.group_snapshots(now);
        let holding: HashMap<&str, &str> = groups
            .iter()
            .flat_map(|g| g.holders.iter().map(|h| (h.node.as_str(), g.name.as_str())))
            .collect();
        let nodes = self.nodes.read();
        let mut node_snapshots: Vec<NodeSnapshot> = nodes
            .iter()
            .map(|v| NodeSnapshot {
                name: v.name.clone(),
                state: v.state.clone().unwrap_or_else(|| "ready".into()),
                state_since: v.state_since,
                ready: v.ready,
                unschedulable: v.unschedulable,
                cordoned_by_us: v.cordoned_by_us,
                holds_slot_in: holding.get(v.name.as_str()).map(|g| g.to_string()),
                boot_id: v.boot_id.clone(),
                opted_out: v.opted_out.as_deref().map(str::to_string),
            })
            .collect();
        node_snapshots.sort_by(|a, b| a.name.cmp(&b.name));
        FleetSnapshot {
            ready: self.nodes_health.is_ready(self.cache_grace)
                && self.leases_health.is_ready(self.cache_grace),
            time: now,
            groups,
            nodes: node_snapshots,
        }
    }
}
