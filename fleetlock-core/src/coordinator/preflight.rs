//! The pre-flight plan of a node's drain, read from the cluster as it is now: served to people
//! ([`Coordinator::plan_node`]) and checked before a slot is granted.

use cluster_api::{EventType, PodFilter};

use super::{Coordinator, Inner};
use crate::drain::DrainOptions;
use crate::preflight::{NodePlan, plan_node};
use crate::protocol::{Kind, Refusal};

impl Coordinator {
    /// What a drain of the Node named `node` would do now, and whether it could finish
    /// (one list of its pods and one of the cluster's disruption budgets).
    pub async fn plan_node(&self, node: &str) -> Result<NodePlan, Refusal> {
        if self.inner.nodes.read().get(node).is_none() {
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
        }
    }

    /// Plans the drain of `node` against the cluster as it is now.
    pub(super) async fn plan(&self, node: &str) -> Result<NodePlan, Refusal> {
        let pods = self
            .api
            .list_pods(&PodFilter::on_node(node))
            .await
            .map_err(|e| Refusal::from_cluster("listing the node's pods", &e))?;
        let budgets = self
            .api
            .list_disruption_budgets()
            .await
            .map_err(|e| Refusal::from_cluster("listing disruption budgets", &e))?;
        Ok(plan_node(
            node,
            &pods,
            &budgets,
            &self.drain_options(),
            &self.config.drain,
        ))
    }

    /// Before a slot is granted to `node`: refuses (`drain_would_block`) a drain that could
    /// not finish, so that no node is cordoned and no slot held for it.
    pub(super) async fn preflight(&self, node: &str) -> Result<(), Refusal> {
        if !self.config.drain.preflight {
            return Ok(());
        }
        let plan = self.plan(node).await?;
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
