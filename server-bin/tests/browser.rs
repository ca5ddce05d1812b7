//! The web page in headless Chromium, against `restart-manager --simulate`: open it, restart a
//! workload, confirm, see the button locked, watch the rollout complete.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test says so and passes on a developer machine; under CI (`CI` set) it fails.

mod common;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_a_workload_from_the_page() {
    let Some(page) = Page::open(&[]).await else {
        return;
    };
    let result = drive(&page.client, page.port).await;
    page.close("browser-restart.png").await;
    result.unwrap();
}

/// A token with `+`, `/` and `=` (base64) signs in through the page; the server keeps it in
/// an HttpOnly cookie the page's scripts cannot read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base64_token_signs_in_through_the_page() {
    const TOKEN: &str = "c2lnbi1pbi10ZXN0LXRva2Vu+/x==";
    let file = std::env::temp_dir().join(format!("browser-tokens-{}.csv", std::process::id()));
    std::fs::write(&file, format!("{TOKEN},carol,7\n")).unwrap();
    let args = [
        "--auth",
        "tokens",
        "--auth-token-file",
        file.to_str().unwrap(),
    ];
    let Some(page) = Page::open(&args).await else {
        return;
    };
    let result = sign_in(&page.client, page.port, TOKEN).await;
    page.close("browser-sign-in.png").await;
    std::fs::remove_file(&file).ok();
    result.unwrap();
}

