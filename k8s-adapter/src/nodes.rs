//! The shared Node watch: one list-then-watch of every Node, kept as trimmed
//! `cluster_api::Node`s, with a broadcast of changes for every subscriber.

use std::sync::atomic::Ordering;

use cluster_api::{Error, Node, Result, WatchEvent, follow};
use kube::api::Api;
use kube::runtime::watcher;

use crate::api::{boxed, watch_events};
use crate::{KubeCluster, convert, slim};

// === impl KubeCluster: the Node cache ===

impl KubeCluster {
    /// Starts the shared Node watch once: it lists, watches, and after a failure lists
    /// again (with [`follow`]'s backoff), keeping the cache and its health current.
    pub(crate) fn start_nodes(&self) {
        if self.inner.nodes.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let nodes = &inner.nodes;
            let prefixes = inner.options.node_metadata_prefixes.clone();
            let trim = |n: Node| trim_node(n, prefixes.as_deref());
            let open = || {
                let api: Api<slim::SlimNode> = Api::all(inner.client.clone());
                // Small pages: each page is decoded whole before its Nodes are converted.
                let config = watcher::Config::default().page_size(100);
                std::future::ready(Ok(boxed(watch_events(api, config, convert::node))))
            };
            follow("node", open, |event| {
                let event = match event {
                    Ok(WatchEvent::Restarted(all)) => {
                        *nodes.state.write().unwrap_or_else(|e| e.into_inner()) = all
                            .into_iter()
                            .map(|n| {
                                let n = trim(n);
                                (n.name.clone(), n)
                            })
                            .collect();
                        nodes.health.restarted();
                        Ok(WatchEvent::Restarted(Vec::new()))
                    }
                    Ok(WatchEvent::Applied(n)) => {
                        let n = trim(n);
                        nodes
                            .state
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(n.name.clone(), n.clone());
                        Ok(WatchEvent::Applied(n))
                    }
                    Ok(WatchEvent::Deleted(n)) => {
                        let n = trim(n);
                        nodes
                            .state
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&n.name);
                        Ok(WatchEvent::Deleted(n))
                    }
                    Err(e) => {
                        nodes.health.failed(e);
                        Err(e.clone())
                    }
                };
                let _ = nodes.changes.send(event);
            })
            .await;
        });
    }

    /// Every cached Node, once the cache is current (or an error after the timeout: while
    /// the Node watch is failing, the cache may miss changes).
    pub(crate) async fn cached_nodes(&self) -> Result<Vec<Node>> {
        self.start_nodes();
        let nodes = &self.inner.nodes;
        tokio::time::timeout(self.inner.options.timeout, nodes.health.wait_healthy())
            .await
            .map_err(|_| {
                Error::unavailable("the node watch is not current; is the API server reachable?")
            })?;
        Ok(nodes
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect())
    }
}

pub(crate) fn trim_node(mut node: Node, prefixes: Option<&[String]>) -> Node {
    if let Some(prefixes) = prefixes {
        let keep = |k: &String| prefixes.iter().any(|p| k.starts_with(p.as_str()));
        node.labels.retain(|k, _| keep(k));
        node.annotations.retain(|k, _| keep(k));
    }
    node
}
