use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The object an Event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// `kind`, e.g. `Node`, `Deployment`.
    pub kind: String,
    /// `namespace`; `None` for cluster-scoped objects such as Nodes.
    pub namespace: Option<String>,
    /// The object's `metadata.name` (the Event's `involvedObject.name`).
    pub name: String,
    /// `uid` of the object, when known. `kubectl describe` shows only the Events whose
    /// `involvedObject.uid` is the object's own, so every Event we write should carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// `Normal` or `Warning`, as `kubectl describe` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something an operator may need to look at.
    Warning,
}

/// An Event to record against an object: the audit trail `kubectl describe` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What the event is about.
    pub regarding: ObjectRef,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// A short CamelCase reason, e.g. `RestartRequested`, `Drained`.
    pub reason: String,
    /// What was done, e.g. `Restart`, `Cordon`.
    pub action: String,
    /// The human explanation, including who asked and why.
    pub note: String,
    /// The component that reported it (`reportingController`).
    pub reporting_controller: String,
    /// The replica that reported it (`reportingInstance`).
    pub reporting_instance: String,
    /// When it happened (for a series of repeats: the last time). Filled in by the cluster
    /// when recorded with `None`.
    #[serde(default)]
    pub time: Option<Timestamp>,
    /// How many times it happened: repeats of an identical Event within
    /// [`SERIES_WINDOW`] are recorded as one Event with a growing count (an event series).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The most bytes the API server accepts in a core/v1 Event's note (`message`) when it carries
/// an `eventTime`, as every Event written here does (its core validation, `events.go`).
pub const NOTE_LIMIT: usize = 1024;

/// `note` as the API server will take it: cut at a character boundary to at most
/// [`NOTE_LIMIT`] bytes, ending with how many bytes were left out.
pub fn bounded_note(note: String) -> String {
    if note.len() <= NOTE_LIMIT {
        return note;
    }
    // Room for " … (NNNNNNNNNN more bytes)".
    let mut cut = NOTE_LIMIT - 32;
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    let left_out = note.len() - cut;
    format!("{} … ({left_out} more bytes)", note[..cut].trim_end())
}

/// How long after its last occurrence an Event still absorbs an identical repeat, as
/// client-go's event recorder keeps a series open.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How many open series are remembered; the oldest are forgotten first.
const SERIES_LIMIT: usize = 4096;

/// Folds repeats of an identical Event into one series, as client-go's event recorder does
/// (`series.count`, `series.lastObservedTime`), rather than writing one Event per retry.
///
/// Unlike client-go, the note is part of what makes two Events identical: Events are the
/// audit trail, and "refused for alice" must not absorb "refused for bob". `H` is whatever
/// the recorder needs to find the Event it wrote (its name, say).
#[derive(Debug)]
pub struct EventSeries<H> {
    open: HashMap<SeriesKey, (H, u32, Instant)>,
    order: VecDeque<SeriesKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    regarding: ObjectRef,
    type_: EventType,
    reason: String,
    action: String,
    note: String,
    reporting_controller: String,
    reporting_instance: String,
}

impl SeriesKey {
    fn of(e: &Event) -> Self {
        SeriesKey {
            regarding: e.regarding.clone(),
            type_: e.type_,
            reason: e.reason.clone(),
            action: e.action.clone(),
            note: e.note.clone(),
            reporting_controller: e.reporting_controller.clone(),
            reporting_instance: e.reporting_instance.clone(),
        }
    }
}

// === impl EventSeries ===

impl<H> Default for EventSeries<H> {
    fn default() -> Self {
        EventSeries {
            open: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<H: Clone> EventSeries<H> {
    /// If `event` repeats one recorded within the window, counts it and returns the earlier
    /// Event's handle with the new count; `None` means: record it as a new Event, then call
    /// [`started`](Self::started).
    pub fn repeat(&mut self, event: &Event) -> Option<(H, u32)> {
        let key = SeriesKey::of(event);
        let now = Instant::now();
        let (handle, count, last) = self.open.get_mut(&key)?;
        if now.duration_since(*last) > SERIES_WINDOW {
            self.open.remove(&key);
            return None;
        }
        *count += 1;
        *last = now;
        Some((handle.clone(), *count))
    }

    /// `event` was recorded as a new Event, found again by `handle`.
    pub fn started(&mut self, event: &Event, handle: H) {
        let key = SeriesKey::of(event);
        if self.open.len() >= SERIES_LIMIT {
            while let Some(oldest) = self.order.pop_front() {
                if self.open.remove(&oldest).is_some() {
                    break;
                }
            }
        }
        self.order.push_back(key.clone());
        self.open.insert(key, (handle, 1, Instant::now()));
    }

    /// The Event of this series is gone (expired by the cluster): the next repeat starts a
    /// new one.
    pub fn forget(&mut self, event: &Event) {
        self.open.remove(&SeriesKey::of(event));
    }
}

// === impl ObjectRef ===

impl ObjectRef {
    /// A reference to a cluster-scoped object.
    pub fn cluster(kind: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: None,
            name: name.into(),
            uid: None,
        }
    }

    /// With the object's uid (ignored when empty).
    pub fn with_uid(mut self, uid: impl Into<String>) -> Self {
        let uid = uid.into();
        self.uid = (!uid.is_empty()).then_some(uid);
        self
    }

    /// Whether both name the same object by kind, namespace and name (whatever their uids:
    /// a history spans re-creations of the object).
    pub fn names_same(&self, other: &ObjectRef) -> bool {
        self.kind == other.kind && self.namespace == other.namespace && self.name == other.name
    }

    /// A reference to a namespaced object.
    pub fn namespaced(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
            uid: None,
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(who: &str) -> Event {
        Event {
            regarding: ObjectRef::namespaced("Deployment", "shop", "web").with_uid("u1"),
            type_: EventType::Warning,
            reason: "RestartRefused".into(),
            action: "Restart".into(),
            note: format!("restart by {who} refused"),
            reporting_controller: "restart-manager.io/restart".into(),
            reporting_instance: "a".into(),
            time: None,
            count: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identical_repeats_within_the_window_make_one_series() {
        let mut series = EventSeries::default();
        assert_eq!(series.repeat(&refused("alice")), None);
        series.started(&refused("alice"), "web.1");
        assert_eq!(series.repeat(&refused("alice")), Some(("web.1", 2)));
        assert_eq!(
            series.repeat(&refused("bob")),
            None,
            "another note is another Event"
        );
        tokio::time::advance(SERIES_WINDOW).await;
        assert_eq!(series.repeat(&refused("alice")), Some(("web.1", 3)));
        tokio::time::advance(SERIES_WINDOW + Duration::from_secs(1)).await;
        assert_eq!(
            series.repeat(&refused("alice")),
            None,
            "the series has ended"
        );
    }
}

#[cfg(test)]
mod note_tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_to_the_limit_and_says_what_was_left_out() {
        let short = "drain of n1 blocked".to_string();
        assert_eq!(bounded_note(short.clone()), short);
        let exact = "x".repeat(NOTE_LIMIT);
        assert_eq!(bounded_note(exact.clone()), exact);
        // Multi-byte characters across the cut are never split.
        let long = "é".repeat(3000);
        let bounded = bounded_note(long.clone());
        assert!(bounded.len() <= NOTE_LIMIT, "{}", bounded.len());
        let kept = bounded.split(" … (").next().unwrap();
        assert!(long.starts_with(kept));
        assert!(
            bounded.ends_with(&format!("({} more bytes)", long.len() - kept.len())),
            "{bounded}"
        );
    }
}
