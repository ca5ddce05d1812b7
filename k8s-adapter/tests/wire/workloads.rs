//! Workloads: reads, lists, watches and the restart patch.

use super::*;

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
