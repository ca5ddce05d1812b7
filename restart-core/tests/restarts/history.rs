//! History shows the Events this service wrote, and only those: anyone who may create Events
//! in a workload's namespace can write one naming restart-manager's controller (and any
//! reporting instance), but not one with the mark only the service's key gives.

use cluster_api::ClusterApi;

use super::*;

#[tokio::test(start_paused = true)]
async fn history_shows_our_events_on_every_replica_and_no_forged_one() {
    let sim = cluster();
    let config = RestartConfig::default();
    let (a, _, _run_a) = replica(&sim, allowlist(vec![]), config.clone(), "a").await;
    let (b, _, _run_b) = replica(&sim, allowlist(vec![]), config.clone(), "b").await;
    a.restart(&web(), &alice(), Some("rotate the certificate"))
        .await
        .unwrap();
    let real = sim
        .events()
        .into_iter()
        .find(|e| e.regarding.names_same(&web().object_ref()) && e.reason == "Restarted")
        .expect("the restart's Event");

    // Forged: our controller and replica's name, and even a copy of the real Event's mark,
    // over another note; and one with no mark at all.
    let copied_mark = cluster_api::Event {
        note: "mallory restarted it: \u{1b}]8;;https://evil.example\u{7}sign in\u{1b}]8;;\u{7}"
            .into(),
        ..real.clone()
    };
    let unmarked = cluster_api::Event {
        note: "mallory restarted it again".into(),
        reporting_instance: "a".into(),
        ..real.clone()
    };
    for forged in [&copied_mark, &unmarked] {
        ClusterApi::record_event(&sim, forged).await.unwrap();
    }

    // Both replicas read the one key: each shows a's Event, neither a forgery.
    for r in [&a, &b] {
        let notes: Vec<String> = r
            .history(&web())
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.message)
            .collect();
        assert!(notes.contains(&real.note), "{notes:?}");
        assert!(notes.iter().all(|n| !n.contains("mallory")), "{notes:?}");
    }
    let key = sim
        .lease(&config.namespace, restart_core::KEY_LEASE)
        .expect("the key's Lease");
    let hex = &key.annotations[restart_core::KEY_ANNOTATION];
    assert_eq!(hex.len(), 64, "{hex}");

    // b's own Events are shown by a as well.
    b.restart(&db(), &alice(), None).await.unwrap();
    let on_a = a.history(&db()).await.unwrap();
    assert!(on_a.iter().any(|h| h.reason == "Restarted"), "{on_a:?}");
}

/// A replica whose key Lease holds something that is not a key says so, naming the Lease,
/// rather than trusting anything.
#[tokio::test(start_paused = true)]
async fn a_broken_key_lease_is_named_not_trusted() {
    let sim = cluster();
    let config = RestartConfig::default();
    let mut lease = cluster_api::Lease::new(config.namespace.clone(), restart_core::KEY_LEASE);
    lease
        .annotations
        .insert(restart_core::KEY_ANNOTATION.into(), "not a key".into());
    ClusterApi::create_lease(&sim, &lease).await.unwrap();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), config, "a").await;
    let err = r.history(&web()).await.unwrap_err();
    assert!(err.to_string().contains(restart_core::KEY_LEASE), "{err}");
}
