//! The API token file (`--auth tokens`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = restart_manager::auth::parse_tokens(text);
});
