//! What a replica says of a node: Events (through the one [`cluster_api::Recorder`]), and
//! reboot transitions announced to the observer once across replicas ([`crate::notices`]).

use cluster_api::{EventType, ObjectRef};

use super::Inner;
use crate::group::Holder;
use crate::notices::{RebootNotice, RebootTransition};

impl Inner {
    pub(super) async fn event(
        &self,
        node: &str,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let regarding = ObjectRef::cluster("Node", node).with_uid(self.caches.node_uid(node));
        self.recorder
            .record(regarding, type_, reason, action, note)
            .await;
    }

    /// Announces a transition this replica's own compare-and-swap just made.
    pub(super) fn announce(
        &self,
        transition: RebootTransition,
        node: &str,
        group: &str,
        message: &str,
    ) {
        if !self.observer.wants_notices() {
            return;
        }
        self.observer.reboot(&RebootNotice {
            transition,
            node: node.to_string(),
            group: group.to_string(),
            message: message.to_string(),
            time: self.clock.now(),
        });
    }

    /// Announces a transition this replica saw of `grant`, unless another replica already
    /// did: the claim is written into the grant's entry of the group Lease first.
    pub(super) async fn announce_seen(
        &self,
        transition: RebootTransition,
        group: &str,
        grant: &Holder,
        node: &str,
        message: &str,
    ) {
        if !self.observer.wants_notices() {
            return;
        }
        let key = transition.as_str();
        let claimed = self
            .modify_group(group, |state| match state.grant_mut(grant) {
                Some(h) if !h.announced.iter().any(|a| a == key) => {
                    h.announced.push(key.to_string());
                    Ok(true)
                }
                _ => Ok(false),
            })
            .await;
        match claimed {
            Ok((_, first)) => {
                if first {
                    self.announce(transition, node, group, message);
                }
            }
            Err(e) => {
                tracing::warn!(%node, %group, transition = key, error = %e, "could not claim a notification; not sent");
            }
        }
    }
}
