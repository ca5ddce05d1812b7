//! Cases that need an administrator's hand: cordoned nodes, users and their rights.

use super::*;

pub(crate) async fn cordon_case(s: &Side, out: &mut BTreeMap<String, Value>) {
    let path = format!("/api/v1/nodes/{}", NODES[1]);
    let node = s.call(Method::GET, &path, None).await;
    let rv = node.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // A change in between: a label.
    let labelled = s
        .call_with(
            Method::PATCH,
            &path,
            Some(
                json!({"metadata": {"labels": {"conformance.restart-manager.io/touched": "yes"}}}),
            ),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
    assert_eq!(labelled.code, 200, "{}: {:?}", s.name, labelled.body);
    for (name, content_type) in [
        ("merge", "application/merge-patch+json"),
        ("strategic", "application/strategic-merge-patch+json"),
    ] {
        let r = s
            .call_with(
                Method::PATCH,
                &path,
                Some(json!({"metadata": {"resourceVersion": rv}, "spec": {"unschedulable": true}})),
                content_type,
                Auth::Admin,
            )
            .await;
        out.insert(format!("stale-{name}"), status(&r, &[]));
    }
    let after = s.call(Method::GET, &path, None).await;
    out.insert(
        "still-schedulable".into(),
        json!(after.body["spec"]["unschedulable"].as_bool() != Some(true)),
    );
    let current = after.body["metadata"]["resourceVersion"].clone();
    let r = s
        .call_with(
            Method::PATCH,
            &path,
            Some(
                json!({"metadata": {"resourceVersion": current}, "spec": {"unschedulable": true}}),
            ),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
    out.insert(
        "current".into(),
        json!({"code": r.code, "unschedulable": r.body["spec"]["unschedulable"]}),
    );
    let _ = s
        .call_with(
            Method::PATCH,
            &path,
            Some(json!({
                "metadata": {"labels": {"conformance.restart-manager.io/touched": null}},
                "spec": {"unschedulable": null},
            })),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
}

pub(crate) async fn rbac_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let token = s.limited_user(ns).await;
    let user = format!("system:serviceaccount:{ns}:{LIMITED}");
    let as_user = |method: Method, path: String, body: Option<Value>| {
        let token = token.clone();
        async move {
            s.call_with(method, &path, body, "application/json", Auth::Token(&token))
                .await
        }
    };
    let r = as_user(Method::GET, format!("/api/v1/namespaces/{ns}/pods"), None).await;
    out.insert("list-pods-allowed".into(), json!({"code": r.code}));
    let r = as_user(Method::GET, "/api/v1/namespaces/default/pods".into(), None).await;
    out.insert("list-pods-elsewhere".into(), status(&r, &[]));
    let r = as_user(
        Method::GET,
        format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/lock"),
        None,
    )
    .await;
    out.insert("get-lease".into(), status(&r, &[]));
    let r = as_user(Method::GET, "/api/v1/nodes".into(), None).await;
    out.insert("list-nodes".into(), status(&r, &[]));
    let r = as_user(
        Method::POST,
        format!("/api/v1/namespaces/{ns}/pods/some-pod/eviction"),
        Some(json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "some-pod"}})),
    )
    .await;
    out.insert("evict".into(), status(&r, &[]));
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/nodes",
            None,
            "application/json",
            Auth::Token("not-a-token"),
        )
        .await;
    out.insert("bad-token".into(), status(&r, &[]));
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/nodes",
            None,
            "application/json",
            Auth::Nobody,
        )
        .await;
    out.insert("anonymous".into(), status(&r, &[]));
    for (name, path) in [
        ("anonymous-discovery", "/api"),
        ("anonymous-version", "/version"),
        ("anonymous-healthz", "/healthz"),
    ] {
        let r = s
            .call_with(Method::GET, path, None, "application/json", Auth::Nobody)
            .await;
        out.insert(name.into(), status(&r, &[]));
    }
    for (name, verb, resource, sub, namespace) in [
        ("self-review-list-pods", "list", "pods", "", ns),
        ("self-review-delete-pods", "delete", "pods", "", ns),
        ("self-review-evict", "create", "pods", "eviction", ns),
        ("self-review-other-namespace", "list", "pods", "", "default"),
    ] {
        let r = as_user(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".into(),
            Some(json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub, "namespace": namespace}},
            })),
        )
        .await;
        out.insert(
            name.into(),
            json!({"code": r.code, "allowed": r.body["status"]["allowed"]}),
        );
    }
    for (name, verb) in [("review-get-pods", "get"), ("review-patch-pods", "patch")] {
        let r = s
            .call(
                Method::POST,
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                Some(json!({
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": user,
                        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                        "resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns},
                    },
                })),
            )
            .await;
        out.insert(
            name.into(),
            json!({"code": r.code, "allowed": r.body["status"]["allowed"]}),
        );
    }
}
