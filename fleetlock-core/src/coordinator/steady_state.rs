//! The answer to `steady-state`: the node is back. Its slot is given back, or, with its
//! group's `recovery` on, kept (`recovering`) until it has healed (`recovery.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use cluster_api::{Error, EventType, Timestamp};

use super::admit::{check_caller, check_group};
use super::grants::Whose;
use super::policy::needs_tidying;
use super::{Coordinator, Inner};
use crate::config::{RecoveryConfig, UnchangedBootId};
use crate::group::{GroupState, Holder, HolderPhase};
use crate::nodes::Lookup;
use crate::protocol::{ClientParams, Kind, Refusal};

/// What a steady-state found of a holder.
enum Returned {
    /// It holds nothing here (any more).
    Nothing,
    /// The slot was given back, in the same write that judged it: why, who held it, and
    /// other entries of the node given back with it ([`super::grants::Taken`]).
    Released(&'static str, Box<Holder>, Vec<Holder>),
    /// It is recovering (now, or already was); other entries of the node were dropped.
    Recovering(Box<Holder>, Vec<Holder>),
}

impl Coordinator {
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
        let lookup = self.inner.caches.lookup(&params.id);
        let tidy = self.check_steady_caller(&lookup, params, peer)?;
        let whose = whose_of(&lookup, params);
        let groups = if self.inner.caches.locks_current() {
            let groups = self.inner.caches.holdings(whose);
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
                check_caller(&inner.config, view, peer)?;
                check_group(&inner.config, view, &params.group)?;
            }
            // A node we cannot see may still be there: do not let an unverified caller
            // release it.
            _ if inner.config.verify_caller && !inner.caches.nodes_current() => {
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
        if groups.is_empty() && (tidy || !inner.caches.locks_current()) {
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

// === impl Inner: the slot at a steady-state ===

impl Inner {
    /// A steady-state from `whose` (a Node, or a client id that maps to none), which holds a
    /// slot in `group`: with recovery on, an approved holder starts recovering (our cordon
    /// undone, the slot kept until it has healed); a recovering one is looked at again;
    /// otherwise the slot is given back.
    pub(super) async fn steady(
        self: &Arc<Self>,
        group: &str,
        whose: Whose<'_>,
    ) -> Result<(), Refusal> {
        let recovery = self
            .config
            .group(group)
            .unwrap_or(&self.config.group_defaults)
            .recovery
            .clone();
        let mut held = self
            .caches
            .group(group)
            .and_then(|g| whose.find(&g).cloned());
        if recovery.enabled && held.is_none() {
            // The lock cache may lag (a grant made by a replica killed before it answered, a
            // watch that is down): a holder it does not show may be recovering, which a
            // repeated steady-state must not release without its heal.
            held = self.fresh_holder(group, whose).await?;
        }
        let Some(held) = held.filter(|_| recovery.enabled) else {
            return self
                .give_back(group, whose, "steady-state: the node is back", None, true)
                .await;
        };
        // The bootID and heartbeat are read fresh: the cache may not have the kubelet's
        // report yet.
        let node = held.node.clone();
        let (boot_id, heartbeat) = match self.api.get_node(&node).await {
            Ok(n) => (Some(n.boot_id), n.heartbeat),
            Err(Error::NotFound { .. }) => (None, None),
            Err(e) => return Err(Refusal::from_cluster("reading the node", &e)),
        };
        let now = self.clock.now();
        let seen = Seen {
            boot_id: boot_id.as_deref(),
            heartbeat,
            now,
        };
        let (_, returned) = self
            .modify_group(group, |state| Ok(judge(state, whose, &recovery, &seen)))
            .await?;
        let holder = match returned {
            Returned::Nothing => return Ok(()),
            Returned::Released(why, holder, others) => {
                self.note_unchanged_boot(&node, Some(&holder), boot_id.as_deref(), false)
                    .await;
                return self
                    .after_release(group, &holder, &others, why, false, true)
                    .await;
            }
            Returned::Recovering(holder, others) => {
                for other in &others {
                    self.drains.stop(other);
                }
                *holder
            }
        };
        self.start_recovering(group, &holder, held.phase != HolderPhase::Recovering)
            .await
    }

    /// A holder kept `recovering` at its steady-state (`first`: it has just started): says so
    /// the first time, undoes our cordon and looks at its heal.
    async fn start_recovering(
        self: &Arc<Self>,
        group: &str,
        holder: &Holder,
        first: bool,
    ) -> Result<(), Refusal> {
        if first {
            // An unchanged bootID here is usual: Zincati speaks before the kubelet reports
            // the new boot. The recovery warns once the kubelet has reported without one.
            tracing::info!(node = %holder.node, %group, "steady-state: recovering before the slot is given back");
            self.event(
                &holder.node,
                EventType::Normal,
                "NodeRecovering",
                "Recover",
                format!(
                    "steady-state: the reboot slot of group {group} is kept until the node is \
                     Ready and the workloads its drain evicted are available again"
                ),
            )
            .await;
        }
        // Zincati stops calling steady-state at its first 200: until our cordon is off, the
        // answer is an error, so that it asks again.
        self.finish_node(&holder.node, "recovering", &[])
            .await
            .map_err(|e| Refusal::from_cluster("uncordoning the node", &e))?;
        self.heal(group, holder).await;
        Ok(())
    }
}

/// What a steady-state read of its node: its bootID (`None`: the Node is gone), the kubelet's
/// last heartbeat, and when.
struct Seen<'a> {
    boot_id: Option<&'a str>,
    heartbeat: Option<Timestamp>,
    now: Timestamp,
}

/// Judges `whose` holder in `state` at a steady-state, changing `state` to match. A slot given
/// back is given back in this same compare-and-swap that judged the holder's phase: a
/// separate write could find it approved meanwhile by another replica (its node about to
/// reboot) and free it all the same.
fn judge(
    state: &mut GroupState,
    whose: Whose<'_>,
    recovery: &RecoveryConfig,
    seen: &Seen<'_>,
) -> Returned {
    let Some(h) = whose.find_mut(state) else {
        return Returned::Nothing;
    };
    let release = match (h.phase, seen.boot_id) {
        (HolderPhase::Recovering, Some(_)) => {
            let kept = h.clone();
            let others = whose.drop_others(state, &kept);
            return Returned::Recovering(Box::new(kept), others);
        }
        (_, None) => "steady-state: its Node is gone",
        (HolderPhase::Draining, _) => "steady-state before its reboot was approved",
        (HolderPhase::Approved, Some(now_boot)) => {
            let same = h.boot_id.as_deref() == Some(now_boot);
            if !(same && recovery.unchanged_boot_id == UnchangedBootId::Release) {
                h.phase = HolderPhase::Recovering;
                h.returned_at = Some(seen.now);
                h.returned_heartbeat = seen.heartbeat;
                let kept = h.clone();
                let others = whose.drop_others(state, &kept);
                return Returned::Recovering(Box::new(kept), others);
            }
            "steady-state without a reboot (recovery.unchangedBootId: release)"
        }
    };
    let holder = Box::new(h.clone());
    let others = whose.drop_others(state, &holder);
    state.holders.retain(|h| !h.same_grant(&holder));
    Returned::Released(release, holder, others)
}

/// Whose slot a steady-state gives back: its Node's, or, for a client that maps to no Node we
/// can see, whatever was granted under its id.
fn whose_of<'a>(lookup: &'a Lookup, params: &'a ClientParams) -> Whose<'a> {
    match lookup {
        Lookup::Found(view) => Whose::Node(&view.name),
        _ => Whose::Client(&params.id),
    }
}
