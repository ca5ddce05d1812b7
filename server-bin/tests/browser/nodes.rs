//! The node view: a drain planned on request, a recovering node's slot explained.

use super::*;

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
