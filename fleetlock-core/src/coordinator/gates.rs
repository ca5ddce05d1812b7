//! What keeps a node from a new slot besides the group's own policy: an operator's opt-out
//! annotation, and health gates (no new slot while too many nodes are down or cordoned by
//! someone else, counted from the node cache at most once a second however many nodes ask).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{CoordinatorBuilder, Inner};
use crate::alerts::{AlertSource, AlertState, closed_by_alerts};
use crate::config::{GateScope, HealthGates, OnUnreachable};
use crate::nodes::NodeView;
use crate::protocol::{Kind, Refusal};

/// How long a count of the nodes is reused.
const RECOUNT_AFTER: Duration = Duration::from_secs(1);

/// Nodes that are down or held back, by group and in all.
#[derive(Debug, Default)]
pub(super) struct NodeCounts {
    by_group: HashMap<String, Counts>,
    cluster: Counts,
}

/// Node names, not counting slot holders.
#[derive(Debug, Default)]
pub(super) struct Counts {
    not_ready: Vec<String>,
    cordoned: Vec<String>,
}

impl CoordinatorBuilder {
    /// Where the groups' alert gates read firing alerts (`alerts` in the configuration says
    /// how often and what to do when it cannot be read). Without one, an alert gate stays
    /// closed (or open, with `onUnreachable: allow`).
    pub fn alerts(mut self, source: Arc<dyn AlertSource>) -> Self {
        self.alerts = Some(source);
        self
    }
}

impl Inner {
    /// Refuses a node an operator keeps from rebooting ([`crate::nodes::OPT_OUT_ANNOTATION`]).
    pub(super) fn check_opt_out(&self, node: &NodeView) -> Result<(), Refusal> {
        let Some(why) = &node.opted_out else {
            return Ok(());
        };
        let why = if why.is_empty() {
            "no reason given"
        } else {
            why
        };
        Err(Refusal::new(
            Kind::NodeOptedOut,
            format!(
                "{} must not reboot for now ({}: {why}); an operator removes the annotation to let it",
                node.name,
                crate::nodes::OPT_OUT_ANNOTATION
            ),
        ))
    }

    /// Refuses a new grant in a group whose gates are closed, naming the gate but no node
    /// (the caller is not authenticated; the fleet view names them).
    pub(super) fn check_gates(&self, group: &str, gates: &HealthGates) -> Result<(), Refusal> {
        match self.closed_gates(group, gates).into_iter().next() {
            None => Ok(()),
            Some(gate) => Err(Refusal::new(
                Kind::HealthGateClosed,
                format!("group {group} grants no new reboot while {gate}"),
            )),
        }
    }

    /// Each gate of `group` that is closed now, in words (without node names).
    pub(super) fn closed_gates(&self, group: &str, gates: &HealthGates) -> Vec<String> {
        let on_unreachable = self
            .config
            .alerts
            .as_ref()
            .map_or(OnUnreachable::Block, |a| a.on_unreachable);
        let mut closed = closed_by_alerts(&self.alert_state.read(), &gates.alerts, on_unreachable);
        if gates.max_not_ready.is_none() && gates.max_cordoned.is_none() {
            return closed;
        }
        let all = self.node_counts();
        let none = Counts::default();
        let (counts, whose) = match gates.scope {
            GateScope::Group => (
                all.by_group.get(group).unwrap_or(&none),
                format!("of group {group}"),
            ),
            GateScope::Cluster => (&all.cluster, "of the cluster".to_string()),
        };
        for (limit, nodes, what) in [
            (gates.max_not_ready, &counts.not_ready, "NotReady"),
            (
                gates.max_cordoned,
                &counts.cordoned,
                "cordoned by someone else",
            ),
        ] {
            if let Some(limit) = limit
                && nodes.len() > limit as usize
            {
                closed.push(format!(
                    "{} nodes {whose} are {what} (at most {limit} may be)",
                    nodes.len()
                ));
            }
        }
        closed
    }

    /// Reads the firing alerts every `alerts.interval`, for as long as the coordinator runs
    /// (without a source, returns at once).
    pub(super) async fn read_alerts(&self) {
        let (Some(source), Some(config)) = (&self.alerts, &self.config.alerts) else {
            return;
        };
        loop {
            let state = match tokio::time::timeout(config.timeout, source.firing()).await {
                Ok(Ok(firing)) => AlertState::Firing(firing),
                Ok(Err(why)) => AlertState::Unreachable(why.to_string()),
                Err(_) => AlertState::Unreachable(format!(
                    "no answer within {} s",
                    config.timeout.as_secs_f64()
                )),
            };
            if let AlertState::Unreachable(why) = &state {
                let url = crate::alerts::shown_url(&config.url);
                tracing::warn!(%url, error = %why, "cannot read the firing alerts");
            }
            *self.alert_state.write() = state;
            tokio::time::sleep(config.interval).await;
        }
    }

    /// The counts, recounted when older than [`RECOUNT_AFTER`].
    fn node_counts(&self) -> Arc<NodeCounts> {
        let mut cached = self.node_counts.lock();
        if let Some((at, counts)) = cached.as_ref()
            && at.elapsed() < RECOUNT_AFTER
        {
            return counts.clone();
        }
        let holders: HashSet<String> = self.groups.read(|groups| {
            groups
                .values()
                .flat_map(|g| g.holders.iter().map(|h| h.node.clone()))
                .collect()
        });
        let mut counts = NodeCounts::default();
        for view in self.nodes.read().iter() {
            if holders.contains(&view.name) {
                continue;
            }
            let down = !view.ready;
            let held_back = view.unschedulable && !view.cordoned_by_us;
            if !down && !held_back {
                continue;
            }
            // Without a group label, as for `check_group`, a node is in `default`.
            let group = view.group.as_deref().unwrap_or("default").to_string();
            for c in [
                counts.by_group.entry(group).or_default(),
                &mut counts.cluster,
            ] {
                if down {
                    c.not_ready.push(view.name.clone());
                }
                if held_back {
                    c.cordoned.push(view.name.clone());
                }
            }
        }
        let counts = Arc::new(counts);
        *cached = Some((Instant::now(), counts.clone()));
        counts
    }
}
