//! One node, however its Zincati id is spelt, holds one slot; unknown groups are bounded.

use super::*;

/// The server with room for many FleetLock requests from 127.0.0.1, where every client asks
/// from here: the per-address rate is not what these tests are about.
async fn serve_unlimited(sim: &SimCluster, config: FleetLockConfig) -> Server {
    let mut settings = Settings::new(config, Allowlist::default());
    settings.fleetlock_rate = restart_manager::ratelimit::Rate {
        per_second: 1000,
        burst: 1000,
    };
    common::serve(sim, settings).await
}

/// A FleetLock request with the id spelt as given.
async fn ask(s: &Server, endpoint: &str, id: &str, group: &str) -> (u16, String) {
    let request = zincati_request(&format!("/v1/{endpoint}"), &zincati_body(id, group));
    let (status, _, body) = s.send(request.as_bytes()).await;
    (status, body)
}

/// The holders' nodes in every group Lease, by group.
fn holders(sim: &SimCluster) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = sim
        .leases()
        .iter()
        .filter_map(|l| fleetlock_core::group::GroupState::from_lease(l).ok())
        .map(|g| (g.group, g.holders.into_iter().map(|h| h.node).collect()))
        .collect();
    groups.sort();
    groups
}

/// Every spelling of n1's id the lookup accepts: its Zincati id in either case, with UUID
/// dashes or padded with spaces, and its raw machine id.
const N1_MACHINE: &str = "0123456789abcdef0123456789abcdef";
const N1_SPELLINGS: [&str; 7] = [
    "583627a932274834a8ebd99f4ed41c0d",
    "583627A932274834A8EBD99F4ED41C0D",
    "583627a9-3227-4834-a8eb-d99f4ed41c0d",
    " 583627a932274834a8ebd99f4ed41c0d ",
    "0123456789abcdef0123456789abcdef",
    "0123456789ABCDEF0123456789ABCDEF",
    "01234567-89AB-CDEF-0123-456789abcdef",
];

fn spelling_fleet() -> SimCluster {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1").machine_id(N1_MACHINE));
    sim.add_node(Node::new("n2").machine_id(machine_id_for("n2")));
    sim
}

/// Issue 27: a node holds one slot of its group however it spells its id. A second spelling
/// gets the node's own grant back, never a second slot, and the node's steady-state (in any
/// spelling) gives back everything it holds.
#[tokio::test(start_paused = true)]
async fn one_node_holds_one_slot_however_its_id_is_spelt() {
    let mut config = FleetLockConfig::default();
    config.groups.get_mut("default").unwrap().slots = 2;
    let s = serve(&spelling_fleet(), config, "/").await;

    for spelling in N1_SPELLINGS {
        let (status, body) = ask(&s, "pre-reboot", spelling, "default").await;
        assert_eq!(status, 200, "{spelling:?}: {body}");
    }
    assert_eq!(
        holders(&s.sim),
        [("default".to_string(), vec!["n1".to_string()])],
        "one slot for n1, whatever the spelling"
    );
    // So the group's second slot is still free for another node.
    assert_eq!(zincati(&s, "pre-reboot", "n2", "default").await.0, 200);

    // n1 reboots and says steady-state with its usual id: nothing of it stays behind.
    s.sim.reboot_node("n1").unwrap();
    let boot = cluster_sim::SimConfig::default();
    tokio::time::advance(boot.reboot_duration + boot.kubelet_start).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (status, body) = ask(&s, "steady-state", N1_SPELLINGS[0], "default").await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..10 {
        s.app.fleetlock.maintain().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        holders(&s.sim),
        [("default".to_string(), vec!["n2".to_string()])],
        "n1 holds nothing after its steady-state"
    );
    assert!(!s.sim.node("n1").unwrap().unschedulable);
}

