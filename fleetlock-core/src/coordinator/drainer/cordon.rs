//! The drain's first step and its way out: cordon the node for the grant, and leave when the
//! grant is no longer draining, undoing a cordon of ours nobody else will.

use cluster_api::{Error, EventType};

use super::state::{Drainer, Step};
use crate::coordinator::grants::GrantNow;
use crate::coordinator::writes::Cordon;
use crate::drain::DrainPhase;
use crate::group::HolderPhase;

// === impl Drainer: cordon and leave ===

impl Drainer {
    /// Cordons the node (retrying, under the timeout policy), and says the drain has begun.
    /// `Wait` to go on; `Stop` if the node is gone or the drain timed out; `Left` if the grant
    /// stopped draining while it cordoned.
    pub(super) async fn cordon(&mut self) -> Step {
        let drain = &self.inner.config.drain;
        let mut retry = drain.retry_initial;
        loop {
            match self
                .inner
                .cordon(self.node(), &self.group, &self.holder)
                .await
            {
                Ok(Cordon::Wrote) => {
                    self.cordoned_here = true;
                    break;
                }
                Ok(Cordon::Found) => break,
                // Started from a cache that lagged: the grant has moved on (given back,
                // approved, recovering after its steady-state uncordoned the node, or
                // replaced by a later one).
                Ok(Cordon::MovedOn(now)) => return Step::Left(now),
                Err(Error::NotFound { .. }) => {
                    self.publish(
                        DrainPhase::Cancelled,
                        format!("node {} no longer exists", self.node()),
                    );
                    return Step::Stop;
                }
                Err(e) => {
                    self.publish_apart(
                        DrainPhase::Running,
                        format!("draining {}: cannot cordon yet: {e}", self.node()),
                        format!("cannot cordon {} yet; ask again", self.node()),
                    );
                    if self.is_overdue() && !self.on_overdue().await {
                        return Step::Stop;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = self.inner.shutdown.cancelled() => return Step::Stop,
                    }
                    retry = (retry * 2).min(self.inner.config.drain.retry_max);
                }
            }
        }
        // A release or a steady-state that raced the cordon: whoever released, or answered
        // the steady-state, may have uncordoned before our cordon landed, so it is ours to
        // undo.
        if self.cordoned_here {
            match self.inner.grant_now(&self.group, &self.holder).await {
                Ok(GrantNow::Held(HolderPhase::Recovering)) => {
                    tracing::info!(node = %self.node(), "the node is recovering; undoing a late cordon");
                    // On failure (logged) the recovery's next look undoes it.
                    let _ = self.inner.finish_node(self.node(), "recovering", &[]).await;
                    return Step::Left(GrantNow::Held(HolderPhase::Recovering));
                }
                Ok(GrantNow::Held(HolderPhase::Draining)) | Err(_) => {}
                Ok(now) => return Step::Left(now),
            }
        }
        let announced = self.inner.caches.node_state(self.node()).as_deref() == Some("draining");
        if !announced {
            self.inner.annotate(self.node(), "draining", &[]).await;
            self.inner
                .event(
                    self.node(),
                    EventType::Normal,
                    "Draining",
                    "Drain",
                    format!("evicting pods for a reboot in group {}", self.group),
                )
                .await;
        }
        Step::Wait
    }

    /// Undoes the cordon this drain wrote if the node holds no slot any more (`now`, or asked
    /// afresh): whoever released may have uncordoned before our cordon landed. A later grant
    /// of the node needs the cordon; a held one is tidied by its recovery.
    pub(super) async fn undo_our_cordon(&self, now: Option<GrantNow>) {
        if !self.cordoned_here {
            return;
        }
        let now = match now {
            Some(now) => Some(now),
            None => self.inner.grant_now(&self.group, &self.holder).await.ok(),
        };
        if now == Some(GrantNow::Released) {
            // On failure (logged) the node's next steady-state tidies it.
            let _ = self
                .inner
                .finish_node(self.node(), "ready", std::slice::from_ref(&self.holder))
                .await;
        }
    }

    /// The grant is no longer draining (`now`; `None` when the cluster could not say): stop,
    /// telling a waiting request what became of it, and undo our cordon if the slot is gone.
    pub(super) async fn leave(&self, now: Option<GrantNow>) {
        let node = self.node();
        let (phase, message) = match now {
            Some(GrantNow::Held(HolderPhase::Approved)) => (
                DrainPhase::Done,
                format!("{node} is drained; reboot approved"),
            ),
            Some(GrantNow::Held(HolderPhase::Recovering)) => (
                DrainPhase::Cancelled,
                format!("{node} is already back from its reboot"),
            ),
            Some(GrantNow::Replaced) => (
                DrainPhase::Cancelled,
                format!("the reboot slot of {node} was given back and granted again; ask again"),
            ),
            Some(GrantNow::Released | GrantNow::Held(HolderPhase::Draining)) | None => (
                DrainPhase::Cancelled,
                format!("the reboot slot of {node} was given back while draining; ask again"),
            ),
        };
        let grant = match now {
            Some(GrantNow::Held(phase)) => phase.as_str(),
            Some(GrantNow::Released) => "released",
            Some(GrantNow::Replaced) => "granted again",
            None => "unknown",
        };
        tracing::info!(node, group = %self.group, grant, "the grant is no longer draining; drain stopped");
        self.undo_our_cordon(now).await;
        self.inner.drains.forget(&self.holder);
        // The replica that approved counts the drain as completed.
        if phase != DrainPhase::Done {
            self.inner
                .observer
                .drain_finished(&self.group, "cancelled", self.started.elapsed());
        }
        self.publish(phase, message);
    }
}
