//! `restartctl`, the admin CLI of restart-manager, as a library so tests can drive it.
//!
//! It will restart workloads, watch rollouts, list and break locks, show the fleet's reboot
//! state and speak FleetLock for testing, either directly against a cluster with the user's
//! kubeconfig or through a running server.