/// Issue 27: on a one-slot group, a slot taken with an odd spelling of the raw machine id is
/// the node's: its own Zincati, with the usual id, gets that grant's answer and gives it
/// back; it is not locked out.
#[tokio::test(start_paused = true)]
async fn an_odd_spelling_does_not_lock_the_nodes_own_zincati_out() {
    let s = serve(&spelling_fleet(), FleetLockConfig::default(), "/").await;
    let (status, body) = ask(&s, "pre-reboot", N1_SPELLINGS[6], "default").await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = ask(&s, "pre-reboot", N1_SPELLINGS[0], "default").await;
    assert_eq!(status, 200, "the node's own grant: {body}");
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"));

    s.sim.reboot_node("n1").unwrap();
    let boot = cluster_sim::SimConfig::default();
    tokio::time::advance(boot.reboot_duration + boot.kubelet_start).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (status, body) = ask(&s, "steady-state", N1_SPELLINGS[0], "default").await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..10 {
        s.app.fleetlock.maintain().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!(status, 200, "n1's slot was given back: {body}");
}

/// Issue 27: with the group a request names believed (`groupLabel: ""`) and unknown groups
/// allowed, spellings of one node's id in many groups still take one slot, in one group.
#[tokio::test(start_paused = true)]
async fn spellings_in_many_groups_take_one_slot_in_one_group() {
    let config = FleetLockConfig {
        group_label: String::new(),
        unknown_groups: fleetlock_core::UnknownGroups::Allow,
        ..FleetLockConfig::default()
    };
    let s = serve_unlimited(&spelling_fleet(), config).await;
    for i in 0..20 {
        let spelling = N1_SPELLINGS[i % N1_SPELLINGS.len()];
        let (status, body) = ask(&s, "pre-reboot", spelling, &format!("g{i}")).await;
        assert_eq!(status, 200, "{spelling:?} in g{i}: {body}");
    }
    assert_eq!(
        holders(&s.sim),
        [("g0".to_string(), vec!["n1".to_string()])],
        "one Lease, one slot"
    );
    // Its steady-state, named with any group and spelling, gives that slot back.
    let (status, body) = ask(&s, "steady-state", N1_SPELLINGS[4], "g7").await;
    assert_eq!(status, 200, "{body}");
    let get = "GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    let (_, _, metrics) = s.send(get.as_bytes()).await;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("fleetlock_slots{"))
        .count();
    assert_eq!(series, 2, "default and g0 only:\n{metrics}");
}

/// Issue 27: unknown groups, when allowed, are bounded: past `maxUnknownGroups` (32 unless
/// configured) a request for yet another is refused with `too_many_groups`, and makes no
/// Lease and no metric series; the groups that exist keep working.
#[tokio::test(start_paused = true)]
async fn unknown_groups_are_bounded() {
    const CAP: usize = 32;
    let sim = SimCluster::new();
    for i in 0..=CAP {
        let name = format!("n{i}");
        sim.add_node(Node::new(&name).machine_id(machine_id_for(&name)));
    }
    let config = FleetLockConfig {
        group_label: String::new(),
        unknown_groups: fleetlock_core::UnknownGroups::Allow,
        ..FleetLockConfig::default()
    };
    let s = serve_unlimited(&sim, config).await;
    for i in 0..CAP {
        let (status, body) = zincati(&s, "pre-reboot", &format!("n{i}"), &format!("u{i}")).await;
        assert_eq!(status, 200, "u{i}: {body}");
    }
    let last = format!("n{CAP}");
    let (status, body) = zincati(&s, "pre-reboot", &last, "one-too-many").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (423, "too_many_groups"),
        "{body}"
    );
    assert!(
        body.contains("maxUnknownGroups"),
        "names the setting: {body}"
    );
    let group_leases = s
        .sim
        .leases()
        .iter()
        .filter(|l| l.name.starts_with("fleetlock-"))
        .count();
    assert_eq!(group_leases, CAP, "no Lease for the refused group");
    // A group that exists is still served: u0's slot is taken, so the answer is lock_held.
    let (status, body) = zincati(&s, "pre-reboot", &last, "u0").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"), "{body}");
    // So is a configured one.
    assert_eq!(zincati(&s, "pre-reboot", &last, "default").await.0, 200);
}
