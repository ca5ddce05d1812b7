//! The answers to `pre-reboot` and `steady-state`.
//!
//! Every request starts with what the caches can answer, in plain functions with nothing
//! awaited: that is all most requests need. The paths that call the cluster are boxed
//! futures of their own, so the future the HTTP server boxes for each request stays small
//! (the whole state machine of a grant, a drain wait and a release is kilobytes, which cost
//! a copy and an allocation outside the allocator's fast path on every request).

use std::net::IpAddr;
use std::sync::Arc;

use cluster_api::EventType;

use super::policy::{check_grant, needs_tidying};
use super::writes::Whose;
use super::{Coordinator, Inner};
use crate::config::GroupConfig;
use crate::drain::DrainPhase;
use crate::group::{GroupState, Holder, HolderPhase};
use crate::nodes::{Lookup, NodeView};
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
        let config = inner.group_config(&params.group)?;
        let node = inner.node_for(&params.id)?;
        inner.check_caller(&node, peer)?;
        inner.check_group(&node, &params.group)?;

        // From memory only while the lock watch works; otherwise `grant` reads the Lease and
        // decides from what it holds now.
        if inner.leases_health.is_healthy() {
            // One look at the cached locks, under one read: the commonest request of all, a
            // holder asking again after its approval, is answered in place, copying nothing;
            // a request that would be refused is refused without API traffic, however many
            // nodes poll a busy group. The holder is the Node, whatever id it asked with: a
            // second spelling of its id gets its grant's answer, never a second slot.
            let held = inner.groups.read(|groups| {
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
                        inner.check_room_for_group(&params.group, groups.keys())?;
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
        inner.check_opt_out(&node)?;
        inner.check_gates(&params.group, &config.health_gates)?;
        let evicts = inner.check_pods(&node.name, config).await?;
        if !inner.leases_health.is_healthy() {
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
                    .cached_slot_of(&node.name)
                    .filter(|(group, _)| *group != params.group)
                {
                    return Ok(Grant::Elsewhere(group, Box::new(holder)));
                }
                if state.resource_version.is_empty() {
                    // The group has no Lease yet: this grant would make one.
                    inner
                        .groups
                        .read(|groups| inner.check_room_for_group(&params.group, groups.keys()))?;
                }
                check_grant(&params.group, config, state, inner.clock.now())?;
                state.holders.push(Holder {
                    evicts: evicts.clone(),
                    ..Holder::granted(&params.id, &node.name, inner.clock.now(), &inner.instance)
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
            tracing::info!(node = %node.name, group = %params.group, id = %params.id, "reboot slot granted");
            let message = format!(
                "reboot slot {}/{} of group {} granted; draining",
                state.slots_taken(),
                config.slots,
                params.group
            );
            inner.announce(
                crate::RebootTransition::Granted,
                &node.name,
                &params.group,
                &message,
            );
            inner
                .event(
                    &node.name,
                    EventType::Normal,
                    "RebootSlotGranted",
                    "Grant",
                    message,
                )
                .await;
        }
        self.continue_holder(&params.group, holder).await
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

    /// `POST /v1/steady-state`: undoes our cordon and gives back whatever slot the client's
    /// Node holds, whatever id it was granted under; with its group's `recovery` on, the slot
    /// of an approved holder is kept, in the `recovering` phase, until the node has healed. A
    /// client that holds nothing gets `Ok` without any call to the cluster; a client that maps
    /// to no Node is still released (by the id it was granted under, in any case).
    pub async fn steady_state(&self, params: &ClientParams) -> Result<(), Refusal> {
        self.steady_state_from(params, None).await
    }

    /// [`steady_state`](Self::steady_state) for a request that came from `peer`: with
    /// `verifyCaller` on, only the node itself can give its slot back.
    pub async fn steady_state_from(
        &self,
        params: &ClientParams,
        peer: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        // A node that holds nothing and has nothing of ours on it, the commonest case by
        // far, is answered from the caches without awaiting anything; the rest is boxed.
        let lookup = self.inner.lookup(&params.id);
        let tidy = self.check_steady_caller(&lookup, params, peer)?;
        let whose = whose_of(&lookup, params);
        let groups = if self.inner.leases_health.is_healthy() {
            let groups = self.inner.cached_holdings(whose);
            if groups.is_empty() && !tidy {
                return Ok(());
            }
            groups
        } else {
            Vec::new()
        };
        Box::pin(self.steady_state_slow(params, lookup, tidy, groups)).await
    }

    /// Refuses a `steady-state` its caller may not send; whether the node carries our cordon
    /// or state.
    fn check_steady_caller(
        &self,
        lookup: &Lookup,
        params: &ClientParams,
        peer: Option<IpAddr>,
    ) -> Result<bool, Refusal> {
        let inner = &self.inner;
        match lookup {
            Lookup::Found(view) => {
                inner.check_caller(view, peer)?;
                inner.check_group(view, &params.group)?;
            }
            // A node we cannot see may still be there: do not let an unverified caller
            // release it.
            _ if inner.config.verify_caller && !inner.nodes_health.is_healthy() => {
                return Err(Refusal::new(
                    Kind::ClusterUnavailable,
                    "cannot verify the caller: the node watch is not working; try again",
                ));
            }
            _ => {}
        }
        Ok(matches!(lookup, Lookup::Found(view) if needs_tidying(view)))
    }

    /// The rest of a `steady-state`, given the slots the cache shows (`groups`) and whether
    /// the node carries our cordon or state (`tidy`).
    async fn steady_state_slow(
        &self,
        params: &ClientParams,
        lookup: Lookup,
        tidy: bool,
        mut groups: Vec<String>,
    ) -> Result<(), Refusal> {
        let inner = &self.inner;
        // Our cordon or state on the node while the cache shows no slot: the cache may not
        // have seen a grant yet (made by a replica killed before it answered), so ask the
        // cluster. A node with nothing of ours on it costs no call.
        if groups.is_empty() && (tidy || !inner.leases_health.is_healthy()) {
            // The cache may lag: ask the cluster which groups the client holds a slot in.
            groups = inner.fresh_holdings(whose_of(&lookup, params)).await?;
        }
        for group in &groups {
            inner.steady(group, whose_of(&lookup, params)).await?;
        }
        if groups.is_empty()
            && let Lookup::Found(view) = lookup
            && tidy
        {
            // Nothing held, but our cordon or state is left over (a crash between the
            // release and the uncordon): finish the job.
            inner
                .finish_node(&view.name, "ready", &[])
                .await
                .map_err(|e| Refusal::from_cluster("uncordoning the node", &e))?;
        }
        Ok(())
    }
}

/// Whose slot a steady-state gives back: its Node's, or, for a client that maps to no Node we
/// can see, whatever was granted under its id.
fn whose_of<'a>(lookup: &'a Lookup, params: &'a ClientParams) -> Whose<'a> {
    match lookup {
        Lookup::Found(view) => Whose::Node(&view.name),
        _ => Whose::Client(&params.id),
    }
}
