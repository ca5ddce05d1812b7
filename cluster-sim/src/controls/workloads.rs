//! Workloads to add, change and remove.

use std::collections::BTreeMap;

use cluster_api::{
    Error, LabelSelector, PodPhase, Result, Workload, WorkloadKind, WorkloadRef, WorkloadStatus,
};

use crate::state::{self, SimWorkload, State};
use crate::{SimCluster, StrategyName, WorkloadSpec, workload_not_found};

impl SimCluster {
    /// Adds a workload; its controller creates its pods, which start at once, so the cluster
    /// begins settled.
    pub fn add_workload(&self, spec: WorkloadSpec) -> Result<Workload> {
        spec.validate().map_err(|e| Error::invalid(e.to_string()))?;
        let r = spec.reference();
        self.with(|st| {
            if st.workloads.contains_key(&r) {
                return Err(Error::already_exists(
                    &format!("{}.apps", r.kind.resource()),
                    &r.name,
                ));
            }
            let w = new_workload(&spec, st.next_uid());
            st.workloads.insert(
                r.clone(),
                SimWorkload {
                    w: w.clone(),
                    spec,
                    target_revision: String::new(),
                    history: Vec::new(),
                    stalled: false,
                    progress_at: st.now,
                    seq: 0,
                },
            );
            st.put_workload(w);
            bring_up(st, &r);
            Ok(st.workloads[&r].w.clone())
        })
    }

    fn edit_workload(&self, r: &WorkloadRef, edit: impl FnOnce(&mut SimWorkload)) -> Result<()> {
        self.with(|st| {
            let sw = st
                .workloads
                .get_mut(r)
                .ok_or_else(|| workload_not_found(r))?;
            edit(sw);
            let w = sw.w.clone();
            st.put_workload(w);
            let delay = st.config.controller_delay;
            st.schedule(
                delay,
                state::Timer::Sync {
                    workload: r.clone(),
                },
            );
            Ok(())
        })
    }

    /// Deletes a workload, as `kubectl delete` does: its pods are deleted gracefully after it.
    pub fn remove_workload(&self, r: &WorkloadRef) -> Option<Workload> {
        self.with(|st| st.remove_workload(r))
    }

    /// Pauses or resumes a Deployment (`spec.paused`).
    pub fn set_paused(&self, r: &WorkloadRef, paused: bool) -> Result<()> {
        self.edit_workload(r, |sw| {
            if sw.w.paused != paused {
                sw.w.paused = paused;
                sw.w.generation += 1;
            }
        })
    }

    /// Scales a Deployment or StatefulSet.
    pub fn scale(&self, r: &WorkloadRef, replicas: i32) -> Result<()> {
        self.edit_workload(r, |sw| {
            if sw.w.replicas != Some(replicas) {
                sw.w.replicas = Some(replicas);
                sw.w.generation += 1;
            }
        })
    }

    /// From now on, new pods of this workload crash-loop (Running, never Ready), so a rollout
    /// stalls and a Deployment runs into its progress deadline; `false` fixes it for pods
    /// created afterwards.
    pub fn stall_rollouts(&self, r: &WorkloadRef, stalled: bool) -> Result<()> {
        self.edit_workload(r, |sw| sw.stalled = stalled)
    }
}

/// The workload object `spec` describes, as the API server stores it on create.
fn new_workload(spec: &WorkloadSpec, uid: String) -> Workload {
    Workload {
        kind: spec.kind,
        namespace: spec.namespace.clone(),
        name: spec.name.clone(),
        uid,
        resource_version: String::new(),
        generation: 1,
        labels: spec.effective_pod_labels(),
        annotations: spec.annotations.clone(),
        replicas: match spec.kind {
            WorkloadKind::DaemonSet => None,
            _ => Some(spec.replicas.unwrap_or(1)),
        },
        paused: spec.paused,
        strategy: match spec.strategy {
            Some(StrategyName::Recreate) => cluster_api::UpdateStrategy::Recreate,
            Some(StrategyName::OnDelete) => cluster_api::UpdateStrategy::OnDelete,
            // The API server defaults a RollingUpdate StatefulSet's partition to 0,
            // and kubectl judges its rollout by that.
            _ => cluster_api::UpdateStrategy::RollingUpdate {
                partition: match spec.kind {
                    WorkloadKind::StatefulSet => Some(spec.partition.unwrap_or(0)),
                    _ => None,
                },
            },
        },
        progress_deadline_seconds: match spec.kind {
            WorkloadKind::Deployment => Some(spec.progress_deadline_seconds.unwrap_or(600)),
            _ => None,
        },
        selector: LabelSelector {
            match_labels: spec.effective_pod_labels(),
            match_expressions: vec![],
        },
        template_annotations: BTreeMap::new(),
        config_refs: cluster_api::config_refs(spec.config_refs.iter().cloned()),
        status: WorkloadStatus::default(),
    }
}

/// Brings a new workload up at once: reconcile, start every bound pod, repeat until quiet.
fn bring_up(st: &mut State, r: &WorkloadRef) {
    for _ in 0..10_000 {
        st.dirty.insert(r.clone());
        st.settle();
        let starting: Vec<_> = st
            .pods_of(r)
            .into_iter()
            .filter(|k| {
                let p = &st.pods[k].pod;
                p.node_name.is_some() && !p.ready && !p.is_terminating()
            })
            .collect();
        if starting.is_empty() {
            break;
        }
        for key in starting {
            let mut sp = st.pods[&key].clone();
            sp.pod.phase = PodPhase::Running;
            sp.pod.ready = true;
            st.put_pod(sp);
        }
    }
}
