//! Leader election with a Lease, so that one replica at a time runs the background loops
//! (resuming drains, judging finished restarts) while every replica answers requests.
//!
//! The same protocol as client-go's leaderelection: the leader renews the Lease every
//! `renew_every`; another replica takes it over once `lease_duration` has passed without a
//! renewal. Every write is a compare-and-swap.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Clock, ClusterApi, Error, Lease};
use tokio::sync::watch;

/// How one replica takes part in the election.
#[derive(Clone)]
pub struct Election {
    /// The cluster.
    pub api: Arc<dyn ClusterApi>,
    /// Wall-clock time.
    pub clock: Arc<dyn Clock>,
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica.
    pub identity: String,
    /// How long a leader that stopped renewing keeps the Lease.
    pub lease_duration: Duration,
    /// How often to renew (or try to acquire).
    pub renew_every: Duration,
}

impl Election {
    /// Takes part until dropped, saying on `leader` whether this replica leads.
    pub async fn run(self, leader: watch::Sender<bool>) {
        loop {
            let leading = match self.try_lead().await {
                Ok(leading) => leading,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: could not reach the lease");
                    // Without a renewal we cannot be sure to lead any more.
                    false
                }
            };
            if *leader.borrow() != leading {
                tracing::info!(identity = %self.identity, leading, "leadership changed");
            }
            leader.send_if_modified(|l| std::mem::replace(l, leading) != leading);
            tokio::time::sleep(self.renew_every).await;
        }
    }

    /// One round: renew our Lease, or take it if it is free or expired.
    pub async fn try_lead(&self) -> Result<bool, Error> {
        let now = self.clock.now();
        let current = match self.api.get_lease(&self.namespace, &self.name).await {
            Ok(lease) => Some(lease),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let ours = current.as_ref().and_then(|l| l.holder()) == Some(self.identity.as_str());
        if let Some(lease) = &current
            && !ours
            && lease.is_held_at(now)
        {
            return Ok(false);
        }
        let mut lease = current.clone().unwrap_or_else(|| {
            Lease::new(&self.namespace, &self.name)
                .label("app.kubernetes.io/managed-by", "restart-manager")
        });
        if !ours {
            lease.acquire_time = Some(now);
            lease.lease_transitions = Some(lease.lease_transitions.map_or(0, |t| t + 1));
        }
        lease.holder_identity = Some(self.identity.clone());
        lease.renew_time = Some(now);
        lease.lease_duration_seconds = Some(
            i32::try_from(self.lease_duration.as_secs())
                .unwrap_or(i32::MAX)
                .max(1),
        );
        let written = match current {
            None => self.api.create_lease(&lease).await,
            Some(_) => self.api.replace_lease(&lease).await,
        };
        match written {
            Ok(_) => Ok(true),
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use cluster_sim::SimCluster;

    use super::*;

    fn election(sim: &SimCluster, identity: &str) -> Election {
        Election {
            api: Arc::new(sim.clone()),
            clock: Arc::new(sim.clone()),
            namespace: "restart-manager".into(),
            name: "restart-manager-leader".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_leader_at_a_time_and_a_successor_after_expiry() {
        let sim = SimCluster::new();
        let (a_tx, a) = watch::channel(false);
        let (b_tx, b) = watch::channel(false);
        let run_a = tokio::spawn(election(&sim, "a").run(a_tx));
        tokio::time::sleep(Duration::from_millis(10)).await;
        tokio::spawn(election(&sim, "b").run(b_tx));
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(*a.borrow() ^ *b.borrow(), "exactly one leads");
        }
        assert!(*a.borrow(), "the first keeps leading while it renews");

        // The leader dies; after the lease runs out the other takes over.
        run_a.abort();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!*b.borrow(), "not before the lease expired");
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(*b.borrow());
        let lease = sim
            .lease("restart-manager", "restart-manager-leader")
            .unwrap();
        assert_eq!(lease.holder_identity.as_deref(), Some("b"));
        assert_eq!(lease.lease_transitions, Some(1));
    }
}
