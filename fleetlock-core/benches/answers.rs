//! What the coordinator itself spends on the FleetLock answers that change nothing, with
//! 100,000 nodes cached, outside any HTTP: the holder asking again, a node that holds nothing
//! saying steady-state, and a node refused because its group is busy. Each over every node in
//! turn (the holder: its one id), three rounds, nanoseconds per call on the wall clock.
//!
//! `cargo bench -p fleetlock-core --bench answers [-- NODES]`

use std::sync::Arc;
use std::time::Instant;

use cluster_api::CoreBuilder;
use cluster_sim::{SimCluster, machine_id_for};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let nodes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let sim = SimCluster::new();
    sim.add_fleet(nodes);
    let coordinator = Coordinator::builder(Arc::new(sim.clone()), FleetLockConfig::default())
        .clock(Arc::new(sim.clone()))
        .build();
    tokio::spawn({
        let c = coordinator.clone();
        async move { c.run().await }
    });
    coordinator.wait_ready().await;
    let params: Vec<ClientParams> = (1..=nodes)
        .map(|i| ClientParams {
            id: zincati_id(&machine_id_for(&format!("n{i}"))).expect("an id"),
            group: "default".into(),
        })
        .collect();
    let (holder, others) = params.split_first().expect("nodes");
    coordinator
        .pre_reboot(holder)
        .await
        .expect("the holder is approved");
    let per_call = |started: Instant| started.elapsed().as_nanos() as f64 / others.len() as f64;
    println!("{nodes} nodes, ns per call (wall clock, one thread):");
    for round in 1..=3 {
        let t = Instant::now();
        for _ in others {
            coordinator.pre_reboot(holder).await.expect("approved");
        }
        let again = per_call(t);
        let t = Instant::now();
        for p in others {
            coordinator.steady_state(p).await.expect("nothing held");
        }
        let steady = per_call(t);
        let t = Instant::now();
        for p in others {
            coordinator
                .pre_reboot(p)
                .await
                .expect_err("the group is busy");
        }
        let busy = per_call(t);
        println!(
            "round {round}: holder asking again {again:.0}, steady-state holding nothing {steady:.0}, busy-group refusal {busy:.0}"
        );
    }
}
