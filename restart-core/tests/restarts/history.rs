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
    // The key is in a Secret (readable only with `get` on that one name), not in a Lease
    // anyone who reads Leases sees.
    let key = ClusterApi::get_secret(&sim, &config.namespace, restart_core::KEY_SECRET)
        .await
        .expect("the key's Secret");
    assert_eq!(key.data[restart_core::KEY_ENTRY].len(), 32, "{key:?}");
    assert!(
        sim.lease(&config.namespace, restart_core::KEY_SECRET)
            .is_none()
    );

    // b's own Events are shown by a as well.
    b.restart(&db(), &alice(), None).await.unwrap();
    let on_a = a.history(&db()).await.unwrap();
    assert!(on_a.iter().any(|h| h.reason == "Restarted"), "{on_a:?}");
}

/// A replica whose key Secret holds something that is not a key says so, naming the Secret,
/// rather than trusting anything or making a new key over it.
#[tokio::test(start_paused = true)]
async fn a_broken_key_secret_is_named_not_trusted() {
    let sim = cluster();
    let config = RestartConfig::default();
    let broken = cluster_api::Secret::new(config.namespace.clone(), restart_core::KEY_SECRET)
        .with(restart_core::KEY_ENTRY, b"short".to_vec());
    ClusterApi::create_secret(&sim, &broken).await.unwrap();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), config.clone(), "a").await;
    let err = r.history(&web()).await.unwrap_err();
    assert!(err.to_string().contains(restart_core::KEY_SECRET), "{err}");
    let kept = ClusterApi::get_secret(&sim, &config.namespace, restart_core::KEY_SECRET)
        .await
        .unwrap();
    assert_eq!(kept.data[restart_core::KEY_ENTRY], b"short");
}

/// The key an earlier release kept in a Lease moves into the Secret, so Events marked with it
/// still show; the Lease, readable by anyone who reads Leases, is deleted.
#[tokio::test(start_paused = true)]
async fn a_key_kept_in_a_lease_moves_to_the_secret_and_old_events_still_show() {
    let sim = cluster();
    let config = RestartConfig::default();
    let (old, _, run_old) = replica(&sim, allowlist(vec![]), config.clone(), "old").await;
    old.restart(&web(), &alice(), Some("before the upgrade"))
        .await
        .unwrap();
    // Put the key where the earlier release kept it, and take the Secret away.
    let secret = ClusterApi::get_secret(&sim, &config.namespace, restart_core::KEY_SECRET)
        .await
        .unwrap();
    let hex: String = secret.data[restart_core::KEY_ENTRY]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    run_old.abort();
    drop(old);
    assert!(sim.delete_config(
        cluster_api::ConfigKind::Secret,
        &config.namespace,
        restart_core::KEY_SECRET
    ));
    let mut lease = cluster_api::Lease::new(config.namespace.clone(), restart_core::KEY_SECRET);
    lease
        .annotations
        .insert(restart_core::LEGACY_KEY_ANNOTATION.into(), hex);
    ClusterApi::create_lease(&sim, &lease).await.unwrap();

    let (new, _, _run) = replica(&sim, allowlist(vec![]), config.clone(), "new").await;
    let notes: Vec<String> = new
        .history(&web())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.message)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("before the upgrade")),
        "{notes:?}"
    );
    let moved = ClusterApi::get_secret(&sim, &config.namespace, restart_core::KEY_SECRET)
        .await
        .unwrap();
    assert_eq!(moved.data, secret.data);
    assert!(
        sim.lease(&config.namespace, restart_core::KEY_SECRET)
            .is_none()
    );
}

/// A Lease of that name holding no key (as the earlier release could leave one) is named,
/// never replaced by a new key that would hide the Events marked with the old one.
#[tokio::test(start_paused = true)]
async fn a_broken_key_lease_is_named_not_trusted() {
    let sim = cluster();
    let config = RestartConfig::default();
    let mut lease = cluster_api::Lease::new(config.namespace.clone(), restart_core::KEY_SECRET);
    lease.annotations.insert(
        restart_core::LEGACY_KEY_ANNOTATION.into(),
        "not a key".into(),
    );
    ClusterApi::create_lease(&sim, &lease).await.unwrap();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), config.clone(), "a").await;
    let err = r.history(&web()).await.unwrap_err();
    assert!(err.to_string().contains("Lease"), "{err}");
    assert!(err.to_string().contains(restart_core::KEY_SECRET), "{err}");
    assert!(
        ClusterApi::get_secret(&sim, &config.namespace, restart_core::KEY_SECRET)
            .await
            .is_err()
    );
}
