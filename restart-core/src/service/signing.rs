//! Our Events: written through the one [`Recorder`], each marked with the key
//! ([`crate::signing`]) that tells them from forged ones in history.
//!
//! The key Events are marked with ([`crate::signing`]): kept in a Secret of the service's
//! namespace, where every replica (and `restartctl` acting directly) finds the same one; the
//! first to find none makes it. Only `get` on that one Secret reads it: a Lease, as an earlier
//! release used, is readable by anyone who may read Leases there, and so could forge history.
//!
//! An earlier release's key Lease is moved into the Secret (so Events it marked still show)
//! and then deleted.

use std::sync::Arc;

use cluster_api::{ClusterApi, Error, Event, EventType, ObjectRef, Recorder, Secret};
use tokio::sync::OnceCell;

use crate::signing::{EventKey, KEY_LEN};

/// The Secret that holds the key (also the name of the Lease an earlier release kept it in).
pub const KEY_SECRET: &str = "restart-manager-event-key";

/// The entry of [`KEY_SECRET`]'s data that holds the key: [`KEY_LEN`] raw bytes.
pub const KEY_ENTRY: &str = "key";

/// The annotation of the earlier release's Lease [`KEY_SECRET`] that held the key, in hex.
pub const LEGACY_KEY_ANNOTATION: &str = "restart-manager.io/event-key";

/// The Event recorder and the key its Events are marked with.
pub(super) struct EventLog {
    api: Arc<dyn ClusterApi>,
    /// Where the key's Secret lives: the service's namespace.
    namespace: String,
    recorder: Recorder,
    /// Read once, when first needed.
    key: OnceCell<EventKey>,
}

impl EventLog {
    pub(super) fn new(api: Arc<dyn ClusterApi>, namespace: String, recorder: Recorder) -> Self {
        EventLog {
            api,
            namespace,
            recorder,
            key: OnceCell::new(),
        }
    }

    /// The key, read once from its Secret (or made, by the first replica that finds none).
    pub(super) async fn key(&self) -> Result<EventKey, Error> {
        self.key
            .get_or_try_init(|| async {
                let key = load_or_make(self).await;
                if let Err(e) = &key {
                    tracing::warn!(error = %e, secret = KEY_SECRET, "cannot read the key Events are marked with");
                }
                key
            })
            .await
            .cloned()
    }

    /// Records an Event of ours about `regarding`; a failure is logged, never returned.
    pub(super) async fn record(
        &self,
        regarding: ObjectRef,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event: Event = self.recorder.event(regarding, type_, reason, action, note);
        // Marked, so that history can tell it from one anybody else wrote; without the key
        // it is still recorded (for `kubectl describe`), and history will not show it.
        let event = match self.key().await {
            Ok(key) => key.sign(event),
            Err(_) => event,
        };
        self.recorder.publish(&event).await;
    }
}

async fn load_or_make(log: &EventLog) -> Result<EventKey, Error> {
    let namespace = &log.namespace;
    // Two tries: another replica may create it between our read and our create.
    for _ in 0..2 {
        match log.api.get_secret(namespace, KEY_SECRET).await {
            Ok(secret) => return key_in(&secret),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let (key, from_lease) = match legacy_key(log).await? {
            Some(legacy) => (legacy, true),
            None => (fresh_key()?, false),
        };
        let secret =
            Secret::new(namespace.clone(), KEY_SECRET).with(KEY_ENTRY, key.as_bytes().to_vec());
        match log.api.create_secret(&secret).await {
            Ok(_) if from_lease => {
                tracing::info!(
                    secret = KEY_SECRET,
                    "moved the key Events are marked with from its Lease into a Secret"
                );
                delete_legacy(log).await;
                return Ok(key);
            }
            Ok(_) => {
                tracing::info!(secret = KEY_SECRET, "made the key Events are marked with");
                return Ok(key);
            }
            // Another replica made it first: read theirs.
            Err(Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::unavailable(format!(
        "the Secret {namespace}/{KEY_SECRET} was made and gone again; try again"
    )))
}

/// The key in its Secret; a Secret that holds none is an error naming it, never replaced.
fn key_in(secret: &Secret) -> Result<EventKey, Error> {
    secret
        .data
        .get(KEY_ENTRY)
        .and_then(|k| EventKey::from_bytes(k))
        .ok_or_else(|| {
            Error::invalid(format!(
                "the Secret {}/{KEY_SECRET} holds no key in data.{KEY_ENTRY} ({KEY_LEN} bytes); \
                 delete it to have a new one made (Events marked with the old key then no \
                 longer show in history)",
                secret.namespace
            ))
        })
}

/// The key an earlier release kept in the Lease of the same name, if there is one.
async fn legacy_key(log: &EventLog) -> Result<Option<EventKey>, Error> {
    let namespace = &log.namespace;
    match log.api.get_lease(namespace, KEY_SECRET).await {
        Ok(lease) => lease
            .annotations
            .get(LEGACY_KEY_ANNOTATION)
            .and_then(|k| EventKey::from_hex(k))
            .map(Some)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the Lease {namespace}/{KEY_SECRET}, where an earlier release kept the key \
                     Events are marked with, holds no key in {LEGACY_KEY_ANNOTATION} ({} hex \
                     digits); delete it to have a new key made in the Secret {KEY_SECRET}",
                    KEY_LEN * 2
                ))
            }),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes the earlier release's key Lease once the Secret holds its key: left there, anyone
/// who reads Leases could still read the key. Nothing tries again later (the Secret exists by
/// then), so a failure is logged as a warning for the operator to act on.
async fn delete_legacy(log: &EventLog) {
    let namespace = &log.namespace;
    match log.api.delete_lease(namespace, KEY_SECRET, None).await {
        Ok(()) | Err(Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(
            error = %e,
            lease = KEY_SECRET,
            "cannot delete the Lease that held the key Events are marked with; it is in the \
             Secret now: delete the Lease by hand, anyone who may read Leases can read it"
        ),
    }
}

fn fresh_key() -> Result<EventKey, Error> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::unavailable(format!("no randomness for a new Event key: {e}")))?;
    Ok(EventKey::new(bytes))
}
