//! Changes to a grant after it was made, each in one compare-and-swap on the group Lease that
//! judges the grant's phase as it writes: approval once drained, and giving the slot back
//! (a release, a drain timeout, a heal), with what follows it on the node.

use cluster_api::{EventType, Timestamp};

use super::Inner;
use super::grants::{GrantNow, Taken, Whose};
use crate::group::{Holder, HolderPhase};
use crate::nodes::APPROVED_BOOT_ID_ANNOTATION;
use crate::protocol::{Kind, Refusal};

impl Inner {
    /// Gives a grant's slot back (that grant's only: not a later grant of the same client),
    /// stops its drain and tidies its node. An error after the slot was given back means the
    /// node could not be tidied (yet).
    pub(super) async fn release(
        &self,
        group: &str,
        grant: &Holder,
        why: &str,
    ) -> Result<(), Refusal> {
        self.give_back(group, Whose::Grant(grant), why, None, false)
            .await
    }

    /// [`release`](Self::release) of `whose` slot; with `healed_at`, only a recovering holder
    /// is released, and the group's last return is set to that time (its `minGap` counts from
    /// there). With `healed_at` or `returned`, the release is announced as the node's return.
    pub(super) async fn give_back(
        &self,
        group: &str,
        whose: Whose<'_>,
        why: &str,
        healed_at: Option<Timestamp>,
        returned: bool,
    ) -> Result<(), Refusal> {
        let only = healed_at.map(|_| HolderPhase::Recovering);
        match self.take_slot(group, whose, only, healed_at).await? {
            Ok((holder, others)) => {
                self.after_release(group, &holder, &others, why, healed_at.is_some(), returned)
                    .await
            }
            Err(_) => Ok(()),
        }
    }

    /// Gives back the slot of `grant` because its drain overran `drain.timeout`, only if the
    /// grant is still draining, judged in the same compare-and-swap that removes it: a grant
    /// another replica approved meanwhile (its node may be rebooting right now), saw through
    /// its reboot, or gave back and granted again is not this drain's to time out. The holder
    /// removed, or where the grant stands instead. The caller tidies up with
    /// [`after_release`](Self::after_release).
    pub(super) async fn time_out(
        &self,
        group: &str,
        grant: &Holder,
    ) -> Result<Result<Holder, GrantNow>, Refusal> {
        #[cfg(feature = "sabotage")]
        let any_phase = self.sabotage == Some(super::Sabotage::TimeOutAnyPhase);
        #[cfg(not(feature = "sabotage"))]
        let any_phase = false;
        let only = (!any_phase).then_some(HolderPhase::Draining);
        let taken = self
            .take_slot(group, Whose::Grant(grant), only, None)
            .await?;
        Ok(taken.map(|(holder, _)| holder))
    }

    /// Removes `whose` holder from the group in one compare-and-swap, if it is in phase `only`
    /// (any phase without). With `healed_at`, the group's last return and last healed grant
    /// are set too. The holder
    /// removed, or where the grant stands instead.
    async fn take_slot(
        &self,
        group: &str,
        whose: Whose<'_>,
        only: Option<HolderPhase>,
        healed_at: Option<Timestamp>,
    ) -> Result<Result<Taken, GrantNow>, Refusal> {
        let (_, taken) = self
            .modify_group(group, |state| {
                let now = match whose {
                    Whose::Grant(grant) => GrantNow::of(state, grant),
                    Whose::Node(_) | Whose::Client(_) => whose
                        .find(state)
                        .map_or(GrantNow::Released, |h| GrantNow::Held(h.phase)),
                };
                let holder = match whose.find(state) {
                    Some(h) if only.is_none_or(|phase| h.phase == phase) => h.clone(),
                    _ => return Ok(Err(now)),
                };
                if healed_at.is_some() {
                    // A replica whose clock runs behind must not shorten the gap after the
                    // last heal; and the write says whose heal it is.
                    state.last_return = state.last_return.max(healed_at);
                    state.last_healed = Some(holder.grant());
                }
                let others = whose
                    .remove_from(state)
                    .into_iter()
                    .filter(|h| !h.same_grant(&holder))
                    .collect();
                Ok(Ok((holder, others)))
            })
            .await?;
        Ok(taken)
    }

