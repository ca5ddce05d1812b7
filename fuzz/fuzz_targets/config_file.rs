//! The configuration file: parsed and checked as the server and restartctl read it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = manager_config::FileConfig::parse(text, "fuzz.yaml") {
        let _ = config.allowlist();
    }
});
