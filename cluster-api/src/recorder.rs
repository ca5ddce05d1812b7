//! The one way both cores write their Events, after kube-runtime's `events::Recorder`: who
//! reports is fixed when the recorder is made, each Event names only what happened, and a
//! failure to record is logged, never returned (Events are the audit trail, not the state).

use std::sync::Arc;

use crate::ClusterApi;
use crate::clock::Clock;
use crate::event::{Event, EventType, ObjectRef, bounded_note};
use crate::options::CoreOptions;

/// Writes Events as one component of one replica.
#[derive(Clone)]
pub struct Recorder {
    api: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    controller: String,
    instance: String,
}

impl Recorder {
    /// A recorder reporting as `controller` (`reportingController`, e.g.
    /// `restart-manager.io/fleetlock`) from the replica and with the clock of `options`.
    pub fn new(
        api: Arc<dyn ClusterApi>,
        controller: impl Into<String>,
        options: &CoreOptions,
    ) -> Self {
        Recorder {
            api,
            clock: options.clock.clone(),
            controller: controller.into(),
            instance: options.instance.clone(),
        }
    }

    /// The Event this recorder would write: stamped now, reported by us, its note cut to what
    /// the API server accepts (past its limit the Event would be refused and lost).
    pub fn event(
        &self,
        regarding: ObjectRef,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) -> Event {
        Event {
            regarding,
            type_,
            reason: reason.into(),
            action: action.into(),
            note: bounded_note(note),
            reporting_controller: self.controller.clone(),
            reporting_instance: self.instance.clone(),
            time: Some(self.clock.now()),
            count: 1,
        }
    }

    /// Writes `event` (made by [`event`](Self::event), perhaps marked since); a failure is
    /// logged.
    pub async fn publish(&self, event: &Event) {
        if let Err(e) = self.api.record_event(event).await {
            tracing::warn!(
                regarding = %event.regarding,
                reason = %event.reason,
                error = %e,
                "could not record event"
            );
        }
    }

    /// Makes and writes an Event in one step.
    pub async fn record(
        &self,
        regarding: ObjectRef,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = self.event(regarding, type_, reason, action, note);
        self.publish(&event).await;
    }
}
