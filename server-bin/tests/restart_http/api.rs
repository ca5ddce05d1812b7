//! The restart API over real sockets: endpoints, tokens and rights, dry runs, windows.

use super::*;

#[tokio::test(start_paused = true)]
async fn the_seed_endpoints_keep_their_paths_and_meaning() {
    let s = serve(&cluster(), settings(Auth::none())).await;
    let (status, list) = call(&s, "GET", "/api/v1/service", None, "").await;
    assert_eq!(status, 200);
    let first = &list[0];
    assert_eq!(
        (
            first["kind"].as_str(),
            first["namespace"].as_str(),
            first["name"].as_str()
        ),
        (Some("Deployment"), Some("shop"), Some("web"))
    );
    assert_eq!(first["phase"], "idle");
    assert_eq!(first["description"], "the web");

    // A restart with no body at all, as the seed's page sent it.
    let (status, started) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/web/restart",
        None,
        "",
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["lock"]["holder"], "anonymous");

    // Locked: 409 with who and since.
    let (status, refused) = call(
        &s,
        "POST",
        "/api/v1/service/deployment/shop/web/restart",
        None,
        r#"{"reason":"again"}"#,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(refused["kind"], "locked");
    assert_eq!(refused["lock"]["holder"], "anonymous");
    assert!(refused["lock"]["since"].is_string());

    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/cronjob/shop/web/restart",
        None,
        "",
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (400, Some("bad_kind")));
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/payments/restart",
        None,
        "",
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (404, Some("not_allowlisted"))
    );
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/frozen/restart",
        None,
        "",
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (409, Some("paused")));
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/web/restart",
        None,
        "{not json",
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_request"))
    );

    // Per-workload status and history.
    let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
    s.app.restarter.wait(&web, |_| {}).await;
    let (status, one) = call(&s, "GET", "/api/v1/service/Deployment/shop/web", None, "").await;
    assert_eq!((status, one["phase"].as_str()), (200, Some("complete")));
    let (_, history) = call(
        &s,
        "GET",
        "/api/v1/service/Deployment/shop/web/history",
        None,
        "",
    )
    .await;
    let reasons: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["RolloutComplete", "RestartRefused", "Restarted"]);

    // Counters count restarts, not attempts.
    let (_, _, metrics) = s.send(&request("GET", "/metrics", &[], "")).await;
    assert!(
        metrics.contains(
            r#"restart_app_restarts_total{kind="Deployment",name="web",namespace="shop"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"restart_app_restarts_failed_total{kind="Deployment",name="web",namespace="shop"} 0"#
    ));
    assert!(metrics.contains(r#"restart_app_rollout_duration_seconds_count{kind="Deployment",name="web",namespace="shop",outcome="complete"} 1"#));
    assert!(metrics.contains(
        r#"restart_app_restarts_total{kind="Deployment",name="frozen",namespace="shop"} 0"#
    ));
}

#[tokio::test(start_paused = true)]
async fn tokens_identify_callers_and_rights_are_enforced() {
    let s = serve(&cluster(), settings(tokens())).await;
    let (status, head, _) = s.send(&request("GET", "/api/v1/service", &[], "")).await;
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/v1/service",
            Some("wrong-token-0123456"),
            ""
        )
        .await
        .0,
        401
    );
    assert_eq!(call(&s, "GET", "/api/v1/fleet", None, "").await.0, 401);

    let (_, me) = call(&s, "GET", "/api/v1/whoami", Some(BOB), "").await;
    assert_eq!(
        (me["user"].as_str(), me["admin"].as_bool()),
        (Some("bob"), Some(false))
    );

    // vault allows group:sre only.
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/ops/vault/restart",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (403, Some("forbidden")));
    let (status, started) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/ops/vault/restart",
        Some(ALICE),
        r#"{"reason":"rotate"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        started["lock"]["holder"], "alice",
        "the identity is what the lock records"
    );
    assert_eq!(started["lock"]["reason"], "rotate");

    // Breaking a lock: admins only, and with a reason.
    let unlock = "/api/v1/service/Deployment/ops/vault/unlock";
    assert_eq!(
        call(&s, "POST", unlock, Some(BOB), r#"{"reason":"x"}"#)
            .await
            .0,
        403
    );
    let (status, body) = call(&s, "POST", unlock, Some(ALICE), "").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = call(&s, "POST", unlock, Some(ALICE), r#"{"reason":"testing"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body["released"]["holder"], "alice");

    // Pausing a reboot group: admins only.
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v1/fleet/groups/default/pause",
            Some(BOB),
            ""
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v1/fleet/groups/default/pause",
            Some(ALICE),
            ""
        )
        .await
        .0,
        200
    );
    let (_, fleet) = call(&s, "GET", "/api/v1/fleet", Some(BOB), "").await;
    assert_eq!(fleet["groups"][0]["paused"], true);

    // Only configured groups can be paused; a made-up one leaves nothing behind, and a bad
    // name is refused before anyone is asked about rights (BOB is no admin, yet sees 404/400).
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/fleet/groups/made-up/pause",
        Some(ALICE),
        "",
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (404, Some("unknown_group")),
        "{body}"
    );
    let (status, _) = call(
        &s,
        "POST",
        "/api/v1/fleet/groups/made-up/pause",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/fleet/groups/Bad_Name!/pause",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_group")),
        "{body}"
    );
    let (_, fleet) = call(&s, "GET", "/api/v1/fleet", Some(BOB), "").await;
    assert_eq!(fleet["groups"].as_array().unwrap().len(), 1, "{fleet}");
}

