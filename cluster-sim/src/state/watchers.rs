//! Registration of the watches the cluster feeds.

use cluster_api::{Lease, Node, Pod, PodFilter, Result, WatchEvent, Workload, WorkloadFilter};
use tokio::sync::mpsc::UnboundedSender;

use super::{LeaseFilter, Watchers};

impl Watchers {
    pub(crate) fn add_nodes(&mut self, tx: UnboundedSender<Result<WatchEvent<Node>>>) {
        self.nodes.push(tx);
    }

    pub(crate) fn add_pods(
        &mut self,
        filter: PodFilter,
        tx: UnboundedSender<Result<WatchEvent<Pod>>>,
    ) {
        self.pods.push((filter, tx));
    }

    pub(crate) fn add_leases(
        &mut self,
        filter: LeaseFilter,
        tx: UnboundedSender<Result<WatchEvent<Lease>>>,
    ) {
        self.leases.push((filter, tx));
    }

    pub(crate) fn add_workloads(
        &mut self,
        filter: WorkloadFilter,
        tx: UnboundedSender<Result<WatchEvent<Workload>>>,
    ) {
        self.workloads.push((filter, tx));
    }
}
