//! Plain words for one grant of a slot: where it stands now ([`GrantNow`]), and whose slot a
//! release gives back ([`Whose`]).

use crate::group::{GroupState, Holder, HolderPhase};
use crate::id::normalize_id;

/// Where one grant of a slot stands: a drain acts for the grant it was started for, and only
/// while that grant is draining. The node is not enough to tell: the same node may be
/// granted again once its slot is back, and another replica may have approved the grant, or
/// seen its node through the reboot, while this one's watch lagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GrantNow {
    /// The grant still holds its slot, in this phase.
    Held(HolderPhase),
    /// The node holds no slot in the group.
    Released,
    /// The node holds a slot from another grant.
    Replaced,
}

impl GrantNow {
    pub(super) fn of(state: &GroupState, grant: &Holder) -> Self {
        match state.grant(grant) {
            Some(h) => GrantNow::Held(h.phase),
            None if state.holder_of(&grant.node).is_some() => GrantNow::Replaced,
            None => GrantNow::Released,
        }
    }
}

/// Whose slot a release gives back.
#[derive(Debug, Clone, Copy)]
pub(super) enum Whose<'a> {
    /// Whatever slot this Node holds (its steady-state says it is back), whatever id it was
    /// granted under.
    Node(&'a str),
    /// Whatever slot was granted to this client id, in any case and with or without dashes:
    /// a steady-state from a client that maps to no Node we can see (deleted, or its id
    /// now shared by several).
    Client(&'a str),
    /// This grant's slot, and not a later grant's of the same node: a drain, the
    /// maintenance or the recovery acting on what they saw of the grant.
    Grant(&'a Holder),
}

impl Whose<'_> {
    /// Whether `holder` is (one of the entries of) the slot to give back.
    pub(super) fn holds(&self, holder: &Holder) -> bool {
        match self {
            Whose::Node(node) => holder.node == *node,
            Whose::Client(id) => normalize_id(&holder.id) == normalize_id(id),
            Whose::Grant(grant) => holder.same_grant(grant),
        }
    }

    /// The entry that answers for the slot in `state`: the oldest (an older version may have
    /// left one node several).
    pub(super) fn find<'s>(&self, state: &'s GroupState) -> Option<&'s Holder> {
        state.holders.iter().find(|h| self.holds(h))
    }

    pub(super) fn find_mut<'s>(&self, state: &'s mut GroupState) -> Option<&'s mut Holder> {
        state.holders.iter_mut().find(|h| self.holds(h))
    }

    /// Removes every entry of the slot from `state`: the one that answers for it first.
    pub(super) fn remove_from(&self, state: &mut GroupState) -> Vec<Holder> {
        let mut removed = Vec::new();
        state.holders.retain(|h| {
            let ours = self.holds(h);
            if ours {
                removed.push(h.clone());
            }
            !ours
        });
        removed
    }

    /// Removes from `state` the entries of this slot other than `kept`: an older version,
    /// which keyed holders by the id as spelt, may have left one node several. The node's
    /// steady-state leaves it one at most.
    pub(super) fn drop_others(&self, state: &mut GroupState, kept: &Holder) -> Vec<Holder> {
        let mut dropped = Vec::new();
        state.holders.retain(|h| {
            let other = self.holds(h) && !h.same_grant(kept);
            if other {
                dropped.push(h.clone());
            }
            !other
        });
        dropped
    }
}

/// A slot taken back: the grant, and any other entries of its node given back with it (left
/// by a version that keyed holders by the id as spelt).
pub(super) type Taken = (Holder, Vec<Holder>);
