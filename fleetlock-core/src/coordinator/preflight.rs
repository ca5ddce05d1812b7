//! The pre-flight plan of a node's drain, read from the cluster as it is now: served to people
//! ([`Coordinator::plan_node`]) and checked before a slot is granted.

use cluster_api::{DisruptionBudget, EventType, Pod, PodFilter};

use super::{Coordinator, Inner};
use crate::config::GroupConfig;
use crate::drain::{DrainOptions, blocking_pods, plan_drain};
use crate::preflight::{NodePlan, plan_node};
use crate::protocol::{Kind, Refusal};
use crate::recovery::{self, RecoveryTarget};

impl Coordinator {
    /// What a drain of the Node named `node` would do now, and whether it could finish
    /// (one list of its pods and one of the cluster's disruption budgets).
    pub async fn plan_node(&self, node: &str) -> Result<NodePlan, Refusal> {
        if self.inner.caches.node(node).is_none() {
            return Err(Refusal::new(
                Kind::UnknownNode,
                format!("no Node is named {node}"),
            ));
        }
        self.inner.plan(node).await
    }
}

impl Inner {
    /// How this replica's drains treat pods.
    pub(super) fn drain_options(&self) -> DrainOptions {
        DrainOptions {
            delete_unmanaged: self.config.drain.delete_unmanaged,
            delete_empty_dir_data: self.config.drain.delete_empty_dir_data,
            own_pod: self.config.own_pod.clone(),
            rules: self.config.drain.rules.clone(),
        }
    }

    async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, Refusal> {
        self.api
            .list_pods(&PodFilter::on_node(node))
            .await
            .map_err(|e| Refusal::from_cluster("listing the node's pods", &e))
    }

    /// Plans the drain of `node` against the cluster as it is now.
    pub(super) async fn plan(&self, node: &str) -> Result<NodePlan, Refusal> {
        let pods = self.pods_on(node).await?;
        let budgets = self.budgets().await?;
        Ok(self.plan_over(node, &pods, &budgets))
    }

    async fn budgets(&self) -> Result<Vec<DisruptionBudget>, Refusal> {
        self.api
            .list_disruption_budgets()
            .await
            .map_err(|e| Refusal::from_cluster("listing disruption budgets", &e))
    }

    /// Plans the drain of `node`, whose pods are `pods`, against `budgets`.
    fn plan_over(&self, node: &str, pods: &[Pod], budgets: &[DisruptionBudget]) -> NodePlan {
        plan_node(
            node,
            pods,
            budgets,
            &self.drain_options(),
            &self.config.drain,
        )
    }

    /// Before a slot is granted to `node`, over one list of its pods: refuses a drain that
    /// could not finish (`drain_would_block`, with the pre-flight on), then a node on which a
    /// pod of the group's `blockingPods` runs (`blocked_by_pods`), so that no node is cordoned
    /// and no slot held for either.
    ///
    /// With the group's recovery on, returns what the drain will disrupt, to be seen whole
    /// again before the slot is given back.
    pub(super) async fn check_pods(
        &self,
        node: &str,
        group: &GroupConfig,
    ) -> Result<Vec<RecoveryTarget>, Refusal> {
        let preflight = self.config.drain.preflight;
        let recovery = group.recovery.enabled;
        if !preflight && !recovery && group.blocking_pods.is_empty() {
            return Ok(Vec::new());
        }
        let pods = self.pods_on(node).await?;
        let mut disrupts = Vec::new();
        if preflight || recovery {
            let budgets = self.budgets().await?;
            if preflight {
                self.preflight(node, &pods, &budgets).await?;
            }
            if recovery {
                let plan = plan_drain(&pods, &self.drain_options());
                let waited = plan.wait.iter().map(|(p, _)| p);
                disrupts = recovery::targets(plan.evict.iter().chain(waited), &budgets);
            }
        }
        let blocking = blocking_pods(&pods, &group.blocking_pods);
        if blocking.is_empty() {
            return Ok(disrupts);
        }
        let names: Vec<String> = blocking.iter().map(|p| p.to_string()).collect();
        Err(Refusal::new(
            Kind::BlockedByPods,
            format!(
                "pods that block reboots run on {node}: {}",
                names.join(", ")
            ),
        ))
    }

    /// Refuses (`drain_would_block`) a drain of `node` over `pods` that could not finish.
    async fn preflight(
        &self,
        node: &str,
        pods: &[Pod],
        budgets: &[DisruptionBudget],
    ) -> Result<(), Refusal> {
        let plan = self.plan_over(node, pods, budgets);
        match plan.blocked {
            None => Ok(()),
            Some(why) => {
                tracing::info!(%node, reason = %why, "reboot refused before the cordon: the drain could not finish");
                let message = format!("the drain of {node} could not finish: {why}");
                // Repeats (Zincati asks every few minutes) fold into one Event's series.
                self.event(
                    node,
                    EventType::Warning,
                    "DrainWouldBlock",
                    "Preflight",
                    format!("reboot refused before the cordon: {message}"),
                )
                .await;
                Err(Refusal::new(Kind::DrainWouldBlock, message))
            }
        }
    }
}
