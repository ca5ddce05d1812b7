//! Everything this replica writes to the cluster: Events, node annotations, cordons, and the
//! slot changes that release and approve.

use cluster_api::{Error, EventType, NodePatch, ObjectRef, Timestamp};

use super::Inner;
use super::cache::GrantNow;
use crate::group::{GroupState, Holder, HolderPhase};
use crate::id::normalize_id;
use crate::nodes::{
    APPROVED_BOOT_ID_ANNOTATION, CORDONED_ANNOTATION, CORDONED_FOR_ANNOTATION, STATE_ANNOTATION,
    STATE_SINCE_ANNOTATION,
};
use crate::protocol::{Kind, Refusal};

/// Whose slot a release gives back.
#[derive(Debug, Clone, Copy)]
pub(super) enum Whose<'a> {
    /// Whatever slot this Node holds (its steady-state says it is back), whatever id it was
    /// granted under.
    Node(&'a str),
    /// Whatever slot was granted to this client id, in any case and with or without dashes:
    /// a steady-state from a client that maps to no Node we can see (deleted, or its id
    /// now shared by several).
    Client(&'a str),
    /// This grant's slot, and not a later grant's of the same node: a drain, the
    /// maintenance or the recovery acting on what they saw of the grant.
    Grant(&'a Holder),
}

impl Whose<'_> {
    /// Whether `holder` is (one of the entries of) the slot to give back.
    pub(super) fn holds(&self, holder: &Holder) -> bool {
        match self {
            Whose::Node(node) => holder.node == *node,
            Whose::Client(id) => normalize_id(&holder.id) == normalize_id(id),
            Whose::Grant(grant) => holder.same_grant(grant),
        }
    }

    /// The entry that answers for the slot in `state`: the oldest (an older version may have
    /// left one node several).
    pub(super) fn find<'s>(&self, state: &'s GroupState) -> Option<&'s Holder> {
        state.holders.iter().find(|h| self.holds(h))
    }

    /// [`find`](Self::find), to change.
    pub(super) fn find_mut<'s>(&self, state: &'s mut GroupState) -> Option<&'s mut Holder> {
        state.holders.iter_mut().find(|h| self.holds(h))
    }

    /// Removes every entry of the slot from `state`: the one that answers for it first.
    pub(super) fn remove_from(&self, state: &mut GroupState) -> Vec<Holder> {
        let mut removed = Vec::new();
        state.holders.retain(|h| {
            let ours = self.holds(h);
            if ours {
                removed.push(h.clone());
            }
            !ours
        });
        removed
    }
}

/// A slot taken back: the grant, and any other entries of its node given back with it (left
/// by a version that keyed holders by the id as spelt).
pub(super) type Taken = (Holder, Vec<Holder>);

// === impl Inner: cluster writes ===

/// What cordoning a node for a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cordon {
    /// This call wrote the cordon, or took over an earlier grant's (ours to undo if the drain
    /// turns out to be stale).
    Wrote,
    /// The node was cordoned already (by us, or by someone whose cordon we leave alone).
    Found,
    /// The grant is no longer draining: where it stands now.
    MovedOn(GrantNow),
}

impl Inner {
    pub(super) async fn event(
        &self,
        node: &str,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let uid = self
            .nodes
            .read()
            .get(node)
            .map(|v| v.uid.clone())
            .unwrap_or_default();
        let regarding = ObjectRef::cluster("Node", node).with_uid(uid);
        self.recorder
            .record(regarding, type_, reason, action, note)
            .await;
    }

    /// Sets our state annotation (last writer wins: it only reports).
    pub(super) async fn annotate(&self, node: &str, state: &str, extra: &[(&str, Option<String>)]) {
        let mut patch = NodePatch::new()
            .annotate(STATE_ANNOTATION, state)
            .annotate(STATE_SINCE_ANNOTATION, self.clock.now().to_string());
        for (k, v) in extra {
            patch.annotations.insert((*k).to_string(), v.clone());
        }
        match self.api.patch_node(node, &patch).await {
            Ok(written) => self.store_node(written),
            Err(e) => tracing::warn!(node, state, error = %e, "could not annotate node"),
        }
    }

