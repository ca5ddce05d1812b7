//! Looking after holders: resumed drains, reboots seen, recoveries, stuck holders, holders
//! whose Node is gone. One pass over every holder, on a timer and whenever something changes.

use std::sync::Arc;

use cluster_api::{EventType, Timestamp};
use jiff::SignedDuration;

use super::Inner;
use super::grants::Whose;
use crate::group::{GroupState, Holder, HolderPhase};
use crate::nodes::NodeView;
use crate::notices::RebootTransition;

impl Inner {
    pub(super) async fn maintain(self: &Arc<Self>) {
        let groups: Vec<GroupState> = self.caches.read_groups(|g| g.values().cloned().collect());
        let now = self.clock.now();
        // Only a working node watch can say a Node is gone.
        let nodes_current = self.caches.nodes_current();
        for state in groups {
            for holder in &state.holders {
                let Some(view) = self.caches.node(&holder.node) else {
                    if nodes_current {
                        self.release_deleted(&state.group, holder).await;
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
                self.look_after(&state.group, holder, &view, now).await;
                self.check_stuck(&state.group, holder, now).await;
            }
        }
    }

    async fn release_deleted(&self, group: &str, holder: &Holder) {
        tracing::warn!(node = %holder.node, %group, "holder's Node was deleted; releasing its slot");
        if let Err(e) = self.release(group, holder, "its Node was deleted").await {
            tracing::warn!(error = %e, "could not release the slot of a deleted node");
        }
    }

    /// Moves a holder on by its phase: a drain resumed, a heal looked at, a reboot noticed.
    async fn look_after(
        self: &Arc<Self>,
        group: &str,
        holder: &Holder,
        view: &NodeView,
        now: Timestamp,
    ) {
        match holder.phase {
            HolderPhase::Draining => {
                // Resume a drain this replica is not running (after a restart, or one
                // another replica started).
                self.ensure_drain(group, holder);
            }
            HolderPhase::Recovering => self.heal(group, holder).await,
            HolderPhase::Approved => {
                let rebooted = holder.boot_id.as_ref().is_some_and(|b| b != &view.boot_id);
                if rebooted && view.ready && view.state.as_deref() == Some("back") {
                    self.without_steady_state(group, holder, view, now).await;
                }
                if rebooted && view.ready && view.state.as_deref() != Some("back") {
                    self.mark_back(group, holder, view).await;
                }
            }
        }
    }

    /// An approved holder's node is back from its reboot: marked `back`, and said so.
    async fn mark_back(&self, group: &str, holder: &Holder, view: &NodeView) {
        self.annotate(&holder.node, "back", &[]).await;
        let message = format!(
            "back with bootID {}; waiting for its steady-state",
            view.boot_id
        );
        self.announce_seen(
            RebootTransition::Back,
            group,
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

    /// Reports a holder that has held its slot longer than `stuck.after` (once), and releases
    /// it with `stuck.release`.
    async fn check_stuck(&self, group: &str, holder: &Holder, now: Timestamp) {
        let held = now.duration_since(holder.since);
        let stuck_after =
            SignedDuration::try_from(self.config.stuck.after).unwrap_or(SignedDuration::MAX);
        if held < stuck_after {
            return;
        }
        if self.reports.first_stuck(&holder.node) {
            let message = format!(
                "has held a reboot slot of group {group} for {}s ({})",
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
                group,
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
                .release(group, holder, "held too long (stuck.release)")
                .await
        {
            tracing::warn!(error = %e, "could not release a stuck slot");
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
}
