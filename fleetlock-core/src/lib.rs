//! FleetLock for Zincati, the update agent of Fedora CoreOS.
//!
//! Before a node reboots, Zincati asks `POST /v1/pre-reboot`; this crate decides whether the
//! node may have a slot in its reboot group, drains it (cordon, evict through the Eviction API,
//! wait until its pods are gone) and only then approves. After the reboot `POST
//! /v1/steady-state` gives the slot back and undoes our cordon. Slots live in the cluster as
//! Leases, so any number of server replicas agree on them.
//!
//! The crate talks to the cluster only through [`cluster_api::ClusterApi`], so it runs the same
//! on a real cluster and on `cluster-sim`. It is filled in by the FleetLock work (issue 3).
