//! What a drain tells people and the node: its progress, and what stops it.

use cluster_api::EventType;

use super::state::Drainer;
use crate::drain::{DrainPhase, DrainPlan, SkippedPod};
use crate::notices::RebootTransition;

/// The most skipped pods a drain status lists.
const SKIPPED_SHOWN: usize = 20;

// === impl Drainer: progress ===

impl Drainer {
    /// A Warning Event on the node, announced as `transition` (once across replicas).
    pub(super) async fn warn(
        &self,
        transition: RebootTransition,
        reason: &str,
        action: &str,
        message: String,
    ) {
        self.inner
            .announce_seen(transition, &self.group, &self.holder, self.node(), &message)
            .await;
        self.inner
            .event(self.node(), EventType::Warning, reason, action, message)
            .await;
    }

    pub(super) async fn report_refusal(
        &mut self,
        message: String,
        plan: &DrainPlan,
        overdue: bool,
    ) {
        if self.refusal_reported.as_ref() != Some(&message) {
            tracing::warn!(node = %self.node(), %message, "drain blocked");
            self.warn(
                RebootTransition::DrainBlocked,
                "DrainBlocked",
                "Drain",
                message.clone(),
            )
            .await;
            self.refusal_reported = Some(message.clone());
        }
        self.status.send_modify(|s| {
            s.phase = DrainPhase::Blocked;
            // Names this node's own pods and the setting that would let them go.
            s.summary = message.clone();
            s.message = message;
            s.skipped = skipped(plan);
            s.overdue = overdue;
        });
    }

    pub(super) fn publish_progress(&self, plan: &DrainPlan, overdue: bool) {
        let left = plan.evict.len() + plan.wait.len();
        let mut message = format!(
            "draining {}: {left} pod{} still to leave",
            self.node(),
            if left == 1 { "" } else { "s" }
        );
        if !plan.wait.is_empty() {
            message.push_str(&format!(
                ", {} finishing its work first (a drain rule)",
                plan.wait.len()
            ));
        }
        let mut summary = message.clone();
        if let Some(first) = self.blocked.values().next() {
            message.push_str(&format!(" (waiting on {})", first.detail));
            summary.push_str(&format!(" (waiting on {})", first.public));
        }
        self.status.send_modify(|s| {
            s.phase = DrainPhase::Running;
            s.message = message;
            s.summary = summary;
            s.pods_left = left;
            s.waiting_for = plan
                .evict
                .iter()
                .chain(plan.wait.iter().map(|(p, _)| p))
                .take(10)
                .map(|p| p.to_string())
                .collect();
            s.blocked = self
                .blocked
                .values()
                .take(5)
                .map(|w| w.detail.clone())
                .collect();
            s.skipped = skipped(plan);
            s.overdue = overdue;
        });
    }
}

pub(super) fn skipped(plan: &DrainPlan) -> Vec<SkippedPod> {
    plan.skip
        .iter()
        .take(SKIPPED_SHOWN)
        .map(|(pod, reason)| SkippedPod {
            pod: pod.to_string(),
            reason: *reason,
        })
        .collect()
}
