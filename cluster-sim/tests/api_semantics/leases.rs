//! Leases: compare-and-swap, preconditions, names, lists, races.

use super::*;

#[tokio::test(start_paused = true)]
async fn lease_writes_are_compare_and_swap() {
    let sim = SimCluster::new();
    let created = sim.create_lease(&lease("lock")).await.unwrap();
    assert!(!created.resource_version.is_empty());

    let err = sim.create_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "leases.coordination.k8s.io \"lock\" already exists"
    );

    let mut mine = created.clone();
    mine.holder_identity = Some("a".into());
    let updated = sim.replace_lease(&mine).await.unwrap();
    assert_ne!(updated.resource_version, created.resource_version);

    // Writing again with the version we read first is stale now.
    let mut stale = created.clone();
    stale.holder_identity = Some("b".into());
    let err = sim.replace_lease(&stale).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("the object has been modified"));
    assert_eq!(
        sim.lease("restart-manager", "lock")
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a"),
        "a refused write changes nothing"
    );

    // A replace without a version would be a blind overwrite: refused.
    let err = sim.replace_lease(&lease("lock")).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");

    let err = sim.replace_lease(&lease("nope").clone()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    let mut ghost = updated.clone();
    ghost.name = "ghost".into();
    assert!(matches!(
        sim.replace_lease(&ghost).await.unwrap_err(),
        Error::NotFound { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn lease_delete_honours_its_precondition() {
    let sim = SimCluster::new();
    let v1 = sim.create_lease(&lease("lock")).await.unwrap();
    let mut next = v1.clone();
    next.holder_identity = Some("a".into());
    let v2 = sim.replace_lease(&next).await.unwrap();

    let err = sim
        .delete_lease("restart-manager", "lock", Some(&v1.resource_version))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert!(sim.lease("restart-manager", "lock").is_some());

    sim.delete_lease("restart-manager", "lock", Some(&v2.resource_version))
        .await
        .unwrap();
    assert!(sim.lease("restart-manager", "lock").is_none());
    let err = sim
        .delete_lease("restart-manager", "lock", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn lease_names_must_be_valid_object_names() {
    let sim = SimCluster::new();
    for bad in ["Upper", "", "-dash", "under_score", &"x".repeat(254)] {
        let err = sim.create_lease(&lease(bad)).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn leases_list_by_namespace_and_label() {
    let sim = SimCluster::new();
    sim.create_lease(&lease("a").label("app", "fleetlock"))
        .await
        .unwrap();
    sim.create_lease(&lease("b").label("app", "restart"))
        .await
        .unwrap();
    sim.create_lease(&Lease::new("other", "c").label("app", "fleetlock"))
        .await
        .unwrap();
    let found = sim
        .list_leases("restart-manager", &LabelSelector::eq("app", "fleetlock"))
        .await
        .unwrap();
    let names: Vec<_> = found.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["a"]);
}

/// Two replicas race for the same lease, round after round: each round exactly one wins and
/// the other sees a Conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_one_winner_each_round() {
    const ROUNDS: usize = 200;
    let sim = SimCluster::new();
    sim.create_lease(&lease("race")).await.unwrap();
    let barrier = Arc::new(Barrier::new(2));

    let writer = |me: &'static str| {
        let sim = sim.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                // Both read the same version...
                let mut l = sim.get_lease("restart-manager", "race").await.unwrap();
                barrier.wait().await;
                // ...and both try to write it.
                l.holder_identity = Some(format!("{me}-{round}"));
                match sim.replace_lease(&l).await {
                    Ok(_) => wins.push(round),
                    Err(Error::Conflict { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
                barrier.wait().await;
            }
            wins
        })
    };
    let (a, b) = (writer("a"), writer("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());

    assert_eq!(a.len() + b.len(), ROUNDS, "exactly one winner per round");
    for round in 0..ROUNDS {
        assert!(
            a.contains(&round) ^ b.contains(&round),
            "round {round}: a won {}, b won {}",
            a.contains(&round),
            b.contains(&round)
        );
    }
    let last = sim.lease("restart-manager", "race").unwrap();
    let holder = last.holder_identity.unwrap();
    assert!(holder.ends_with(&format!("-{}", ROUNDS - 1)), "{holder}");
}
