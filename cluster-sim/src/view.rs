//! One client's view of the cluster: watches that reach it late.
//!
//! On a real cluster each replica has its own watch connections, and one of them can stall
//! (a slow proxy, a reconnect waiting on its backoff, a throttled list) while every other
//! replica sees changes at once. Handles made by [`SimCluster::client`](crate::SimCluster::client)
//! share the cluster but not this view, so a test can hold back one replica's watches and
//! let it act on what it saw last.

use std::collections::BTreeSet;

use cluster_api::{LabelSelector, WatchStream};
use futures::StreamExt;
use tokio::sync::watch;

use crate::Operation;

/// A watch, as [`SimCluster::hold_watches`](crate::SimCluster::hold_watches) names it: the
/// operation that opened it and, for Leases, its label selector (any selector when `None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldWatch {
    /// The `watch_*` operation.
    pub op: Operation,
    /// Only watches with this label selector (Lease watches); every one when `None`.
    pub selector: Option<String>,
}

impl HeldWatch {
    /// Every watch that `op` opens.
    pub fn all(op: Operation) -> Self {
        HeldWatch { op, selector: None }
    }

    /// The Lease watches with this selector.
    pub fn leases(selector: &LabelSelector) -> Self {
        HeldWatch {
            op: Operation::WatchLeases,
            selector: Some(selector.to_string()),
        }
    }

    fn covers(&self, op: Operation, selector: Option<&str>) -> bool {
        self.op == op && (self.selector.is_none() || self.selector.as_deref() == selector)
    }
}

/// The watches held back for the handles that share this view.
pub(crate) struct View {
    held: watch::Sender<BTreeSet<HeldWatch>>,
}

impl Default for View {
    fn default() -> Self {
        View {
            held: watch::Sender::new(BTreeSet::new()),
        }
    }
}

impl View {
    pub(crate) fn hold(&self, watch: HeldWatch, held: bool) {
        self.held.send_modify(|set| {
            if held {
                set.insert(watch);
            } else {
                set.remove(&watch);
            }
        });
    }

    /// `stream`, whose events wait while a hold covers it; they arrive in order once it is
    /// lifted.
    pub(crate) fn deliver<T: Send + 'static>(
        &self,
        op: Operation,
        selector: Option<&LabelSelector>,
        stream: WatchStream<T>,
    ) -> WatchStream<T> {
        let selector = selector.map(ToString::to_string);
        let rx = self.held.subscribe();
        Box::pin(stream.then(move |event| {
            let mut rx = rx.clone();
            let selector = selector.clone();
            async move {
                let _ = rx
                    .wait_for(|held| !held.iter().any(|h| h.covers(op, selector.as_deref())))
                    .await;
                event
            }
        }))
    }
}
