//! Pods and evictions: field-selected lists, watches, every eviction answer.

use super::*;

#[tokio::test]
async fn pods_on_a_node_are_listed_by_field_selector() {
    let (c, mut fake) = cluster();
    let pods = exchange(
        c.list_pods(&PodFilter::on_node("v1.36-control-plane")),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (Method::GET, "/api/v1/pods")
            );
            assert_eq!(
                s.query.get("fieldSelector").map(String::as_str),
                Some("spec.nodeName=v1.36-control-plane")
            );
        },
        200,
        fixture("pod-list.json"),
    )
    .await
    .unwrap();
    assert_eq!(pods.len(), 8);
    let by_name: HashMap<&str, &cluster_api::Pod> =
        pods.iter().map(|p| (p.name.as_str(), p)).collect();
    let coredns = by_name["coredns-589f44dc88-4fpns"];
    assert_eq!(coredns.controller.as_ref().unwrap().kind, "ReplicaSet");
    assert_eq!((coredns.phase, coredns.ready), (PodPhase::Running, true));
    assert!(
        by_name["etcd-v1.36-control-plane"].mirror,
        "static pods carry the mirror annotation"
    );
    assert!(by_name["kindnet-4pxt7"].is_daemonset_pod());
    assert!(
        pods.iter()
            .all(|p| p.node_name.as_deref() == Some("v1.36-control-plane"))
    );
}

