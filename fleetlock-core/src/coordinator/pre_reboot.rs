//! The answer to `pre-reboot`, top to bottom: admit the caller (from the caches), take a
//! slot in its group's Lease, start or join its node's drain, wait for it a while.
//!
//! Every request starts with what the caches can answer, in plain functions with nothing
//! awaited: that is all most requests need. The paths that call the cluster are boxed
//! futures of their own, so the future the HTTP server boxes for each request stays small
//! (the whole state machine of a grant, a drain wait and a release is kilobytes, which cost
//! a copy and an allocation outside the allocator's fast path on every request).

use std::net::IpAddr;
use std::sync::Arc;

use cluster_api::EventType;

use super::admit::{check_caller, check_group, check_opt_out, check_room_for_group, group_config};
use super::grants::Whose;
use super::policy::{check_grant, record_grant};
use super::{Coordinator, Inner};
use crate::config::GroupConfig;
use crate::drain::DrainPhase;
use crate::group::{GroupState, Holder, HolderPhase};
use crate::nodes::NodeView;
use crate::protocol::{ClientParams, Kind, Refusal};

/// What the caches say of a `pre-reboot`.
enum PreReboot<'a> {
    /// Reboot now.
    Approved,
    /// The caller holds a slot in this group, not yet approved.
    Holder(String, Box<Holder>),
    /// The caller holds no slot and its group (configured so) could grant one.
    Grant(Arc<NodeView>, &'a GroupConfig),
}

/// What a grant attempt found.
enum Grant {
    New,
    Existing,
    /// The node holds a slot in another group (named so in a request with the group a
    /// request names believed): that grant answers.
    Elsewhere(String, Box<Holder>),
}

impl Coordinator {
    /// `POST /v1/pre-reboot`: `Ok` means "reboot now".
    ///
    /// A holder whose reboot is already approved gets `Ok` at once, from memory, with no call
    /// to the cluster. A new client gets a slot if the group's policies allow, and its node is
    /// cordoned and drained; the call waits for the drain up to `drain.requestWait` and
    /// answers `Ok` the moment the node is empty, or [`Kind::Draining`] while it goes on.
    ///
    /// With `verifyCaller` on, use [`pre_reboot_from`](Self::pre_reboot_from): a request of
    /// unknown origin is refused.
    pub async fn pre_reboot(&self, params: &ClientParams) -> Result<(), Refusal> {
        self.pre_reboot_from(params, None).await
    }

    /// [`pre_reboot`](Self::pre_reboot) for a request that came from `peer` (the connection's
    /// address), which `verifyCaller` checks against the node's addresses.
    pub async fn pre_reboot_from(
        &self,
        params: &ClientParams,
        peer: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        // Most requests are answered from the caches without awaiting anything; the rest
        // are boxed, so that the future of every request stays small (see the module docs).
        match self.pre_reboot_cached(params, peer)? {
            PreReboot::Approved => Ok(()),
            PreReboot::Holder(group, holder) => {
                Box::pin(self.continue_holder(&group, *holder)).await
            }
            PreReboot::Grant(node, config) => Box::pin(self.grant(params, node, config)).await,
        }
    }

    /// The part of a `pre-reboot` the caches answer: the checks of the caller, and while
    /// the lock watch works, whether it holds a slot or would be refused one.
    fn pre_reboot_cached(
        &self,
        params: &ClientParams,
        peer: Option<IpAddr>,
    ) -> Result<PreReboot<'_>, Refusal> {
        let inner = &self.inner;
        let config = group_config(&inner.config, &params.group)?;
        let node = inner.caches.node_for(&params.id)?;
        check_caller(&inner.config, &node, peer)?;
        check_group(&inner.config, &node, &params.group)?;

