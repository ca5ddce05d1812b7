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
    // A uid precondition goes in the delete options; the API server's 409 for a pod of that
    // name that is another one now means the pod asked for is gone. (Its words, as
    // kube-apiserver v1.37.2 wrote them, recorded by cluster-sim's conformance suite.)
    let (c, mut fake) = cluster();
    let options = EvictOptions {
        uid: Some("6a1b2c3d-0000-4000-8000-000000000001".into()),
        ..EvictOptions::default()
    };
    let precondition_failed = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Operation cannot be fulfilled on Pod \"web-1\": the UID in the precondition (6a1b2c3d-0000-4000-8000-000000000001) does not match the UID in record (7f2c0000-0000-4000-8000-000000000002). The object might have been deleted and then recreated",
        "reason": "Conflict", "details": {"name": "web-1", "kind": "Pod"}, "code": 409
    })
    .to_string();
    let outcome = exchange(
        c.evict_pod("shop", "web-1", &options),
        &mut fake,
        |s: &Seen| {
            assert_eq!(
                s.body["deleteOptions"]["preconditions"]["uid"],
                "6a1b2c3d-0000-4000-8000-000000000001"
            );
        },
        409,
        precondition_failed,
    )
    .await
    .unwrap();
    assert_eq!(outcome, EvictionOutcome::Gone);

    let (c, mut fake) = cluster();
    let options = EvictOptions {
        grace_period_seconds: Some(10),
        ..EvictOptions::default()
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
