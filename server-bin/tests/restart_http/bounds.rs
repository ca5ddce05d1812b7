//! The API's bounds over real sockets: request rates, deadlines, body sizes, unknown paths.

use super::*;

/// One client over its allowance is slowed down with 429 and Retry-After; the others are not.
#[tokio::test(start_paused = true)]
async fn a_client_over_its_rate_is_told_when_to_come_back() {
    let mut config = settings(Auth::none());
    config.api_rate = restart_manager::ratelimit::Rate {
        per_second: 1,
        burst: 3,
    };
    let s = serve(&cluster(), config).await;
    for _ in 0..3 {
        assert_eq!(call(&s, "GET", "/api/v1/service", None, "").await.0, 200);
    }
    let (status, head, body) = s.send(&request("GET", "/api/v1/service", &[], "")).await;
    assert_eq!(
        (status, json(&body)["kind"].as_str()),
        (429, Some("too_many_requests")),
        "{body}"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
}

/// A request that the cluster holds up is answered 503 at the deadline, not left hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_up_by_the_cluster_ends_at_its_deadline() {
    let sim = cluster();
    let mut config = settings(Auth::none());
    config.request_timeout = Duration::from_millis(200);
    let s = serve(&sim, config).await;
    sim.set_latency(
        cluster_sim::Operation::ListEvents,
        Duration::from_secs(3600),
    );
    let history = "/api/v1/service/Deployment/shop/web/history";
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(30), call(&s, "GET", history, None, ""))
            .await
            .expect("answered within the deadline");
    assert_eq!(
        (status, body["kind"].as_str()),
        (503, Some("timeout")),
        "{body}"
    );
    // Everything else is still served.
    assert_eq!(call(&s, "GET", "/api/v1/service", None, "").await.0, 200);
}

/// A body past the API's bound is refused before it is read in full, in the API's own JSON
/// shape with a kind, like every other refusal (it was axum's plain-text rejection).
#[tokio::test(start_paused = true)]
async fn an_oversized_body_is_refused_in_the_apis_shape() {
    let s = serve(&cluster(), settings(tokens())).await;
    let huge = format!(r#"{{"reason":"{}"}}"#, "x".repeat(100_000));
    for path in [
        "/api/v1/service/Deployment/shop/web/restart",
        "/api/v1/service/Deployment/shop/web/unlock",
        "/api/v1/session",
    ] {
        let (status, body) = call(&s, "POST", path, Some(ALICE), &huge).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["kind"], "body_too_large", "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("65536 bytes"),
            "{path}: {body}"
        );
    }
    let web = cluster_api::WorkloadRef::new(cluster_api::WorkloadKind::Deployment, "shop", "web");
    assert!(s.sim.pods_of(&web).iter().all(|p| !p.is_terminating()));
}

/// A path under /api/ that names nothing is a 404 in the API's JSON shape, naming the path.
#[tokio::test(start_paused = true)]
async fn an_unknown_api_path_is_a_404_with_a_kind() {
    let s = serve(&cluster(), settings(tokens())).await;
    for (method, path) in [("GET", "/api/v1/nothing"), ("POST", "/api/v2/service")] {
        let (status, body) = call(&s, method, path, Some(ALICE), "").await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["kind"], "not_found", "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(path),
            "{path}: {body}"
        );
    }
}
