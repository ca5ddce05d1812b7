//! Nodes: read in pages and watched, trimmed to the metadata the cores use. Nothing is
//! cached here: the one Node cache is the reader's (fleetlock-core's index).

use cluster_api::{Node, Result, WatchStream};
use kube::api::{Api, ListParams};

use crate::api::boxed;
use crate::watch::{Pieces, Selection, watch_events};
use crate::{KubeCluster, convert, slim};

/// Nodes per list page: each page is decoded whole before its Nodes are converted and
/// trimmed, so small pages keep a large fleet's list from being held twice.
const PAGE: u32 = 100;

// === impl KubeCluster: Nodes ===

impl KubeCluster {
    /// A Node as the adapter hands it out: with only the wanted labels and annotations.
    pub(crate) fn node(&self, n: slim::SlimNode) -> Node {
        trim_node(
            convert::node(n),
            self.inner.options.node_metadata_prefixes.as_deref(),
        )
    }

    /// Every Node, listed in pages.
    pub(crate) async fn all_nodes(&self) -> Result<Vec<Node>> {
        let api: Api<slim::SlimNode> = Api::all(self.client());
        let mut nodes = Vec::new();
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = self.call(api.list(&params)).await?;
            let next = page.metadata.continue_.filter(|c| !c.is_empty());
            nodes.extend(page.items.into_iter().map(|n| self.node(n)));
            match next {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(nodes),
            }
        }
    }

    /// Every Node, then each change, trimmed as they arrive. The list is passed on Node by
    /// Node (`WatchEvent::Listed`), so that it is never held whole here.
    pub(crate) fn node_watch(&self) -> WatchStream<Node> {
        let api: Api<slim::SlimNode> = Api::all(self.client());
        let selection = Selection {
            page: PAGE,
            ..Selection::default()
        };
        let prefixes = self.inner.options.node_metadata_prefixes.clone();
        boxed(watch_events(api, selection, Pieces::Yes, move |n| {
            trim_node(convert::node(n), prefixes.as_deref())
        }))
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
