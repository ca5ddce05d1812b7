//! Leases: reads, compare-and-swap writes, deletes.

use super::*;

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
