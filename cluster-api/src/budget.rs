use serde::{Deserialize, Serialize};

use crate::{LabelSelector, Pod};

/// What a drain needs to know about a `policy/v1` PodDisruptionBudget: which pods it covers,
/// and what its status says the disruption controller allows now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisruptionBudget {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.selector`; `None` (no selector) covers no pod, an empty one every pod of the
    /// namespace, as in `policy/v1`.
    pub selector: Option<LabelSelector>,
    /// `status.expectedPods`: how many pods the budget counts on.
    pub expected_pods: i32,
    /// `status.desiredHealthy`: how many of them must stay healthy.
    pub desired_healthy: i32,
    /// `status.currentHealthy`.
    pub current_healthy: i32,
    /// `status.disruptionsAllowed`: evictions the budget allows now.
    pub disruptions_allowed: i32,
}

impl DisruptionBudget {
    /// Whether the budget covers `pod` (same namespace, selector matches).
    pub fn covers(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }

    /// Whether no amount of waiting frees a disruption: the budget wants every pod it counts
    /// on healthy (`maxUnavailable: 0`, `minAvailable` equal to the replicas, a single
    /// replica with `minAvailable: 1`). Only a change to the budget or the workload's scale
    /// lets a covered pod be evicted.
    pub fn never_allows(&self) -> bool {
        self.disruptions_allowed == 0 && self.desired_healthy >= self.expected_pods
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
