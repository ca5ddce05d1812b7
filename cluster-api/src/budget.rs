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
    /// `spec.unhealthyPodEvictionPolicy: AlwaysAllow`: a running pod that is not Ready may be
    /// evicted whatever the budget says. `false` is the default, `IfHealthyBudget`.
    #[serde(default)]
    pub always_allow_unhealthy: bool,
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

    /// Whether the Eviction API lets `pod` go without spending one of this budget's
    /// disruptions (the API server's `eviction.go`): a pod that is pending, finished or
    /// already terminating; or a running pod that is not Ready, under `AlwaysAllow`, or
    /// while the budget is satisfied and wants healthy pods at all
    /// (`currentHealthy >= desiredHealthy > 0`, `IfHealthyBudget`).
    pub fn lets_go_without_a_disruption(&self, pod: &crate::Pod) -> bool {
        use crate::PodPhase;
        if pod.is_terminating()
            || matches!(
                pod.phase,
                PodPhase::Pending | PodPhase::Succeeded | PodPhase::Failed
            )
        {
            return true;
        }
        !pod.ready
            && (self.always_allow_unhealthy
                || self.desired_healthy > 0 && self.current_healthy >= self.desired_healthy)
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
