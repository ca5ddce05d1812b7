//! What the HTTP targets share: one server over a small simulated cluster, built once per
//! process, and a runtime to drive it.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use cluster_api::{WorkloadKind, WorkloadRef};
use cluster_sim::{SimCluster, WorkloadSpec};
use fleetlock_core::FleetLockConfig;
use restart_core::{Allowlist, ServiceEntry};
use restart_manager::{App, Settings, build};
use tokio::runtime::Runtime;
use tower::ServiceExt;

pub struct Harness {
    pub runtime: Runtime,
    pub router: Router,
    _app: Arc<App>,
}

/// The server, started on first use: nodes n1..n3, a Deployment on the allowlist, no
/// authentication (so that every handler is reached), drains that answer at once.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let app = runtime.block_on(async {
            let sim = SimCluster::new();
            sim.add_fleet(3);
            sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(2))
                .expect("a valid workload");
            let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
            let allowlist =
                Allowlist::new(vec![ServiceEntry::new(web)]).expect("a valid allowlist");
            let mut fleetlock = FleetLockConfig::default();
            fleetlock.drain.request_wait = Duration::from_millis(1);
            let settings = Settings::new(fleetlock, allowlist);
            let app = Arc::new(
                build(Arc::new(sim.clone()), Arc::new(sim), settings).expect("the server builds"),
            );
            tokio::spawn({
                let app = app.clone();
                async move { app.run().await }
            });
            app.fleetlock.wait_ready().await;
            app.restarter.wait_ready().await;
            app
        });
        Harness {
            runtime,
            router: app.router.clone(),
            _app: app,
        }
    })
}

/// Sends a request through the router; the status and body. A 500 is a defect: every
/// failure the server expects has a 4xx or a 503.
pub fn send(mut request: Request<Body>) -> (u16, Vec<u8>) {
    let h = harness();
    // As the server is served: with the client's address (a local one).
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    h.runtime.block_on(async {
        let response = h
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
        assert_ne!(status, 500, "{}", String::from_utf8_lossy(&body));
        (status, body)
    })
}
