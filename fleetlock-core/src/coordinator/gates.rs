//! Health gates: no new slot while too many nodes are down or cordoned by someone else
//! (counted from the node cache at most once a second however many nodes ask), or while
//! alerts the group names fire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use super::caches::Caches;
use crate::alerts::{AlertSource, AlertState, closed_by_alerts};
use crate::config::{AlertsConfig, GateScope, HealthGates, OnUnreachable};
use crate::protocol::{Kind, Refusal};

/// How long a count of the nodes is reused.
const RECOUNT_AFTER: Duration = Duration::from_secs(1);

/// The alerts' source and last read, and the last count of the nodes down or held back.
pub(super) struct Gates {
    source: Option<Arc<dyn AlertSource>>,
    config: Option<AlertsConfig>,
    alerts: RwLock<AlertState>,
    counts: Mutex<Option<(Instant, Arc<NodeCounts>)>>,
}

/// Nodes that are down or held back, by group and in all.
#[derive(Debug, Default)]
struct NodeCounts {
    by_group: HashMap<String, Counts>,
    cluster: Counts,
}

/// Node names, not counting slot holders.
#[derive(Debug, Default)]
struct Counts {
    not_ready: Vec<String>,
    cordoned: Vec<String>,
}

impl Gates {
    pub(super) fn new(source: Option<Arc<dyn AlertSource>>, config: Option<AlertsConfig>) -> Self {
        Gates {
            source,
            config,
            alerts: RwLock::default(),
            counts: Mutex::default(),
        }
    }

    /// Refuses a new grant in a group whose gates are closed, naming the gate but no node
    /// (the caller is not authenticated; the fleet view names them).
    pub(super) fn check(
        &self,
        group: &str,
        gates: &HealthGates,
        caches: &Caches,
    ) -> Result<(), Refusal> {
        match self.closed(group, gates, caches).into_iter().next() {
            None => Ok(()),
            Some(gate) => Err(Refusal::new(
                Kind::HealthGateClosed,
                format!("group {group} grants no new reboot while {gate}"),
            )),
        }
    }

    /// Each gate of `group` that is closed now, in words (without node names).
    pub(super) fn closed(&self, group: &str, gates: &HealthGates, caches: &Caches) -> Vec<String> {
        let on_unreachable = self
            .config
            .as_ref()
            .map_or(OnUnreachable::Block, |a| a.on_unreachable);
        let mut closed = closed_by_alerts(&self.alerts.read(), &gates.alerts, on_unreachable);
        if gates.max_not_ready.is_none() && gates.max_cordoned.is_none() {
            return closed;
        }
        let all = self.counts(caches);
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
        let (Some(source), Some(config)) = (&self.source, &self.config) else {
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
            *self.alerts.write() = state;
            tokio::time::sleep(config.interval).await;
        }
    }

    /// The counts, recounted when older than [`RECOUNT_AFTER`].
    fn counts(&self, caches: &Caches) -> Arc<NodeCounts> {
        let mut cached = self.counts.lock();
        if let Some((at, counts)) = cached.as_ref()
            && at.elapsed() < RECOUNT_AFTER
        {
            return counts.clone();
        }
        let holders = caches.holder_nodes();
        let mut counts = NodeCounts::default();
        for view in caches.nodes().iter() {
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
