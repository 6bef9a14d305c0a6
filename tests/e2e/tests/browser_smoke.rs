//! The browser harness itself: Chromium starts headless, loads a page and runs script.

use spoor_e2e::Browser;

#[tokio::test]
async fn chromium_runs_script_on_a_page() -> anyhow::Result<()> {
    let browser = Browser::start().await?;
    browser
        .client
        .goto("data:text/html,<title>smoke</title><p id=p>hi</p>")
        .await?;
    assert_eq!(browser.client.title().await?, "smoke");
    assert_eq!(
        browser
            .eval("return document.getElementById('p').textContent")
            .await?,
        "hi"
    );
    browser.close().await
}
