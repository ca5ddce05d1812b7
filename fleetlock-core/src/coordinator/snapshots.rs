//! The fleet's reboot state as data ([`crate::snapshot`]), from the caches and the drains.

use std::collections::HashMap;

use cluster_api::Timestamp;

use super::Inner;
use crate::config::GroupConfig;
use crate::group::GroupState;
use crate::snapshot::{FleetSnapshot, GroupSnapshot, HolderSnapshot, NodeSnapshot, RateSnapshot};
use crate::window::in_any_window;

impl Inner {
    /// Every group, configured ones and any others that hold a Lease, by name.
    pub(super) fn group_snapshots(&self, now: Timestamp) -> Vec<GroupSnapshot> {
        let groups = self.caches.read_groups(Clone::clone);
        let mut names: Vec<String> = self.config.groups.keys().cloned().collect();
        names.extend(
            groups
                .keys()
                .filter(|g| !self.config.groups.contains_key(*g))
                .cloned(),
        );
        names.sort();
        // The gates read the node index themselves: asked while this holds it, a read lock
        // taken twice would deadlock against a waiting writer (the node watch).
        let mut closed: Vec<Vec<String>> = names
            .iter()
            .map(|name| {
                let config = self
                    .config
                    .group(name)
                    .unwrap_or(&self.config.group_defaults);
                self.gates.closed(name, &config.health_gates, &self.caches)
            })
            .collect();
        let nodes = self.caches.nodes();
        names
            .iter()
            .zip(closed.iter_mut())
            .map(|(name, closed_gates)| {
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
                            drain: self.drains.status(h),
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
                    rate: rate_snapshot(config, &state, now),
                    holders,
                    closed_gates: std::mem::take(closed_gates),
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
        let nodes = self.caches.nodes();
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
            ready: self.caches.is_ready(),
            time: now,
            groups,
            nodes: node_snapshots,
        }
    }
}

/// Where `state` stands against the group's rate at `now`, if it has one.
fn rate_snapshot(config: &GroupConfig, state: &GroupState, now: Timestamp) -> Option<RateSnapshot> {
    let rate = config.rate?;
    let at = rate.at(&state.recent_grants, now);
    Some(RateSnapshot {
        reboots: rate.reboots,
        per_seconds: rate.per.as_secs(),
        granted: at.granted,
        next_grant_at: at.next_at,
    })
}
