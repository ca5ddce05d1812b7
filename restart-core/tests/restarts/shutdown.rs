//! Stopping: the shutdown signal ends `run`, and what was in flight is left in the cluster
//! for the next replica.

use restart_core::lock::{lease_name, lock_of};
use tokio_util::sync::CancellationToken;

use super::*;

/// A replica told to stop returns from `run` while a restart's rollout is still going on. It
/// releases nothing on the way out: the lock stays in the cluster, held for the restart, and
/// the next replica judges the rollout and releases it when it completes.
#[tokio::test(start_paused = true)]
async fn run_returns_on_shutdown_and_the_next_replica_finishes_the_restart() {
    let sim = cluster();
    let config = RestartConfig::default();
    let token = CancellationToken::new();
    let first = As::skewed(0)
        .builder(&sim, allowlist(vec![]))
        .config(config.clone())
        .instance("first")
        .shutdown(token.clone())
        .build();
    let running = tokio::spawn({
        let r = first.clone();
        async move { r.run().await }
    });
    first.wait_ready().await;
    first
        .restart(&web(), &alice(), Some("new config"))
        .await
        .unwrap();

    token.cancel();
    // Bounded on the paused clock only, so that a `run` deaf to the signal fails the test
    // instead of hanging it.
    tokio::time::timeout(Duration::from_secs(3600), running)
        .await
        .expect("run returns once the shutdown signal is given")
        .unwrap();

    let lease = sim
        .lease(&config.namespace, &lease_name(&web()))
        .expect("the lock Lease is in the cluster");
    let lock = lock_of(&lease).expect("the restart still holds its lock");
    assert_eq!(lock.holder, "alice");

    let (next, _, _) = replica(&sim, allowlist(vec![]), config, "next").await;
    let done = next.wait(&web(), |_| {}).await;
    assert_eq!(done.phase, Phase::Complete);
    let last = done.last_restart.expect("the restart is recorded");
    assert_eq!(last.by, "alice");
    assert_eq!(last.outcome, Some(Outcome::Complete));
}
