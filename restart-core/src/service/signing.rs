//! The key Events are marked with ([`crate::signing`]): kept in a Lease of the service's
//! namespace, where every replica (and `restartctl` acting directly) finds the same one; the
//! first to find none makes it.

use cluster_api::{Error, Lease};

use super::Inner;
use crate::signing::{EventKey, KEY_LEN};

/// The Lease that holds the key. It has none of the lock labels: no watch of locks, runs or
/// reboot slots sees it.
pub const KEY_LEASE: &str = "restart-manager-event-key";

/// The annotation of [`KEY_LEASE`] that holds the key, in hex.
pub const KEY_ANNOTATION: &str = "restart-manager.io/event-key";

impl Inner {
    /// The key, read once from its Lease (or made, by the first replica that finds none).
    pub(super) async fn event_key(&self) -> Result<EventKey, Error> {
        self.event_key
            .get_or_try_init(|| async {
                let key = load_or_make(self).await;
                if let Err(e) = &key {
                    tracing::warn!(error = %e, lease = KEY_LEASE, "cannot read the key Events are marked with");
                }
                key
            })
            .await
            .cloned()
    }
}

async fn load_or_make(inner: &Inner) -> Result<EventKey, Error> {
    let namespace = &inner.config.namespace;
    // Two tries: another replica may create it between our read and our create.
    for _ in 0..2 {
        match inner.api.get_lease(namespace, KEY_LEASE).await {
            Ok(lease) => {
                return lease
                    .annotations
                    .get(KEY_ANNOTATION)
                    .and_then(|k| EventKey::from_hex(k))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "the Lease {namespace}/{KEY_LEASE} holds no key in {KEY_ANNOTATION} \
                             ({} hex digits); delete it to have a new one made",
                            KEY_LEN * 2
                        ))
                    });
            }
            Err(Error::NotFound { .. }) => {
                let mut bytes = [0u8; KEY_LEN];
                getrandom::fill(&mut bytes).map_err(|e| {
                    Error::unavailable(format!("no randomness for a new Event key: {e}"))
                })?;
                let key = EventKey::new(bytes);
                let mut lease = Lease::new(namespace.clone(), KEY_LEASE);
                lease
                    .annotations
                    .insert(KEY_ANNOTATION.to_string(), key.to_hex());
                match inner.api.create_lease(&lease).await {
                    Ok(_) => {
                        tracing::info!(lease = KEY_LEASE, "made the key Events are marked with");
                        return Ok(key);
                    }
                    Err(Error::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::unavailable(format!(
        "the Lease {namespace}/{KEY_LEASE} was made and gone again; try again"
    )))
}
