//! Watches: what they see, how they lag, break and list again.

use super::*;

#[tokio::test(start_paused = true)]
async fn lease_watches_see_every_write_of_their_selection() {
    use futures::StreamExt;
    let sim = SimCluster::new();
    let mut watch = sim
        .watch_leases("restart-manager", &LabelSelector::eq("app", "fleetlock"))
        .await
        .unwrap();
    assert!(matches!(
        watch.next().await.unwrap().unwrap(),
        cluster_api::WatchEvent::Restarted(l) if l.is_empty()
    ));
    let created = sim
        .create_lease(&lease("g").label("app", "fleetlock"))
        .await
        .unwrap();
    sim.create_lease(&lease("other").label("app", "restart"))
        .await
        .unwrap();
    let mut held = created.clone();
    held.holder_identity = Some("n1".into());
    let held = sim.replace_lease(&held).await.unwrap();
    sim.delete_lease("restart-manager", "g", None)
        .await
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(watch.next().await.unwrap().unwrap());
    }
    assert_eq!(
        seen,
        [
            cluster_api::WatchEvent::Applied(created),
            cluster_api::WatchEvent::Applied(held.clone()),
            cluster_api::WatchEvent::Deleted(held),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_leaves_the_write_in_place() {
    let sim = SimCluster::new();
    sim.fail_after_next(
        Operation::CreateLease,
        1,
        Error::unavailable("context deadline exceeded"),
    );
    let err = sim.create_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(
        sim.lease("restart-manager", "lock").is_some(),
        "the create took effect although its caller heard a failure"
    );
    // Only that one call: the retry meets the object it made.
    let err = sim.create_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
}

/// One client's watch can lag while another's does not: held events wait, and arrive in
/// order when let through; the held client's own reads and writes are not delayed.
#[tokio::test(start_paused = true)]
async fn a_held_watch_of_one_client_lags_while_another_clients_does_not() {
    use cluster_sim::HeldWatch;
    use futures::StreamExt;
    let sim = SimCluster::new();
    let lagging = sim.client();
    let locks = LabelSelector::eq("app", "lock");
    let runs = LabelSelector::eq("app", "run");
    let mut fresh = sim.watch_leases("restart-manager", &locks).await.unwrap();
    let mut late = lagging
        .watch_leases("restart-manager", &locks)
        .await
        .unwrap();
    let mut other = lagging
        .watch_leases("restart-manager", &runs)
        .await
        .unwrap();
    for w in [&mut fresh, &mut late, &mut other] {
        assert!(matches!(
            w.next().await,
            Some(Ok(cluster_api::WatchEvent::Restarted(_)))
        ));
    }
    lagging.hold_watches(HeldWatch::leases(&locks), true);
    let first = sim
        .create_lease(&lease("a").label("app", "lock"))
        .await
        .unwrap();
    lagging
        .create_lease(&lease("b").label("app", "lock"))
        .await
        .unwrap();
    lagging
        .create_lease(&lease("r").label("app", "run"))
        .await
        .unwrap();
    let name = |e: Option<cluster_api::Result<cluster_api::WatchEvent<Lease>>>| match e {
        Some(Ok(cluster_api::WatchEvent::Applied(l))) => l.name,
        e => panic!("{e:?}"),
    };
    assert_eq!(name(fresh.next().await), "a");
    assert_eq!(name(fresh.next().await), "b");
    assert_eq!(name(other.next().await), "r", "only the lock watch is held");
    assert_eq!(
        lagging.get_lease("restart-manager", "a").await.unwrap(),
        first,
        "reads are not held"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(600), late.next())
            .await
            .is_err(),
        "held"
    );
    lagging.hold_watches(HeldWatch::leases(&locks), false);
    assert_eq!(name(late.next().await), "a");
    assert_eq!(name(late.next().await), "b");
}

#[tokio::test(start_paused = true)]
async fn broken_watches_end_with_an_error_and_a_new_watch_lists_again() {
    use futures::StreamExt;
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    let selector = LabelSelector::default();
    let mut nodes = sim.watch_nodes().await.unwrap();
    let mut leases = sim
        .watch_leases("restart-manager", &selector)
        .await
        .unwrap();
    assert!(matches!(
        nodes.next().await,
        Some(Ok(cluster_api::WatchEvent::Restarted(_)))
    ));
    assert!(matches!(
        leases.next().await,
        Some(Ok(cluster_api::WatchEvent::Restarted(_)))
    ));

    sim.break_watches();
    sim.remove_node("n1");
    let err = nodes.next().await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("too old resource version"),
        "{err}"
    );
    assert!(
        nodes.next().await.is_none(),
        "the stream ends after its error"
    );
    assert!(leases.next().await.unwrap().is_err());
    assert!(leases.next().await.is_none());

    // What changed in between shows only in the fresh list.
    let mut nodes = sim.watch_nodes().await.unwrap();
    assert_eq!(
        nodes.next().await,
        Some(Ok(cluster_api::WatchEvent::Restarted(vec![])))
    );
}

/// A ConfigMap or Secret watch: all of one kind in one namespace, then each change, as
/// digests that follow the data.
#[tokio::test(start_paused = true)]
async fn config_watches_see_one_kind_in_one_namespace_by_digest() {
    use cluster_api::{ConfigKind, WatchEvent};
    use futures::StreamExt;

    let sim = SimCluster::new();
    let first = sim.put_config_map("shop", "web", &[("a", "1")]);
    sim.put_secret("shop", "web", &[("a", "1")]);
    sim.put_config_map("ops", "web", &[("a", "1")]);
    let mut watch = sim
        .watch_config("shop", ConfigKind::ConfigMap)
        .await
        .unwrap();
    match watch.next().await.unwrap().unwrap() {
        WatchEvent::Restarted(all) => assert_eq!(all, std::slice::from_ref(&first)),
        other => panic!("{other:?}"),
    }
    // Other kinds and namespaces are not seen; the same data keeps its digest.
    sim.put_secret("shop", "web", &[("a", "2")]);
    sim.put_config_map("ops", "web", &[("a", "2")]);
    let same = sim.put_config_map("shop", "web", &[("a", "1")]);
    let changed = sim.put_config_map("shop", "web", &[("a", "2")]);
    assert_eq!(same.digest, first.digest);
    assert_ne!(changed.digest, first.digest);
    for want in [same, changed.clone()] {
        match watch.next().await.unwrap().unwrap() {
            WatchEvent::Applied(o) => assert_eq!(o, want),
            other => panic!("{other:?}"),
        }
    }
    assert!(sim.delete_config(ConfigKind::ConfigMap, "shop", "web"));
    assert!(!sim.delete_config(ConfigKind::ConfigMap, "shop", "web"));
    match watch.next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => assert_eq!(o.name, "web"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.calls().get(Operation::WatchConfig), 1);
}
