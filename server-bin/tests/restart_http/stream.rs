//! The status stream over real sockets: snapshot then changes, origin checks, frame limits, the client cap.

use super::*;

#[tokio::test]
async fn the_status_stream_sends_a_snapshot_then_changes_and_a_slow_client_holds_nobody_up() {
    let s = serve(&cluster(), settings(Auth::none())).await;
    let mut slow = open(&s, "", None).await.unwrap();
    let mut fast = open(&s, "", None).await.unwrap();
    let mut one = open(&s, "?kind=Deployment&namespace=shop&name=web", None)
        .await
        .unwrap();

    let snapshot = next_json(&mut fast).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["services"].as_array().unwrap().len(), 3);
    let only = next_json(&mut one).await;
    assert_eq!(
        only["services"].as_array().unwrap().len(),
        1,
        "a filtered stream sees one workload"
    );

    let (_, _, metrics) = s.send(&request("GET", "/metrics", &[], "")).await;
    assert!(metrics.contains(r#"restart_app_connected_status_watchers{kind="Deployment",name="web",namespace="shop"} 3"#), "{metrics}");
    assert!(metrics.contains(
        r#"restart_app_connected_status_watchers{kind="Deployment",name="vault",namespace="ops"} 2"#
    ));

    // The slow client reads nothing from here on; the fast one sees the whole rollout.
    let (status, _, _) = s
        .send(&request(
            "POST",
            "/api/v1/service/Deployment/shop/web/restart",
            &[],
            "",
        ))
        .await;
    assert_eq!(status, 200);
    let mut phases = Vec::new();
    loop {
        let msg = next_json(&mut fast).await;
        assert_eq!(msg["type"], "update");
        let service = &msg["service"];
        if service["name"] != "web" {
            continue;
        }
        phases.push(service["phase"].as_str().unwrap().to_string());
        if service["phase"] == "complete" {
            break;
        }
    }
    assert_eq!(
        phases.first().map(String::as_str),
        Some("restarting"),
        "{phases:?}"
    );
    assert!(phases.iter().any(|p| p == "progressing"), "{phases:?}");

    // The slow client was not dropped; it finds its snapshot and the updates waiting.
    assert_eq!(next_json(&mut slow).await["type"], "snapshot");
    assert_eq!(next_json(&mut slow).await["type"], "update");

    // Closing clients lowers the gauge.
    slow.close(None).await.unwrap();
    drop(slow);
    fast.send(Message::Close(None)).await.unwrap();
    drop(fast);
    let mut gauge = String::new();
    for _ in 0..10_000 {
        let (_, _, metrics) = s.send(&request("GET", "/metrics", &[], "")).await;
        gauge = metrics
            .lines()
            .find(|l| l.starts_with(r#"restart_app_connected_status_watchers{kind="Deployment",name="web",namespace="shop"}"#))
            .unwrap_or_default()
            .to_string();
        if gauge.ends_with(" 1") {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(gauge.ends_with(" 1"), "{gauge}");
}

#[tokio::test]
async fn the_stream_checks_the_origin_and_the_workload() {
    let s = serve(&cluster(), settings(Auth::none())).await;
    assert!(
        open(&s, "", Some("https://evil.example")).await.is_err(),
        "foreign pages may not listen in"
    );
    assert!(
        open(&s, "", Some(&format!("http://{}", s.addr)))
            .await
            .is_ok()
    );
    assert!(
        open(&s, "?kind=Deployment&namespace=shop&name=nope", None)
            .await
            .is_err()
    );
    assert!(open(&s, "?kind=Deployment", None).await.is_err());
}

/// The status stream takes nothing large from a client, and only so many clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_stream_refuses_huge_frames_and_clients_past_its_cap() {
    let mut config = settings(Auth::none());
    config.max_status_clients = 2;
    let s = serve(&cluster(), config).await;

    // A 60 MiB frame: the server refuses it from its header and closes; it never buffers it.
    let before = rss_kib();
    let mut ws = open(&s, "", None).await.unwrap();
    next_json(&mut ws).await;
    let huge = vec![b'x'; 60 * 1024 * 1024];
    let _ = ws.send(Message::Binary(huge.into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server closed the socket");
    // The client's own 60 MiB buffer is counted too; the server added nothing near it.
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 100, "grew by {grown_mib} MiB");
    drop(ws);

    // Two clients are served; a third is told why it is not, until one leaves.
    let first = open(&s, "", None).await.unwrap();
    let _second = open(&s, "", None).await.unwrap();
    let third = open(&s, "", None).await.unwrap_err();
    match third {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    drop(first);
    let again = async {
        loop {
            if open(&s, "", None).await.is_ok() {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), again)
        .await
        .expect("a client that left frees its place");
}
