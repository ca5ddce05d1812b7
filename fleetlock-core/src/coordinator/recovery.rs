//! After a steady-state: the holder keeps its slot, `recovering`, until its node and the
//! workloads its drain evicted are back ([`crate::recovery`]), then gives it back.

use std::collections::BTreeSet;
use std::sync::Arc;

use cluster_api::{DisruptionBudget, Error, EventType, Pod, PodFilter};

use super::Inner;
use super::writes::Whose;
use crate::config::UnchangedBootId;
use crate::group::{Holder, HolderPhase};
use crate::nodes::CORDONED_ANNOTATION;
use crate::protocol::{Kind, Refusal};
use crate::recovery::{NodeNow, RecoveryTarget, kubelet_reported, rebooted, settled, waiting_for};

/// What a steady-state found of a holder.
enum Returned {
    /// It holds nothing here (any more).
    Nothing,
    /// The slot was given back, in the same write that judged it: why, who held it, and
    /// other entries of the node given back with it ([`super::writes::Taken`]).
    Released(&'static str, Box<Holder>, Vec<Holder>),
    /// It is recovering (now, or already was); other entries of the node were dropped.
    Recovering(Box<Holder>, Vec<Holder>),
}

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
            .cached_group(group)
            .and_then(|g| whose.find(&g).cloned());
        if recovery.enabled && held.is_none() {
            // The lock cache may lag (a grant made by a replica killed before it answered, a
            // watch that is down): a holder it does not show may be recovering, which a
            // repeated steady-state must not release without its heal.
            held = self.fresh_holder(group, whose).await?;
        }
        if !recovery.enabled || held.is_none() {
            return self
                .give_back(group, whose, "steady-state: the node is back", None, true)
                .await;
        }
        // The bootID and heartbeat are read fresh: the cache may not have the kubelet's
        // report yet.
        let node = held.as_ref().map(|h| h.node.clone()).unwrap_or_default();
        let (boot_id, heartbeat) = match self.api.get_node(&node).await {
            Ok(n) => (Some(n.boot_id), n.heartbeat),
            Err(Error::NotFound { .. }) => (None, None),
            Err(e) => return Err(Refusal::from_cluster("reading the node", &e)),
        };
        let now = self.clock.now();
        let (_, returned) = self
            .modify_group(group, |state| {
                let Some(h) = whose.find_mut(state) else {
                    return Ok(Returned::Nothing);
                };
                // A slot given back is given back in this same compare-and-swap that judged
                // the holder's phase: a separate write could find it approved meanwhile by
                // another replica (its node about to reboot) and free it all the same.
                let release = match (h.phase, &boot_id) {
                    (HolderPhase::Recovering, Some(_)) => {
                        let kept = h.clone();
                        let others = drop_others(state, whose, &kept);
                        return Ok(Returned::Recovering(Box::new(kept), others));
                    }
                    (_, None) => "steady-state: its Node is gone",
                    (HolderPhase::Draining, _) => "steady-state before its reboot was approved",
                    (HolderPhase::Approved, Some(now_boot)) => {
                        let same = h.boot_id.as_ref() == Some(now_boot);
                        if !(same && recovery.unchanged_boot_id == UnchangedBootId::Release) {
                            h.phase = HolderPhase::Recovering;
                            h.returned_at = Some(now);
                            h.returned_heartbeat = heartbeat;
                            let kept = h.clone();
                            let others = drop_others(state, whose, &kept);
                            return Ok(Returned::Recovering(Box::new(kept), others));
                        }
                        "steady-state without a reboot (recovery.unchangedBootId: release)"
                    }
                };
                let holder = Box::new(h.clone());
                let others = drop_others(state, whose, &holder);
                state.holders.retain(|h| !h.same_grant(&holder));
                Ok(Returned::Released(release, holder, others))
            })
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
                    self.stop_drain(other);
                }
                *holder
            }
        };
        let first = held.is_some_and(|h| h.phase != HolderPhase::Recovering);
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
        self.heal(group, &holder).await;
        Ok(())
    }

    /// A Warning Event when a holder's node shows the bootID it was approved with after its
    /// steady-state: `reported`, once its kubelet has reported since (so it did not reboot);
    /// otherwise at a steady-state that releases at once, when nobody can tell yet.
    async fn note_unchanged_boot(
        &self,
        node: &str,
        holder: Option<&Holder>,
        boot_id: Option<&str>,
        reported: bool,
    ) {
        let Some(approved) = holder.and_then(|h| h.boot_id.as_deref()) else {
            return;
        };
        if boot_id != Some(approved) {
            return;
        }
        self.event(
            node,
            EventType::Warning,
            "RebootNotObserved",
            "Recover",
            if reported {
                format!(
                    "the kubelet reports the bootID the reboot was approved with ({approved}) \
                     since the steady-state: the node did not reboot"
                )
            } else {
                format!(
                    "steady-state with the bootID the reboot was approved with ({approved}): the \
                     node did not reboot, or its kubelet has not reported the new boot yet"
                )
            },
        )
        .await;
    }

    /// Looks at a recovering holder: gives its slot back once its node and workloads are back
    /// (and have settled), else records what it waits for. Problems are logged; the next
    /// maintenance pass looks again.
    pub(super) async fn heal(self: &Arc<Self>, group: &str, holder: &Holder) {
        if let Err(e) = self.try_heal(group, holder).await {
            tracing::warn!(node = %holder.node, %group, error = %e, "could not check the node's recovery");
        }
    }

    async fn try_heal(self: &Arc<Self>, group: &str, holder: &Holder) -> Result<(), Refusal> {
        let recovery = &self
            .config
            .group(group)
            .unwrap_or(&self.config.group_defaults)
            .recovery;
        // Read afresh: whether the kubelet has reported since the return is judged on the
        // heartbeat, which the node cache does not keep.
        let fresh = match self.api.get_node(&holder.node).await {
            Ok(fresh) => fresh,
            // A deleted Node's slot is released by maintenance.
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(Refusal::from_cluster("reading the node", &e)),
        };
        let cordoned_by_us = fresh
            .annotations
            .get(CORDONED_ANNOTATION)
            .is_some_and(|v| v == "true");
        let (ready, boot_id, heartbeat) = (fresh.ready, fresh.boot_id.clone(), fresh.heartbeat);
        self.store_node(fresh);
        if cordoned_by_us {
            self.finish_node(&holder.node, "recovering", &[])
                .await
                .map_err(|e| Refusal::from_cluster("uncordoning the node", &e))?;
        }
        let (budgets, pods) = self.recovery_inputs(&holder.evicts).await?;
        let node = NodeNow {
            ready,
            boot_id: &boot_id,
            heartbeat,
            cordoned_by_us: false,
        };
        if kubelet_reported(holder, &node)
            && !rebooted(holder, &node)
            && self.noted_unrebooted.lock().insert(holder.node.clone())
        {
            self.note_unchanged_boot(&holder.node, Some(holder), Some(&boot_id), true)
                .await;
        }
        let waiting = waiting_for(holder, &node, recovery, &budgets, &pods);
        let now = self.clock.now();
        let healthy_since = if waiting.is_empty() {
            Some(holder.healthy_since.unwrap_or(now))
        } else {
            None
        };
        if let Some(since) = healthy_since
            && settled(since, recovery.settle, now)
        {
            if !self.still_healed(&holder.node).await? {
                return Ok(());
            }
            let returned = holder.returned_at.unwrap_or(now);
            let why = format!(
                "healed {}s after its steady-state",
                now.duration_since(returned).as_secs()
            );
            return self
                .give_back(group, Whose::Grant(holder), &why, Some(now), true)
                .await;
        }
        if holder.waiting_for != waiting || holder.healthy_since != healthy_since {
            self.modify_group(group, |state| {
                if let Some(h) = state.grant_mut(holder)
                    && h.phase == HolderPhase::Recovering
                {
                    h.waiting_for = waiting.clone();
                    h.healthy_since = healthy_since;
                }
                Ok(())
            })
            .await?;
        }
        if let Some(since) = healthy_since {
            // Look again when the settle time is over rather than at the next pass.
            let settle = jiff::SignedDuration::try_from(recovery.settle).unwrap_or_default();
            let left = since
                .checked_add(settle)
                .map(|at| at.duration_since(now))
                .unwrap_or_default();
            let left = std::time::Duration::try_from(left).unwrap_or_default();
            let inner = Arc::clone(self);
            self.tasks.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(left) => inner.poke.notify_one(),
                    () = inner.shutdown.cancelled() => {}
                }
            });
        }
        Ok(())
    }

    /// Whether the node, read afresh, is Ready and free of our cordon, before its slot is
    /// given back on the node cache's word: a cache that lags must not release a node that a
    /// late cordon (a drain started from a stale view, say) has just reached. Our cordon found
    /// there is undone, and the slot waits for the next look.
    async fn still_healed(&self, node: &str) -> Result<bool, Refusal> {
        let fresh = match self.api.get_node(node).await {
            Ok(fresh) => fresh,
            // A deleted Node's slot is released by maintenance.
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(Refusal::from_cluster("reading the node", &e)),
        };
        let ours = fresh
            .annotations
            .get(CORDONED_ANNOTATION)
            .is_some_and(|v| v == "true");
        let ready = fresh.ready;
        self.store_node(fresh);
        if ours {
            tracing::info!(
                node,
                "our cordon is back on a recovering node; undoing it before the slot goes"
            );
            self.finish_node(node, "recovering", &[])
                .await
                .map_err(|e| Refusal::from_cluster("uncordoning the node", &e))?;
            return Ok(false);
        }
        Ok(ready)
    }

    /// The budgets and pods a holder's recovery is judged on: the cluster's budgets if it
    /// waits on any, and the pods of the namespaces of the controllers it waits on.
    async fn recovery_inputs(
        &self,
        evicts: &[RecoveryTarget],
    ) -> Result<(Vec<DisruptionBudget>, Vec<Pod>), Refusal> {
        let budgets = if evicts.iter().any(|t| {
            matches!(
                t,
                RecoveryTarget::Budget { .. } | RecoveryTarget::Namespace { .. }
            )
        }) {
            self.api
                .list_disruption_budgets()
                .await
                .map_err(|e| Refusal::from_cluster("listing disruption budgets", &e))?
        } else {
            Vec::new()
        };
        let namespaces: BTreeSet<&str> = evicts
            .iter()
            .filter(|t| !matches!(t, RecoveryTarget::Budget { .. }))
            .map(RecoveryTarget::namespace)
            .collect();
        // A `*` target waits on every namespace: one list of every pod.
        let filters: Vec<PodFilter> = if namespaces.contains("*") {
            vec![PodFilter::default()]
        } else {
            namespaces
                .into_iter()
                .map(|namespace| PodFilter {
                    namespace: Some(namespace.to_string()),
                    ..PodFilter::default()
                })
                .collect()
        };
        let mut pods = Vec::new();
        for filter in filters {
            pods.extend(
                self.api.list_pods(&filter).await.map_err(|e| {
                    Refusal::from_cluster("listing the evicted workloads' pods", &e)
                })?,
            );
        }
        Ok((budgets, pods))
    }

    /// The refusal for a `pre-reboot` from a holder that is still recovering.
    pub(super) fn still_recovering(holder: &Holder) -> Refusal {
        let waiting = if holder.waiting_for.is_empty() {
            "its recovery to be checked".to_string()
        } else {
            holder.waiting_for.join("; ")
        };
        Refusal::new(
            Kind::NodeRecovering,
            format!(
                "{} is still recovering from its last reboot; waiting for {waiting}",
                holder.node
            ),
        )
    }
}

/// Removes from `state` the entries of `whose` slot other than `kept`: an older version, which
/// keyed holders by the id as spelt, may have left one node several. The node's steady-state
/// leaves it one at most.
fn drop_others(
    state: &mut crate::group::GroupState,
    whose: Whose<'_>,
    kept: &Holder,
) -> Vec<Holder> {
    let mut dropped = Vec::new();
    state.holders.retain(|h| {
        let other = whose.holds(h) && !h.same_grant(kept);
        if other {
            dropped.push(h.clone());
        }
        !other
    });
    dropped
}