async fn sign_in(c: &Client, port: u16, token: &str) -> Result<(), fantoccini::error::CmdError> {
    let wait = |secs| c.wait().at_most(Duration::from_secs(secs));
    c.goto(&format!("http://127.0.0.1:{port}/")).await?;
    let field = wait(30)
        .for_element(Locator::Css("#login:not([hidden]) #token"))
        .await?;
    // A wrong token is refused in words, and leaves the form up.
    field.send_keys("not-the-token-0123456789").await?;
    c.find(Locator::Css("#login button")).await?.click().await?;
    let notice = wait(10)
        .for_element(Locator::Css("#notice:not([hidden])"))
        .await?;
    assert!(
        notice.text().await?.contains("Could not sign in"),
        "{}",
        notice.text().await?
    );
    field.clear().await?;
    field.send_keys(token).await?;
    c.find(Locator::Css("#login button")).await?.click().await?;
    wait(30)
        .for_element(Locator::Css(&format!("{CARD} .phase[data-phase]")))
        .await?;
    let who = c.find(Locator::Css("#who")).await?.text().await?;
    assert_eq!(who, "Signed in as carol");
    assert!(
        !c.find(Locator::Css("#auth-off"))
            .await?
            .is_displayed()
            .await?,
        "auth is on"
    );
    let cookies = c.execute("return document.cookie", vec![]).await?;
    assert_eq!(cookies, json!(""), "the token is not readable by scripts");
    // The cookie carries the session across a reload.
    c.refresh().await?;
    wait(30)
        .for_element(Locator::Css(&format!("{CARD} .phase[data-phase]")))
        .await?;
    assert!(!c.find(Locator::Css("#login")).await?.is_displayed().await?);
    Ok(())
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

async fn drive(c: &Client, port: u16) -> Result<(), fantoccini::error::CmdError> {
    let wait = |secs| c.wait().at_most(Duration::from_secs(secs));
    c.goto(&format!("http://127.0.0.1:{port}/")).await?;
    wait(30)
        .for_element(Locator::Css(&format!("{CARD} .phase[data-phase=\"idle\"]")))
        .await?;
    wait(30).for_element(Locator::Css("#live.on")).await?;
    // Without authentication (the simulation's default) the page says so, plainly.
    let warning = c.find(Locator::Css("#auth-off")).await?;
    assert!(warning.is_displayed().await?, "the warning is shown");
    assert!(warning.text().await?.contains("Authentication is off"));
    // A workload with restart windows says when it may be restarted.
    let windows = c
        .find(Locator::Css(
            r#"[data-key="StatefulSet/data/postgres"] .windows"#,
        ))
        .await?;
    assert!(windows.is_displayed().await?);
    assert_eq!(
        windows.text().await?,
        "Restarts only sat,sun 02:00-06:00 Europe/Berlin"
    );
    assert!(
        !c.find(Locator::Css(&format!("{CARD} .windows")))
            .await?
            .is_displayed()
            .await?,
        "nothing said for a workload without windows"
    );
    // A scheduled workload says when it is restarted next.
    let schedule = c
        .find(Locator::Css(&format!("{CARD} .schedule")))
        .await?
        .text()
        .await?;
    assert!(
        schedule.starts_with("Scheduled 0 4 * * * Europe/Berlin; next "),
        "{schedule}"
    );

    // Restart asks first.
    let button = c
        .find(Locator::Css(&format!("{CARD} button.restart")))
        .await?;
    assert!(button.is_enabled().await?);
    button.click().await?;
    let dialog = wait(10)
        .for_element(Locator::Css("dialog#confirm[open]"))
        .await?;
    assert!(dialog.text().await?.contains("Restart prometheus?"));
    // Cancel really cancels.
    c.find(Locator::Css("#cancel")).await?.click().await?;
    assert!(c.find(Locator::Css("dialog#confirm[open]")).await.is_err());
    assert!(button.is_enabled().await?, "nothing happened");

    button.click().await?;
    wait(10)
        .for_element(Locator::Css("dialog#confirm[open]"))
        .await?;
    c.find(Locator::Css("#reason"))
        .await?
        .send_keys("browser test")
        .await?;
    save(c, "browser-confirm.png").await;
    c.find(Locator::Css("#confirm-button"))
        .await?
        .click()
        .await?;

    // Locked: the button is disabled and says by whom, live.
    let lock = wait(10)
        .for_element(Locator::Css(&format!("{CARD} .lock:not([hidden])")))
        .await?;
    assert!(
        lock.text().await?.contains("Locked by anonymous"),
        "{}",
        lock.text().await?
    );
    assert!(lock.text().await?.contains("browser test"));
    assert!(!button.is_enabled().await?, "disabled while locked");
    save(c, "browser-locked.png").await;

    // The rollout runs to completion; the button comes back.
    wait(120)
        .for_element(Locator::Css(&format!(
            "{CARD} .phase[data-phase=\"complete\"]"
        )))
        .await?;
    assert!(button.is_enabled().await?);
    let last = c
        .find(Locator::Css(&format!("{CARD} .last")))
        .await?
        .text()
        .await?;
    assert!(
        last.contains("by anonymous (complete): browser test"),
        "{last}"
    );

    // The node view shows the fleet.
    c.find(Locator::Css("#tab-nodes")).await?.click().await?;
    wait(30)
        .for_element(Locator::Css("#nodes tbody tr"))
        .await?;
    let rows = c.find_all(Locator::Css("#nodes tbody tr")).await?;
    assert_eq!(rows.len(), 10);
    c.find(Locator::Css("#tab-workloads"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// A restart set from the page: confirmed, then followed member by member to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_a_set_from_the_page() {
    let Some(page) = Page::open(&[]).await else {
        return;
    };
    let result = restart_set(&page.client, page.port).await;
    page.close("browser-set.png").await;
    result.unwrap();
}

async fn restart_set(c: &Client, port: u16) -> Result<(), fantoccini::error::CmdError> {
    const SET: &str = r#"[data-set="storefront"]"#;
    let wait = |secs| c.wait().at_most(Duration::from_secs(secs));
    c.goto(&format!("http://127.0.0.1:{port}/")).await?;
    wait(30).for_element(Locator::Css("#live.on")).await?;
    let card = wait(30).for_element(Locator::Css(SET)).await?;
    assert!(card.is_displayed().await?);
    let text = card.text().await?;
    assert!(text.contains("Never run"), "{text}");
    assert!(
        text.contains("2 members · 1 at once · on failure stop"),
        "{text}"
    );
    assert!(
        text.contains("Scheduled 30 3 * * sun Europe/Berlin; next "),
        "{text}"
    );
    let members = c
        .find_all(Locator::Css(&format!("{SET} .members li")))
        .await?;
    assert_eq!(
        members[0].text().await?,
        "Deployment/shop/api — not run yet"
    );

    let button = c
        .find(Locator::Css(&format!("{SET} button.restart")))
        .await?;
    button.click().await?;
    let dialog = wait(10)
        .for_element(Locator::Css("dialog#confirm[open]"))
        .await?;
    let text = dialog.text().await?;
    assert!(text.contains("Restart the set storefront?"), "{text}");
    assert!(
        text.contains("Deployment/shop/api, Deployment/shop/web"),
        "{text}"
    );
    c.find(Locator::Css("#reason"))
        .await?
        .send_keys("set from the page")
        .await?;
    c.find(Locator::Css("#confirm-button"))
        .await?
        .click()
        .await?;

    // Running: the button is disabled, the first member restarts, then the second.
    wait(10)
        .for_element(Locator::Css(&format!(
            r#"{SET} .phase[data-phase="running"]"#
        )))
        .await?;
    assert!(!button.is_enabled().await?, "disabled while it runs");
    wait(120)
        .for_element(Locator::Css(&format!(
            r#"{SET} .members li[data-state="restarting"]"#
        )))
        .await?;
    save(c, "browser-set-running.png").await;
    wait(300)
        .for_element(Locator::Css(&format!(
            r#"{SET} .phase[data-phase="complete"]"#
        )))
        .await?;
    let members = c
        .find_all(Locator::Css(&format!("{SET} .members li")))
        .await?;
    for m in &members {
        assert!(
            m.text().await?.ends_with("complete: rolled out"),
            "{}",
            m.text().await?
        );
    }
    let run = c
        .find(Locator::Css(&format!("{SET} .run")))
        .await?
        .text()
        .await?;
    assert!(
        run.contains("Started by anonymous") && run.contains("set from the page"),
        "{run}"
    );
    assert!(button.is_enabled().await?);
    Ok(())
}

/// The node view plans a node's drain on request: what it would evict, the budgets covering
/// those pods, and that it could finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_a_node_drain_from_the_page() {
    let Some(page) = Page::open(&[]).await else {
        return;
    };
    let result = plan(&page.client, page.port).await;
    page.close("browser-plan.png").await;
    result.unwrap();
}

async fn plan(c: &Client, port: u16) -> Result<(), fantoccini::error::CmdError> {
    let wait = |secs| c.wait().at_most(Duration::from_secs(secs));
    c.goto(&format!("http://127.0.0.1:{port}/#nodes")).await?;
    let button = wait(30)
        .for_element(Locator::Css(
            r#"button[aria-label="Plan the drain of worker-1"]"#,
        ))
        .await?;
    button.click().await?;
    let summary = wait(30)
        .for_element(Locator::Css("dialog#plan[open] #plan-summary.ok"))
        .await?;
    let text = summary.text().await?;
    assert!(text.starts_with("The drain can finish"), "{text}");
    let budgets = c
        .find(Locator::Css("#plan-body table.plan-disruption"))
        .await?
        .text()
        .await?;
    assert!(
        budgets.contains("shop/web") && budgets.contains("allows"),
        "{budgets}"
    );
    let stays = c
        .find(Locator::Css("#plan-body table.plan-stay"))
        .await?
        .text()
        .await?;
    assert!(stays.contains("DaemonSet pod"), "{stays}");
    save(c, "browser-plan-open.png").await;
    c.find(Locator::Css("#plan-close")).await?.click().await?;
    assert!(c.find(Locator::Css("dialog#plan[open]")).await.is_err());
    Ok(())
}

/// A node that said steady-state keeps its slot, recovering, and the page says what for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovering_node_shows_what_its_slot_waits_for() {
    // The demo configuration, except that the storage group waits for a new bootID: a
    // steady-state without a reboot then keeps the slot for as long as the test looks.
    let config = restart_manager::simulate::DEMO_CONFIG.replace(
        "      minGap: 30s\n",
        "      minGap: 30s\n      recovery: {unchangedBootId: wait}\n",
    );
    assert!(
        config.contains("unchangedBootId"),
        "the demo config changed"
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-recovery.yaml");
    std::fs::write(&path, config).unwrap();
    let Some(page) = Page::open(&["--config", path.to_str().unwrap()]).await else {
        return;
    };
    let result = recovering(&page.client, page.port).await;
    page.close("browser-recovering.png").await;
    result.unwrap();
}

async fn recovering(c: &Client, port: u16) -> Result<(), fantoccini::error::CmdError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let id = fleetlock_core::zincati_id(&cluster_sim::machine_id_for("storage-1")).unwrap();
    let zincati = |path: &str| {
        let body = json!({"client_params": {"id": id, "group": "storage"}}).to_string();
        common::request("POST", path, &["fleet-lock-protocol: true"], &body)
    };
    // Asked again until its drain is done, as Zincati would (each answer waits a while).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, body) = common::send(addr, &zincati("/v1/pre-reboot")).await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never approved: {status} {body}"
        );
    }
    let (status, _, body) = common::send(addr, &zincati("/v1/steady-state")).await;
    assert_eq!(status, 200, "{body}");

    c.goto(&format!("http://127.0.0.1:{port}/#nodes")).await?;
    let holders = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(
            "//p[contains(@class, 'holders') and contains(., 'storage-1, recovering for')]",
        ))
        .await?
        .text()
        .await?;
    assert!(holders.contains("waiting for a new bootID"), "{holders}");
    let state = c
        .find(Locator::XPath("//tr[td[1][text()='storage-1']]/td[2]"))
        .await?
        .text()
        .await?;
    assert_eq!(state, "recovering");
    save(c, "browser-recovering-open.png").await;
    Ok(())
}
