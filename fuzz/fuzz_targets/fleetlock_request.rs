//! FleetLock requests as Zincati (or anyone) may send them: the endpoint and method, the
//! protocol header, and the body, all from the input. First byte: endpoint and method;
//! second: the protocol header's value; the rest: the body.

#![no_main]

#[path = "common.rs"]
mod common;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (selector, header, body) = match data {
        [s, h, rest @ ..] => (*s, *h, rest),
        _ => return,
    };
    // The parser alone first.
    let _ = fleetlock_core::protocol::parse_body(body);
    let path = if selector & 1 == 0 {
        "/v1/pre-reboot"
    } else {
        "/v1/steady-state"
    };
    let method = ["POST", "GET", "PUT", "DELETE"][usize::from(selector >> 1) % 4];
    let mut request = Request::builder().method(method).uri(path);
    match header % 4 {
        0 => request = request.header("fleet-lock-protocol", "true"),
        1 => request = request.header("fleet-lock-protocol", "TRUE "),
        2 => {
            // Any other value the header can carry.
            if let Ok(value) = axum::http::HeaderValue::from_bytes(&[b'x', header]) {
                request = request.header("fleet-lock-protocol", value);
            }
        }
        _ => {}
    }
    let request = request.body(Body::from(body.to_vec())).expect("a request");
    let (status, body) = common::send(request);
    if status != 200 {
        // Every refusal names its kind in JSON.
        let json: serde_json::Value = serde_json::from_slice(&body).expect("a refusal is JSON");
        assert!(json["kind"].is_string(), "{json}");
    }
});
