//! Leader election with a Lease, so that one replica at a time runs the background loops
//! (resuming drains, judging finished restarts) while every replica answers requests.
//!
//! The protocol is client-go's `leaderelection`:
//!
//! - A candidate tries every `retry_period` to take the Lease. It may when nobody holds it,
//!   or when the record has not changed for `leaseDurationSeconds` *as measured on its own
//!   clock since it last saw the record change*. The holder's `renewTime` is never compared
//!   with the local clock, so skew between nodes cannot hand leadership to a follower while
//!   the leader still renews.
//! - The leader renews every `retry_period`, and stops leading as soon as it has gone
//!   `renew_deadline` without a successful renewal (a hung API call included), well before
//!   another replica may take over at `lease_duration`.
//! - On shutdown the leader gives the Lease back (empty holder, one-second duration), so the
//!   next leader takes over at once instead of a whole lease later.
//!
//! Every write is a compare-and-swap, so two candidates never both win one round.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Clock, ClusterApi, Error, Lease};
use tokio::sync::watch;
use tokio::time::Instant;

/// How one replica takes part in the election.
#[derive(Clone)]
pub struct Election {
    /// The cluster. Against a real one, a handle with a request budget of its own
    /// (`--kube-election-qps`), so that renewals never queue behind other requests.
    pub api: Arc<dyn ClusterApi>,
    /// Wall-clock time, for the times written into the Lease (informative only).
    pub clock: Arc<dyn Clock>,
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica.
    pub identity: String,
    /// How long a Lease that stopped changing is respected before another replica takes it.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal. Shorter than
    /// `lease_duration`, so it steps down before anyone may take over.
    pub renew_deadline: Duration,
    /// How often to renew, or to try to take the Lease.
    pub retry_period: Duration,
}

/// The Lease as last seen, and when (on this replica's clock) it was seen to change.
struct Observed {
    resource_version: String,
    at: Instant,
}