        // From memory only while the lock watch works; otherwise `grant` reads the Lease and
        // decides from what it holds now.
        if inner.caches.locks_current() {
            // One look at the cached locks, under one read: the commonest request of all, a
            // holder asking again after its approval, is answered in place, copying nothing;
            // a request that would be refused is refused without API traffic, however many
            // nodes poll a busy group. The holder is the Node, whatever id it asked with: a
            // second spelling of its id gets its grant's answer, never a second slot.
            let held = inner.caches.read_groups(|groups| {
                if let Some((state, holder)) = groups
                    .values()
                    .find_map(|g| Some((g, g.holder_of(&node.name)?)))
                {
                    return Ok(Some(if holder.phase == HolderPhase::Approved {
                        PreReboot::Approved
                    } else {
                        PreReboot::Holder(state.group.clone(), Box::new(holder.clone()))
                    }));
                }
                let now = inner.clock.now();
                match groups.get(&params.group) {
                    Some(state) => check_grant(&params.group, config, state, now),
                    None => {
                        check_room_for_group(&inner.config, &params.group, groups.keys())?;
                        check_grant(
                            &params.group,
                            config,
                            &GroupState::empty(&params.group),
                            now,
                        )
                    }
                }
                .map(|()| None)
            })?;
            if let Some(answer) = held {
                return Ok(answer);
            }
        }
        Ok(PreReboot::Grant(node, config))
    }

    /// Grants `params` a slot if the group allows (or finds the one it holds), then goes on
    /// as for a holder.
    async fn grant(
        &self,
        params: &ClientParams,
        node: Arc<NodeView>,
        config: &GroupConfig,
    ) -> Result<(), Refusal> {
        let inner = &self.inner;
        // A slot is about to be granted (or, without the lock cache, perhaps asked for again):
        // a node an operator keeps back, a group whose health gates are closed (both from the
        // caches, without API traffic), or a drain that could not finish is refused before
        // anything is cordoned.
        check_opt_out(&node)?;
        inner
            .gates
            .check(&params.group, &config.health_gates, &inner.caches)?;
        let evicts = inner.check_pods(&node.name, config).await?;
        if !inner.caches.locks_current() {
            // Without a working lock watch, the cache may not show a slot the node holds in
            // another group: read them all first, so that it gets that grant back rather
            // than a second slot.
            inner.fresh_holdings(Whose::Node(&node.name)).await?;
        }

        let (state, grant) = inner
            .modify_group(&params.group, |state| {
                if state.holder_of(&node.name).is_some() {
                    return Ok(Grant::Existing);
                }
                if let Some((group, holder)) = inner
                    .caches
                    .slot_of(&node.name)
                    .filter(|(group, _)| *group != params.group)
                {
                    return Ok(Grant::Elsewhere(group, Box::new(holder)));
                }
                if state.resource_version.is_empty() {
                    // The group has no Lease yet: this grant would make one.
                    inner.caches.read_groups(|groups| {
                        check_room_for_group(&inner.config, &params.group, groups.keys())
                    })?;
                }
                let now = inner.clock.now();
                check_grant(&params.group, config, state, now)?;
                record_grant(config, state, now);
                state.holders.push(Holder {
                    evicts: evicts.clone(),
                    ..Holder::granted(&params.id, &node.name, now, &inner.instance)
                });
                Ok(Grant::New)
            })
            .await?;
        if let Grant::Elsewhere(group, holder) = grant {
            return self.continue_holder(&group, *holder).await;
        }
        let Some(holder) = state.holder_of(&node.name).cloned() else {
            return Err(Refusal::new(Kind::Internal, "the granted slot vanished"));
        };
        if matches!(grant, Grant::New) {
            self.announce_grant(params, &node.name, &state, config)
                .await;
        }
        self.continue_holder(&params.group, holder).await
    }

    /// Says a new slot was granted: the log, the observer, an Event on the node.
    async fn announce_grant(
        &self,
        params: &ClientParams,
        node: &str,
        state: &GroupState,
        config: &GroupConfig,
    ) {
        let inner = &self.inner;
        tracing::info!(node = %node, group = %params.group, id = %params.id, "reboot slot granted");
        let message = format!(
            "reboot slot {}/{} of group {} granted; draining",
            state.slots_taken(),
            config.slots,
            params.group
        );
        inner.announce(
            crate::RebootTransition::Granted,
            node,
            &params.group,
            &message,
        );
        inner
            .event(
                node,
                EventType::Normal,
                "RebootSlotGranted",
                "Grant",
                message,
            )
            .await;
    }

    /// A holder asks again: approved is a quick yes; draining waits for the drain a while;
    /// recovering (another update right after the last reboot) waits until it has healed.
    async fn continue_holder(&self, group: &str, holder: Holder) -> Result<(), Refusal> {
        match holder.phase {
            HolderPhase::Approved => return Ok(()),
            HolderPhase::Recovering => return Err(Inner::still_recovering(&holder)),
            HolderPhase::Draining => {}
        }
        let inner = &self.inner;
        let mut status = inner.ensure_drain(group, &holder);
        let wait = tokio::time::sleep(inner.config.drain.request_wait);
        tokio::pin!(wait);
        loop {
            let current = status.borrow_and_update().clone();
            match current.phase {
                DrainPhase::Done => return Ok(()),
                DrainPhase::Blocked => {
                    return Err(Refusal::new(Kind::DrainBlocked, current.summary));
                }
                DrainPhase::TimedOut => {
                    return Err(Refusal::new(Kind::DrainTimedOut, current.summary));
                }
                DrainPhase::Cancelled => {
                    return Err(Refusal::new(Kind::Draining, current.summary));
                }
                DrainPhase::Running => {}
            }
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        // The drain task ended without a verdict (aborted by a release).
                        return Err(Refusal::new(Kind::Draining, current.summary));
                    }
                }
                () = &mut wait => return Err(Refusal::new(Kind::Draining, current.summary)),
            }
        }
    }
}
