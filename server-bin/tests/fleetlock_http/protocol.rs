//! The protocol: Zincati's requests, malformed ones, refusals, the prefix.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_reboot_cycle_as_zincati_speaks_it() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/").await;
    assert_eq!(
        zincati(&s, "steady-state", "n1", "default").await,
        (200, String::new())
    );
    assert_eq!(zincati(&s, "pre-reboot", "n1", "default").await.0, 200);
    assert!(s.sim.node("n1").unwrap().unschedulable);
    // Asked again while holding (Zincati postpones for logged-in users): still yes.
    assert_eq!(zincati(&s, "pre-reboot", "n1", "default").await.0, 200);
    // The other node waits its turn: 423, not a server error.
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"));
    // Other nodes report steady-state meanwhile: 200, nothing changes.
    assert_eq!(zincati(&s, "steady-state", "n2", "default").await.0, 200);
    // n1 reboots; its Zincati says steady-state once it is up, and the slot is given back
    // once the kubelet has reported the new boot.
    s.sim.reboot_node("n1").unwrap();
    let boot = cluster_sim::SimConfig::default();
    tokio::time::advance(boot.reboot_duration).await;
    assert_eq!(zincati(&s, "steady-state", "n1", "default").await.0, 200);
    assert!(!s.sim.node("n1").unwrap().unschedulable);
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"));
    tokio::time::advance(boot.kubelet_start).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(zincati(&s, "pre-reboot", "n2", "default").await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn every_malformed_request_gets_its_kind_and_status() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/").await;
    let body = zincati_body(&id("n1"), "default");

    // No protocol header.
    let request = format!(
        "POST /v1/pre-reboot HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, answer) = s.send(request.as_bytes()).await;
    assert_eq!(
        (status, kind(&answer).as_str()),
        (400, "missing_protocol_header")
    );

    // Wrong method.
    let (status, head, answer) = s
        .send(
            b"GET /v1/pre-reboot HTTP/1.1\r\nhost: 127.0.0.1\r\nfleet-lock-protocol: true\r\n\r\n",
        )
        .await;
    assert_eq!(
        (status, kind(&answer).as_str()),
        (405, "method_not_allowed")
    );
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");

    let cases: [(&str, u16, &str); 6] = [
        ("{not json", 400, "invalid_body"),
        (
            r#"{"client_params":{"group":"default"}}"#,
            400,
            "invalid_body",
        ),
        (
            r#"{"client_params":{"id":"","group":"default"}}"#,
            400,
            "invalid_id",
        ),
        (
            r#"{"client_params":{"id":"x","group":"bad group!"}}"#,
            400,
            "invalid_group",
        ),
        (
            r#"{"client_params":{"id":"x","group":"workers"}}"#,
            400,
            "unknown_group",
        ),
        (
            r#"{"client_params":{"id":"ffffffffffffffffffffffffffffffff","group":"default"}}"#,
            404,
            "unknown_node",
        ),
    ];
    for (body, want_status, want_kind) in cases {
        let (status, _, answer) = s
            .send(zincati_request("/v1/pre-reboot", body).as_bytes())
            .await;
        assert_eq!(
            (status, kind(&answer).as_str()),
            (want_status, want_kind),
            "{body}"
        );
    }

    // Oversized, even when Content-Length lies about it.
    let huge = format!(
        r#"{{"client_params":{{"id":"{}","group":"default"}}}}"#,
        "a".repeat(20_000)
    );
    let (status, _, answer) = s
        .send(zincati_request("/v1/pre-reboot", &huge).as_bytes())
        .await;
    assert_eq!((status, kind(&answer).as_str()), (413, "body_too_large"));
    let chunked = format!(
        "POST /v1/steady-state HTTP/1.1\r\nhost: 127.0.0.1\r\nfleet-lock-protocol: true\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{huge}\r\n0\r\n\r\n",
        huge.len()
    );
    let (status, _, answer) = send(s.addr, chunked.as_bytes()).await;
    assert_eq!((status, kind(&answer).as_str()), (413, "body_too_large"));

    // Refusals are JSON, with the content type saying so.
    let (_, head, _) = s
        .send(zincati_request("/v1/pre-reboot", "{").as_bytes())
        .await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
}

#[tokio::test(start_paused = true)]
async fn draining_is_a_refusal_and_a_dead_api_is_503() {
    let sim = fleet();
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n1")
            .owned_by("ReplicaSet", "x"),
    )
    .unwrap();
    sim.set_pod_stuck("shop", "slow", true);
    let mut config = FleetLockConfig::default();
    config.drain.request_wait = Duration::ZERO;
    let s = serve(&sim, config, "/").await;
    let (status, body) = zincati(&s, "pre-reboot", "n1", "default").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (423, "draining"),
        "never 2xx while pods remain"
    );

    s.sim.fail_always(
        Operation::GetLease,
        Error::unavailable("dial tcp 10.0.0.1:443: connect: connection refused"),
    );
    let (status, body) = zincati(&s, "steady-state", "n1", "default").await;
    assert_eq!((status, kind(&body).as_str()), (503, "cluster_unavailable"));
    assert!(
        !body.contains("connection refused") && !body.contains("10.0.0.1"),
        "the API's words stay in the log: {body}"
    );
}

/// FleetLock callers are not authenticated: what they are told names no other node, no
/// ServiceAccount and no API error; the log has the details.
#[tokio::test(start_paused = true)]
async fn refusals_tell_an_unauthenticated_caller_nothing_about_others() {
    let sim = fleet();
    sim.add_node(Node::new("n3").machine_id(machine_id_for("n1")));
    sim.add_node(Node::new("n4").machine_id(machine_id_for("n4")));
    let s = serve(&sim, FleetLockConfig::default(), "/").await;

    // n4 gets the slot; n2 is told the group is full, not by whom.
    assert_eq!(zincati(&s, "pre-reboot", "n4", "default").await.0, 200);
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"), "{body}");
    assert!(!body.contains("n4"), "{body}");

    // n1 and n3 share a machine id: the caller learns that, not the names.
    let (status, body) = zincati(&s, "pre-reboot", "n1", "default").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (404, "unknown_node"),
        "{body}"
    );
    assert!(!body.contains("n3"), "{body}");

    // RBAC refuses restart-manager: the caller is not told who restart-manager runs as.
    s.sim.fail_always(
        Operation::ReplaceLease,
        Error::Forbidden {
            message: "leases.coordination.k8s.io \"fleetlock-default\" is forbidden: User \"system:serviceaccount:restart-manager:restart-manager\" cannot update resource".into(),
        },
    );
    let (status, body) = zincati(&s, "steady-state", "n4", "default").await;
    assert_eq!((status, kind(&body).as_str()), (500, "internal"), "{body}");
    assert!(
        !body.contains("serviceaccount") && !body.contains("forbidden"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_endpoints_live_under_the_configured_prefix() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/fleetlock").await;
    let body = zincati_body(&id("n1"), "default");
    let (status, _, _) = s
        .send(zincati_request("/fleetlock/v1/steady-state", &body).as_bytes())
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = s
        .send(zincati_request("/v1/steady-state", &body).as_bytes())
        .await;
    assert_eq!(status, 404);
}
