//! What every controller reads: its pods as it sees them, and the rollout arithmetic.

use cluster_api::WorkloadRef;

use crate::budget::IntOrPercent;
use crate::state::{Key, State, template_hash};

/// A controller's view of one of its pods.
pub(super) struct PodView {
    pub(super) key: Key,
    pub(super) revision: String,
    pub(super) ready: bool,
    pub(super) terminating: bool,
    pub(super) ordinal: Option<i32>,
    pub(super) node: Option<String>,
}

impl State {
    pub(super) fn views(&self, r: &WorkloadRef) -> Vec<PodView> {
        self.pods_of(r)
            .into_iter()
            .map(|key| {
                let sp = &self.pods[&key];
                PodView {
                    revision: sp.revision.clone(),
                    ready: sp.pod.ready,
                    terminating: sp.pod.is_terminating(),
                    ordinal: sp.ordinal,
                    node: sp.pod.node_name.clone(),
                    key,
                }
            })
            .collect()
    }

    pub(super) fn current_template_hash(&self, r: &WorkloadRef) -> String {
        let sw = &self.workloads[r];
        template_hash(&sw.spec.effective_pod_labels(), &sw.w.template_annotations)
    }
}

pub(super) fn count(pods: &[&PodView], pred: impl Fn(&PodView) -> bool) -> i32 {
    pods.iter().filter(|p| pred(p)).count() as i32
}

/// Resolves `maxSurge`/`maxUnavailable` against the desired replicas.
pub(super) fn scaled(
    value: Option<IntOrPercent>,
    default: IntOrPercent,
    of: i32,
    round_up: bool,
) -> i32 {
    match value.unwrap_or(default) {
        IntOrPercent::Int(n) => n,
        IntOrPercent::Percent(p) => {
            let p = i32::from(p);
            if round_up {
                (p * of + 99) / 100
            } else {
                p * of / 100
            }
        }
    }
}
