//! The OpenAPI document each listener serves at `/openapi.json`, held against the routers it
//! describes, in process on a paused clock. (That every answer matches the document is
//! schemathesis' job: `scripts/api-fuzz`, run by CI.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use cluster_api::{Node, WorkloadKind, WorkloadRef};
use cluster_sim::{SimCluster, WorkloadSpec};
use fleetlock_core::FleetLockConfig;
use http_body_util::BodyExt;
use restart_core::{Allowlist, ServiceEntry};
use restart_manager::auth::{Auth, Authenticator, parse_tokens};
use restart_manager::{App, Settings};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "alice-token-0123456789";

fn settings(auth: Auth, prefix: &str) -> Settings {
    let allowlist = Allowlist::new(vec![ServiceEntry::new(WorkloadRef::new(
        WorkloadKind::Deployment,
        "shop",
        "web",
    ))])
    .unwrap();
    let sets = restart_core::sets::check_sets(
        vec![restart_core::sets::SetEntry {
            name: "shop".into(),
            description: None,
            members: vec!["Deployment/shop/web".into()],
            concurrency: 1,
            on_failure: restart_core::sets::OnFailure::Stop,
            schedule: None,
        }],
        &allowlist,
    )
    .unwrap();
    let mut s = Settings::new(FleetLockConfig::default(), allowlist);
    s.auth = auth;
    s.fleetlock_prefix = prefix.into();
    s.sets = sets;
    s
}

fn tokens() -> Auth {
    Auth {
        authenticator: Authenticator::Tokens(
            parse_tokens(&format!("{TOKEN},alice,1,\"sre\"\n")).unwrap(),
        ),
        admins: vec!["group:sre".into()],
        viewers: vec![],
        allowed_origins: vec![],
    }
}

async fn app(settings: Settings) -> Arc<App> {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.add_workload(WorkloadSpec::deployment("shop", "web"))
        .unwrap();
    let app =
        Arc::new(restart_manager::build(Arc::new(sim.clone()), Arc::new(sim), settings).unwrap());
    tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    app.fleetlock.wait_ready().await;
    app.restarter.wait_ready().await;
    app
}

/// One request through `router`, as if from 127.0.0.1: (status, body).
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn document(router: &Router) -> Value {
    let (status, body) = send(
        router,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Every (method, path) the document lists, its `{parameters}` filled in with their examples.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut concrete = path.clone();
            for p in operation["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let example = p["example"].as_str().unwrap_or_else(|| {
                        panic!(
                            "{method} {path}: path parameter {} has no example",
                            p["name"]
                        )
                    });
                    concrete =
                        concrete.replace(&format!("{{{}}}", p["name"].as_str().unwrap()), example);
                }
            }
            out.push((method.to_uppercase(), concrete, operation.clone()));
        }
    }
    out
}

