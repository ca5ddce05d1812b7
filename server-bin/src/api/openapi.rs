//! The OpenAPI document at `/openapi.json`: the paths come from the handlers' annotations as
//! [`OpenApiRouter`](utoipa_axum::router::OpenApiRouter) registers them, the schemas from the
//! types the handlers answer with; this module adds what only the running server knows (how
//! it authenticates, a workload, a group and a restart set that exist) and serves it.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Required, SecurityRequirement};

use super::error::ErrorBody;
use crate::auth::TOKEN_COOKIE;

/// What the annotations cannot say: the title, the tags, the schemas every refusal shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "restart-manager",
        description = "FleetLock for Zincati (node reboots: drain, then approve) and restarts of \
            allowlisted workloads, as `kubectl rollout restart` does them.\n\n\
            Every refusal of the people-facing API is JSON: `kind` (a stable name), `message`, \
            and `lock` when a lock is why. FleetLock refusals are `kind` and `value`, as the \
            protocol has them.\n\n\
            Not described here: `GET /api/v1/service/status`, a websocket that sends every \
            visible workload's status and restart set, then each change \
            (`?kind=&namespace=&name=` for one workload only).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "workloads", description = "Allowlisted workloads: status, history, restarts, locks"),
        (name = "sets", description = "Restart sets: workloads restarted in order, as one run"),
        (name = "fleet", description = "Reboot groups and nodes"),
        (name = "session", description = "Who the caller is; the page's sign-in"),
        (name = "probes", description = "Health, readiness, Prometheus metrics"),
        (name = "fleetlock", description = "The FleetLock protocol Zincati speaks"),
    ),
    components(schemas(ErrorBody, fleetlock_core::Refusal))
)]
struct Base;

/// What the running server adds to the document.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Whether callers are identified by a bearer token or the page's session cookie (`None`:
    /// nobody is asked who they are).
    pub bearer: bool,
    /// A reboot group that exists, for the examples (group names are no secret: the probes
    /// name them). Workloads and sets are never taken from the configuration: the document
    /// is served to anyone, and the allowlist is for those who may see it.
    pub group: Option<String>,
    /// Whether `/metrics` is served without authentication (`--metrics-open`).
    pub metrics_open: bool,
}

/// The made-up workload of the examples.
pub const EXAMPLE_WORKLOAD: (&str, &str, &str) = ("Deployment", "example-namespace", "example-app");

/// The made-up restart set of the examples.
pub const EXAMPLE_SET: &str = "example-set";

/// The document of a router's annotated `paths`, completed with the server's `facts`.
pub fn document(paths: utoipa::openapi::OpenApi, facts: &Facts) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(paths);
    if facts.bearer {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(TOKEN_COOKIE))),
        );
        doc.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
    if facts.metrics_open
        && facts.bearer
        && let Some(item) = doc.paths.paths.get_mut(crate::auth::METRICS_PATH)
    {
        for operation in operations(item) {
            operation.security = Some(vec![SecurityRequirement::default()]);
        }
    }
    for operation in doc.paths.paths.values_mut().flat_map(operations) {
        for parameter in operation.parameters.iter_mut().flatten() {
            let RefOr::T(parameter) = parameter else {
                continue;
            };
            // OpenAPI: a path parameter is always required. utoipa leaves that to the field's
            // type, and says nothing when a function gives the schema (`{kind}`).
            if parameter.parameter_in == ParameterIn::Path {
                parameter.required = Required::True;
            }
            let example = match (parameter.name.as_str(), &facts.group) {
                ("kind", _) => EXAMPLE_WORKLOAD.0,
                ("namespace", _) => EXAMPLE_WORKLOAD.1,
                ("name", _) => EXAMPLE_WORKLOAD.2,
                ("group", Some(group)) => group,
                ("set", _) => EXAMPLE_SET,
                _ => continue,
            };
            *parameter = ParameterBuilder::from(parameter.clone())
                .example(Some(serde_json::Value::String(example.to_string())))
                .build();
        }
        // An operation that declares `security: [{}]` (sign-in, probes, FleetLock) asks
        // nothing of its caller; without authentication none does, and the marker says nothing.
        if !facts.bearer {
            operation.security = None;
        }
    }
    doc
}

/// A path's operations, whatever their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// `GET /openapi.json`: the document, rendered once.
pub fn serve(doc: &utoipa::openapi::OpenApi) -> MethodRouter<crate::AppState> {
    // Only a document holding a map with non-string keys could fail to render; ours holds
    // none, but the answer would still be JSON naming the problem.
    let json: Arc<str> = doc
        .to_json()
        .unwrap_or_else(|e| {
            serde_json::json!({"kind": "internal", "message": format!("cannot render the document: {e}")})
                .to_string()
        })
        .into();
    get(move || {
        let json = json.clone();
        async move {
            (
                [(header::CONTENT_TYPE, "application/json")],
                json.to_string(),
            )
                .into_response()
        }
    })
}
