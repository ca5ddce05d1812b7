//! Every adapter operation against a fake API server at the HTTP level: the request it sends
//! (method, path, query, body) and how it reads each answer, using bodies real API servers
//! send.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::time::Duration;

use cluster_api::{
    ClusterApi, Error, Event, EventType, EvictOptions, EvictionOutcome, LabelSelector, Lease,
    NodePatch, ObjectRef, PodFilter, PodPhase, WatchEvent, WorkloadFilter, WorkloadKind,
    WorkloadRef, whole_lists,
};
use futures::StreamExt;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_adapter::{Access, KubeCluster, KubeOptions, RetryAfterLayer, required_permissions};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type Fake = Pin<Box<Handle<Request<Body>, Response<Body>>>>;

/// A cluster over a fake API server, with the adapter's own layer in the client's stack as
/// `KubeCluster::connect` puts it there.
fn cluster_with(options: KubeOptions) -> (KubeCluster, Fake) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let service = tower::Layer::layer(&RetryAfterLayer, service);
    (
        KubeCluster::new(Client::new(service, "default"), options),
        Box::pin(handle),
    )
}

fn cluster() -> (KubeCluster, Fake) {
    cluster_with(KubeOptions::default())
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One request the fake server received.
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    content_type: String,
    body: Value,
    send: SendResponse<Response<Body>>,
}

impl Seen {
    /// Answers as the API server's throttling filters do: plain text and `Retry-After`.
    fn answer_throttled(self, retry_after: &str) {
        let response = Response::builder()
            .status(429)
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-content-type-options", "nosniff")
            .header("retry-after", retry_after)
            .body(Body::from(
                b"Too many requests, please try again later.\n".to_vec(),
            ))
            .unwrap();
        self.send.send_response(response);
    }

    fn answer(self, status: u16, body: String) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body.into_bytes()))
            .unwrap();
        self.send.send_response(response);
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

async fn next(fake: &mut Fake) -> Seen {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), fake.next_request())
        .await
        .expect("a request")
        .expect("the client is alive");
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let query = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    Seen {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        content_type: parts
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        },
        send,
    }
}

/// Runs `call` while answering its one request with `status` and `body`, after `check`.
async fn exchange<T>(
    call: impl Future<Output = T>,
    fake: &mut Fake,
    check: impl FnOnce(&Seen),
    status: u16,
    body: String,
) -> T {
    let server = async {
        let seen = next(fake).await;
        check(&seen);
        seen.answer(status, body);
    };
    let (result, ()) = tokio::join!(call, server);
    result
}

// === nodes ===

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

