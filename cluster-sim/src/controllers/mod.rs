//! The simulated workload controllers: Deployment (through its ReplicaSets), StatefulSet and
//! DaemonSet, moving pods and status fields the way kube-controller-manager does.

mod daemonset;
mod deployment;
mod pods;
mod statefulset;

use cluster_api::{WorkloadKind, WorkloadRef};

use crate::state::State;

impl State {
    /// Brings one workload's pods and status one step closer to its spec.
    pub(crate) fn reconcile(&mut self, r: &WorkloadRef) {
        if !self.workloads.contains_key(r) {
            return;
        }
        match r.kind {
            WorkloadKind::Deployment => self.reconcile_deployment(r),
            WorkloadKind::StatefulSet => self.reconcile_statefulset(r),
            WorkloadKind::DaemonSet => self.reconcile_daemonset(r),
        }
    }
}
