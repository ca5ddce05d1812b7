//! The hooks an embedder's metrics hang on.

use std::time::Duration;

use cluster_api::WorkloadRef;

use crate::lock::Outcome;
use crate::notices::RestartNotice;
use crate::schedule::DueState;

/// Hooks for metrics; every method has a no-op default.
pub trait RestartObserver: Send + Sync + 'static {
    /// A restart was applied to the workload.
    fn restarted(&self, _workload: &WorkloadRef) {}
    /// A restart failed: it could not be applied, its rollout failed, or it timed out.
    fn restart_failed(&self, _workload: &WorkloadRef) {}
    /// A restart's rollout ended, after `took` since the restart.
    fn rollout_finished(&self, _workload: &WorkloadRef, _outcome: Outcome, _took: Duration) {}
    /// A restart transition, announced once across replicas ([`crate::notices`]). Must not
    /// block.
    fn restart_notice(&self, _notice: &RestartNotice) {}
    /// A scheduled restart of `target` (a workload, or `restart set NAME`) started or was
    /// skipped; reported once across replicas.
    fn scheduled(&self, _target: &str, _state: DueState) {}
}

/// A [`RestartObserver`] that records nothing.
#[derive(Debug, Default)]
pub struct NoopRestartObserver;

impl RestartObserver for NoopRestartObserver {}
