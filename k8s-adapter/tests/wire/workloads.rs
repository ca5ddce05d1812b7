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
    // Its pod template mounts the ConfigMap coredns (the Corefile).
    assert_eq!(
        listed[0].config_refs,
        [cluster_api::ConfigRef::config_map("coredns")]
    );

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

/// Every way a pod template takes configuration: volumes (ConfigMap, Secret, projected),
/// `env` key references and `envFrom`, in containers and init containers; each reference
/// once, sorted; image pull secrets are not configuration.
#[test]
fn a_templates_config_maps_and_secrets_are_found_wherever_it_names_them() {
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "imagePullSecrets": [{"name": "registry"}],
                    "volumes": [
                        {"name": "a", "configMap": {"name": "web-config"}},
                        {"name": "b", "secret": {"secretName": "tls"}},
                        {"name": "c", "projected": {"sources": [
                            {"configMap": {"name": "ca-bundle"}},
                            {"secret": {"name": "token"}},
                            {"serviceAccountToken": {"path": "t"}}
                        ]}},
                        {"name": "d", "emptyDir": {}}
                    ],
                    "initContainers": [{"name": "init", "image": "x",
                        "envFrom": [{"configMapRef": {"name": "web-config"}}]}],
                    "containers": [{"name": "main", "image": "x",
                        "env": [
                            {"name": "A", "value": "1"},
                            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "b"}}},
                            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                            {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                        ],
                        "envFrom": [{"secretRef": {"name": "api-keys"}}]}]
                }
            }
        }
    }))
    .unwrap();
    let refs: Vec<String> = k8s_adapter::convert::deployment(deployment)
        .config_refs
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        refs,
        [
            "ConfigMap ca-bundle",
            "ConfigMap flags",
            "ConfigMap web-config",
            "Secret api-keys",
            "Secret db",
            "Secret tls",
            "Secret token",
        ]
    );
}
