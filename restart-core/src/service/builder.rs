//! Building a [`Restarter`].

use std::collections::HashSet;
use std::sync::Arc;

use cluster_api::{ClusterApi, CoreBuilder, CoreOptions, WorkloadRef};

use super::core::{Core, Setup};
use super::observer::{NoopRestartObserver, RestartObserver};
use super::restarter::Restarter;
use super::role::Only;
use super::settings::RestartConfig;
use crate::allowlist::Allowlist;
use crate::sets::RestartSet;

/// Builds a [`Restarter`].
///
/// The options it shares with the FleetLock coordinator's builder (clock, instance,
/// leadership, cache grace, shutdown) are set through [`CoreBuilder`].
pub struct RestarterBuilder {
    api: Arc<dyn ClusterApi>,
    caller_reads: Option<Arc<dyn ClusterApi>>,
    allowlist: Allowlist,
    config: RestartConfig,
    options: CoreOptions,
    observer: Arc<dyn RestartObserver>,
    only: Option<Only>,
    sets: Vec<RestartSet>,
}

impl Restarter {
    /// Starts building the service over a cluster and an allowlist.
    pub fn builder(api: Arc<dyn ClusterApi>, allowlist: Allowlist) -> RestarterBuilder {
        RestarterBuilder {
            api,
            caller_reads: None,
            allowlist,
            config: RestartConfig::default(),
            options: CoreOptions::default(),
            observer: Arc::new(NoopRestartObserver),
            only: None,
            sets: Vec::new(),
        }
    }
}

impl CoreBuilder for RestarterBuilder {
    fn options_mut(&mut self) -> &mut CoreOptions {
        &mut self.options
    }
}

impl RestarterBuilder {
    /// Settings (namespace, lock duration, resync).
    pub fn config(mut self, config: RestartConfig) -> Self {
        self.config = config;
        self
    }

    /// Where to report restarts and rollouts.
    pub fn observer(mut self, observer: Arc<dyn RestartObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Makes this a process that is never the leader but judges the rollouts of `workloads`
    /// (releasing their locks when they end) and drives the runs of `sets` (and judges their
    /// members'), as `restartctl` in direct mode does for what its user asked it to wait
    /// for. It acts on no schedule and no configuration change, and drives no other set.
    /// Overrides [`CoreBuilder::leadership`].
    pub fn only_for(
        mut self,
        workloads: impl IntoIterator<Item = WorkloadRef>,
        sets: impl IntoIterator<Item = String>,
    ) -> Self {
        self.only = Some(Only {
            workloads: workloads.into_iter().collect(),
            sets: sets.into_iter().collect::<HashSet<_>>(),
        });
        self
    }

    /// Where dry runs and history read what the caches do not hold (pods, disruption
    /// budgets, Events): a handle on the same cluster with a client-side budget of its own,
    /// so that callers asking for many of them never hold up lock writes and restarts. The
    /// cluster handle the service was built with, unless set.
    pub fn caller_reads(mut self, api: Arc<dyn ClusterApi>) -> Self {
        self.caller_reads = Some(api);
        self
    }

    /// The restart sets (checked against the allowlist by [`crate::sets::check_sets`]).
    pub fn sets(mut self, sets: Vec<RestartSet>) -> Self {
        self.sets = sets;
        self
    }

    /// The service.
    pub fn build(mut self) -> Restarter {
        if let Some(only) = &mut self.only {
            // A set it drives moves on only as its members' rollouts are judged.
            let members = self
                .sets
                .iter()
                .filter(|s| only.sets.contains(&s.name))
                .flat_map(|s| s.members.iter().cloned());
            only.workloads.extend(members.collect::<Vec<_>>());
        }
        let setup = Setup {
            caller_reads: self.caller_reads.unwrap_or_else(|| self.api.clone()),
            api: self.api,
            allowlist: self.allowlist,
            config: self.config,
            options: self.options,
            observer: self.observer,
            only: self.only,
            sets: self.sets,
        };
        Restarter {
            core: Arc::new(Core::new(setup)),
        }
    }
}
