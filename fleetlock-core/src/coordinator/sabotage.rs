//! Deliberate defects (feature `sabotage`), for showing that the reliability tests catch them.

/// A deliberate defect, for showing that the reliability tests catch it (feature `sabotage`,
/// never in a real build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sabotage {
    /// A release on another replica does not stop this replica's drain, and the drain no
    /// longer confirms its slot before evicting: the defect the first multi-replica version
    /// had.
    IgnoreRemoteReleases,
    /// A drain timeout (`onTimeout: release`) gives back its grant's slot whatever the grant's
    /// phase: an approved node, rebooting, loses its slot (the defect issue 26 found).
    TimeOutAnyPhase,
}