/// The watch request a stream sends after its list, while the stream waits for events.
async fn watch_request<T: std::fmt::Debug>(
    stream: &mut cluster_api::WatchStream<T>,
    fake: &mut Fake,
) -> Seen {
    let seen = tokio::select! {
        event = stream.next() => panic!("an event before the watch was answered: {event:?}"),
        seen = next(fake) => seen,
    };
    assert_eq!(seen.query.get("watch").map(String::as_str), Some("true"));
    seen
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

// === pods and evictions ===

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

// === leases ===

#[tokio::test]
async fn leases_are_read_written_and_deleted_with_compare_and_swap() {
    let (c, mut fake) = cluster();
    let lease = exchange(
        c.get_lease("kube-system", "apiserver-07a5ea9b9b072c4a5f3d1c3702"),
        &mut fake,
        |s| assert_eq!(s.path, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/apiserver-07a5ea9b9b072c4a5f3d1c3702"),
        200,
        fixture("lease.json"),
    )
    .await
    .unwrap();
    assert_eq!(lease.resource_version, "334899");
    assert_eq!(lease.lease_duration_seconds, Some(3600));
    assert_eq!(
        lease.renew_time.unwrap().to_string(),
        "2023-07-04T21:58:48.065888Z"
    );
    assert!(lease.holder().unwrap().starts_with("apiserver-"));

    // Create: POST without a resourceVersion; a taken name is AlreadyExists.
    let mut new = Lease::new("restart-manager", "fleetlock-default")
        .label("restart-manager.io/lock", "fleetlock");
    new.holder_identity = Some("n1".into());
    let err = exchange(
        c.create_lease(&new),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (
                    Method::POST,
                    "/apis/coordination.k8s.io/v1/namespaces/restart-manager/leases"
                )
            );
            assert_eq!(s.body["metadata"]["name"], "fleetlock-default");
            assert_eq!(
                s.body["metadata"]["labels"]["restart-manager.io/lock"],
                "fleetlock"
            );
            assert!(s.body["metadata"].get("resourceVersion").is_none());
            assert_eq!(s.body["spec"]["holderIdentity"], "n1");
        },
        409,
        fixture("status-409-already-exists.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");

    // Replace: PUT with the resourceVersion read; a stale one is a Conflict.
    let mut stale = lease.clone();
    stale.holder_identity = Some("me".into());
    let err = exchange(
        c.replace_lease(&stale),
        &mut fake,
        |s| {
            assert_eq!(s.method, Method::PUT);
            assert_eq!(s.body["metadata"]["resourceVersion"], "334899");
            assert_eq!(s.body["spec"]["holderIdentity"], "me");
        },
        409,
        fixture("status-409-conflict.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    // A replace without a version never reaches the server.
    assert!(matches!(
        c.replace_lease(&new).await.unwrap_err(),
        Error::Invalid { .. }
    ));

    exchange(
        c.delete_lease("restart-manager", "fleetlock-default", Some("42")),
        &mut fake,
        |s| {
            assert_eq!(s.method, Method::DELETE);
            assert_eq!(s.body["preconditions"]["resourceVersion"], "42");
        },
        200,
        fixture("deployment-delete.response.json"),
    )
    .await
    .unwrap();

    let listed = exchange(
        c.list_leases("restart-manager", &LabelSelector::eq("restart-manager.io/lock", "restart")),
        &mut fake,
        |s| assert_eq!(s.query.get("labelSelector").map(String::as_str), Some("restart-manager.io/lock=restart")),
        200,
        json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": "9"}, "items": []}).to_string(),
    )
    .await
    .unwrap();
    assert!(listed.is_empty());
}

// === workloads ===

#[tokio::test]
async fn workloads_are_read_listed_and_restarted_with_a_merge_patch() {
    let (c, mut fake) = cluster();
    let sts = exchange(
        c.get_workload(&WorkloadRef::new(
            WorkloadKind::StatefulSet,
            "default",
            "nginx-sts",
        )),
        &mut fake,
        |s| {
            assert_eq!(
                s.path,
                "/apis/apps/v1/namespaces/default/statefulsets/nginx-sts"
            )
        },
        200,
        fixture("statefulset.json"),
    )
    .await
    .unwrap();
    assert_eq!(sts.status.current_revision, sts.status.update_revision);
    assert_eq!((sts.replicas, sts.status.ready_replicas), (Some(4), 4));
    assert_eq!(
        sts.strategy,
        cluster_api::UpdateStrategy::RollingUpdate { partition: Some(0) }
    );

    let listed = exchange(
        c.list_workloads(&WorkloadFilter {
            kind: WorkloadKind::Deployment,
            namespace: Some("kube-system".into()),
            name: Some("coredns".into()),
        }),
        &mut fake,
        |s| {
            assert_eq!(s.path, "/apis/apps/v1/namespaces/kube-system/deployments");
            assert_eq!(
                s.query.get("fieldSelector").map(String::as_str),
                Some("metadata.name=coredns")
            );
        },
        200,
        fixture("deployment-list.json"),
    )
    .await
    .unwrap();
    assert_eq!(listed[0].name, "coredns");
    assert_eq!(listed[0].status.updated_replicas, 2);

    let web = WorkloadRef::new(
        WorkloadKind::Deployment,
        "default",
        "k8s-openapi-tests-patch-deployment",
    );
    let patch = BTreeMap::from([(
        "kubectl.kubernetes.io/restartedAt".to_string(),
        Some("2026-01-05T09:00:00Z".to_string()),
    )]);
    let patched = exchange(
        c.patch_template_annotations(&web, &patch),
        &mut fake,
        |s| {
            assert_eq!((s.method.clone(), s.path.as_str()), (Method::PATCH, "/apis/apps/v1/namespaces/default/deployments/k8s-openapi-tests-patch-deployment"));
            assert_eq!(s.content_type, "application/merge-patch+json");
            assert_eq!(s.body, json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-05T09:00:00Z"}}}}}));
        },
        200,
        fixture("deployment-patch-merge-patch.response.json"),
    )
    .await
    .unwrap();
    assert_eq!(patched.kind, WorkloadKind::Deployment);
    assert!(patched.generation >= 1);

    let err = exchange(
        c.get_workload(&web),
        &mut fake,
        |_| {},
        404,
        fixture("status-404-not-found-deployment.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

// === events ===

/// What `kubectl describe` needs to show our Events (`involvedObject.uid`), times that keep a
/// history within one second in order (`eventTime`, to the microsecond), and repeats counted
/// in one Event's `series` instead of one Event per retry.
#[tokio::test]
async fn events_carry_the_uid_and_microseconds_and_repeats_make_a_series() {
    let (c, mut fake) = cluster();
    let event = Event {
        regarding: ObjectRef::cluster("Node", "n1")
            .with_uid("0f6a2c1e-9d63-4b8e-9a55-1d5c2b7e4f10"),
        type_: EventType::Warning,
        reason: "DrainBlocked".into(),
        action: "Drain".into(),
        note: "pods without a controller: default/debug".into(),
        reporting_controller: "restart-manager.io/fleetlock".into(),
        reporting_instance: "replica-a".into(),
        time: Some("2026-01-05T09:00:00.123456Z".parse().unwrap()),
        count: 1,
    };
    let mut created: Value = serde_json::from_str(&fixture("event-core-v1.json")).unwrap();
    created["metadata"]["name"] = json!("n1.188a3f2c9d1e0b7a");
    exchange(
        c.record_event(&event),
        &mut fake,
        |s| {
            assert_eq!(
                (s.method.clone(), s.path.as_str()),
                (Method::POST, "/api/v1/namespaces/default/events")
            );
            let b = &s.body;
            assert_eq!(b["metadata"]["generateName"], "n1.");
            assert_eq!(
                b["involvedObject"],
                json!({"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "0f6a2c1e-9d63-4b8e-9a55-1d5c2b7e4f10"})
            );
            assert_eq!(
                (b["type"].as_str(), b["reason"].as_str()),
                (Some("Warning"), Some("DrainBlocked"))
            );
            assert_eq!(b["message"], "pods without a controller: default/debug");
            assert_eq!(b["eventTime"], "2026-01-05T09:00:00.123456Z");
            assert_eq!(b["reportingComponent"], "restart-manager.io/fleetlock");
            assert_eq!(b["reportingInstance"], "replica-a");
            assert_eq!(b["action"], "Drain");
            assert_eq!(b["source"]["component"], "restart-manager.io/fleetlock");
            assert!(b.get("series").is_none() && b.get("count").is_none(), "{b}");
        },
        201,
        created.to_string(),
    )
    .await
    .unwrap();

    // The same Event again: counted on the first one.
    for (count, at) in [(2, "2026-01-05T09:00:30.5Z"), (3, "2026-01-05T09:01:00Z")] {
        let again = Event {
            time: Some(at.parse().unwrap()),
            ..event.clone()
        };
        exchange(
            c.record_event(&again),
            &mut fake,
            |s| {
                assert_eq!(
                    (s.method.clone(), s.path.as_str()),
                    (
                        Method::PATCH,
                        "/api/v1/namespaces/default/events/n1.188a3f2c9d1e0b7a"
                    )
                );
                assert_eq!(s.content_type, "application/merge-patch+json");
                let expected: jiff::Timestamp = at.parse().unwrap();
                assert_eq!(s.body["series"]["count"], count);
                assert_eq!(
                    s.body["series"]["lastObservedTime"]
                        .as_str()
                        .unwrap()
                        .parse::<jiff::Timestamp>()
                        .unwrap(),
                    expected
                );
            },
            200,
            created.to_string(),
        )
        .await
        .unwrap();
    }

    // Another note is another Event.
    exchange(
        c.record_event(&Event {
            note: "pods without a controller: default/other".into(),
            ..event.clone()
        }),
        &mut fake,
        |s| assert_eq!(s.method, Method::POST),
        201,
        created.to_string(),
    )
    .await
    .unwrap();

    // A series whose Event has expired starts a new Event.
    let server = async {
        let seen = next(&mut fake).await;
        assert_eq!(seen.method, Method::PATCH);
        seen.answer(404, fixture("status-404-not-found.json"));
        let seen = next(&mut fake).await;
        assert_eq!(seen.method, Method::POST);
        seen.answer(201, created.to_string());
    };
    let (result, ()) = tokio::join!(c.record_event(&event), server);
    result.unwrap();
}

#[tokio::test]
async fn events_read_back_with_their_series_or_their_old_fields() {
    let (c, mut fake) = cluster();
    let pod = ObjectRef::namespaced("Pod", "default", "hello-1567197780-mn4mv");
    let old: Value = serde_json::from_str(&fixture("event-core-v1.json")).unwrap();
    let mut series = old.clone();
    series["series"] = json!({"count": 4, "lastObservedTime": "2019-08-30T20:50:00.250000Z"});
    series["eventTime"] = json!("2019-08-30T20:43:05.000001Z");
    let events = exchange(
        c.list_events(&pod),
        &mut fake,
        |s| {
            assert_eq!(s.path, "/api/v1/namespaces/default/events");
            assert_eq!(
                s.query.get("fieldSelector").map(String::as_str),
                Some("involvedObject.kind=Pod,involvedObject.name=hello-1567197780-mn4mv")
            );
        },
        200,
        json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [series, old]})
            .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(
        events[0].regarding,
        pod.with_uid("c31fdeb8-cb66-11e9-990f-42010a800218")
    );
    assert_eq!(events[0].reason, "Pulled");
    assert_eq!(events[0].reporting_controller, "kubelet");
    assert_eq!(events[0].time.unwrap().to_string(), "2019-08-30T20:43:05Z");
    assert_eq!(events[0].count, 1);
    assert_eq!(events[1].count, 4, "oldest first, the series last");
    assert_eq!(
        events[1].time.unwrap().to_string(),
        "2019-08-30T20:50:00.25Z"
    );
}

// === errors, limits, reviews ===

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
