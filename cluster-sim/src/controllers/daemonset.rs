//! The DaemonSet controller: a pod on every node its node selector admits, rolled node by
//! node within `maxUnavailable`; `OnDelete` waits for the pods to be deleted.

use std::collections::BTreeMap;

use cluster_api::{WorkloadRef, WorkloadStatus};

use super::pods::{PodView, count, scaled};
use crate::budget::IntOrPercent;
use crate::spec::StrategyName;
use crate::state::{Key, State};

/// What one pass of the controller works towards.
struct Placement {
    /// The current template's revision.
    rev: String,
    /// The nodes that get a pod.
    eligible: Vec<String>,
    on_delete: bool,
    max_unavailable: i32,
}

impl State {
    pub(super) fn reconcile_daemonset(&mut self, r: &WorkloadRef) {
        let Some(plan) = self.plan_daemonset(r) else {
            return;
        };
        let views = self.views(r);
        self.place_daemon_pods(r, &plan, &views);
        if !plan.on_delete {
            self.roll_daemon_pods(&plan, &views);
        }
        self.update_daemonset_status(r, &plan);
    }

    fn plan_daemonset(&mut self, r: &WorkloadRef) -> Option<Placement> {
        let rev = self.current_template_hash(r);
        let sw = self.workloads.get_mut(r)?;
        sw.target_revision = rev.clone();
        let selector = sw.spec.node_selector.clone();
        let eligible: Vec<String> = self
            .nodes
            .values()
            .filter(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
            .map(|n| n.name.clone())
            .collect();
        let desired = eligible.len() as i32;
        Some(Placement {
            rev,
            eligible,
            on_delete: sw.spec.strategy == Some(StrategyName::OnDelete),
            max_unavailable: scaled(sw.spec.max_unavailable, IntOrPercent::Int(1), desired, true)
                .max(1),
        })
    }

    /// Removes pods from nodes that no longer qualify and gives every eligible node without
    /// one a pod; `views` are the pods before this pass.
    fn place_daemon_pods(&mut self, r: &WorkloadRef, plan: &Placement, views: &[PodView]) {
        let mut by_node: BTreeMap<&str, Vec<&PodView>> = BTreeMap::new();
        for p in views {
            by_node
                .entry(p.node.as_deref().unwrap_or(""))
                .or_default()
                .push(p);
        }
        // Pods on nodes that no longer qualify go.
        let doomed: Vec<Key> = views
            .iter()
            .filter(|p| !p.terminating)
            .filter(|p| !p.node.as_ref().is_some_and(|n| plan.eligible.contains(n)))
            .map(|p| p.key.clone())
            .collect();
        for key in &doomed {
            self.terminate_pod(key, None);
        }
        // Every eligible node gets a pod once its old one has fully gone.
        for node in &plan.eligible {
            if by_node.get(node.as_str()).is_none_or(Vec::is_empty) {
                let name = format!("{}-{}", r.name, self.next_pod_suffix(r));
                self.create_workload_pod(r, name, &plan.rev, None, Some(node));
            }
        }
    }

    /// Replaces pods of an old revision, unready ones first, within `maxUnavailable`; `views`
    /// are the pods before this pass.
    fn roll_daemon_pods(&mut self, plan: &Placement, views: &[PodView]) {
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let mut unavailable = plan
            .eligible
            .iter()
            .filter(|n| {
                !active
                    .iter()
                    .any(|p| p.node.as_deref() == Some(n.as_str()) && p.ready)
            })
            .count() as i32;
        let mut old: Vec<&&PodView> = active.iter().filter(|p| p.revision != plan.rev).collect();
        old.sort_by_key(|p| p.ready);
        let mut doomed = Vec::new();
        for p in old {
            // Replacing an unready pod costs nothing; a ready one costs one unavailable.
            if p.ready {
                if unavailable >= plan.max_unavailable {
                    break;
                }
                unavailable += 1;
            }
            doomed.push(p.key.clone());
        }
        for key in &doomed {
            self.terminate_pod(key, None);
        }
    }

    fn update_daemonset_status(&mut self, r: &WorkloadRef, plan: &Placement) {
        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let Some(sw) = self.workloads.get(r) else {
            return;
        };
        let mut w = sw.w.clone();
        w.status = WorkloadStatus {
            observed_generation: Some(w.generation),
            replicas: active.len() as i32,
            updated_replicas: count(&active, |p| p.revision == plan.rev),
            ready_replicas: count(&active, |p| p.ready),
            available_replicas: count(&active, |p| p.ready),
            desired_number_scheduled: plan.eligible.len() as i32,
            current_revision: None,
            update_revision: None,
            conditions: w.status.conditions.clone(),
        };
        if w.status != sw.w.status {
            self.put_workload(w);
        }
    }
}
