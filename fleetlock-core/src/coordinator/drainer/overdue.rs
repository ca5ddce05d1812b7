//! A drain past `drain.timeout`: give the slot back (`onTimeout: release`), only while the
//! grant is still draining, or warn once and keep waiting.

use cluster_api::EventType;
use cluster_api::duration::humanize;

use super::state::Drainer;
use crate::config::OnDrainTimeout;
use crate::drain::DrainPhase;
use crate::notices::RebootTransition;

// === impl Drainer: overdue ===

impl Drainer {
    /// The drain is past its timeout: apply the policy. False if the drain ends here.
    pub(super) async fn on_overdue(&mut self) -> bool {
        let took = humanize(self.inner.config.drain.timeout);
        match self.inner.config.drain.on_timeout {
            OnDrainTimeout::Release => {
                // Only out of draining, in the compare-and-swap that gives the slot back: a
                // grant that has moved on (approved by another replica, its node perhaps
                // rebooting; given back; granted again) is not this drain's to time out, and
                // when the cluster cannot say, nothing is given back: the next look tries again.
                let released = match self.inner.time_out(&self.group, &self.holder).await {
                    Ok(Ok(released)) => released,
                    Ok(Err(now)) => {
                        self.leave(Some(now)).await;
                        return false;
                    }
                    Err(e) => {
                        tracing::warn!(node = %self.node(), group = %self.group, error = %e, "drain timed out, but its slot could not be given back yet");
                        return true;
                    }
                };
                // Detach before anything awaits, so the tidying does not abort this task.
                self.inner.drains.forget(&self.holder);
                let message = format!(
                    "drain of {} did not finish within {took}; slot given back",
                    self.node()
                );
                tracing::warn!(node = %self.node(), group = %self.group, "{message}");
                // This replica's write made the transition: no claim needed.
                self.inner.announce(
                    RebootTransition::Overdue,
                    self.node(),
                    &self.group,
                    &message,
                );
                self.inner
                    .event(
                        self.node(),
                        EventType::Warning,
                        "DrainTimedOut",
                        "Release",
                        message.clone(),
                    )
                    .await;
                self.inner.observer.drain_finished(
                    &self.group,
                    "timed_out",
                    self.started.elapsed(),
                );
                self.publish(DrainPhase::TimedOut, message);
                if let Err(e) = self
                    .inner
                    .after_release(&self.group, &released, &[], "drain timed out", false, false)
                    .await
                {
                    tracing::warn!(error = %e, "could not tidy the node after a drain timeout");
                }
                false
            }
            OnDrainTimeout::KeepWaiting => {
                if !self.overdue_reported {
                    let message = format!(
                        "drain of {} has taken longer than {took}; still waiting",
                        self.node()
                    );
                    tracing::warn!(node = %self.node(), group = %self.group, "{message}");
                    self.warn(RebootTransition::Overdue, "DrainOverdue", "Drain", message)
                        .await;
                    self.overdue_reported = true;
                }
                true
            }
        }
    }
}
