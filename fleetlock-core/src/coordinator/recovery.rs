//! A recovering holder (kept at its steady-state, `steady_state.rs`) keeps its slot until its
//! node and the workloads its drain evicted are back ([`crate::recovery`]), then gives it back.

use std::collections::BTreeSet;
use std::sync::Arc;

use cluster_api::{DisruptionBudget, Error, EventType, Pod, PodFilter, Timestamp};

use super::Inner;
use super::grants::Whose;
use crate::config::RecoveryConfig;
use crate::group::{Holder, HolderPhase};
use crate::nodes::CORDONED_ANNOTATION;
use crate::protocol::{Kind, Refusal};
use crate::recovery::{NodeNow, RecoveryTarget, kubelet_reported, rebooted, settled, waiting_for};

impl Inner {
    /// A Warning Event when a holder's node shows the bootID it was approved with after its
    /// steady-state: `reported`, once its kubelet has reported since (so it did not reboot);
    /// otherwise at a steady-state that releases at once, when nobody can tell yet.
    pub(super) async fn note_unchanged_boot(
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
        let Some((ready, boot_id, heartbeat)) = self.read_recovering(&holder.node).await? else {
            return Ok(());
        };
        let (budgets, pods) = self.recovery_inputs(&holder.evicts).await?;
        let node = NodeNow {
            ready,
            boot_id: &boot_id,
            heartbeat,
            cordoned_by_us: false,
        };
        if kubelet_reported(holder, &node)
            && !rebooted(holder, &node)
            && self.reports.first_unrebooted(&holder.node)
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
            self.look_again_when_settled(since, recovery, now);
        }
        Ok(())
    }

    /// A recovering node, read afresh (whether the kubelet has reported since the return is
    /// judged on the heartbeat, which the node cache does not keep), with our cordon undone if
    /// it is back: whether it is Ready, its bootID and heartbeat. `None` if it is gone (a
    /// deleted Node's slot is released by maintenance).
    async fn read_recovering(
        &self,
        node: &str,
    ) -> Result<Option<(bool, String, Option<Timestamp>)>, Refusal> {
        let fresh = match self.api.get_node(node).await {
            Ok(fresh) => fresh,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Refusal::from_cluster("reading the node", &e)),
        };
        let cordoned_by_us = fresh
            .annotations
            .get(CORDONED_ANNOTATION)
            .is_some_and(|v| v == "true");
        let (ready, boot_id, heartbeat) = (fresh.ready, fresh.boot_id.clone(), fresh.heartbeat);
        self.caches.store_node(fresh);
        if cordoned_by_us {
            self.finish_node(node, "recovering", &[])
                .await
                .map_err(|e| Refusal::from_cluster("uncordoning the node", &e))?;
        }
        Ok(Some((ready, boot_id, heartbeat)))
    }

    /// Pokes the maintenance when the settle time that began at `since` is over, rather than
    /// waiting for its next pass.
    fn look_again_when_settled(
        self: &Arc<Self>,
        since: Timestamp,
        recovery: &RecoveryConfig,
        now: Timestamp,
    ) {
        let settle = jiff::SignedDuration::try_from(recovery.settle).unwrap_or_default();
        let left = since
            .checked_add(settle)
            .map(|at| at.duration_since(now))
            .unwrap_or_default();
        let left = std::time::Duration::try_from(left).unwrap_or_default();
        let inner = Arc::clone(self);
        self.drains.spawn_timer(async move {
            tokio::select! {
                () = tokio::time::sleep(left) => inner.poke.notify_one(),
                () = inner.shutdown.cancelled() => {}
            }
        });
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
        self.caches.store_node(fresh);
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
