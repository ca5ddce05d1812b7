//! Watch-fed caches: the one way the cores keep a copy of cluster state.
//!
//! A cache implements [`WatchCache`] (what a full list, a change and a deletion do to it);
//! [`feed`] follows a watch into it and keeps its [`CacheHealth`] current, so readiness is
//! told one way everywhere. [`Store`] is the common case: objects by key that never go back
//! to an older `resourceVersion`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::RwLock;

use crate::{CacheHealth, Lease, Node, WatchEvent, WatchStream, Workload, follow};

/// Something a watch keeps current.
///
/// Methods take `&self`: a cache guards its own state, and its reader answers requests while
/// the watch writes.
pub trait WatchCache<T>: Send + Sync {
    /// A full list arrived: it is the whole truth, and what it lacks was deleted meanwhile.
    /// For a cache that [takes lists in pieces](Self::takes_lists_in_pieces), `all` is only
    /// the rest of the list its [`listed`](Self::listed) calls began.
    fn reset(&self, all: Vec<T>);
    /// Whether this cache takes a large list object by object ([`listed`](Self::listed),
    /// then [`reset`](Self::reset) with the rest), so that the list is never held whole.
    /// Otherwise (the default) [`feed`] gathers it and calls `reset` once.
    fn takes_lists_in_pieces(&self) -> bool {
        false
    }
    /// One object of a list still arriving ([`WatchEvent::Listed`]); called only if the
    /// cache [takes lists in pieces](Self::takes_lists_in_pieces).
    fn listed(&self, _object: T) {}
    /// The watch broke, in the middle of a list perhaps: the next list starts afresh.
    fn broken(&self) {}
    /// An object was created or changed; this is its new state.
    fn apply(&self, object: T);
    /// An object was deleted (or left the watch's selection); this is its last state.
    fn delete(&self, object: T);
}

/// Keeps `cache` current from the watch `open` opens, for as long as the returned future
/// runs, and `health` with it: synced and healthy after every full list, broken from a
/// failure until the next. The watch is reopened with [`follow`]'s backoff.
pub async fn feed<T, Fut>(
    what: &str,
    open: impl FnMut() -> Fut,
    cache: &(impl WatchCache<T> + ?Sized),
    health: &CacheHealth,
) where
    Fut: Future<Output = crate::Result<WatchStream<T>>>,
{
    let pieces = cache.takes_lists_in_pieces();
    let mut pending = Vec::new();
    follow(what, open, |event| match event {
        Ok(WatchEvent::Listed(object)) if pieces => cache.listed(object),
        Ok(WatchEvent::Listed(object)) => pending.push(object),
        Ok(WatchEvent::Restarted(mut rest)) => {
            if !pending.is_empty() {
                pending.append(&mut rest);
                rest = std::mem::take(&mut pending);
            }
            cache.reset(rest);
            health.restarted();
        }
        Ok(WatchEvent::Applied(object)) => cache.apply(object),
        Ok(WatchEvent::Deleted(object)) => cache.delete(object),
        Err(e) => {
            pending.clear();
            cache.broken();
            health.failed(e);
        }
    })
    .await;
}

/// An object that carries the `resourceVersion` it was read at.
pub trait Versioned {
    /// The `resourceVersion` this copy was read at.
    fn resource_version(&self) -> &str;
}

impl Versioned for Node {
    fn resource_version(&self) -> &str {
        &self.resource_version
    }
}

impl Versioned for Lease {
    fn resource_version(&self) -> &str {
        &self.resource_version
    }
}

impl Versioned for Workload {
    fn resource_version(&self) -> &str {
        &self.resource_version
    }
}

impl Versioned for crate::ConfigObject {
    fn resource_version(&self) -> &str {
        &self.resource_version
    }
}

/// Whether `new` may replace `old`: the one "is this version newer" check. A copy read at an
/// older `resourceVersion` than the one held is stale (a watch event overtaken by a fresh
/// read, say); versions that cannot be compared count as newer.
pub fn replaces<V: Versioned>(new: &V, old: &V) -> bool {
    !crate::is_older_version(new.resource_version(), old.resource_version())
}

/// Objects by key that never go back in time: an object replaces the one held only if it was
/// read at the same or a newer `resourceVersion` ([`replaces`]).
///
/// Watches and fresh reads (after a compare-and-swap, say) may both write; whichever is
/// newest stays. A full list ([`reset`](Self::reset)) replaces everything but the copies
/// newer than its own.
#[derive(Debug)]
pub struct Store<K, V> {
    objects: RwLock<HashMap<K, V>>,
}

