//! `restartctl fleetlock`: the FleetLock request Zincati would send, to test a server; and
//! [`send`], the same request as a library call, which the test agents playing Zincati on a
//! real cluster's fake nodes use (server-bin's `tests/common/agent.rs`).

use anstyle::AnsiColor;
use clap::Subcommand;

use crate::backend::{CliError, Exit};
use crate::output::Io;

/// `restartctl fleetlock ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum FleetLockCall {
    /// Ask for a reboot slot.
    PreReboot(FleetLockArgs),
    /// Give a reboot slot back.
    SteadyState(FleetLockArgs),
}

/// Where and as whom to speak FleetLock.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetLockArgs {
    /// The base URL, as in Zincati's fleet_lock.base_url.
    #[arg(long)]
    pub url: String,
    /// The client id (what Zincati sends: see `restartctl zincati-id`).
    #[arg(long)]
    pub id: String,
    /// The group to ask in, as Zincati's `identity.group` (letters, digits, `.` and `-`).
    #[arg(long, default_value = "default")]
    pub group: String,
}

/// The two FleetLock endpoints Zincati calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/pre-reboot`: may this node reboot now?
    PreReboot,
    /// `POST /v1/steady-state`: this node has booted; its slot may go.
    SteadyState,
}

impl Endpoint {
    /// The path segment after `v1/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::PreReboot => "pre-reboot",
            Endpoint::SteadyState => "steady-state",
        }
    }
}

/// A FleetLock server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status: 200 allows, anything else refuses.
    pub status: u16,
    /// The refusal's `kind` (`lock_held`, `draining`, ...), if the body had one.
    pub kind: Option<String>,
    /// The refusal's `value`, if the body had one.
    pub value: Option<String>,
    /// The body as it came.
    pub body: String,
}

impl Answer {
    /// Whether the server said yes.
    pub fn allowed(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends the request Zincati sends, byte for byte in the shape Zincati writes it (the
/// `fleet-lock-protocol` header, the pretty-printed `client_params` body), to `url` (Zincati's
/// `fleet_lock.base_url`). An error only when the server cannot be reached.
pub async fn send(url: &str, endpoint: Endpoint, id: &str, group: &str) -> Result<Answer, String> {
    let base = if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    };
    let url = format!("{base}v1/{}", endpoint.as_str());
    let body = format!(
        "{{\n  \"client_params\": {{\n    \"id\": {},\n    \"group\": {}\n  }}\n}}",
        serde_json::Value::String(id.to_string()),
        serde_json::Value::String(group.to_string())
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("fleet-lock-protocol", "true")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let field = |name: &str| {
        parsed
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    Ok(Answer {
        status,
        kind: field("kind"),
        value: field("value"),
        body: text,
    })
}

/// `restartctl fleetlock pre-reboot|steady-state`: the request Zincati would send.
pub(crate) async fn call(call: &FleetLockCall, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let (endpoint, args) = match call {
        FleetLockCall::PreReboot(a) => (Endpoint::PreReboot, a),
        FleetLockCall::SteadyState(a) => (Endpoint::SteadyState, a),
    };
    let answer = send(&args.url, endpoint, &args.id, &args.group)
        .await
        .map_err(|e| CliError::new(Exit::Failure, e))?;
    let name = endpoint.as_str();
    if !io.structured(
        &serde_json::json!({"status": answer.status, "kind": answer.kind, "value": answer.value}),
    ) {
        if answer.allowed() {
            io.line(&format!(
                "{name}: {} ({})",
                io.paint("allowed", AnsiColor::Green),
                answer.status
            ));
        } else {
            let kind = answer.kind.as_deref().unwrap_or("?");
            let value = answer.value.as_deref().unwrap_or(&answer.body);
            io.line(&format!(
                "{name}: {} {} {kind}: {value}",
                io.paint("refused", AnsiColor::Red),
                answer.status
            ));
        }
    }
    Ok(if answer.allowed() {
        Exit::Ok
    } else {
        Exit::FleetLockRefused
    })
}
