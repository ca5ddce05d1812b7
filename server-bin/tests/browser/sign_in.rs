//! Signing in through the page.

use super::*;

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
