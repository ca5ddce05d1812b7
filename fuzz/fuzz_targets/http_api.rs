//! The people-facing HTTP API: the first line of the input is `METHOD PATH` (query
//! included), the second a content type, the rest the body.

#![no_main]

#[path = "common.rs"]
mod common;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let first = lines.next().unwrap_or_default();
    let content_type = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    let (method, path) = first.split_once(' ').unwrap_or(("GET", first));
    let Ok(request) = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("host", "localhost")
        .body(Body::from(body.to_string()))
    else {
        // Not an HTTP request at all: hyper would have refused it before the router.
        return;
    };
    common::send(request);
});
