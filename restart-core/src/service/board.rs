//! What subscribers were last told, and the broadcast that tells them of a change.

use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::RwLock;
use tokio::sync::broadcast;

/// The last status published per key, and the channel statuses go out on.
pub(super) struct Board<K, V> {
    shown: RwLock<HashMap<K, V>>,
    updates: broadcast::Sender<V>,
}

impl<K: Eq + Hash + Clone, V: PartialEq + Clone> Board<K, V> {
    /// A board whose subscribers may fall `capacity` statuses behind before they lag.
    pub(super) fn new(capacity: usize) -> Self {
        Board {
            shown: RwLock::default(),
            updates: broadcast::channel(capacity).0,
        }
    }

    /// Computes `key`'s status and broadcasts it if it changed; returns it.
    ///
    /// Computed and sent under the lock: statuses go out in the order they were computed,
    /// so one computed before a restart stored its lock cannot follow the one the restart
    /// publishes, and reach a client that subscribed after it.
    pub(super) fn publish(&self, key: &K, compute: impl FnOnce() -> V) -> V {
        let mut shown = self.shown.write();
        let view = compute();
        if shown.get(key) != Some(&view) {
            shown.insert(key.clone(), view.clone());
            let _ = self.updates.send(view.clone());
        }
        view
    }

    /// Every change from now on.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<V> {
        self.updates.subscribe()
    }
}
