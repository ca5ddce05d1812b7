//! A restart set started from the page.

use super::*;

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
