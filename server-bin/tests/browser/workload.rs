//! A workload restarted from the page: confirmed, the button locked, the rollout followed.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_a_workload_from_the_page() {
    let Some(page) = Page::open(&[]).await else {
        return;
    };
    let result = drive(&page.client, page.port).await;
    page.close("browser-restart.png").await;
    result.unwrap();
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
