//! Cases about objects: Leases, annotations, Events, selectors, paging.

use super::*;

pub(crate) async fn lease_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    let lease = |rv: Option<&str>, holder: &str| {
        let mut l = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "lock"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30},
        });
        if let Some(rv) = rv {
            l["metadata"]["resourceVersion"] = json!(rv);
        }
        l
    };
    let created = s.call(Method::POST, &path, Some(lease(None, "a"))).await;
    out.insert("create".into(), status(&created, &[]));
    let again = s.call(Method::POST, &path, Some(lease(None, "b"))).await;
    out.insert("create-again".into(), status(&again, &[]));
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let one = format!("{path}/lock");
    let swapped = s.call(Method::PUT, &one, Some(lease(Some(&rv), "b"))).await;
    out.insert(
        "update-current".into(),
        json!({"code": swapped.code, "holder": swapped.body["spec"]["holderIdentity"]}),
    );
    let stale = s.call(Method::PUT, &one, Some(lease(Some(&rv), "c"))).await;
    out.insert("update-stale".into(), status(&stale, &[]));
    let delete = s
        .call(
            Method::DELETE,
            &one,
            Some(json!({"preconditions": {"resourceVersion": rv}})),
        )
        .await;
    out.insert("delete-stale".into(), status(&delete, &[]));
    let missing = s
        .call(
            Method::PUT,
            &format!("{path}/absent"),
            Some({
                let mut l = lease(Some("1"), "a");
                l["metadata"]["name"] = json!("absent");
                l
            }),
        )
        .await;
    out.insert("update-missing".into(), status(&missing, &[]));
}

pub(crate) async fn annotation_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    // 262,144 bytes in all, keys and values: the limit exactly, then one byte more.
    let key = "restart-manager.io/big";
    for (name, extra) in [("at-limit", 0), ("over-limit", 1)] {
        let value = "x".repeat(256 * 1024 - key.len() + extra);
        let r = s
            .call(
                Method::POST,
                &path,
                Some(json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "annotations": {key: value}},
                    "spec": {},
                })),
            )
            .await;
        out.insert(format!("lease-{name}"), status(&r, &[]));
    }
    // A Node patch over the limit.
    let value = "x".repeat(256 * 1024);
    let r = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/nodes/{}", NODES[2]),
            Some(json!({"metadata": {"annotations": {key: value}}})),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
    out.insert("node-over-limit".into(), status(&r, &[]));
}

pub(crate) async fn event_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/api/v1/namespaces/{ns}/events");
    for (name, len) in [("note-at-limit", 1024), ("note-over-limit", 1025)] {
        let now = format!(
            "{}.000000Z",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S")
        );
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "lock."},
            "involvedObject": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "name": "lock", "namespace": ns},
            "reason": "Conformance",
            "message": "x".repeat(len),
            "type": "Normal",
            "action": "Check",
            "reportingComponent": "restart-manager",
            "reportingInstance": "restart-manager-0",
            "source": {"component": "restart-manager"},
            "eventTime": now,
        });
        let r = s.call(Method::POST, &path, Some(event)).await;
        out.insert(name.into(), status(&r, &[]));
    }
    // Without an eventTime (the deprecated way, the kubelet's), the note is not bounded so.
    let r = s
        .call(
            Method::POST,
            &path,
            Some(json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": "lock."},
                "involvedObject": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "name": "lock", "namespace": ns},
                "reason": "Conformance",
                "message": "x".repeat(2048),
                "type": "Normal",
                "source": {"component": "restart-manager"},
                "firstTimestamp": "2026-12-07T22:00:00Z",
                "lastTimestamp": "2026-12-07T22:00:00Z",
                "count": 1,
            })),
        )
        .await;
    out.insert("long-note-without-event-time".into(), status(&r, &[]));
}

pub(crate) async fn selector_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    s.deployment(ns, "web", 2, false).await;
    s.deployment(ns, "db", 1, false).await;
    s.deployment(ns, "idle", 1, true).await;
    let ask = |query: &'static str| async move {
        let r = s
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods?{query}"),
                None,
            )
            .await;
        if r.code != 200 {
            return status(&r, &[]);
        }
        let mut apps: Vec<String> = r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p["metadata"]["labels"]["app"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        apps.sort();
        json!({"code": 200, "apps": apps})
    };
    for (name, query) in [
        ("label-equals", "labelSelector=app%3Dweb"),
        ("label-not-equals", "labelSelector=app!%3Dweb"),
        ("label-in", "labelSelector=app+in+(web,db)"),
        ("label-notin", "labelSelector=app+notin+(web)"),
        ("label-exists", "labelSelector=app"),
        ("label-absent", "labelSelector=!app"),
        ("label-invalid", "labelSelector=app%3D%3D%3D"),
        ("field-phase", "fieldSelector=status.phase%3DPending"),
        ("field-phase-not", "fieldSelector=status.phase!%3DPending"),
        ("field-node-empty", "fieldSelector=spec.nodeName%3D"),
        ("field-unsupported", "fieldSelector=metadata.labels%3Dx"),
        (
            "field-and-label",
            "fieldSelector=status.phase%3DRunning&labelSelector=app%3Ddb",
        ),
    ] {
        out.insert(name.into(), ask(query).await);
    }
    let nodes = s
        .call(
            Method::GET,
            &format!("/api/v1/nodes?fieldSelector=metadata.name%3D{}", NODES[1]),
            None,
        )
        .await;
    out.insert(
        "node-by-name".into(),
        json!({"code": nodes.code, "count": nodes.body["items"].as_array().map(Vec::len)}),
    );
    let unschedulable = s
        .call(
            Method::GET,
            // Only a node of ours, whatever other tests on the same cluster do to the rest.
            &format!(
                "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse,metadata.name%3D{}",
                NODES[1]
            ),
            None,
        )
        .await;
    out.insert(
        "node-unschedulable".into(),
        json!({"code": unschedulable.code, "count": unschedulable.body["items"].as_array().map(Vec::len)}),
    );
}

pub(crate) async fn paging_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    for i in 0..5 {
        let r = s
            .call(
                Method::POST,
                &path,
                Some(json!({"metadata": {"name": format!("lease-{i}")}, "spec": {}})),
            )
            .await;
        assert_eq!(r.code, 201, "{}: {:?}", s.name, r.body);
    }
    let mut pages = vec![];
    let mut next: Option<String> = None;
    loop {
        let query = match &next {
            Some(token) => format!("?limit=2&continue={}", urlencode(token)),
            None => "?limit=2".to_string(),
        };
        let r = s.call(Method::GET, &format!("{path}{query}"), None).await;
        assert_eq!(r.code, 200, "{}: {:?}", s.name, r.body);
        let names: Vec<&str> = r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["metadata"]["name"].as_str())
            .collect();
        pages.push(json!({
            "names": names,
            "remainingItemCount": r.body["metadata"]["remainingItemCount"],
            "continues": r.body["metadata"]["continue"].as_str().is_some_and(|c| !c.is_empty()),
        }));
        next = r.body["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(String::from);
        if next.is_none() || pages.len() > 5 {
            break;
        }
    }
    out.insert("pages".into(), json!(pages));
    let bad = s
        .call(
            Method::GET,
            &format!("{path}?limit=2&continue=bm90LWEtdG9rZW4"),
            None,
        )
        .await;
    out.insert(
        "bad-continue".into(),
        json!({"code": bad.code, "reason": bad.body["reason"]}),
    );
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
