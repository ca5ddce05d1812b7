//! `cluster_api::lease::modify`, the one read-change-write loop every Lease writer uses, against
//! the simulated API server's compare-and-swap.

use std::sync::Arc;

use cluster_api::lease::{self, Decision, Modified, ModifyError};
use cluster_api::{ClusterApi, Error, Lease};
use cluster_sim::{Operation, SimCluster};

const NS: &str = "restart-manager";

/// Adds one to the Lease's `count` annotation, creating the Lease at 1.
async fn increment(api: &dyn ClusterApi) -> Result<Modified<u32, ()>, ModifyError> {
    lease::modify(api, NS, "counter", |current| {
        let mut lease = current.unwrap_or_else(|| Lease::new(NS, "counter"));
        let next = lease
            .annotations
            .get("count")
            .map_or(0, |c| c.parse::<u32>().unwrap())
            + 1;
        lease.annotations.insert("count".into(), next.to_string());
        Decision::<_, ()>::Write(lease, next)
    })
    .await
}

fn count(lease: &Lease) -> u32 {
    lease.annotations["count"].parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn creates_then_replaces() {
    let sim = SimCluster::new();
    let Modified::Written(first, 1) = increment(&sim).await.unwrap() else {
        panic!("the first write creates the Lease at 1");
    };
    let Modified::Written(second, 2) = increment(&sim).await.unwrap() else {
        panic!("the second replaces it");
    };
    assert_ne!(first.resource_version, second.resource_version);
    assert_eq!(count(&sim.get_lease(NS, "counter").await.unwrap()), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_writers_each_land_once() {
    let sim = Arc::new(SimCluster::new());
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let sim = sim.clone();
            tokio::spawn(async move { increment(sim.as_ref()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for w in writers {
        let Modified::Written(_, n) = w.await.unwrap().unwrap() else {
            panic!("every writer writes");
        };
        answers.push(n);
    }
    answers.sort_unstable();
    assert_eq!(
        answers,
        (1..=8).collect::<Vec<_>>(),
        "no increment was lost"
    );
    assert_eq!(count(&sim.get_lease(NS, "counter").await.unwrap()), 8);
}

#[tokio::test(start_paused = true)]
async fn a_lost_race_reads_afresh_and_decides_again() {
    let sim = SimCluster::new();
    increment(&sim).await.unwrap();
    sim.force_conflicts(Operation::ReplaceLease, 3);
    let mut decisions = 0;
    let result = lease::modify(&sim, NS, "counter", |current| {
        decisions += 1;
        let mut lease = current.expect("the Lease exists");
        lease.annotations.insert("count".into(), "10".into());
        Decision::<_, ()>::Write(lease, ())
    })
    .await
    .unwrap();
    assert!(matches!(result, Modified::Written(..)));
    assert_eq!(decisions, 4, "three lost races, then the write");
    assert_eq!(count(&sim.get_lease(NS, "counter").await.unwrap()), 10);
}

#[tokio::test(start_paused = true)]
async fn keeping_writes_nothing() {
    let sim = SimCluster::new();
    sim.reset_calls();
    let result = lease::modify(&sim, NS, "absent", |current| {
        Decision::<(), _>::Keep(current.is_none())
    })
    .await
    .unwrap();
    assert!(matches!(result, Modified::Kept(true)), "{result:?}");
    assert_eq!(sim.calls().writes(), 0);
    assert!(matches!(
        sim.get_lease(NS, "absent").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn failures_say_whether_the_read_or_the_write_failed() {
    let sim = SimCluster::new();
    sim.fail_next(
        Operation::GetLease,
        1,
        Error::Forbidden {
            message: "leases is forbidden".into(),
        },
    );
    let err = increment(&sim).await.unwrap_err();
    assert!(matches!(err, ModifyError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "reading Lease restart-manager/counter: leases is forbidden"
    );

    sim.fail_next(Operation::CreateLease, 1, Error::unavailable("timeout"));
    let err = increment(&sim).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ModifyError::Write {
                source: Error::Unavailable { .. },
                ..
            }
        ),
        "{err:?}"
    );

    sim.force_conflicts(Operation::CreateLease, lease::CAS_ATTEMPTS);
    let err = increment(&sim).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Lease restart-manager/counter kept changing; try again"
    );
    assert!(
        Error::from(err).is_transient(),
        "a lost race may be asked again"
    );
}