impl<K, V> Default for Store<K, V> {
    fn default() -> Self {
        Store {
            objects: RwLock::new(HashMap::new()),
        }
    }
}

// === impl Store ===

impl<K: Eq + Hash + Clone, V: Versioned> Store<K, V> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the object under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.objects.read().get(key).cloned()
    }

    /// Reads the whole map under the lock; keep `f` short, the watch waits for it.
    pub fn read<R>(&self, f: impl FnOnce(&HashMap<K, V>) -> R) -> R {
        f(&self.objects.read())
    }

    /// Stores `object` under `key` unless the store holds a newer copy. Whether it was stored.
    pub fn insert(&self, key: K, object: V) -> bool {
        let mut objects = self.objects.write();
        match objects.get_mut(&key) {
            Some(old) if !replaces(&object, old) => false,
            Some(old) => {
                *old = object;
                true
            }
            None => {
                objects.insert(key, object);
                true
            }
        }
    }

    /// Removes the object under `key`. Whether there was one.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.objects.write().remove(key).is_some()
    }

    /// Replaces everything with `all` (a full list), except that an object held at a newer
    /// `resourceVersion` than the list's copy stays: the list was read before this replica
    /// wrote (or freshly read) it, and going back to the list's copy would undo the write
    /// until its watch event arrives. The keys that were held and are not in `all`, i.e.
    /// deleted since the last list.
    pub fn reset(&self, all: impl IntoIterator<Item = (K, V)>) -> Vec<K> {
        let mut fresh: HashMap<K, V> = all.into_iter().collect();
        let mut objects = self.objects.write();
        let mut gone = Vec::new();
        for (key, held) in objects.drain() {
            match fresh.get_mut(&key) {
                Some(listed) if !replaces(listed, &held) => *listed = held,
                Some(_) => {}
                None => gone.push(key),
            }
        }
        *objects = fresh;
        gone
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.objects.read().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn lease(name: &str, version: &str) -> Lease {
        Lease {
            resource_version: version.into(),
            ..Lease::new("ns", name)
        }
    }

    #[test]
    fn a_store_never_goes_back_to_an_older_version() {
        let store = Store::new();
        assert!(store.insert("a", lease("a", "10")));
        assert!(!store.insert("a", lease("a", "9")), "stale copy kept out");
        assert_eq!(store.get(&"a").unwrap().resource_version, "10");
        assert!(
            store.insert("a", lease("a", "10")),
            "the same version is taken"
        );
        assert!(store.insert("a", lease("a", "11")));
        assert!(store.insert("b", lease("b", "1")));
        let gone = store.reset([("b", lease("b", "2")), ("c", lease("c", "3"))]);
        assert_eq!(gone, vec!["a"], "a full list tells what was deleted");
        assert_eq!(store.len(), 2);
        assert!(store.remove(&"b") && !store.remove(&"b"));
    }

    /// This replica writes a Lease (version 12) while a list is under way; the list, read
    /// before the write, brings version 10. The cache keeps the write.
    #[test]
    fn a_full_list_does_not_undo_a_newer_write_made_while_it_was_read() {
        let store = Store::new();
        store.insert("a", lease("a", "9"));
        store.insert("b", lease("b", "9"));
        // The list starts; meanwhile this replica writes `a`.
        assert!(store.insert("a", lease("a", "12")));
        let gone = store.reset([("a", lease("a", "10")), ("b", lease("b", "11"))]);
        assert!(gone.is_empty());
        assert_eq!(
            store.get(&"a").unwrap().resource_version,
            "12",
            "the newer copy stays"
        );
        assert_eq!(
            store.get(&"b").unwrap().resource_version,
            "11",
            "the list's newer copy"
        );
    }

    /// A cache that records what it was told.
    #[derive(Default)]
    struct Log(parking_lot::Mutex<Vec<String>>);

    impl WatchCache<Lease> for Log {
        fn reset(&self, all: Vec<Lease>) {
            self.0.lock().push(format!("reset {}", all.len()));
        }
        fn apply(&self, object: Lease) {
            self.0.lock().push(format!("apply {}", object.name));
        }
        fn delete(&self, object: Lease) {
            self.0.lock().push(format!("delete {}", object.name));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn feed_drives_the_cache_and_its_health_and_reopens_a_broken_watch() {
        let log = Arc::new(Log::default());
        let health = Arc::new(CacheHealth::new("lease"));
        let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open = {
            let opened = opened.clone();
            move || {
                let n = opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let events: Vec<crate::Result<WatchEvent<Lease>>> = if n == 0 {
                    vec![
                        Ok(WatchEvent::Restarted(vec![lease("a", "1")])),
                        Ok(WatchEvent::Applied(lease("b", "2"))),
                        Ok(WatchEvent::Deleted(lease("a", "3"))),
                        Err(crate::Error::unavailable("connection reset")),
                    ]
                } else {
                    vec![Ok(WatchEvent::Restarted(Vec::new()))]
                };
                let stream: WatchStream<Lease> = Box::pin(futures::stream::iter(events).chain(
                    futures::stream::pending(), // a watch that stays open
                ));
                std::future::ready(Ok(stream))
            }
        };
        let task = {
            let (log, health) = (log.clone(), health.clone());
            tokio::spawn(async move { feed("lease", open, &*log, &health).await })
        };
        health.wait_synced().await;
        tokio::task::yield_now().await;
        assert!(!health.is_healthy(), "the failure is told");
        assert_eq!(*log.0.lock(), ["reset 1", "apply b", "delete a"]);
        tokio::time::advance(Duration::from_secs(1)).await;
        health.wait_healthy().await;
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(log.0.lock().last().unwrap(), "reset 0");
        task.abort();
    }

    /// A cache that takes lists in pieces, recording what it was told.
    #[derive(Default)]
    struct Pieces(Log);

    impl WatchCache<Lease> for Pieces {
        fn reset(&self, rest: Vec<Lease>) {
            self.0.reset(rest);
        }
        fn takes_lists_in_pieces(&self) -> bool {
            true
        }
        fn listed(&self, object: Lease) {
            self.0.0.lock().push(format!("listed {}", object.name));
        }
        fn apply(&self, object: Lease) {
            self.0.apply(object);
        }
        fn delete(&self, object: Lease) {
            self.0.delete(object);
        }
        fn broken(&self) {
            self.0.0.lock().push("broken".into());
        }
    }

    /// A list in pieces, a change, then a list broken off by a failure.
    fn pieces_then_failure() -> WatchStream<Lease> {
        let events: Vec<crate::Result<WatchEvent<Lease>>> = vec![
            Ok(WatchEvent::Listed(lease("a", "1"))),
            Ok(WatchEvent::Listed(lease("b", "1"))),
            Ok(WatchEvent::Restarted(vec![lease("c", "1")])),
            Ok(WatchEvent::Applied(lease("d", "2"))),
            Ok(WatchEvent::Listed(lease("e", "3"))),
            Err(crate::Error::unavailable("connection reset")),
        ];
        Box::pin(futures::stream::iter(events).chain(futures::stream::pending()))
    }

    /// Feeds `cache` from [`pieces_then_failure`] until the watch is down for good (it is
    /// reopened once, onto a watch that says nothing).
    async fn feed_pieces_then_failure(cache: &impl WatchCache<Lease>) {
        let health = CacheHealth::new("lease");
        let mut stream = Some(pieces_then_failure());
        let open = || {
            std::future::ready(Ok(stream
                .take()
                .unwrap_or_else(|| Box::pin(futures::stream::pending()))))
        };
        tokio::select! {
            () = feed("lease", open, cache, &health) => unreachable!(),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lists_in_pieces_reach_each_cache_as_it_takes_them() {
        let whole = Log::default();
        feed_pieces_then_failure(&whole).await;
        assert_eq!(
            *whole.0.lock(),
            ["reset 3", "apply d"],
            "gathered into one reset; the broken list never reaches the cache"
        );

        let pieces = Pieces::default();
        feed_pieces_then_failure(&pieces).await;
        assert_eq!(
            *pieces.0.0.lock(),
            [
                "listed a", "listed b", "reset 1", "apply d", "listed e", "broken"
            ]
        );
    }

    #[tokio::test]
    async fn whole_lists_gathers_the_pieces_and_drops_a_broken_list() {
        let events: Vec<_> = whole_lists(pieces_then_failure()).take(3).collect().await;
        let names = |all: &[Lease]| all.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        match &events[..] {
            [
                Ok(WatchEvent::Restarted(all)),
                Ok(WatchEvent::Applied(d)),
                Err(e),
            ] => {
                assert_eq!(names(all), ["a", "b", "c"]);
                assert_eq!(d.name, "d");
                assert!(e.to_string().contains("connection reset"));
            }
            other => panic!("{other:?}"),
        }
    }

    use crate::whole_lists;
    use futures::StreamExt;
}
