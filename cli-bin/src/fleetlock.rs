//! `restartctl fleetlock`: the FleetLock request Zincati would send, to test a server.

use anstyle::AnsiColor;

use crate::FleetLockCall;
use crate::backend::{CliError, Exit};
use crate::output::Io;

/// `restartctl fleetlock pre-reboot|steady-state`: the request Zincati would send.
pub(crate) async fn call(call: &FleetLockCall, io: &mut Io<'_>) -> Result<Exit, CliError> {
    let (endpoint, args) = match call {
        FleetLockCall::PreReboot(a) => ("pre-reboot", a),
        FleetLockCall::SteadyState(a) => ("steady-state", a),
    };
    let base = if args.url.ends_with('/') {
        args.url.clone()
    } else {
        format!("{}/", args.url)
    };
    let url = format!("{base}v1/{endpoint}");
    let body = format!(
        "{{\n  \"client_params\": {{\n    \"id\": {},\n    \"group\": {}\n  }}\n}}",
        serde_json::Value::String(args.id.clone()),
        serde_json::Value::String(args.group.clone())
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("fleet-lock-protocol", "true")
        .body(body)
        .send()
        .await
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if !io.structured(&serde_json::json!({"status": status.as_u16(), "kind": parsed.get("kind"), "value": parsed.get("value")})) {
        if status.is_success() {
            io.line(&format!("{endpoint}: {} ({})", io.paint("allowed", AnsiColor::Green), status.as_u16()));
        } else {
            let kind = parsed["kind"].as_str().unwrap_or("?");
            let value = parsed["value"].as_str().unwrap_or(text.as_str());
            io.line(&format!("{endpoint}: {} {} {kind}: {value}", io.paint("refused", AnsiColor::Red), status.as_u16()));
        }
    }
    Ok(if status.is_success() {
        Exit::Ok
    } else {
        Exit::FleetLockRefused
    })
}
