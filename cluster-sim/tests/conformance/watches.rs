//! Cases about watches and rollouts.

use super::*;

/// The watch events of a watch request, until `stop` says so or the stream ends.
pub(crate) async fn watch_events(
    s: &Side,
    path: &str,
    mut stop: impl FnMut(&[Value]) -> bool,
) -> (u16, Vec<Value>) {
    let mut request = s.http.get(format!("{}{path}", s.url));
    if let Some(token) = &s.admin_token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    let mut events = vec![];
    let mut buffer = Vec::new();
    let mut stream = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(_) => break,
            Err(_) => panic!(
                "{}: the watch {path} said too little in time: {events:?}",
                s.name
            ),
        };
        buffer.extend_from_slice(&chunk);
        while let Some(i) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=i).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                events.push(v);
            }
        }
        if stop(&events) {
            break;
        }
    }
    if !buffer.is_empty()
        && let Ok(v) = serde_json::from_slice::<Value>(&buffer)
    {
        events.push(v);
    }
    (code, events)
}

pub(crate) async fn old_watch_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    // On the simulated side, push resource version 1 out of the change window first.
    if let Some(sim) = s.sim() {
        for i in 0..250 {
            sim.add_pod(cluster_api::Pod::new(ns, format!("filler-{i}")))
                .unwrap();
        }
    }
    let (code, events) = watch_events(
        s,
        &format!(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases?watch=true&resourceVersion=1"
        ),
        |events| !events.is_empty(),
    )
    .await;
    let first = events.first().cloned().unwrap_or(Value::Null);
    out.insert(
        "watch-from-1".into(),
        json!({
            "http": code,
            "type": first["type"],
            "code": first["object"]["code"],
            "reason": first["object"]["reason"],
            "message": first["object"]["message"].as_str().map(|m| scrub(m, &[])),
        }),
    );
}

pub(crate) async fn bookmark_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    for i in 0..2 {
        s.call(
            Method::POST,
            &path,
            Some(json!({"metadata": {"name": format!("lease-{i}")}, "spec": {}})),
        )
        .await;
    }
    let (code, events) = watch_events(
        s,
        &format!(
            "{path}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=30"
        ),
        |events| events.iter().any(|e| e["type"] == "BOOKMARK"),
    )
    .await;
    let summary: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "type": e["type"],
                "name": e["object"]["metadata"]["name"],
                "initial-events-end": e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
                "has-resource-version": e["object"]["metadata"]["resourceVersion"].as_str().is_some_and(|v| !v.is_empty()),
            })
        })
        .collect();
    out.insert(
        "streaming-list".into(),
        json!({"http": code, "events": summary}),
    );
}

pub(crate) async fn rollout_case(
    s: &Side,
    ns: &str,
    resource: &str,
    out: &mut BTreeMap<String, Value>,
) {
    s.workload(ns, resource, "web", 3, false).await;
    let path = &format!("/apis/apps/v1/namespaces/{ns}/{resource}/web");
    let fields = |d: &Value| {
        let st = &d["status"];
        let conditions: BTreeMap<String, Value> = st["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["type"].as_str().unwrap_or("").to_string(),
                    json!({"status": c["status"], "reason": c["reason"]}),
                )
            })
            .collect();
        json!({
            "generation": d["metadata"]["generation"],
            "observedGeneration": st["observedGeneration"],
            "replicas": st["replicas"],
            "updatedReplicas": st["updatedReplicas"],
            "readyReplicas": st["readyReplicas"],
            "availableReplicas": st["availableReplicas"],
            "unavailableReplicas": st["unavailableReplicas"],
            "conditions": conditions,
            // A StatefulSet's revisions are hashes of each side's own; whether they agree is
            // what `rollout status` reads.
            "revisionsAgree": st["updateRevision"].as_str().map(|u| st["currentRevision"] == u),
        })
    };
    let settled = |st: &Value| {
        st["updateRevision"].is_null() || st["currentRevision"] == st["updateRevision"]
    };
    // The Deployment's own status follows its pods' a moment later.
    let before = s
        .until("the Deployment's status", || async move {
            let d = s.call(Method::GET, path, None).await.body;
            let st = &d["status"];
            (st["observedGeneration"] == d["metadata"]["generation"]
                && st["availableReplicas"] == 3
                && settled(st))
            .then_some(d)
        })
        .await;
    out.insert("before".into(), fields(&before));
    let patched = s
        .call_with(
            Method::PATCH,
            path,
            Some(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-12-07T22:00:00Z"
            }}}}})),
            "application/strategic-merge-patch+json",
            Auth::Admin,
        )
        .await;
    out.insert(
        "restart-patch".into(),
        json!({"code": patched.code, "generation": patched.body["metadata"]["generation"]}),
    );
    let done = s
        .until("the rollout's end", || async move {
            let d = s.call(Method::GET, path, None).await.body;
            let st = &d["status"];
            let observed = st["observedGeneration"] == d["metadata"]["generation"];
            let count = |f: &str| st[f].as_i64().unwrap_or(0);
            (observed
                && count("updatedReplicas") == 3
                && count("replicas") == 3
                && count("availableReplicas") == 3
                && settled(st))
            .then_some(d)
        })
        .await;
    out.insert("after".into(), fields(&done));
}
