use std::pin::Pin;

use futures::Stream;

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent<T> {
    /// The complete current set of objects. Always the first event of a stream, and sent again
    /// whenever the stream had to start over (after a `410 Gone`, say): replace what you had.
    Restarted(Vec<T>),
    /// An object was created or changed; this is its new state.
    Applied(T),
    /// An object was deleted (or left the watch's selection); this is its last state.
    Deleted(T),
}

/// A stream of changes, in the order the cluster made them.
///
/// An `Err` item is a failure the stream could not hide; the stream may end after it.
pub type WatchStream<T> = Pin<Box<dyn Stream<Item = crate::Result<WatchEvent<T>>> + Send>>;
