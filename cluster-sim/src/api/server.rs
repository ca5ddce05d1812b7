//! The API server's side of the calls: lists, budget arithmetic and the Eviction subresource,
//! on the state.

use cluster_api::{
    EvictOptions, EvictionOutcome, LabelSelector, Lease, Pod, PodFilter, PodPhase, Workload,
    WorkloadFilter, WorkloadRef,
};

use crate::state::{SimPod, State};
use crate::{Budget, BudgetStatus, lease_key};

impl State {
    pub(crate) fn list_pods(&self, filter: &PodFilter) -> Vec<Pod> {
        match &filter.node {
            Some(node) => self
                .pods_on_node(node)
                .iter()
                .map(|k| &self.pods[k].pod)
                .filter(|p| filter.matches(p))
                .cloned()
                .collect(),
            None => self
                .pods
                .values()
                .map(|sp| &sp.pod)
                .filter(|p| filter.matches(p))
                .cloned()
                .collect(),
        }
    }

    pub(crate) fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Vec<Lease> {
        self.leases
            .range(lease_key(namespace, "")..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, l)| selector.matches(&l.labels))
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub(crate) fn list_workloads(&self, filter: &WorkloadFilter) -> Vec<Workload> {
        self.workloads
            .values()
            .map(|sw| &sw.w)
            .filter(|w| filter.matches(w))
            .cloned()
            .collect()
    }

    pub(crate) fn budget_status(&self, budget: &Budget) -> BudgetStatus {
        let matching: Vec<&SimPod> = self
            .pods
            .range((budget.namespace.clone(), String::new())..)
            .take_while(|((ns, _), _)| ns == &budget.namespace)
            .map(|(_, sp)| sp)
            .filter(|sp| budget.selector.matches(&sp.pod.labels))
            .collect();
        let healthy = matching
            .iter()
            .filter(|sp| sp.pod.ready && !sp.pod.is_terminating())
            .count() as i32;
        // Percentages and maxUnavailable count against the owners' desired scale.
        let mut owners: Vec<&WorkloadRef> =
            matching.iter().filter_map(|sp| sp.owner.as_ref()).collect();
        owners.sort();
        owners.dedup();
        let unowned = matching.iter().filter(|sp| sp.owner.is_none()).count() as i32;
        let scale = unowned
            + owners
                .iter()
                .filter_map(|o| self.workloads.get(o))
                .map(|sw| {
                    sw.w.replicas
                        .unwrap_or(sw.w.status.desired_number_scheduled)
                })
                .sum::<i32>();
        budget.status(matching.len() as i32, healthy, scale)
    }

    /// The Eviction subresource: budgets first, then graceful deletion.
    pub(crate) fn evict(
        &mut self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> EvictionOutcome {
        let key = (namespace.to_string(), name.to_string());
        let Some(sp) = self.pods.get(&key) else {
            return EvictionOutcome::Gone;
        };
        let pod = &sp.pod;
        // `deleteOptions.preconditions.uid`: the pod asked for is gone; the one by its name
        // now is another (the API server answers 409; see `ClusterApi::evict_pod`).
        if options.uid.as_ref().is_some_and(|uid| uid != &pod.uid) {
            return EvictionOutcome::Gone;
        }
        // Pods that are not running, or already going, disrupt nothing more.
        let ignores_budgets = pod.is_terminating()
            || matches!(
                pod.phase,
                PodPhase::Pending | PodPhase::Succeeded | PodPhase::Failed
            );
        if !ignores_budgets {
            let budgets: Vec<&Budget> = self
                .budgets
                .values()
                .filter(|b| b.namespace == namespace && b.selector.matches(&pod.labels))
                .collect();
            match budgets.as_slice() {
                [] => {}
                [budget] => {
                    let status = self.budget_status(budget);
                    // An unready pod may go without spending a disruption while the budget
                    // is satisfied and wants healthy pods at all (IfHealthyBudget); otherwise
                    // it needs a disruption like any other pod.
                    let free = !pod.ready
                        && (budget.always_allow_unhealthy
                            || status.desired_healthy > 0
                                && status.current_healthy >= status.desired_healthy);
                    let allowed = free || status.disruptions_allowed > 0;
                    if !allowed {
                        return EvictionOutcome::Blocked {
                            message: format!(
                                "Cannot evict pod as it would violate the pod's disruption \
                                 budget. The disruption budget {} needs {} healthy pods and has \
                                 {} currently",
                                budget.name, status.desired_healthy, status.current_healthy
                            ),
                            retry_after: None,
                        };
                    }
                }
                _ => {
                    return EvictionOutcome::Failed {
                        message: "This pod has more than one PodDisruptionBudget, which the \
                                  eviction subresource does not support."
                            .into(),
                    };
                }
            }
        }
        self.terminate_pod(&key, options.grace_period_seconds);
        EvictionOutcome::Evicted
    }
}