    /// Cordons the node for the drain of `grant` in `group`, unless someone already did,
    /// remembering in the same write that the cordon is ours. The grant is looked up afresh
    /// between reading the node and writing it: a drain started from a lagging cache must not
    /// cordon a node whose holder has moved on (its steady-state may just have uncordoned it).
    pub(super) async fn cordon(
        &self,
        node: &str,
        group: &str,
        grant: &Holder,
    ) -> Result<Cordon, Error> {
        let stamp = cordon_stamp(grant);
        loop {
            let current = self.api.get_node(node).await?;
            let ours = current
                .annotations
                .get(CORDONED_ANNOTATION)
                .is_some_and(|v| v == "true");
            // Our cordon, but an earlier grant's: that grant's release may be about to undo
            // it, so this grant takes it over (the write makes a late uncordon conflict).
            let taking_over =
                ours && current.annotations.get(CORDONED_FOR_ANNOTATION) != Some(&stamp);
            if ours && !taking_over {
                return Ok(Cordon::Found);
            }
            if current.unschedulable && !ours {
                tracing::info!(
                    node,
                    "node already cordoned by someone else; leaving that cordon alone"
                );
                return Ok(Cordon::Found);
            }
            match self.grant_now(group, grant).await? {
                GrantNow::Held(HolderPhase::Draining) => {}
                other => return Ok(Cordon::MovedOn(other)),
            }
            let patch = NodePatch::new()
                .unschedulable(true)
                .annotate(CORDONED_ANNOTATION, "true")
                .annotate(CORDONED_FOR_ANNOTATION, stamp.clone())
                .if_version(&current.resource_version);
            match self.api.patch_node(node, &patch).await {
                Ok(written) => {
                    self.store_node(written);
                    if !taking_over {
                        self.event(
                            node,
                            EventType::Normal,
                            "Cordoned",
                            "Cordon",
                            "cordoned for a coordinated reboot".into(),
                        )
                        .await;
                    }
                    return Ok(Cordon::Wrote);
                }
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Undoes our cordon (only ours) and sets our state annotation to `state` (`ready`, or
    /// `recovering` while the slot is kept). With `released`, the grants just given back: a
    /// cordon a later grant of the node has taken over is that grant's, and the node is left
    /// alone. A node that no longer exists needs nothing.
    pub(super) async fn finish_node(
        &self,
        node: &str,
        state: &str,
        released: &[Holder],
    ) -> Result<(), Error> {
        let result: Result<(), Error> = async {
            loop {
                let current = self.api.get_node(node).await?;
                let ours = current
                    .annotations
                    .get(CORDONED_ANNOTATION)
                    .is_some_and(|v| v == "true");
                // Without a grant named (a cordon from before grants were named), the cordon
                // is the released grant's.
                let later = !released.is_empty()
                    && current
                        .annotations
                        .get(CORDONED_FOR_ANNOTATION)
                        .is_some_and(|s| released.iter().all(|grant| *s != cordon_stamp(grant)));
                if ours && later {
                    tracing::info!(
                        node,
                        "the node was granted again, and its cordon is the later grant's; leaving it"
                    );
                    return Ok(());
                }
                let mut patch = NodePatch::new()
                    .annotate(STATE_ANNOTATION, state)
                    .annotate(STATE_SINCE_ANNOTATION, self.clock.now().to_string())
                    .remove_annotation(APPROVED_BOOT_ID_ANNOTATION)
                    .if_version(&current.resource_version);
                if ours {
                    patch = patch
                        .unschedulable(false)
                        .remove_annotation(CORDONED_ANNOTATION)
                        .remove_annotation(CORDONED_FOR_ANNOTATION);
                }
                match self.api.patch_node(node, &patch).await {
                    Ok(written) => {
                        self.store_node(written);
                        if ours {
                            self.event(
                                node,
                                EventType::Normal,
                                "Uncordoned",
                                "Uncordon",
                                if state == "ready" {
                                    "uncordoned after its reboot slot was released".into()
                                } else {
                                    "uncordoned; its reboot slot is kept until it has healed".into()
                                },
                            )
                            .await;
                        }
                        return Ok(());
                    }
                    Err(Error::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        .await;
        match result {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => {
                tracing::warn!(node, error = %e, "could not uncordon node");
                Err(e)
            }
        }
    }

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
            self.stop_drain(grant);
        }
        if !others.is_empty() {
            tracing::warn!(node = %holder.node, %group, entries = grants.len(), "the node held several entries of the group's slots (written by an older version); all given back");
        }
        self.reported_stuck.lock().remove(&holder.node);
        self.noted_unrebooted.lock().remove(&holder.node);
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

/// What [`CORDONED_FOR_ANNOTATION`] says for `grant`'s cordon.
fn cordon_stamp(grant: &Holder) -> String {
    grant.since.to_string()
}