#[tokio::test]
async fn evictions_go_through_policy_v1_and_every_answer_has_a_meaning() {
    let expect_request = |grace: Option<i64>| {
        move |s: &Seen| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (Method::POST, "/api/v1/namespaces/shop/pods/web-1/eviction")
            );
            assert_eq!(s.body["apiVersion"], "policy/v1");
            assert_eq!(s.body["kind"], "Eviction");
            assert_eq!(
                s.body["metadata"],
                json!({"name": "web-1", "namespace": "shop"})
            );
            assert_eq!(
                s.body["deleteOptions"]["gracePeriodSeconds"].as_i64(),
                grace
            );
        }
    };
    type Verdict<'a> = &'a dyn Fn(Result<EvictionOutcome, Error>);
    let cases: [(u16, &str, Verdict); 6] = [
        (201, "eviction-201-success.json", &|r| {
            assert_eq!(r.unwrap(), EvictionOutcome::Evicted)
        }),
        (429, "status-429-eviction-pdb.json", &|r| match r.unwrap() {
            EvictionOutcome::Blocked { message, .. } => {
                assert!(
                    message.contains(
                        "Cannot evict pod as it would violate the pod's disruption budget."
                    ),
                    "{message}"
                );
                assert!(message.contains("The disruption budget my-super-app-pdb needs 6 healthy pods and has 6 currently"), "{message}");
            }
            other => panic!("{other:?}"),
        }),
        (429, "status-429-eviction-pdb-pending.json", &|r| {
            assert!(matches!(r.unwrap(), EvictionOutcome::Blocked { .. }))
        }),
        (404, "status-404-not-found.json", &|r| {
            assert_eq!(r.unwrap(), EvictionOutcome::Gone)
        }),
        (500, "status-500-eviction-multiple-pdbs.json", &|r| {
            assert!(
                matches!(r.unwrap(), EvictionOutcome::Failed { message } if message.contains("more than one PodDisruptionBudget"))
            )
        }),
        (403, "status-403-forbidden-eviction.json", &|r| {
            assert!(matches!(r.unwrap_err(), Error::Forbidden { .. }))
        }),
    ];
    for (status, file, verdict) in cases {
        let (c, mut fake) = cluster();
        let result = exchange(
            c.evict_pod("shop", "web-1", &EvictOptions::default()),
            &mut fake,
            expect_request(None),
            status,
            fixture(file),
        )
        .await;
        verdict(result);
    }
    let (c, mut fake) = cluster();
    let options = EvictOptions {
        grace_period_seconds: Some(10),
    };
    exchange(
        c.evict_pod("shop", "web-1", &options),
        &mut fake,
        expect_request(Some(10)),
        201,
        fixture("eviction-201-success.json"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn pod_watches_turn_the_initial_list_into_one_snapshot_then_follow_changes() {
    let (c, mut fake) = cluster();
    let mut stream = c
        .watch_pods(&PodFilter::on_node("v1.36-control-plane"))
        .await
        .unwrap();
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(
            seen.query.get("fieldSelector").map(String::as_str),
            Some("spec.nodeName=v1.36-control-plane")
        );
        seen.answer(200, fixture("pod-list.json"));
        let seen = next(&mut fake).await;
        assert_eq!(seen.query.get("watch").map(String::as_str), Some("true"));
        seen.answer(200, fixture("watch-pods.jsonl"));
    };
    let client = async {
        let first = stream.next().await.unwrap().unwrap();
        let WatchEvent::Restarted(pods) = first else {
            panic!("{first:?}")
        };
        assert_eq!(pods.len(), 8);
        let second = stream.next().await.unwrap().unwrap();
        assert!(matches!(second, WatchEvent::Applied(p) if p.name == "coredns-589f44dc88-4fpns"));
    };
    tokio::join!(server, client);
}

/// A `410 Gone` on the watch reaches the consumer as an error and ends the stream, so the
/// consumer knows its view may have gaps; watching again lists afresh.
#[tokio::test]
async fn an_expired_watch_is_reported_and_watching_again_lists_afresh() {
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
        // The watch says 410 Gone.
        next(&mut fake)
            .await
            .answer(200, fixture("watch-error-410-expired.jsonl"));
    };
    let client = async {
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            WatchEvent::Restarted(vec![])
        );
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert!(
            err.to_string().contains("too old resource version"),
            "{err}"
        );
        assert!(
            stream.next().await.is_none(),
            "the stream ends with its error"
        );
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(server, client)
    })
    .await
    .unwrap();

    let mut again = c.watch_leases("restart-manager", &selector).await.unwrap();
    let server = async {
        let seen = next(&mut fake).await;
        assert!(
            !seen.query.contains_key("watch"),
            "a list: {:?}",
            seen.query
        );
        let lease: Value = serde_json::from_str(&fixture("lease.json")).unwrap();
        seen.answer(200, json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": "2"}, "items": [lease]}).to_string());
    };
    let client = async {
        match again.next().await.unwrap().unwrap() {
            WatchEvent::Restarted(leases) => assert_eq!(leases.len(), 1),
            other => panic!("{other:?}"),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(server, client)
    })
    .await
    .unwrap();
}

/// A Node watch that fails is passed on and ends the stream: the reader's cache knows it may
/// have gaps, and its next watch lists afresh.
#[tokio::test(start_paused = true)]
async fn a_failed_node_watch_is_passed_on_and_the_next_watch_lists_afresh() {
    let (c, mut fake) = cluster();
    let error = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "etcdserver: leader changed", "reason": "InternalError", "code": 500}}).to_string();
    let mut stream = whole_lists(c.watch_nodes().await.unwrap());
    let server = async { next(&mut fake).await.answer(200, fixture("node-list.json")) };
    let (first, ()) = tokio::join!(stream.next(), server);
    assert!(matches!(first, Some(Ok(WatchEvent::Restarted(_)))));
    let watch = watch_request(&mut stream, &mut fake).await;

    watch.answer(200, error);
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("leader changed"), "{err}");
    assert!(stream.next().await.is_none());

    let mut again = whole_lists(c.watch_nodes().await.unwrap());
    let server = async {
        let seen = next(&mut fake).await;
        assert!(
            !seen.query.contains_key("watch"),
            "a list: {:?}",
            seen.query
        );
        seen.answer(200, fixture("node-list.json"));
    };
    let (first, ()) = tokio::join!(again.next(), server);
    assert!(matches!(first, Some(Ok(WatchEvent::Restarted(n))) if n.len() == 1));
}
