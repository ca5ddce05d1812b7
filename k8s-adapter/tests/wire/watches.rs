//! Watches that break: resumed from the last resourceVersion seen, listed again only on
//! `410 Gone`, and never an error to the consumer for either.

use std::sync::Arc;

use cluster_api::{CacheHealth, Node, Store, WatchCache, feed};

use super::*;

/// The one Node of `node-list.json` as a watch event line, at resourceVersion `version`.
fn node_event(kind: &str, version: &str) -> String {
    let list: Value = serde_json::from_str(&fixture("node-list.json")).unwrap();
    let mut node = list["items"][0].clone();
    node["metadata"]["resourceVersion"] = json!(version);
    json!({"type": kind, "object": node}).to_string() + "\n"
}

fn error_event(code: u16, reason: &str, message: &str) -> String {
    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code}})
    .to_string()
        + "\n"
}

fn version(seen: &Seen) -> Option<&str> {
    seen.query.get("resourceVersion").map(String::as_str)
}

/// A watch that breaks (an API server error in the stream, a refused reopening, the server
/// closing it) is opened again from the last resourceVersion it saw, event or bookmark:
/// nothing is listed again and the consumer sees no error.
#[tokio::test(start_paused = true)]
async fn a_broken_watch_resumes_from_the_last_version_without_listing() {
    let (c, mut fake) = cluster();
    let mut stream = whole_lists(c.watch_nodes().await.unwrap());
    let server = async { next(&mut fake).await.answer(200, fixture("node-list.json")) };
    let (first, ()) = tokio::join!(stream.next(), server);
    assert!(matches!(first, Some(Ok(WatchEvent::Restarted(n))) if n.len() == 1));

    let watch = watch_request(&mut stream, &mut fake).await;
    assert_eq!(version(&watch), Some("3188299"));
    watch.answer(
        200,
        node_event("MODIFIED", "3188400")
            + &error_event(500, "InternalError", "etcdserver: leader changed"),
    );
    match stream.next().await {
        Some(Ok(WatchEvent::Applied(n))) => assert_eq!(n.resource_version, "3188400"),
        other => panic!("{other:?}"),
    }

    // Resumed from the change just seen, not listed again.
    let watch = watch_request(&mut stream, &mut fake).await;
    assert_eq!(version(&watch), Some("3188400"));
    // Reopening is refused for now: tried again, from the same version.
    watch.answer(500, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}).to_string());
    let watch = watch_request(&mut stream, &mut fake).await;
    assert_eq!(version(&watch), Some("3188400"));
    // A bookmark moves the version on; the server then closes the watch, as it does at
    // timeoutSeconds.
    watch.answer(
        200,
        json!({"type": "BOOKMARK", "object": {"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": "3188500"}}}).to_string() + "\n",
    );
    let watch = watch_request(&mut stream, &mut fake).await;
    assert_eq!(version(&watch), Some("3188500"));
    assert_eq!(
        watch.query.get("allowWatchBookmarks").map(String::as_str),
        Some("true")
    );
}

