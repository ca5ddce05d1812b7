//! Nodes: reads, paged lists, watches, merge patches, trimming.

use super::*;

#[tokio::test]
async fn get_node_reads_the_fields_the_cores_use() {
    let (c, mut fake) = cluster();
    let list: Value = serde_json::from_str(&fixture("node-list.json")).unwrap();
    let node = exchange(
        c.get_node("dummyNode"),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (Method::GET, "/api/v1/nodes/dummyNode")
            );
        },
        200,
        list["items"][0].to_string(),
    )
    .await
    .unwrap();
    assert_eq!(node.name, "dummyNode");
    assert_eq!(node.machine_id, "77094b51073843e5acb5c3cdd16c909e");
    assert_eq!(node.boot_id, "de767a54-9900-4e24-8514-8c4cbf817213");
    assert!(node.ready);
    assert!(!node.unschedulable);
}

/// Nodes are listed in pages (a large fleet's list is never decoded whole) and every read
/// goes to the API server: the one Node cache is the reader's.
#[tokio::test]
async fn nodes_are_listed_in_pages_and_watched_from_the_list_version() {
    let (c, mut fake) = cluster();
    let list: Value = serde_json::from_str(&fixture("node-list.json")).unwrap();
    let mut first = list.clone();
    first["metadata"]["continue"] = json!("page-2");
    let mut second = list.clone();
    second["items"][0]["metadata"]["name"] = json!("second");
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(
            (seen.method.clone(), seen.path.as_str()),
            (Method::GET, "/api/v1/nodes")
        );
        assert_eq!(seen.query.get("limit").map(String::as_str), Some("100"));
        assert!(!seen.query.contains_key("continue"), "{:?}", seen.query);
        seen.answer(200, first.to_string());
        let seen = next(&mut fake).await;
        assert_eq!(
            seen.query.get("continue").map(String::as_str),
            Some("page-2")
        );
        seen.answer(200, second.to_string());
    };
    let (nodes, ()) = tokio::join!(c.list_nodes(), server);
    let names: Vec<String> = nodes.unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["dummyNode", "second"]);

    let mut stream = c.watch_nodes().await.unwrap();
    let server = async {
        let seen = next(&mut fake).await;
        assert!(
            !seen.query.contains_key("watch"),
            "a list: {:?}",
            seen.query
        );
        assert_eq!(seen.query.get("limit").map(String::as_str), Some("100"));
        seen.answer(200, list.to_string());
    };
    // The list is passed on Node by Node, then ends with nothing more.
    let (first, ()) = tokio::join!(stream.next(), server);
    match first.unwrap().unwrap() {
        WatchEvent::Listed(node) => assert_eq!(node.name, "dummyNode"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        WatchEvent::Restarted(Vec::new())
    );
    // Then the watch from the list's resourceVersion.
    let seen = watch_request(&mut stream, &mut fake).await;
    assert_eq!(
        seen.query.get("resourceVersion").map(String::as_str),
        Some("3188299")
    );
}

#[tokio::test]
async fn node_patches_are_merge_patches_with_an_optional_precondition() {
    let (c, mut fake) = cluster();
    let patch = NodePatch::new()
        .unschedulable(true)
        .annotate("restart-manager.io/cordoned", "true")
        .remove_annotation("restart-manager.io/approved-boot-id")
        .if_version("3188299");
    let err = exchange(
        c.patch_node("dummyNode", &patch),
        &mut fake,
        |s| {
            assert_eq!((s.method.clone(), s.path.as_str()), (Method::PATCH, "/api/v1/nodes/dummyNode"));
            assert_eq!(s.content_type, "application/merge-patch+json");
            assert_eq!(
                s.body,
                json!({
                    "metadata": {
                        "resourceVersion": "3188299",
                        "annotations": {"restart-manager.io/cordoned": "true", "restart-manager.io/approved-boot-id": null}
                    },
                    "spec": {"unschedulable": true}
                })
            );
        },
        409,
        fixture("status-409-conflict.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("the object has been modified"));
}