fn paths(doc: &Value) -> Vec<&str> {
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_listener_documents_exactly_what_it_serves() {
    let app = app(settings(Auth::none(), "/fleetlock")).await;
    let both = document(&app.router).await;
    assert_eq!(both["openapi"], "3.1.0");
    assert_eq!(both["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut expected = vec![
        "/api/v1/fleet",
        "/api/v1/fleet/groups/{group}/pause",
        "/api/v1/fleet/groups/{group}/resume",
        "/api/v1/fleet/nodes/{node}/plan",
        "/api/v1/service",
        "/api/v1/service/{kind}/{namespace}/{name}",
        "/api/v1/service/{kind}/{namespace}/{name}/history",
        "/api/v1/service/{kind}/{namespace}/{name}/restart",
        "/api/v1/service/{kind}/{namespace}/{name}/unlock",
        "/api/v1/session",
        "/api/v1/sets",
        "/api/v1/sets/{set}",
        "/api/v1/sets/{set}/cancel",
        "/api/v1/sets/{set}/restart",
        "/api/v1/whoami",
        "/fleetlock/v1/pre-reboot",
        "/fleetlock/v1/steady-state",
        "/healthz",
        "/metrics",
        "/readyz",
    ];
    assert_eq!(paths(&both), expected);

    // FleetLock on a listener of its own: each document holds its own listener's paths.
    let public = document(&app.public_router).await;
    expected.retain(|p| !p.starts_with("/fleetlock/"));
    assert_eq!(paths(&public), expected);
    let fleetlock = document(&app.fleetlock_router).await;
    assert_eq!(
        paths(&fleetlock),
        ["/fleetlock/v1/pre-reboot", "/fleetlock/v1/steady-state"]
    );

    // What the document leaves out is still served: the page.
    for router in [&app.router, &app.public_router] {
        let (status, body) = send(router, Request::get("/").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<html"), "{body}");
    }

    // Every documented operation is routed to its handler: none is answered by the router
    // itself (an unknown /api/ path's `not_found`, or axum's bare 404 or 405).
    for (router, doc) in [
        (&app.router, &both),
        (&app.public_router, &public),
        (&app.fleetlock_router, &fleetlock),
    ] {
        for (method, path, _) in operations(doc) {
            let request = Request::builder()
                .method(method.as_str())
                .uri(&path)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"reason": "documented"}"#))
                .unwrap();
            let (status, body) = send(router, request).await;
            let unrouted = body.contains("no API at")
                || (body.is_empty()
                    && matches!(
                        status,
                        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                    ));
            assert!(
                !unrouted,
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
}

/// `/openapi.json` is served to anyone, so its examples are made up: the allowlist's
/// workloads (and the sets, which may be named after them) appear nowhere in it.
#[tokio::test(start_paused = true)]
async fn examples_name_nothing_of_the_allowlist() {
    let app = app(settings(Auth::none(), "/")).await;
    let (status, body) = send(
        &app.router,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for name in ["shop", "\"web\""] {
        assert!(!body.contains(name), "the document names {name}");
    }
    let doc: Value = serde_json::from_str(&body).unwrap();
    let get = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect::<Vec<_>>();
    assert!(
        get.contains(&"GET /api/v1/service/Deployment/example-namespace/example-app".to_string()),
        "{get:?}"
    );
    assert!(
        get.contains(&"GET /api/v1/sets/example-set".to_string()),
        "{get:?}"
    );
    // A made-up workload is a documented refusal, not a server error.
    let (status, body) = send(
        &app.router,
        Request::get("/api/v1/service/Deployment/example-namespace/example-app")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("not_allowlisted"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn the_document_says_how_callers_authenticate() {
    // No authentication: no security scheme, no requirement.
    let open = document(&app(settings(Auth::none(), "/")).await.router).await;
    assert!(open["components"]["securitySchemes"].is_null(), "{open}");
    assert!(open["security"].is_null());
    for (method, path, operation) in operations(&open) {
        assert!(operation["security"].is_null(), "{method} {path}");
    }

    // Tokens: a bearer token or the page's session cookie, everywhere except where nobody is
    // asked (health and readiness, sign-in and out, FleetLock, which checks the node
    // instead). `/metrics` names the allowlisted workloads: it asks too.
    let app = app(settings(tokens(), "/")).await;
    let doc = document(&app.router).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    assert_eq!(doc["security"][0]["bearer"], Value::Array(vec![]));
    for (method, path, operation) in operations(&doc) {
        let open = operation["security"] == serde_json::json!([{}]);
        let expected_open = [
            "/healthz",
            "/readyz",
            "/api/v1/session",
            "/v1/pre-reboot",
            "/v1/steady-state",
        ]
        .contains(&path.as_str());
        assert_eq!(
            open, expected_open,
            "{method} {path}: {}",
            operation["security"]
        );
        // And the server agrees: an operation the document protects refuses a caller without
        // credentials.
        if !open {
            let request = Request::builder()
                .method(method.as_str())
                .uri(&path)
                .body(Body::empty())
                .unwrap();
            let (status, body) = send(&app.router, request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
}

/// Every documented POST refuses what a cross-site HTML form would send (a cookie, no JSON
/// Content-Type), whichever handler takes it; and a method a path does not have stays 405
/// even from a browser (found by schemathesis: it was 415).
#[tokio::test(start_paused = true)]
async fn browser_posts_must_be_json_and_missing_methods_are_405() {
    let app = app(settings(tokens(), "/")).await;
    let doc = document(&app.router).await;
    let cookie = format!("restart_manager_token={TOKEN}");
    let mut posts = 0;
    for (method, path, operation) in operations(&doc) {
        if method != "POST" || operation["tags"][0] == "fleetlock" {
            continue;
        }
        posts += 1;
        let request = Request::post(&path)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("reason=csrf"))
            .unwrap();
        let (status, body) = send(&app.router, request).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST {path}: {body}"
        );
        assert!(
            operation["responses"]["415"].is_object(),
            "POST {path} answers 415 but does not document it"
        );
    }
    assert_eq!(
        posts, 7,
        "restart, unlock, pause, resume, sign-in, set restart and cancel"
    );

    for (method, path) in [
        ("POST", "/api/v1/whoami"),
        ("POST", "/api/v1/fleet"),
        ("DELETE", "/api/v1/service"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(&app.router, request).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
    }
}
