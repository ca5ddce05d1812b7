//! The web page in headless Chromium, against `restart-manager --simulate`: open it, restart a
//! workload, confirm, see the button locked, watch the rollout complete.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test says so and passes on a developer machine; under CI (`CI` set) it fails.

#[path = "../common/mod.rs"]
mod common;

mod nodes;
mod sets;
mod sign_in;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::free_port;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CARD: &str = r#"[data-key="Deployment/monitoring/prometheus"]"#;

fn find(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    path.exists().then_some(path)
}

/// Starts a process and waits until a line of its output contains `ready`.
async fn spawn_until(mut command: Command, ready: &str, stderr: bool) -> Child {
    command.kill_on_drop(true).stdin(Stdio::null());
    if stderr {
        command.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = command.spawn().expect("spawn");
    let mut lines =
        if stderr {
            BufReader::new(Box::new(child.stderr.take().unwrap())
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>)
            .lines()
        } else {
            BufReader::new(Box::new(child.stdout.take().unwrap())
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>)
            .lines()
        };
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(ready) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{command:?} never said {ready:?}");
    // Keep draining the output so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn browser(driver_port: u16, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,1000"],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session")
}

/// The page in a browser, with the server and the WebDriver behind it.
struct Page {
    client: Client,
    port: u16,
    _server: Child,
    _driver: Child,
}

impl Page {
    /// Starts `restart-manager --simulate` (plus `args`), chromedriver and a browser; `None`
    /// (said on stderr) where this machine has no Chromium, which CI must have.
    async fn open(args: &[&str]) -> Option<Page> {
        let (Some(chromium), Some(driver)) = (
            find("CHROMIUM", "/usr/bin/chromium"),
            find("CHROMEDRIVER", "/usr/bin/chromedriver"),
        ) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install chromium and chromium-driver"
            );
            eprintln!(
                "skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = free_port();
        let mut server = Command::new(env!("CARGO_BIN_EXE_restart-manager"));
        server
            .args([
                "--simulate",
                "--sim-no-agents",
                "--fleetlock-listen",
                "same",
                "--listen",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .args(args);
        let server = spawn_until(server, "serving", false).await;
        let driver_port = free_port();
        let mut chromedriver = Command::new(driver);
        chromedriver.arg(format!("--port={driver_port}"));
        let driver = spawn_until(chromedriver, "started successfully", false).await;
        let client = browser(driver_port, &chromium).await;
        Some(Page {
            client,
            port,
            _server: server,
            _driver: driver,
        })
    }

    /// Keeps a screenshot of where the page ended, and closes the browser.
    async fn close(self, screenshot: &str) {
        save(&self.client, screenshot).await;
        self.client.close().await.ok();
    }
}

/// Keeps a screenshot under the test's target directory (docs/ has copies).
async fn save(c: &Client, name: &str) {
    if let Ok(png) = c.screenshot().await {
        std::fs::write(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name), png).ok();
    }
}
