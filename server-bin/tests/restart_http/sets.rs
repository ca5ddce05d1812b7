//! Restart sets through the API and the status stream: rights over every member, refusals,
//! cancelling, and a run's progress streamed member by member.

use restart_core::sets::{OnFailure, SetEntry, check_sets};

use super::*;

/// The usual cluster with a quick `cache` Deployment, and a set `shop`: cache, then web,
/// then vault (which only `vault_allowed` may restart).
fn with_set(auth: Auth, vault_allowed: &[&str]) -> (SimCluster, Settings) {
    let sim = cluster();
    sim.add_workload(
        WorkloadSpec::deployment("shop", "cache")
            .replicas(1)
            .pod_start_secs(1)
            .grace_period(0),
    )
    .unwrap();
    let mut settings = settings(auth);
    let mut entries: Vec<ServiceEntry> = settings
        .allowlist
        .iter()
        .map(|a| {
            entry(
                a.workload.kind,
                &a.workload.namespace,
                &a.workload.name,
                &[],
            )
        })
        .collect();
    entries[2].allowed = vault_allowed.iter().map(|s| s.to_string()).collect();
    entries.push(entry(WorkloadKind::Deployment, "shop", "cache", &[]));
    settings.allowlist = Allowlist::new(entries).unwrap();
    settings.sets = check_sets(
        vec![SetEntry {
            name: "shop".into(),
            description: Some("cache, then web, then vault".into()),
            members: vec![
                "Deployment/shop/cache".into(),
                "Deployment/shop/web".into(),
                "Deployment/ops/vault".into(),
            ],
            concurrency: 1,
            on_failure: OnFailure::Stop,
            schedule: None,
        }],
        &settings.allowlist,
    )
    .unwrap();
    (sim, settings)
}

#[tokio::test(start_paused = true)]
async fn starting_a_set_needs_the_right_to_restart_every_member() {
    let (sim, settings) = with_set(tokens(), &["group:sre"]);
    let s = serve(&sim, settings).await;

    let (status, sets) = call(&s, "GET", "/api/v1/sets", Some(ALICE), "").await;
    assert_eq!(status, 200);
    assert_eq!(sets[0]["name"], "shop");
    assert_eq!(sets[0]["members"][2], "Deployment/ops/vault");
    assert_eq!(
        (sets[0]["running"].as_bool(), sets[0]["run"].is_null()),
        (Some(false), true)
    );

    let (status, body) = call(&s, "POST", "/api/v1/sets/shop/restart", Some(BOB), "").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(sim.lease("restart-manager", "restart-set.shop").is_none());
    let (status, body) = call(&s, "POST", "/api/v1/sets/nightly/restart", Some(ALICE), "").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (404, Some("unknown_set")),
        "{body}"
    );
    let (status, _) = call(&s, "POST", "/api/v1/sets/shop/restart", None, "").await;
    assert_eq!(status, 401);
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/sets/shop/restart",
        Some(ALICE),
        r#"{"reason":"a\u0007"}"#,
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    let (status, started) = call(
        &s,
        "POST",
        "/api/v1/sets/shop/restart",
        Some(ALICE),
        r#"{"reason":"new certs"}"#,
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["running"], true);
    assert_eq!(started["run"]["by"], "alice");
    assert_eq!(started["run"]["reason"], "new certs");
    assert_eq!(started["run"]["members"].as_array().unwrap().len(), 3);

    let (status, body) = call(&s, "POST", "/api/v1/sets/shop/restart", Some(ALICE), "").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("set_running")),
        "{body}"
    );

    // Bob may not cancel what he may not start; alice may.
    let (status, _) = call(&s, "POST", "/api/v1/sets/shop/cancel", Some(BOB), "").await;
    assert_eq!(status, 403);
    let (status, cancelled) = call(&s, "POST", "/api/v1/sets/shop/cancel", Some(ALICE), "").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cancelled["set"]["run"]["cancelledBy"], "alice");
    let (_, cancelled) = call(&s, "POST", "/api/v1/sets/shop/cancel", Some(ALICE), "").await;
    assert_eq!(cancelled["cancelled"], false, "already cancelling");
}

#[tokio::test]
async fn a_runs_progress_streams_member_by_member() {
    let (sim, settings) = with_set(Auth::none(), &[]);
    let s = serve(&sim, settings).await;
    let mut ws = open(&s, "", None).await.unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["sets"][0]["name"], "shop");

    let (status, _) = call(&s, "POST", "/api/v1/sets/shop/restart", None, "").await;
    assert_eq!(status, 200);
    let mut seen: Vec<Vec<String>> = Vec::new();
    let last = loop {
        let msg = next_json(&mut ws).await;
        if msg["type"] != "set" {
            continue;
        }
        let run = &msg["set"]["run"];
        let states: Vec<String> = run["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["state"].as_str().unwrap().to_string())
            .collect();
        if seen.last() != Some(&states) {
            seen.push(states);
        }
        if msg["set"]["running"] == false {
            break msg;
        }
    };
    assert_eq!(last["set"]["run"]["state"], "complete", "{last}");
    let expected = |a: &str, b: &str, c: &str| vec![a.to_string(), b.to_string(), c.to_string()];
    for step in [
        expected("restarting", "pending", "pending"),
        expected("complete", "restarting", "pending"),
        expected("complete", "complete", "restarting"),
        expected("complete", "complete", "complete"),
    ] {
        assert!(seen.contains(&step), "{step:?} in {seen:?}");
    }
    // A stream that asked for one workload hears nothing of sets.
    let mut one = open(&s, "?kind=Deployment&namespace=shop&name=web", None)
        .await
        .unwrap();
    assert!(
        next_json(&mut one).await["sets"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A schedule on a workload through the server: its status says when it runs next and how
/// the last went, and the metric counts it.
#[tokio::test(start_paused = true)]
async fn a_scheduled_restart_shows_in_the_status_and_the_metrics() {
    let sim = cluster();
    let mut settings = settings(Auth::none());
    let mut entries: Vec<ServiceEntry> = settings
        .allowlist
        .iter()
        .map(|a| {
            entry(
                a.workload.kind,
                &a.workload.namespace,
                &a.workload.name,
                &[],
            )
        })
        .collect();
    entries[0].schedule = Some(restart_core::schedule::Schedule::new(
        cluster_api::cron::Cron::parse("*/10 * * * *", Some("Europe/Berlin")).unwrap(),
    ));
    settings.allowlist = Allowlist::new(entries).unwrap();
    // 09:00 UTC is a due time; start past its starting deadline.
    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    let s = serve(&sim, settings).await;
    let (_, web) = call(&s, "GET", "/api/v1/service/Deployment/shop/web", None, "").await;
    assert_eq!(web["schedule"]["cron"], "*/10 * * * * Europe/Berlin");
    assert_eq!(web["schedule"]["next"], "2026-01-05T09:10:00Z");
    assert!(web["schedule"]["last"].is_null());

    tokio::time::sleep(Duration::from_secs(5 * 60)).await;
    let (_, web) = call(&s, "GET", "/api/v1/service/Deployment/shop/web", None, "").await;
    assert_eq!(web["schedule"]["last"]["due"], "2026-01-05T09:10:00Z");
    assert_eq!(web["schedule"]["last"]["state"], "started");
    assert_eq!(web["lastRestart"]["by"], "schedule");
    let (_, _, metrics) = s.send(&request("GET", "/metrics", &[], "")).await;
    assert!(
        metrics.contains(r#"restart_manager_scheduled_restarts_total{result="started",target="Deployment/shop/web"} 1"#),
        "{metrics}"
    );
}
