//! What this replica writes to Nodes: our state annotation, and cordons (ours only, taken
//! over by a later grant of the same node, undone only by the grant they are for).

use cluster_api::{Error, EventType, NodePatch};

use super::Inner;
use super::grants::GrantNow;
use crate::group::{Holder, HolderPhase};
use crate::nodes::{
    APPROVED_BOOT_ID_ANNOTATION, CORDONED_ANNOTATION, CORDONED_FOR_ANNOTATION, STATE_ANNOTATION,
    STATE_SINCE_ANNOTATION,
};

/// What cordoning a node for a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cordon {
    /// This call wrote the cordon, or took over an earlier grant's (ours to undo if the drain
    /// turns out to be stale).
    Wrote,
    /// The node was cordoned already (by us, or by someone whose cordon we leave alone).
    Found,
    /// The grant is no longer draining: where it stands now.
    MovedOn(GrantNow),
}

impl Inner {
    /// Sets our state annotation (last writer wins: it only reports).
    pub(super) async fn annotate(&self, node: &str, state: &str, extra: &[(&str, Option<String>)]) {
        let mut patch = NodePatch::new()
            .annotate(STATE_ANNOTATION, state)
            .annotate(STATE_SINCE_ANNOTATION, self.clock.now().to_string());
        for (k, v) in extra {
            patch.annotations.insert((*k).to_string(), v.clone());
        }
        match self.api.patch_node(node, &patch).await {
            Ok(written) => self.caches.store_node(written),
            Err(e) => tracing::warn!(node, state, error = %e, "could not annotate node"),
        }
    }

    /// Cordons the node for the drain of `grant` in `group`, unless someone already did,
    /// remembering in the same write that the cordon is ours. The grant is looked up afresh
    /// between reading the node and writing it: a drain started from a lagging cache must not
    /// cordon a node whose holder has moved on (its steady-state may just have uncordoned it).
    pub(super) async fn cordon(
        &self,
        node: &str,
        group: &str,
        grant: &Holder,
    ) -> Result<Cordon, Error> {
        let stamp = cordon_stamp(grant);
        loop {
            let current = self.api.get_node(node).await?;
            let ours = current
                .annotations
                .get(CORDONED_ANNOTATION)
                .is_some_and(|v| v == "true");
            // Our cordon, but an earlier grant's: that grant's release may be about to undo
            // it, so this grant takes it over (the write makes a late uncordon conflict).
            let taking_over =
                ours && current.annotations.get(CORDONED_FOR_ANNOTATION) != Some(&stamp);
            if ours && !taking_over {
                return Ok(Cordon::Found);
            }
            if current.unschedulable && !ours {
                tracing::info!(
                    node,
                    "node already cordoned by someone else; leaving that cordon alone"
                );
                return Ok(Cordon::Found);
            }
            match self.grant_now(group, grant).await? {
                GrantNow::Held(HolderPhase::Draining) => {}
                other => return Ok(Cordon::MovedOn(other)),
            }
            let patch = NodePatch::new()
                .unschedulable(true)
                .annotate(CORDONED_ANNOTATION, "true")
                .annotate(CORDONED_FOR_ANNOTATION, stamp.clone())
                .if_version(&current.resource_version);
            match self.api.patch_node(node, &patch).await {
                Ok(written) => {
                    self.caches.store_node(written);
                    if !taking_over {
                        self.event(
                            node,
                            EventType::Normal,
                            "Cordoned",
                            "Cordon",
                            "cordoned for a coordinated reboot".into(),
                        )
                        .await;
                    }
                    return Ok(Cordon::Wrote);
                }
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Undoes our cordon (only ours) and sets our state annotation to `state` (`ready`, or
    /// `recovering` while the slot is kept). With `released`, the grants just given back: a
    /// cordon a later grant of the node has taken over is that grant's, and the node is left
    /// alone. A node that no longer exists needs nothing.
    pub(super) async fn finish_node(
        &self,
        node: &str,
        state: &str,
        released: &[Holder],
    ) -> Result<(), Error> {
        let result: Result<(), Error> = async {
            loop {
                let current = self.api.get_node(node).await?;
                let ours = current
                    .annotations
                    .get(CORDONED_ANNOTATION)
                    .is_some_and(|v| v == "true");
                // Without a grant named (a cordon from before grants were named), the cordon
                // is the released grant's.
                let later = !released.is_empty()
                    && current
                        .annotations
                        .get(CORDONED_FOR_ANNOTATION)
                        .is_some_and(|s| released.iter().all(|grant| *s != cordon_stamp(grant)));
                if ours && later {
                    tracing::info!(
                        node,
                        "the node was granted again, and its cordon is the later grant's; leaving it"
                    );
                    return Ok(());
                }
                let mut patch = NodePatch::new()
                    .annotate(STATE_ANNOTATION, state)
                    .annotate(STATE_SINCE_ANNOTATION, self.clock.now().to_string())
                    .remove_annotation(APPROVED_BOOT_ID_ANNOTATION)
                    .if_version(&current.resource_version);
                if ours {
                    patch = patch
                        .unschedulable(false)
                        .remove_annotation(CORDONED_ANNOTATION)
                        .remove_annotation(CORDONED_FOR_ANNOTATION);
                }
                match self.api.patch_node(node, &patch).await {
                    Ok(written) => {
                        self.caches.store_node(written);
                        if ours {
                            self.event(
                                node,
                                EventType::Normal,
                                "Uncordoned",
                                "Uncordon",
                                if state == "ready" {
                                    "uncordoned after its reboot slot was released".into()
                                } else {
                                    "uncordoned; its reboot slot is kept until it has healed".into()
                                },
                            )
                            .await;
                        }
                        return Ok(());
                    }
                    Err(Error::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        .await;
        match result {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => {
                tracing::warn!(node, error = %e, "could not uncordon node");
                Err(e)
            }
        }
    }
}

/// What [`CORDONED_FOR_ANNOTATION`] says for `grant`'s cordon.
fn cordon_stamp(grant: &Holder) -> String {
    grant.since.to_string()
}
