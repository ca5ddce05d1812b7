//! Scenario files for `--simulate` and `cluster-sim serve`: parsed, and built into a cluster
//! when valid.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;

fuzz_target!(|data: &[u8]| {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scenario) = cluster_sim::Scenario::from_yaml(text) else {
        return;
    };
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    });
    let _guard = runtime.enter();
    let _ = cluster_sim::SimCluster::from_scenario(&scenario);
});