impl Election {
    /// client-go's usual timings: a 15 s lease, a 10 s renew deadline, a try every 2 s.
    pub fn new(
        api: Arc<dyn ClusterApi>,
        clock: Arc<dyn Clock>,
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Election {
            api,
            clock,
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Takes part until `stop` turns true, saying on `leader` whether this replica leads;
    /// then gives the Lease back if it holds it.
    pub async fn run(self, leader: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut observed: Option<Observed> = None;
        loop {
            // Candidate: try until we hold the Lease.
            loop {
                match self.try_acquire_or_renew(&mut observed).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "leader election: cannot reach the lease")
                    }
                }
                if self.pause(&mut stop).await {
                    return;
                }
            }
            tracing::info!(identity = %self.identity, "became the leader");
            leader.send_replace(true);

            // Leader: renew until a renewal misses the deadline or someone else holds it.
            let mut renewed = Instant::now();
            let stopped = loop {
                if self.pause(&mut stop).await {
                    break true;
                }
                let deadline = renewed + self.renew_deadline;
                match tokio::time::timeout_at(deadline, self.try_acquire_or_renew(&mut observed))
                    .await
                {
                    Ok(Ok(true)) => renewed = Instant::now(),
                    Ok(Ok(false)) => {
                        tracing::warn!(identity = %self.identity, "another replica holds the leader lease");
                        break false;
                    }
                    Ok(Err(e)) if Instant::now() < deadline => {
                        tracing::warn!(error = %e, "leader election: renewal failed; retrying");
                    }
                    Ok(Err(_)) | Err(_) => {
                        tracing::warn!(
                            identity = %self.identity,
                            deadline = ?self.renew_deadline,
                            "could not renew the leader lease in time; stepping down"
                        );
                        break false;
                    }
                }
            };
            leader.send_replace(false);
            if stopped {
                self.release().await;
                return;
            }
        }
    }

    /// Waits one retry period; true if asked to stop meanwhile.
    async fn pause(&self, stop: &mut watch::Receiver<bool>) -> bool {
        if *stop.borrow() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(self.retry_period) => false,
            _ = stop.wait_for(|s| *s) => true,
        }
    }

    /// One round: renew our Lease, or take it if it is free or has not changed for its
    /// duration (on our clock). `Ok(false)`: someone else holds it.
    async fn try_acquire_or_renew(&self, observed: &mut Option<Observed>) -> Result<bool, Error> {
        let current = match self.api.get_lease(&self.namespace, &self.name).await {
            Ok(lease) => Some(lease),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        if let Some(lease) = &current
            && observed
                .as_ref()
                .is_none_or(|o| o.resource_version != lease.resource_version)
        {
            *observed = Some(Observed {
                resource_version: lease.resource_version.clone(),
                at: now,
            });
        }
        let ours = current.as_ref().and_then(|l| l.holder()) == Some(self.identity.as_str());
        if let (Some(lease), Some(seen)) = (&current, observed.as_ref())
            && !ours
            && lease.holder().is_some()
        {
            let duration = Duration::from_secs(
                lease
                    .lease_duration_seconds
                    .unwrap_or(0)
                    .max(0)
                    .unsigned_abs()
                    .into(),
            );
            if seen.at + duration > now {
                return Ok(false);
            }
        }
        let wall = self.clock.now();
        let mut lease = current.clone().unwrap_or_else(|| {
            Lease::new(&self.namespace, &self.name)
                .label("app.kubernetes.io/managed-by", "restart-manager")
        });
        if !ours {
            lease.acquire_time = Some(wall);
            lease.lease_transitions = Some(lease.lease_transitions.map_or(0, |t| t + 1));
        }
        lease.holder_identity = Some(self.identity.clone());
        lease.renew_time = Some(wall);
        lease.lease_duration_seconds = Some(seconds(self.lease_duration));
        let written = match current {
            None => self.api.create_lease(&lease).await,
            Some(_) => self.api.replace_lease(&lease).await,
        };
        match written {
            Ok(written) => {
                *observed = Some(Observed {
                    resource_version: written.resource_version,
                    at: Instant::now(),
                });
                Ok(true)
            }
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease back if we still hold it, as client-go's `ReleaseOnCancel` does.
    async fn release(&self) {
        let result = async {
            let mut lease = self.api.get_lease(&self.namespace, &self.name).await?;
            if lease.holder() != Some(self.identity.as_str()) {
                return Ok(());
            }
            let wall = self.clock.now();
            lease.holder_identity = Some(String::new());
            lease.lease_duration_seconds = Some(1);
            lease.renew_time = Some(wall);
            lease.acquire_time = Some(wall);
            self.api.replace_lease(&lease).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(identity = %self.identity, "gave the leader lease back"),
            Err(e) => {
                tracing::warn!(error = %e, "could not give the leader lease back; it expires by itself")
            }
        }
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use cluster_api::Timestamp;
    use cluster_sim::{Operation, SimCluster};
    use jiff::SignedDuration;

    use super::*;

    const NS: &str = "restart-manager";
    const NAME: &str = "restart-manager-leader";

    /// A wall clock `offset` away from the simulation's.
    struct Skewed(SimCluster, SignedDuration);

    impl Clock for Skewed {
        fn now(&self) -> Timestamp {
            self.0.now() + self.1
        }
    }

    fn election(sim: &SimCluster, identity: &str) -> Election {
        Election::new(
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            NS,
            NAME,
            identity,
        )
    }

    struct Candidate {
        leading: watch::Receiver<bool>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(e: Election) -> Candidate {
        let (tx, leading) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(e.run(tx, stop_rx));
        Candidate {
            leading,
            stop,
            task,
        }
    }

    fn leads(c: &Candidate) -> bool {
        *c.leading.borrow()
    }

    #[tokio::test(start_paused = true)]
    async fn one_leader_at_a_time_and_a_successor_after_expiry() {
        let sim = SimCluster::new();
        let a = start(election(&sim, "a"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = start(election(&sim, "b"));
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(leads(&a) ^ leads(&b), "exactly one leads");
        }
        assert!(leads(&a), "the first keeps leading while it renews");

        // The leader dies without a word; after the lease runs out the other takes over.
        a.task.abort();
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(!leads(&b), "not before the lease expired");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(leads(&b));
        let lease = sim.lease(NS, NAME).unwrap();
        assert_eq!(lease.holder_identity.as_deref(), Some("b"));
        assert_eq!(lease.lease_transitions, Some(1));
    }

    /// A leader whose clock is an hour behind writes renewTimes an hour in the past. A
    /// follower judging by renewTime would take over at once; judged by when the record last
    /// changed on its own clock, the leader keeps leading while it renews.
    #[tokio::test(start_paused = true)]
    async fn clock_skew_does_not_hand_leadership_to_a_follower() {
        let sim = SimCluster::new();
        let mut skewed = election(&sim, "a");
        skewed.clock = Arc::new(Skewed(sim.clone(), SignedDuration::from_hours(-1)));
        let a = start(skewed);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(leads(&a));
        let mut ahead = election(&sim, "b");
        ahead.clock = Arc::new(Skewed(sim.clone(), SignedDuration::from_hours(1)));
        let b = start(ahead);
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(leads(&a) && !leads(&b), "a renews, so a leads");
        }
        drop(b);
    }

    /// The leader's renewals hang (an API server that accepts connections and never
    /// answers): it must stop acting as leader once the renew deadline passes, before anyone
    /// else may take the Lease.
    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_renewals_hang_steps_down_at_the_renew_deadline() {
        let sim = SimCluster::new();
        let a = start(election(&sim, "a"));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(leads(&a));
        let renewed = Instant::now();
        sim.set_latency(Operation::GetLease, Duration::from_secs(3600));
        let mut leading = a.leading.clone();
        leading.wait_for(|l| !*l).await.unwrap();
        let stepped_down = renewed.elapsed();
        assert!(
            stepped_down <= Duration::from_secs(10) + Duration::from_secs(2),
            "stepped down {stepped_down:?} after its last renewal"
        );
        assert!(
            stepped_down < Duration::from_secs(15),
            "before the lease expires"
        );
    }

    /// On shutdown the leader gives the Lease back, and the next one takes over within a
    /// retry period rather than a whole lease duration.
    #[tokio::test(start_paused = true)]
    async fn the_leader_gives_the_lease_back_on_shutdown() {
        let sim = SimCluster::new();
        let a = start(election(&sim, "a"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = start(election(&sim, "b"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(leads(&a) && !leads(&b));

        a.stop.send_replace(true);
        a.task.await.unwrap();
        assert!(!*a.leading.borrow());
        let lease = sim.lease(NS, NAME).unwrap();
        assert_eq!(lease.holder(), None, "released");
        let released = Instant::now();
        let mut leading = b.leading.clone();
        leading.wait_for(|l| *l).await.unwrap();
        assert!(released.elapsed() <= Duration::from_secs(2));
    }
}
