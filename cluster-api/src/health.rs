use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Whether a watch-fed cache can be trusted right now.
///
/// A cache is *synced* once its watch has delivered a full list, and *healthy* while that
/// watch has not failed since. A cache that is synced but broken still answers from what it
/// had; callers that answer "nothing to do" from it must ask the cluster instead while it is
/// not healthy, and readiness tolerates a broken cache only for a grace time.
///
/// Feed it from [`follow`](crate::follow)'s `apply`: [`restarted`](Self::restarted) on every
/// [`WatchEvent::Restarted`](crate::WatchEvent::Restarted), [`failed`](Self::failed) on every
/// error. Reads are lock-free, so checking it on every request costs nothing worth counting.
#[derive(Debug)]
pub struct CacheHealth {
    what: std::borrow::Cow<'static, str>,
    origin: Instant,
    synced: AtomicBool,
    /// Milliseconds since `origin` at which the watch broke, plus one; zero while healthy.
    broken_at: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Told of every full list.
    restarts: Notify,
}

// === impl CacheHealth ===

impl CacheHealth {
    /// A cache of `what` (for messages), not synced yet.
    pub fn new(what: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        CacheHealth {
            what: what.into(),
            origin: Instant::now(),
            synced: AtomicBool::new(false),
            broken_at: AtomicU64::new(0),
            last_error: Mutex::new(None),
            restarts: Notify::new(),
        }
    }

    /// A full list arrived: the cache is synced and healthy.
    pub fn restarted(&self) {
        self.broken_at.store(0, Ordering::Release);
        self.synced.store(true, Ordering::Release);
        self.restarts.notify_waiters();
    }

    /// The watch failed: the cache may miss changes from now until the next full list.
    pub fn failed(&self, error: &crate::Error) {
        let at = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let _ = self
            .broken_at
            .compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire);
        *self.last_error.lock() = Some(error.to_string());
    }

    /// Whether a full list has arrived at least once.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Synced, and the watch has not failed since its last full list.
    pub fn is_healthy(&self) -> bool {
        self.is_synced() && self.broken_at.load(Ordering::Acquire) == 0
    }

    /// How long the watch has been broken, if it is.
    pub fn broken_for(&self) -> Option<Duration> {
        match self.broken_at.load(Ordering::Acquire) {
            0 => None,
            at => Some(
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_millis(at - 1)),
            ),
        }
    }

    /// Synced, and not broken for longer than `grace`: fit to serve.
    pub fn is_ready(&self, grace: Duration) -> bool {
        self.is_synced() && self.broken_for().is_none_or(|d| d <= grace)
    }

    /// Why the cache is not ready (with `grace`), for a readiness probe; `None` if it is.
    pub fn problem(&self, grace: Duration) -> Option<String> {
        if !self.is_synced() {
            return Some(format!("the {} cache has not synced yet", self.what));
        }
        let broken = self.broken_for().filter(|d| *d > grace)?;
        let error = self.last_error.lock().clone().unwrap_or_default();
        Some(format!(
            "the {} watch has been failing for {}s: {error}",
            self.what,
            broken.as_secs()
        ))
    }

    /// Waits until [`is_synced`](Self::is_synced).
    pub async fn wait_synced(&self) {
        self.wait_until(Self::is_synced).await;
    }

    /// Waits until [`is_healthy`](Self::is_healthy): the next full list, if the watch broke.
    pub async fn wait_healthy(&self) {
        self.wait_until(Self::is_healthy).await;
    }

    async fn wait_until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let notified = self.restarts.notified();
            if done(self) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn broken_caches_stay_ready_only_for_the_grace_time() {
        let grace = Duration::from_secs(30);
        let h = CacheHealth::new("node");
        assert!(!h.is_ready(grace));
        assert!(h.problem(grace).unwrap().contains("not synced"));
        h.restarted();
        assert!(h.is_healthy() && h.is_ready(grace));

        h.failed(&crate::Error::unavailable("connection refused"));
        assert!(!h.is_healthy(), "a broken cache is not healthy at once");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(h.is_ready(grace), "but still ready within the grace time");
        // A second failure does not move the start of the outage.
        h.failed(&crate::Error::unavailable("connection refused"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!h.is_ready(grace));
        let problem = h.problem(grace).unwrap();
        assert!(
            problem.contains("failing for 31s: connection refused"),
            "{problem}"
        );

        h.restarted();
        assert!(h.is_healthy() && h.problem(grace).is_none());
    }
}
