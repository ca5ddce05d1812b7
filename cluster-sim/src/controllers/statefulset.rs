//! The StatefulSet controller: `OrderedReady` pods, one ordinal at a time from the top,
//! respecting `partition`; `OnDelete` waits for the pods to be deleted.

use std::collections::BTreeMap;

use cluster_api::{WorkloadRef, WorkloadStatus};

use super::pods::{PodView, count};
use crate::spec::StrategyName;
use crate::state::State;

/// What one pass of the controller works towards.
struct Ordered {
    /// The `updateRevision`: the current template's.
    update: String,
    /// The `currentRevision`: the one all pods were at last.
    current: String,
    desired: i32,
    on_delete: bool,
    /// Ordinals below it keep the current revision.
    partition: i32,
}

impl State {
    pub(super) fn reconcile_statefulset(&mut self, r: &WorkloadRef) {
        let Some(plan) = self.plan_statefulset(r) else {
            return;
        };
        self.step_statefulset(r, &plan);
        self.update_statefulset_status(r, plan);
    }

    fn plan_statefulset(&mut self, r: &WorkloadRef) -> Option<Ordered> {
        let hash = self.current_template_hash(r);
        let sw = self.workloads.get_mut(r)?;
        let update = format!("{}-{hash}", r.name);
        sw.target_revision = update.clone();
        let current =
            sw.w.status
                .current_revision
                .clone()
                .unwrap_or_else(|| update.clone());
        let on_delete = sw.spec.strategy == Some(StrategyName::OnDelete);
        let partition = if on_delete {
            0
        } else {
            sw.spec.partition.unwrap_or(0).max(0)
        };
        Some(Ordered {
            update,
            current,
            desired: sw.w.replicas.unwrap_or(1).max(0),
            on_delete,
            partition,
        })
    }

    /// Creates, deletes or replaces at most one pod.
    fn step_statefulset(&mut self, r: &WorkloadRef, plan: &Ordered) {
        let views = self.views(r);
        let by_ordinal: BTreeMap<i32, &PodView> =
            views.iter().filter_map(|p| Some((p.ordinal?, p))).collect();

        // OrderedReady: create missing ordinals one at a time, each after the ones below it
        // are Running and Ready.
        for i in 0..plan.desired {
            match by_ordinal.get(&i) {
                None => {
                    let rev = if plan.on_delete || i >= plan.partition {
                        &plan.update
                    } else {
                        &plan.current
                    };
                    self.create_workload_pod(r, format!("{}-{i}", r.name), rev, Some(i), None);
                    return;
                }
                Some(p) if p.terminating || !p.ready => return,
                Some(_) => {}
            }
        }
        // Scale down from the highest ordinal, one at a time.
        if let Some((_, p)) = by_ordinal.iter().rev().find(|(i, _)| **i >= plan.desired) {
            if !p.terminating {
                let key = p.key.clone();
                self.terminate_pod(&key, None);
            }
            return;
        }
        // RollingUpdate: replace the highest ordinal not at the update revision.
        if !plan.on_delete {
            let stale = (plan.partition..plan.desired)
                .rev()
                .filter_map(|i| by_ordinal.get(&i))
                .find(|p| p.revision != plan.update)
                .map(|p| p.key.clone());
            if let Some(key) = stale {
                self.terminate_pod(&key, None);
            }
        }
    }

    fn update_statefulset_status(&mut self, r: &WorkloadRef, plan: Ordered) {
        let views = self.views(r);
        let active: Vec<&PodView> = views.iter().filter(|p| !p.terminating).collect();
        let updated = count(&active, |p| p.revision == plan.update);
        let all_updated = updated == plan.desired && active.len() as i32 == plan.desired;
        let Some(sw) = self.workloads.get(r) else {
            return;
        };
        let mut w = sw.w.clone();
        w.status = WorkloadStatus {
            observed_generation: Some(w.generation),
            replicas: active.len() as i32,
            updated_replicas: updated,
            ready_replicas: count(&active, |p| p.ready),
            available_replicas: count(&active, |p| p.ready),
            desired_number_scheduled: 0,
            current_revision: Some(if all_updated {
                plan.update.clone()
            } else {
                plan.current
            }),
            update_revision: Some(plan.update),
            conditions: w.status.conditions.clone(),
        };
        if w.status != sw.w.status {
            self.put_workload(w);
        }
    }
}
