use super::*;

#[test]
fn a_phase_is_named_as_the_lease_spells_it() {
    for phase in [
        HolderPhase::Draining,
        HolderPhase::Approved,
        HolderPhase::Recovering,
    ] {
        let json = serde_json::to_string(&phase).unwrap();
        assert_eq!(json, format!("\"{}\"", phase.as_str()));
    }
}

#[test]
fn lease_names_are_valid_and_distinct() {
    assert_eq!(lease_name("default"), "fleetlock-default");
    assert_eq!(lease_name("workers.eu-1"), "fleetlock-workers.eu-1");
    let upper = lease_name("Workers");
    assert_ne!(upper, lease_name("workers"));
    assert!(upper.starts_with("fleetlock-workers-"), "{upper}");
    for odd in ["-edge", "edge.", "a..b", "UPPER", &"x".repeat(200)] {
        let name = lease_name(odd);
        assert!(name.len() <= 253, "{odd}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "{odd} -> {name}"
        );
        assert!(
            name.ends_with(|c: char| c.is_ascii_alphanumeric()),
            "{odd} -> {name}"
        );
        assert!(!name.contains(".."), "{odd} -> {name}");
    }
}

#[test]
fn state_round_trips_through_a_lease() {
    let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let mut state = GroupState::empty("Workers");
    state.paused = true;
    state.last_approval = Some(t);
    state.last_return = Some(t);
    state.recent_grants = vec![t, "2026-01-05T09:30:00Z".parse().unwrap()];
    state.holders.push(Holder {
        phase: HolderPhase::Recovering,
        approved_at: Some(t),
        boot_id: Some("b1".into()),
        evicts: vec!["PodDisruptionBudget shop/web".parse().unwrap()],
        returned_at: Some(t),
        waiting_for: vec!["the node to be Ready".into()],
        ..Holder::granted("abc", "n1", t, "replica-a")
    });
    let lease = state.to_lease("ns", t);
    assert_eq!(lease.holder_identity.as_deref(), Some("n1"));
    assert_eq!(GroupState::from_lease(&lease).unwrap(), state);
    assert_eq!(
        lease.annotations[RECENT_GRANTS_ANNOTATION],
        "2026-01-05T09:00:00Z,2026-01-05T09:30:00Z"
    );
}

/// A Lease written before rates existed has no recent grants; none are written while there
/// are none; one that cannot be read is an error, never an empty list (that would let the
/// rate be exceeded).
#[test]
fn recent_grants_are_absent_empty_or_read_whole() {
    let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let mut lease = GroupState::empty("workers").to_lease("ns", t);
    assert!(!lease.annotations.contains_key(RECENT_GRANTS_ANNOTATION));
    assert!(
        GroupState::from_lease(&lease)
            .unwrap()
            .recent_grants
            .is_empty()
    );
    lease
        .annotations
        .insert(RECENT_GRANTS_ANNOTATION.into(), "yesterday".into());
    assert!(
        GroupState::from_lease(&lease)
            .unwrap_err()
            .to_string()
            .contains(RECENT_GRANTS_ANNOTATION)
    );
}

/// A node takes one slot, however many entries a version that keyed holders by the id as
/// spelt left it; and it is found by its name, not by the id.
#[test]
fn a_node_takes_one_slot_whatever_its_entries() {
    let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let later: Timestamp = "2026-01-05T09:00:01Z".parse().unwrap();
    let mut state = GroupState::empty("workers");
    state
        .holders
        .push(Holder::granted("583627a9", "n1", t, "a"));
    state
        .holders
        .push(Holder::granted("583627A9", "n1", later, "a"));
    state
        .holders
        .push(Holder::granted("e0f3745b", "n2", t, "a"));
    assert_eq!(state.slots_taken(), 2);
    assert_eq!(
        state.holder_of("n1").map(|h| h.since),
        Some(t),
        "the oldest"
    );
    let second = state.holders[1].clone();
    assert_eq!(state.grant(&second), Some(&second));
    assert!(state.holder_of("583627a9").is_none());
}

#[test]
fn an_unreadable_lease_is_an_error_not_an_empty_group() {
    let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let mut lease = GroupState::empty("g").to_lease("ns", t);
    lease
        .annotations
        .insert(HOLDERS_ANNOTATION.into(), "{not json".into());
    let err = GroupState::from_lease(&lease).unwrap_err();
    assert!(matches!(err, UnreadableLock::Holders { .. }), "{err}");
    assert!(err.to_string().contains("unreadable"), "{err}");
}

/// Other tools' labels and annotations on a group Lease survive our writes; only our own
/// keys change (and ours that no longer apply go).
#[tokio::test]
async fn a_write_keeps_what_others_put_on_the_lease() {
    use cluster_api::ClusterApi;
    let sim = cluster_sim::SimCluster::new();
    let t = sim.now();
    let mut lease = GroupState {
        paused: true,
        ..GroupState::empty("default")
    }
    .to_lease("ns", t);
    lease.labels.insert("team".into(), "infra".into());
    lease
        .annotations
        .insert("backup.example.com/policy".into(), "daily".into());
    sim.create_lease(&lease).await.unwrap();

    modify(
        &sim,
        "ns",
        "default",
        || t,
        |state| {
            state.paused = false;
            state.holders.push(Holder::granted("abc", "n1", t, "a"));
            Ok(())
        },
    )
    .await
    .unwrap();
    let stored = sim.lease("ns", &lease_name("default")).unwrap();
    assert_eq!(stored.labels.get("team").map(String::as_str), Some("infra"));
    assert_eq!(
        stored
            .annotations
            .get("backup.example.com/policy")
            .map(String::as_str),
        Some("daily")
    );
    assert_eq!(
        stored.labels.get(LOCK_LABEL).map(String::as_str),
        Some(LOCK_LABEL_VALUE)
    );
    assert!(!stored.annotations.contains_key(PAUSED_ANNOTATION));
    let state = GroupState::from_lease(&stored).unwrap();
    assert_eq!(state.holders.len(), 1);
    assert!(!state.paused);
}
