//! Running the `restart-manager` binary as its own process against the simulated API
//! endpoint: started, and waited for (bounded) until it serves.

use std::process::Stdio;
use std::time::Duration;

use cluster_sim::machine_id_for;
use fleetlock_core::zincati_id;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const DEADLINE: Duration = Duration::from_secs(90);

pub fn zincati_request(path: &str, node: &str) -> Vec<u8> {
    let id = zincati_id(&machine_id_for(node)).unwrap();
    let body = format!(
        "{{\n  \"client_params\": {{\n    \"id\": \"{id}\",\n    \"group\": \"default\"\n  }}\n}}"
    );
    format!(
        "POST {path} HTTP/1.1\r\nfleet-lock-protocol: true\r\naccept: */*\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Starts the binary and waits (bounded) until it serves.
pub async fn start_as(
    name: &str,
    kubeconfig: &std::path::Path,
    config: &std::path::Path,
    port: u16,
) -> Child {
    start_with(name, kubeconfig, config, port, &[]).await
}

pub async fn start_with(
    name: &str,
    kubeconfig: &std::path::Path,
    config: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .args(["--kubeconfig"])
        .arg(kubeconfig)
        .arg("--config")
        .arg(config)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .args(extra)
        // Tests that do not give FleetLock a port of its own serve it beside the API.
        .args(
            (!extra.contains(&"--fleetlock-listen"))
                .then_some(["--fleetlock-listen", "same"])
                .into_iter()
                .flatten(),
        )
        .env("POD_NAME", name)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restart-manager");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let serving = line.contains("\"serving\"");
            seen.push(line);
            if serving {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err)).await;
        }
        panic!("restart-manager never served:\n{}\n{err}", seen.join("\n"));
    }
    // `RM_TEST_LOGS=<dir>` keeps each process's log in `<dir>/<name>.log` (appended across
    // restarts), to follow what a failing process-level test saw.
    let mut log = std::env::var_os("RM_TEST_LOGS").and_then(|dir| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::path::Path::new(&dir).join(format!("{name}.log")))
            .ok()
    });
    tokio::spawn(async move {
        use std::io::Write;
        if let Some(file) = log.as_mut() {
            for line in &seen {
                let _ = writeln!(file, "{line}");
            }
        }
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(file) = log.as_mut() {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    child
}
