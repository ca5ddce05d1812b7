//! The `restart-manager` server, as a library so tests can build and drive it.
//!
//! It will serve the FleetLock protocol for Zincati (node reboots) and the restart API, live
//! status stream and web page (workload restarts), on a real cluster or on the embedded
//! simulated one. `main.rs` only parses arguments and calls into this crate.