    /// After `holder` (and `others` of its node, see [`Taken`]) was removed from `group`:
    /// stops its drain, says so (as the node's return when `healed` or `returned`), and tidies
    /// its node. An error means the node could not be tidied (yet).
    pub(super) async fn after_release(
        &self,
        group: &str,
        holder: &Holder,
        others: &[Holder],
        why: &str,
        healed: bool,
        returned: bool,
    ) -> Result<(), Refusal> {
        let id = &holder.id;
        let mut grants = Vec::with_capacity(1 + others.len());
        grants.push(holder.clone());
        grants.extend_from_slice(others);
        for grant in &grants {
            self.drains.stop(grant);
        }
        if !others.is_empty() {
            tracing::warn!(node = %holder.node, %group, entries = grants.len(), "the node held several entries of the group's slots (written by an older version); all given back");
        }
        self.reports.forget(&holder.node);
        tracing::info!(node = %holder.node, %group, %id, why, "reboot slot released");
        if healed || returned {
            self.announce(
                crate::RebootTransition::Healed,
                &holder.node,
                group,
                &format!("reboot slot of group {group} released: {why}"),
            );
        }
        self.event(
            &holder.node,
            EventType::Normal,
            if healed {
                "NodeHealed"
            } else {
                "RebootSlotReleased"
            },
            "Release",
            format!("reboot slot of group {group} released: {why}"),
        )
        .await;
        // Zincati stops calling steady-state at its first 200: until the node is tidy, the
        // answer is an error, so that it asks again (and the next call finishes the job).
        self.finish_node(&holder.node, "ready", &grants)
            .await
            .map_err(|e| {
                Refusal::from_cluster("the slot was given back, but uncordoning the node", &e)
            })
    }

    /// Marks a drained grant approved, recording the bootID to recognise its reboot by. Only
    /// a grant still draining is approved: one another replica has seen through its reboot,
    /// or a later grant of the same node, would otherwise wait for a reboot that is not coming
    /// and keep its slot for good.
    pub(super) async fn approve(&self, group: &str, holder: &Holder) -> Result<(), String> {
        let node = self
            .api
            .get_node(&holder.node)
            .await
            .map_err(|e| format!("reading node {}: {e}", holder.node))?;
        let now = self.clock.now();
        let (_, newly) = self
            .modify_group(group, |state| {
                let again = state.holder_of(&holder.node).is_some();
                match state.grant_mut(holder) {
                    None if again => Err(Refusal::new(
                        Kind::Draining,
                        "the slot was given back and granted again while draining; ask again",
                    )),
                    None => Err(Refusal::new(
                        Kind::Draining,
                        "the slot was given back while draining; ask again",
                    )),
                    Some(h) if h.phase == HolderPhase::Approved => Ok(false),
                    Some(h) if h.phase == HolderPhase::Recovering => Err(Refusal::new(
                        Kind::Draining,
                        format!("{} is already back from its reboot", holder.node),
                    )),
                    Some(h) => {
                        h.phase = HolderPhase::Approved;
                        h.approved_at = Some(now);
                        h.boot_id = Some(node.boot_id.clone());
                        state.last_approval = Some(now);
                        Ok(true)
                    }
                }
            })
            .await
            .map_err(|r| r.value)?;
        if newly {
            let took = now.duration_since(holder.since);
            tracing::info!(node = %holder.node, %group, drain_seconds = took.as_secs(), "node drained; reboot approved");
            self.announce(
                crate::RebootTransition::Approved,
                &holder.node,
                group,
                &format!(
                    "node drained in {}s; reboot approved (bootID {})",
                    took.as_secs(),
                    node.boot_id
                ),
            );
            self.annotate(
                &holder.node,
                "rebooting",
                &[(APPROVED_BOOT_ID_ANNOTATION, Some(node.boot_id.clone()))],
            )
            .await;
            self.event(
                &holder.node,
                EventType::Normal,
                "RebootApproved",
                "Approve",
                format!(
                    "node drained in {}s; reboot approved (bootID {})",
                    took.as_secs(),
                    node.boot_id
                ),
            )
            .await;
        }
        Ok(())
    }
}
