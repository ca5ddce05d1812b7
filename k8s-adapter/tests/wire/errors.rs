//! API errors, throttling, timeouts, the client-side limit, access reviews.

use super::*;

/// The API server's priority-and-fairness 429 is plain text with a `Retry-After` header. An
/// eviction refused that way is throttling, not a disruption budget: the drain must hear
/// "too many requests, wait this long", and every later call waits as asked.
#[tokio::test(start_paused = true)]
async fn throttling_is_told_from_a_budget_and_its_wait_is_honoured() {
    let (c, mut fake) = cluster();
    let defaults = EvictOptions::default();
    let server = async {
        next(&mut fake).await.answer_throttled("5");
    };
    let (result, ()) = tokio::join!(c.evict_pod("shop", "web-1", &defaults), server);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), "too_many_requests", "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert!(
        err.message()
            .contains("Too many requests, please try again later."),
        "{err}"
    );

    // The next call, whatever it is, waits out the five seconds before it is sent.
    let asked = tokio::time::Instant::now();
    let server = async {
        let seen = next(&mut fake).await;
        let waited = asked.elapsed();
        seen.answer(200, fixture("lease.json"));
        waited
    };
    let (lease, waited) = tokio::join!(c.get_lease("kube-system", "l"), server);
    lease.unwrap();
    assert_eq!(waited, Duration::from_secs(5));

    // A budget's 429 that also carries Retry-After stays a budget refusal, with its wait.
    let server = async {
        let seen = next(&mut fake).await;
        let response = Response::builder()
            .status(429)
            .header("content-type", "application/json")
            .header("retry-after", "10")
            .body(Body::from(
                fixture("status-429-eviction-pdb-pending.json").into_bytes(),
            ))
            .unwrap();
        seen.send.send_response(response);
    };
    let (result, ()) = tokio::join!(c.evict_pod("shop", "web-1", &defaults), server);
    match result.unwrap() {
        EvictionOutcome::Blocked {
            message,
            retry_after,
        } => {
            assert!(message.contains("still being processed"), "{message}");
            assert_eq!(retry_after, Some(Duration::from_secs(10)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn api_errors_map_onto_the_kinds_the_cores_act_on() {
    let retry = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Too many requests, please try again later.", "reason": "TooManyRequests", "details": {"retryAfterSeconds": 7}, "code": 429}).to_string();
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "etcdserver: leader changed", "code": 500}).to_string();
    let cases: Vec<(u16, String, &str)> = vec![
        (404, fixture("status-404-not-found.json"), "not_found"),
        (
            409,
            fixture("status-409-conflict-deployment.json"),
            "conflict",
        ),
        (
            409,
            fixture("status-409-already-exists-core.json"),
            "already_exists",
        ),
        (403, fixture("status-403-forbidden.json"), "forbidden"),
        (422, fixture("status-422-invalid-required.json"), "invalid"),
        (422, fixture("status-422-invalid-type.json"), "invalid"),
        (429, retry, "too_many_requests"),
        (500, unavailable, "unavailable"),
    ];
    for (status, body, kind) in cases {
        let (c, mut fake) = cluster();
        let err = exchange(
            c.get_lease("ns", "l"),
            &mut fake,
            |_| {},
            status,
            body.clone(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), kind, "{status}: {body}");
        if kind == "too_many_requests" {
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
        assert!(!err.message().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_is_unavailable_after_the_timeout() {
    let (c, _fake) = cluster_with(KubeOptions {
        timeout: Duration::from_secs(5),
        ..KubeOptions::default()
    });
    let err = c.get_node("n1").await.unwrap_err();
    assert_eq!(err.kind(), "unavailable");
    assert!(
        err.to_string().contains("did not answer within 5s"),
        "{err}"
    );
}

/// Leader renewals have a budget of their own: a burst of other calls queued under the
/// client-side limit does not push a renewal past its deadline.
#[tokio::test(start_paused = true)]
async fn leader_renewals_do_not_wait_behind_other_calls() {
    let (c, mut fake) = cluster_with(KubeOptions {
        qps: 1.0,
        burst: 1,
        timeout: Duration::from_secs(60),
        ..KubeOptions::default()
    });
    let election = c.with_own_budget(5.0, 10);
    let start = tokio::time::Instant::now();
    let busy: Vec<_> = (0..5)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.get_lease("restart-manager", &format!("lock-{i}")).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let renewal = tokio::spawn(async move {
        election
            .get_lease("restart-manager", "restart-manager-leader")
            .await
    });
    let mut arrived = Vec::new();
    for _ in 0..6 {
        let seen = next(&mut fake).await;
        arrived.push((
            seen.path.rsplit('/').next().unwrap().to_string(),
            start.elapsed(),
        ));
        seen.answer(200, fixture("lease.json"));
    }
    renewal.await.unwrap().unwrap();
    for b in busy {
        b.await.unwrap().unwrap();
    }
    let (_, at) = arrived
        .iter()
        .find(|(name, _)| name == "restart-manager-leader")
        .unwrap();
    assert!(
        *at < Duration::from_secs(1),
        "the renewal went at {at:?}: {arrived:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_are_paced_by_the_client_side_limit() {
    let (c, mut fake) = cluster_with(KubeOptions {
        qps: 2.0,
        burst: 1,
        timeout: Duration::from_secs(60),
        ..KubeOptions::default()
    });
    let start = tokio::time::Instant::now();
    let server = async {
        for _ in 0..3 {
            next(&mut fake).await.answer(200, fixture("lease.json"));
        }
    };
    let client = async {
        for _ in 0..3 {
            c.get_lease("kube-system", "x").await.unwrap();
        }
    };
    tokio::join!(server, client);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "one free, then two at 2/s"
    );
}

#[tokio::test]
async fn permissions_are_checked_with_self_subject_access_reviews() {
    let (c, mut fake) = cluster();
    let wanted = required_permissions("restart-manager", []);
    let server = async {
        for _ in 0..wanted.len() {
            let seen = next(&mut fake).await;
            assert_eq!(
                (seen.method.clone(), seen.path.as_str()),
                (
                    Method::POST,
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
                )
            );
            let attrs = seen.body["spec"]["resourceAttributes"].clone();
            let allowed = !(attrs["resource"] == "pods" && attrs["subresource"] == "eviction");
            let spec = seen.body["spec"].clone();
            seen.answer(201, json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec, "status": {"allowed": allowed}}).to_string());
        }
    };
    let (missing, ()) = tokio::join!(c.missing_permissions(&wanted), server);
    let missing = missing.unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(
        missing[0].to_string(),
        "create pods/eviction (cluster-wide)"
    );
}

#[tokio::test]
async fn tokens_and_rights_are_reviewed_by_the_api_server() {
    let (c, mut fake) = cluster();
    let api_server = ["https://kubernetes.default.svc.cluster.local".to_string()];
    let who = exchange(
        c.review_token("a-token", &api_server),
        &mut fake,
        |s| {
            assert_eq!(s.path, "/apis/authentication.k8s.io/v1/tokenreviews");
            assert_eq!(s.body["spec"]["token"], "a-token");
            assert_eq!(s.body["spec"]["audiences"], json!(api_server));
        },
        201,
        fixture("tokenreview-response.json"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(who.name, "system:serviceaccount:ns-a:bob");
    assert_eq!(who.uid, "f26ba9b2-5f6c-4b45-90bd-8a3d8df69b66");
    assert!(who.groups.contains(&"system:authenticated".to_string()));
    assert_eq!(
        who.extra["authentication.kubernetes.io/credential-id"],
        ["JTI=01c23071-643c-490e-a642-86297aef76e7"]
    );

    // The review names the user exactly as the TokenReview did: uid and extra included.
    let allowed = exchange(
        c.subject_may(
            &who,
            &Access { verb: "restart", group: "apps", resource: "deployments", namespace: "shop", name: "web" },
        ),
        &mut fake,
        |s| {
            assert_eq!(s.path, "/apis/authorization.k8s.io/v1/subjectaccessreviews");
            assert_eq!(s.body["spec"]["user"], "system:serviceaccount:ns-a:bob");
            assert_eq!(s.body["spec"]["uid"], "f26ba9b2-5f6c-4b45-90bd-8a3d8df69b66");
            assert_eq!(s.body["spec"]["groups"], json!(who.groups));
            assert_eq!(
                s.body["spec"]["extra"],
                json!({"authentication.kubernetes.io/credential-id": ["JTI=01c23071-643c-490e-a642-86297aef76e7"]})
            );
            assert_eq!(
                s.body["spec"]["resourceAttributes"],
                json!({"verb": "restart", "group": "apps", "resource": "deployments", "namespace": "shop", "name": "web"})
            );
        },
        201,
        fixture("subjectaccessreview-response.json"),
    )
    .await
    .unwrap();
    assert!(allowed);
}

/// A non-resource URL (`/metrics`) is asked about as one: `nonResourceAttributes` with the
/// path and the verb, and no resource attributes at all.
#[tokio::test]
async fn a_non_resource_url_is_reviewed_as_one() {
    let (c, mut fake) = cluster();
    let who = k8s_adapter::User {
        name: "system:serviceaccount:monitoring:prometheus".into(),
        ..Default::default()
    };
    let allowed = exchange(
        c.subject_may(
            &who,
            &Access {
                verb: "get",
                group: "",
                resource: "/metrics",
                namespace: "",
                name: "",
            },
        ),
        &mut fake,
        |s| {
            assert_eq!(s.path, "/apis/authorization.k8s.io/v1/subjectaccessreviews");
            assert_eq!(
                s.body["spec"]["nonResourceAttributes"],
                json!({"path": "/metrics", "verb": "get"})
            );
            assert!(s.body["spec"]["resourceAttributes"].is_null(), "{}", s.body);
        },
        201,
        fixture("subjectaccessreview-response.json"),
    )
    .await
    .unwrap();
    assert!(allowed);
}

#[tokio::test]
async fn a_token_good_only_for_other_audiences_is_not_taken() {
    // An authenticator that ignores audiences answers with the API server's own; a token
    // asked about for restart-manager must not pass on that answer.
    let (c, mut fake) = cluster();
    let who = exchange(
        c.review_token("a-token", &["restart-manager".to_string()]),
        &mut fake,
        |s| assert_eq!(s.body["spec"]["audiences"], json!(["restart-manager"])),
        201,
        fixture("tokenreview-response.json"),
    )
    .await
    .unwrap();
    assert_eq!(who, None);
}

#[tokio::test]
async fn workload_watches_list_then_watch_one_kind() {
    let (c, mut fake) = cluster();
    let mut stream = c
        .watch_workloads(&WorkloadFilter {
            kind: WorkloadKind::Deployment,
            namespace: Some("kube-system".into()),
            name: Some("coredns".into()),
        })
        .await
        .unwrap();
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(
            seen.path,
            "/apis/apps/v1/namespaces/kube-system/deployments"
        );
        assert_eq!(
            seen.query.get("fieldSelector").map(String::as_str),
            Some("metadata.name=coredns")
        );
        assert!(!seen.query.contains_key("watch"));
        seen.answer(200, fixture("deployment-list.json"));
        let seen = next(&mut fake).await;
        assert_eq!(seen.query.get("watch").map(String::as_str), Some("true"));
        assert_eq!(
            seen.query.get("fieldSelector").map(String::as_str),
            Some("metadata.name=coredns")
        );
        let d: Value = serde_json::from_str(&fixture("deployment-list.json")).unwrap();
        let mut changed = d["items"][0].clone();
        changed["kind"] = json!("Deployment");
        changed["apiVersion"] = json!("apps/v1");
        changed["metadata"]["resourceVersion"] = json!("999999");
        changed["status"]["updatedReplicas"] = json!(1);
        seen.answer(
            200,
            format!("{}\n", json!({"type": "MODIFIED", "object": changed})),
        );
    };
    let client = async {
        match stream.next().await.unwrap().unwrap() {
            WatchEvent::Restarted(all) => assert_eq!(all[0].name, "coredns"),
            other => panic!("{other:?}"),
        }
        match stream.next().await.unwrap().unwrap() {
            WatchEvent::Applied(w) => assert_eq!(
                (w.resource_version.as_str(), w.status.updated_replicas),
                ("999999", 1)
            ),
            other => panic!("{other:?}"),
        }
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn nodes_keep_only_the_metadata_asked_for() {
    let (c, mut fake) = cluster_with(KubeOptions {
        node_metadata_prefixes: Some(vec!["restart-manager.io/".into()]),
        ..KubeOptions::default()
    });
    let list: Value = serde_json::from_str(&fixture("node-list.json")).unwrap();
    let mut node = list["items"][0].clone();
    node["metadata"]["annotations"]["restart-manager.io/reboot-state"] = json!("draining");
    let node = exchange(
        c.get_node("dummyNode"),
        &mut fake,
        |_| {},
        200,
        node.to_string(),
    )
    .await
    .unwrap();
    assert_eq!(node.annotations.len(), 1, "{:?}", node.annotations);
    assert_eq!(
        node.annotations["restart-manager.io/reboot-state"],
        "draining"
    );
    assert!(node.labels.is_empty(), "{:?}", node.labels);
    assert_eq!(
        node.machine_id, "77094b51073843e5acb5c3cdd16c909e",
        "the ids are kept"
    );
}
