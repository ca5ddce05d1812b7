//! The observer both cores are given: metrics always, notifications when sinks are configured.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::WorkloadRef;
use fleetlock_core::RebootNotice;
use restart_core::RestartNotice;

use crate::metrics::Metrics;
use crate::notify::{Notification, Notifier};

/// The observer the cores are given: metrics always, notifications when sinks are configured.
pub struct Hooks {
    /// Counts evictions, drains, restarts and rollouts.
    pub metrics: Arc<Metrics>,
    /// The webhooks transitions are sent to; `None` when none are configured.
    pub notifier: Option<Notifier>,
    /// This replica's name, on every notification.
    pub instance: String,
}

impl Hooks {
    /// Waits until the notifications queued when the shutdown came have been delivered (at
    /// once without notifications).
    pub async fn stopped(&self) {
        if let Some(notifier) = &self.notifier {
            notifier.stopped().await;
        }
    }
}

impl fleetlock_core::Observer for Hooks {
    fn eviction(&self, outcome: &'static str) {
        self.metrics.eviction(outcome);
    }

    fn drain_finished(&self, group: &str, outcome: &'static str, duration: Duration) {
        self.metrics.drain_finished(group, outcome, duration);
    }

    fn wants_notices(&self) -> bool {
        self.notifier.is_some()
    }

    fn reboot(&self, notice: &RebootNotice) {
        if let Some(notifier) = &self.notifier {
            notifier.send(Notification::reboot(notice, &self.instance));
        }
    }
}

impl restart_core::RestartObserver for Hooks {
    fn restarted(&self, workload: &WorkloadRef) {
        self.metrics.restarted(workload);
    }

    fn restart_failed(&self, workload: &WorkloadRef) {
        self.metrics.restart_failed(workload);
    }

    fn rollout_finished(
        &self,
        workload: &WorkloadRef,
        outcome: restart_core::Outcome,
        took: Duration,
    ) {
        self.metrics.rollout_finished(workload, outcome, took);
    }

    fn restart_notice(&self, notice: &RestartNotice) {
        if let Some(notifier) = &self.notifier {
            notifier.send(Notification::restart(notice, &self.instance));
        }
    }

    fn scheduled(&self, target: &str, state: restart_core::schedule::DueState) {
        self.metrics.scheduled(target, state);
    }
}
