//! The group Leases as this replica writes and reads them: every state it writes or reads
//! goes into the lock cache, and a change there may stop drains whose grant moved on.

use cluster_api::Error;

use super::Inner;
use super::grants::{GrantNow, Whose};
use crate::group::{self, GroupState, Holder};
use crate::protocol::{Kind, Refusal};

impl Inner {
    /// [`group::modify`] on this replica's cluster and clock, keeping what it wrote (or read)
    /// in the lock cache.
    pub(super) async fn modify_group<R>(
        &self,
        group: &str,
        change: impl FnMut(&mut GroupState) -> Result<R, Refusal>,
    ) -> Result<(GroupState, R), Refusal> {
        let (state, result) = group::modify(
            self.api.as_ref(),
            &self.config.namespace,
            group,
            || self.clock.now(),
            change,
        )
        .await?;
        self.store_group(state.clone());
        Ok((state, result))
    }

    /// Puts a group state into the cache unless the cache already has a newer one.
    pub(super) fn store_group(&self, state: GroupState) {
        if self.caches.store_group(state) {
            self.stop_orphaned_drains();
        }
    }

    pub(super) fn stop_orphaned_drains(&self) {
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(super::Sabotage::IgnoreRemoteReleases) {
            return;
        }
        self.drains.stop_orphaned(&self.caches);
    }

    /// Where the grant `holder` was given stands in the cluster now. The lock cache answers
    /// [`GrantNow::Released`] without asking when it shows no slot for the client: it learns
    /// of grants before any drain starts, and only ever lags behind what follows them.
    pub(super) async fn grant_now(&self, group: &str, holder: &Holder) -> Result<GrantNow, Error> {
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(super::Sabotage::IgnoreRemoteReleases) {
            return Ok(GrantNow::Held(crate::group::HolderPhase::Draining));
        }
        if !self.caches.holds_slot(group, &holder.node) {
            return Ok(GrantNow::Released);
        }
        let lease = match self
            .api
            .get_lease(&self.config.namespace, &group::lease_name(group))
            .await
        {
            Ok(lease) => lease,
            Err(Error::NotFound { .. }) => return Ok(GrantNow::Released),
            Err(e) => return Err(e),
        };
        let state = GroupState::from_lease(&lease).map_err(|e| Error::invalid(e.to_string()))?;
        let now = GrantNow::of(&state, holder);
        self.store_group(state);
        Ok(now)
    }

    /// The groups in which `whose` holds a slot, as the cluster says now.
    pub(super) async fn fresh_holdings(&self, whose: Whose<'_>) -> Result<Vec<String>, Refusal> {
        let leases = self
            .api
            .list_leases(&self.config.namespace, &group::lease_selector())
            .await
            .map_err(|e| Refusal::from_cluster("listing the group locks", &e))?;
        let mut groups = Vec::new();
        for lease in &leases {
            let state = GroupState::from_lease(lease)
                .map_err(|e| Refusal::new(Kind::Internal, e.to_string()))?;
            if whose.find(&state).is_some() {
                groups.push(state.group.clone());
            }
            self.store_group(state);
        }
        Ok(groups)
    }

    /// `whose` holder in `group`, as the cluster has it now (the group's state is cached too).
    pub(super) async fn fresh_holder(
        &self,
        group: &str,
        whose: Whose<'_>,
    ) -> Result<Option<Holder>, Refusal> {
        let lease = match self
            .api
            .get_lease(&self.config.namespace, &group::lease_name(group))
            .await
        {
            Ok(lease) => lease,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Refusal::from_cluster("reading the group lock", &e)),
        };
        let state = GroupState::from_lease(&lease)
            .map_err(|e| Refusal::new(Kind::Internal, e.to_string()))?;
        let holder = whose.find(&state).cloned();
        self.store_group(state);
        Ok(holder)
    }
}
