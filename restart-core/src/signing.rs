//! Which Events this service wrote: anyone allowed to create Events in a namespace can write
//! one with our `reportingController`, and its reporting instance too. Each Event we record
//! carries an HMAC-SHA256 of the fields history shows, under a key only the service (and
//! whoever may read its namespace's Leases) knows; history shows only Events whose mark
//! checks out.
//!
//! The mark rides in `reportingInstance` (`<instance>@<mark>`), the one free-text field every
//! Event has: a new field would reach every writer of Events, and the API server takes up to
//! 128 characters there (a pod name is at most 63, the mark 32). Plain functions here; the
//! key's Lease is read and created by the service (`service::signing`).

use cluster_api::Event;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The separator between the reporting instance and the mark.
const MARK: char = '@';

/// Bytes of the key.
pub const KEY_LEN: usize = 32;

/// The key Events are marked with, shared by every replica (and by `restartctl` acting
/// directly) through a Lease in the service's namespace.
#[derive(Clone, PartialEq, Eq)]
pub struct EventKey([u8; KEY_LEN]);

impl std::fmt::Debug for EventKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventKey(..)")
    }
}

impl EventKey {
    /// A key of these bytes.
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        EventKey(bytes)
    }

    /// The key's bytes, as its Secret keeps them.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A key from its bytes; `None` unless there are exactly [`KEY_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_LEN]>::try_from(bytes).ok().map(EventKey)
    }

    /// The key in lowercase hex, as an earlier release kept it in a Lease.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A key from its hex form; `None` unless it is exactly [`KEY_LEN`] bytes of hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != KEY_LEN * 2 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(EventKey(bytes))
    }

    /// The mark of `event`: the first 16 bytes of an HMAC-SHA256, in hex, over what history
    /// shows and what the Event is about. Its count, time and reporting instance are left
    /// out: a series' count and time change after it is written.
    fn mark(&self, event: &Event) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            // Any key length is taken; never reached.
            return String::new();
        };
        let regarding = &event.regarding;
        let type_ = match event.type_ {
            cluster_api::EventType::Normal => "Normal",
            cluster_api::EventType::Warning => "Warning",
        };
        for part in [
            regarding.kind.as_str(),
            regarding.namespace.as_deref().unwrap_or(""),
            regarding.name.as_str(),
            type_,
            event.reason.as_str(),
            event.action.as_str(),
            event.note.as_str(),
            event.reporting_controller.as_str(),
        ] {
            // Length first, so that no two lists of parts read the same.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `event` with its mark after its reporting instance.
    pub fn sign(&self, mut event: Event) -> Event {
        let mark = self.mark(&event);
        event.reporting_instance = format!("{}{MARK}{mark}", event.reporting_instance);
        event
    }

    /// Whether `event` carries the mark this key gives it.
    pub fn verify(&self, event: &Event) -> bool {
        let Some((_, mark)) = event.reporting_instance.rsplit_once(MARK) else {
            return false;
        };
        let expected = self.mark(event);
        // Compared in constant time: the mark is a secret until it is right.
        mark.len() == expected.len()
            && mark
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// The replica that reported an Event, without its mark.
pub fn reporting_instance(event: &Event) -> &str {
    event
        .reporting_instance
        .rsplit_once(MARK)
        .map_or(event.reporting_instance.as_str(), |(instance, _)| instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_api::{EventType, ObjectRef};

    fn event(note: &str) -> Event {
        Event {
            regarding: ObjectRef {
                kind: "Deployment".into(),
                namespace: Some("shop".into()),
                name: "web".into(),
                uid: None,
            },
            type_: EventType::Normal,
            reason: "Restarted".into(),
            action: "Restart".into(),
            note: note.into(),
            reporting_controller: "restart-manager.io/restart".into(),
            reporting_instance: "restart-manager-7d9-abcde".into(),
            time: None,
            count: 1,
        }
    }

    #[test]
    fn a_mark_checks_out_only_under_its_key_and_over_its_fields() {
        let key = EventKey::new([7; KEY_LEN]);
        let signed = key.sign(event("alice restarted it"));
        assert!(key.verify(&signed));
        assert_eq!(reporting_instance(&signed), "restart-manager-7d9-abcde");
        assert!(signed.reporting_instance.len() <= 128);
        // A series grows: its count and time are not marked.
        let mut later = signed.clone();
        later.count = 5;
        assert!(key.verify(&later));

        assert!(!key.verify(&event("alice restarted it")), "no mark");
        assert!(!EventKey::new([8; KEY_LEN]).verify(&signed), "another key");
        let mut changed = signed.clone();
        changed.note = "mallory restarted it".into();
        assert!(!key.verify(&changed), "another note");
        let mut moved = signed.clone();
        moved.regarding.name = "api".into();
        assert!(!key.verify(&moved), "about another workload");
        let mut short = signed;
        short.reporting_instance.pop();
        assert!(!key.verify(&short));
    }

    #[test]
    fn keys_read_back_from_hex_and_refuse_anything_else() {
        let key = EventKey::new(core::array::from_fn(|i| i as u8));
        assert_eq!(EventKey::from_hex(&key.to_hex()), Some(key));
        for bad in ["", "00", &"zz".repeat(KEY_LEN), &"é".repeat(KEY_LEN)] {
            assert_eq!(EventKey::from_hex(bad), None, "{bad:?}");
        }
    }
}
