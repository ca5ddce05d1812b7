use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent<T> {
    /// The complete current set of objects. Always the first event of a stream, and sent again
    /// whenever the stream had to start over (after a `410 Gone`, say): replace what you had.
    Restarted(Vec<T>),
    /// One object of a full list that is still arriving. Large lists come in pages, and a
    /// stream may pass them on object by object instead of holding the whole list: the list
    /// then ends with a [`Restarted`](Self::Restarted) carrying the rest (often nothing), and
    /// the current set is everything `Listed` since the last other event, plus that rest.
    /// [`whole_lists`] turns such a stream back into one of whole `Restarted` lists.
    Listed(T),
    /// An object was created or changed; this is its new state.
    Applied(T),
    /// An object was deleted (or left the watch's selection); this is its last state.
    Deleted(T),
}

/// A stream of changes, in the order the cluster made them.
///
/// An `Err` item is a failure the stream could not hide; the stream may end after it.
pub type WatchStream<T> = Pin<Box<dyn Stream<Item = crate::Result<WatchEvent<T>>> + Send>>;

/// A stream like `stream` whose full lists always arrive whole, in one
/// [`WatchEvent::Restarted`]: for consumers that want a list at once and can afford it.
pub fn whole_lists<T: Send + 'static>(stream: WatchStream<T>) -> WatchStream<T> {
    Box::pin(futures::stream::unfold(
        (stream, Vec::new()),
        |(mut stream, mut pending)| async move {
            loop {
                let event = match stream.next().await? {
                    Ok(WatchEvent::Listed(object)) => {
                        pending.push(object);
                        continue;
                    }
                    Ok(WatchEvent::Restarted(rest)) => {
                        pending.extend(rest);
                        Ok(WatchEvent::Restarted(std::mem::take(&mut pending)))
                    }
                    Err(e) => {
                        pending.clear();
                        Err(e)
                    }
                    Ok(other) => Ok(other),
                };
                return Some((event, (stream, pending)));
            }
        },
    ))
}

/// The longest wait between attempts to reopen a watch.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Follows a watch for as long as the returned future runs: opens it with `open` and hands
/// every event to `apply`. When the stream fails or ends, `apply` hears about it (`Err`), and
/// the watch is opened again after a backoff (one second, doubling to thirty, back to one
/// after every full list), so a consumer never has to write this loop itself.
pub async fn follow<T, Fut>(
    what: &str,
    mut open: impl FnMut() -> Fut,
    mut apply: impl FnMut(Result<WatchEvent<T>, &crate::Error>),
) where
    Fut: Future<Output = crate::Result<WatchStream<T>>>,
{
    let mut backoff = Duration::from_secs(1);
    loop {
        let broken = match open().await {
            Ok(mut stream) => loop {
                match stream.next().await {
                    Some(Ok(event)) => {
                        if matches!(event, WatchEvent::Restarted(_)) {
                            backoff = Duration::from_secs(1);
                        }
                        apply(Ok(event));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "{what} watch failed; reopening it");
                        break e;
                    }
                    None => break crate::Error::unavailable(format!("the {what} watch ended")),
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch {what}");
                e
            }
        };
        apply(Err(&broken));
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