#[tokio::test(start_paused = true)]
async fn reading_is_authorised_too() {
    // Only the sre group may see anything; bob is authenticated but not a viewer.
    let mut auth = tokens();
    auth.viewers = vec!["group:sre".into()];
    let s = serve(&cluster(), settings(auth)).await;
    let (status, all) = call(&s, "GET", "/api/v1/service", Some(ALICE), "").await;
    assert_eq!((status, all.as_array().map(Vec::len)), (200, Some(3)));
    let (status, none) = call(&s, "GET", "/api/v1/service", Some(BOB), "").await;
    assert_eq!((status, none), (200, serde_json::json!([])));
    for path in [
        "/api/v1/service/Deployment/shop/web",
        "/api/v1/service/Deployment/shop/web/history",
        "/api/v1/fleet",
    ] {
        let (status, body) = call(&s, "GET", path, Some(BOB), "").await;
        assert_eq!(
            (status, body["kind"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("not a viewer"),
            "{body}"
        );
        assert_eq!(
            call(&s, "GET", path, Some(ALICE), "").await.0,
            200,
            "{path}"
        );
    }
    // An unknown workload is 404 for everyone: names before rights.
    let (status, _) = call(
        &s,
        "GET",
        "/api/v1/service/Deployment/shop/nope",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(status, 404);

    // The status stream: bob's snapshot is empty, and he may not follow one workload.
    let stream = |token: &str, query: &str| {
        let mut req = format!("ws://{}/api/v1/service/status{query}", s.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    let (mut ws, _) = stream(BOB, "").await.unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["services"], serde_json::json!([]));
    assert!(
        stream(BOB, "?kind=Deployment&namespace=shop&name=web")
            .await
            .is_err()
    );
    let (mut ws, _) = stream(ALICE, "").await.unwrap();
    assert_eq!(
        next_json(&mut ws).await["services"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A token past the bound is refused before it is looked up, and says why.
    let huge = "x".repeat(restart_manager::auth::MAX_TOKEN_LEN + 1);
    let (status, body) = call(&s, "GET", "/api/v1/service", Some(&huge), "").await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("longer than 16384 bytes"),
        "{body}"
    );
}

/// `?dryRun=true` answers what a restart would do, with the same rights as a restart, and
/// changes nothing; a malformed query names the problem.
#[tokio::test(start_paused = true)]
async fn a_dry_run_restarts_nothing() {
    let sim = cluster();
    let s = serve(&sim, settings(tokens())).await;
    let path = "/api/v1/service/Deployment/shop/web/restart";
    let writes = sim.calls().writes();
    let (status, plan) = call(&s, "POST", &format!("{path}?dryRun=true"), Some(BOB), "").await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["allowed"], true);
    assert_eq!(plan["workload"], "Deployment/shop/web");
    assert_eq!(plan["pods"].as_array().unwrap().len(), 2);
    assert_eq!(sim.calls().writes(), writes, "nothing written");
    let (_, status_now) = call(
        &s,
        "GET",
        "/api/v1/service/Deployment/shop/web",
        Some(BOB),
        "",
    )
    .await;
    assert!(status_now["lock"].is_null(), "no lock taken");

    // The same refusals as a restart: rights first, then the workload's own state.
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/ops/vault/restart?dryRun=All",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!((status, body["kind"].as_str()), (403, Some("forbidden")));
    let (status, plan) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/frozen/restart?dryRun=true",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(plan["allowed"], false);
    assert_eq!(plan["refusal"]["kind"], "paused");
    // A reason the restart would refuse is refused by its dry run too.
    let (status, body) = call(
        &s,
        "POST",
        &format!("{path}?dryRun=true"),
        Some(BOB),
        r#"{"reason":"\u0084"}"#,
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("U+0084"),
        "{body}"
    );

    // dryRun=false is a restart.
    let (status, started) = call(&s, "POST", &format!("{path}?dryRun=false"), Some(BOB), "").await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["lock"]["holder"], "bob");

    for (query, want) in [
        ("dryRun=yes", "expected true, false or All"),
        ("dryrun=true", "unknown query parameter \"dryrun\""),
        ("dryRun=true&dryRun=false", "more than once"),
    ] {
        let (status, body) = call(&s, "POST", &format!("{path}?{query}"), Some(BOB), "").await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(want),
            "{query}: {body}"
        );
    }
}

/// Outside a workload's restart windows: 409 `outside_window`, unless the caller has the
/// unlock right (an admin here) and gives a reason.
#[tokio::test(start_paused = true)]
async fn outside_its_windows_only_an_unlocker_with_a_reason_restarts() {
    let office_hours = ServiceEntry {
        windows: vec![
            cluster_api::window::Window::parse(&["mon-fri"], "10:00", "17:00", None).unwrap(),
        ],
        ..entry(WorkloadKind::Deployment, "shop", "web", &[])
    };
    let mut settings = settings(tokens());
    settings.allowlist = Allowlist::new(vec![office_hours]).unwrap();
    let s = serve(&cluster(), settings).await;
    let path = "/api/v1/service/Deployment/shop/web/restart";

    let (status, body) = call(&s, "POST", path, Some(BOB), r#"{"reason":"please"}"#).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("outside_window")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the next opens at"),
        "{body}"
    );
    // The unlock right without a reason is not enough.
    let (status, body) = call(&s, "POST", path, Some(ALICE), "").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("outside_window")),
        "{body}"
    );
    let (status, body) = call(&s, "POST", path, Some(ALICE), r#"{"reason":"outage fix"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lock"]["holder"], "alice");
}