/// A `410 Gone` (the version has left the API server's window) makes the stream list again by
/// itself: the consumer gets the new list, not an error.
#[tokio::test(start_paused = true)]
async fn an_expired_watch_lists_again_within_the_stream() {
    let (c, mut fake) = cluster();
    let selector = LabelSelector::eq("restart-manager.io/lock", "fleetlock");
    let mut stream = c.watch_leases("restart-manager", &selector).await.unwrap();
    let empty = json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": "1"}, "items": []}).to_string();
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(
            seen.path,
            "/apis/coordination.k8s.io/v1/namespaces/restart-manager/leases"
        );
        assert_eq!(
            seen.query.get("labelSelector").map(String::as_str),
            Some("restart-manager.io/lock=fleetlock")
        );
        seen.answer(200, empty.clone());
    };
    let (first, ()) = tokio::join!(stream.next(), server);
    assert_eq!(first.unwrap().unwrap(), WatchEvent::Restarted(vec![]));

    let watch = watch_request(&mut stream, &mut fake).await;
    watch.answer(200, fixture("watch-error-410-expired.jsonl"));
    let server = async {
        let seen = next(&mut fake).await;
        assert!(
            !seen.query.contains_key("watch"),
            "a list: {:?}",
            seen.query
        );
        assert_eq!(
            seen.query.get("labelSelector").map(String::as_str),
            Some("restart-manager.io/lock=fleetlock")
        );
        let lease: Value = serde_json::from_str(&fixture("lease.json")).unwrap();
        seen.answer(200, json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": "2"}, "items": [lease]}).to_string());
    };
    let (relisted, ()) = tokio::join!(stream.next(), server);
    match relisted.unwrap().unwrap() {
        WatchEvent::Restarted(leases) => assert_eq!(leases.len(), 1),
        other => panic!("{other:?}"),
    }
    let watch = watch_request(&mut stream, &mut fake).await;
    assert_eq!(version(&watch), Some("2"));

    // The same when the API server refuses to open the watch with a 410 status.
    watch.answer(410, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version: 2 (40)", "reason": "Expired", "code": 410}).to_string());
    let server = async {
        let seen = next(&mut fake).await;
        assert!(
            !seen.query.contains_key("watch"),
            "a list: {:?}",
            seen.query
        );
        seen.answer(200, json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": "41"}, "items": []}).to_string());
    };
    let (relisted, ()) = tokio::join!(stream.next(), server);
    assert_eq!(relisted.unwrap().unwrap(), WatchEvent::Restarted(vec![]));

    // A refusal is not mended by trying again: passed on, and the stream ends.
    watch_request(&mut stream, &mut fake)
        .await
        .answer(403, fixture("status-403-forbidden.json"));
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(stream.next().await.is_none());
}

/// A Node cache for the test: what `feed` keeps current.
#[derive(Default)]
struct Nodes(Store<String, Node>);

impl WatchCache<Node> for Nodes {
    fn reset(&self, all: Vec<Node>) {
        self.0.reset(all.into_iter().map(|n| (n.name.clone(), n)));
    }
    fn apply(&self, node: Node) {
        self.0.insert(node.name.clone(), node);
    }
    fn delete(&self, node: Node) {
        self.0.remove(&node.name);
    }
}

/// A large fleet's relist after a `410` takes longer than the grace time: the cache that was
/// synced keeps serving what it had, and stays ready, until the new list is complete.
#[tokio::test(start_paused = true)]
async fn a_synced_node_cache_stays_ready_while_it_lists_again() {
    let grace = Duration::from_secs(30);
    let (c, mut fake) = cluster();
    let cache = Arc::new(Nodes::default());
    let health = Arc::new(CacheHealth::new("node"));
    let feeding = tokio::spawn({
        let (cache, health) = (cache.clone(), health.clone());
        async move {
            let open = || c.watch_nodes();
            feed("node", open, &*cache, &health).await;
        }
    });
    let list: Value = serde_json::from_str(&fixture("node-list.json")).unwrap();
    let mut old = list.clone();
    old["items"][0]["metadata"]["name"] = json!("old");
    next(&mut fake).await.answer(200, old.to_string());
    health.wait_synced().await;
    assert!(cache.0.get("old").is_some());

    let watch = next(&mut fake).await;
    assert_eq!(watch.query.get("watch").map(String::as_str), Some("true"));
    watch.answer(200, fixture("watch-error-410-expired.jsonl"));
    // The new list is slow to come.
    let relist = next(&mut fake).await;
    assert!(
        !relist.query.contains_key("watch"),
        "a list: {:?}",
        relist.query
    );
    tokio::time::advance(grace * 4).await;
    assert!(health.is_ready(grace), "{:?}", health.problem(grace));
    assert!(cache.0.get("old").is_some(), "still serving what it had");

    relist.answer(200, list.to_string());
    let watch = next(&mut fake).await;
    assert_eq!(version(&watch), Some("3188299"));
    assert!(cache.0.get("old").is_none() && cache.0.get("dummyNode").is_some());
    assert!(health.is_healthy());
    feeding.abort();
}
