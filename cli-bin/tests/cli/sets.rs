//! `restartctl sets`, `restart set NAME` and `cancel set NAME`, directly and through a server.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_runs_a_set_member_by_member() {
    let sim = cluster();
    let d = direct(&sim, Follow::Nothing);

    let r = cli(&["sets"], Some(&d)).await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    assert!(r.out.starts_with("NAME"), "{}", r.out);
    assert!(
        r.out.contains("shop") && r.out.contains("never run"),
        "{}",
        r.out
    );

    let r = cli(
        &["restart", "set", "shop", "--reason", "new certs", "--wait"],
        Some(&direct(&sim, Follow::Set("shop".into()))),
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in {}", r.out))
    };
    // In order: web restarts and completes, then db does.
    let steps = [
        at("Deployment/shop/web  restarting"),
        at("Deployment/shop/web  complete: rolled out"),
        at("StatefulSet/shop/db  restarting"),
        at("StatefulSet/shop/db  complete: rolled out"),
        at("restart set shop: complete by tester"),
    ];
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{}", r.out);
    assert!(r.out.contains("2/2 done: new certs"), "{}", r.out);

    // `d` is a backend of its own, whose set watch may not have the run's end yet on a busy
    // machine: ask until it does (bounded).
    let mut r = cli(&["sets", "shop"], Some(&d)).await;
    for _ in 0..100 {
        if r.out.matches("complete").count() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        r = cli(&["sets", "shop"], Some(&d)).await;
    }
    assert!(
        r.out.contains("MEMBER") && r.out.contains("STATE"),
        "{}",
        r.out
    );
    assert_eq!(
        r.out.matches("complete").count(),
        3,
        "run and both members: {}",
        r.out
    );

    // A workload's schedule, in its status.
    let r = cli(&["status", "sts/shop/db"], Some(&d)).await;
    assert!(
        r.out
            .contains("Schedule:      0 3 * * * UTC; next 2026-01-06 03:00 UTC"),
        "{}",
        r.out
    );

    let r = cli(&["cancel", "set", "shop"], Some(&d)).await;
    assert_eq!(r.exit, Exit::Ok);
    assert!(
        r.out.contains("restart set shop was not running"),
        "{}",
        r.out
    );

    let r = cli(&["restart", "set", "nightly"], Some(&d)).await;
    assert_eq!(r.exit, Exit::NotFound);
    assert!(
        r.err.contains("no restart set named \"nightly\""),
        "{}",
        r.err
    );
    assert!(r.err.contains("restartctl sets"), "the hint: {}", r.err);
    let r = cli(&["restart", "deploy/shop/web", "shop"], Some(&d)).await;
    assert_eq!(r.exit, Exit::Usage);
    assert!(r.err.contains("restart set NAME"), "{}", r.err);
    let r = cli(&["restart", "set", "shop", "--dry-run"], Some(&d)).await;
    assert_eq!(r.exit, Exit::Usage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_set_exits_6_through_a_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = server().await;
    let r = remote(&s, Some(DEV), &["restart", "set", "fragile", "--wait"]).await;
    assert_eq!(r.exit, Exit::RolloutFailed, "{}{}", r.out, r.err);
    assert!(
        r.out
            .contains("Deployment/shop/broken  failed: its rollout failed"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("Deployment/shop/web  skipped: an earlier member failed"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("restart set fragile: failed by dev"),
        "{}",
        r.out
    );

    let r = remote(&s, Some(DEV), &["sets", "-o", "json"]).await;
    let sets: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(sets[1]["name"], "fragile");
    assert_eq!(sets[1]["run"]["state"], "failed");
    assert_eq!(sets[1]["run"]["members"][1]["state"], "skipped");

    // Started without waiting, then cancelled.
    s.sim
        .stall_rollouts(&WorkloadSpec::deployment("shop", "web").reference(), true)
        .unwrap();
    let r = remote(&s, Some(DEV), &["restart", "set", "shop"]).await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    assert!(
        r.out
            .contains("restart set shop started: 2 members, 1 at once"),
        "{}",
        r.out
    );
    let r = remote(&s, Some(DEV), &["restart", "set", "shop"]).await;
    assert_eq!(r.exit, Exit::Refused, "{}", r.err);
    assert!(r.err.contains("running already"), "{}", r.err);
    let r = remote(&s, Some(DEV), &["cancel", "set", "shop"]).await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    assert!(r.out.contains("restart set shop cancelled"), "{}", r.out);
}
