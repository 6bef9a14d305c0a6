//! Delivery survives a collector outage and a reload in the middle of it: every event the
//! visitor produced reaches ClickHouse, each once.

use std::time::Duration;

use spoor_e2e::{Browser, Stack, StoredEvent, eventually};

#[tokio::test]
async fn nothing_is_lost_across_an_outage_and_a_reload() -> anyhow::Result<()> {
    let mut stack = Stack::start("offline").await?;
    let browser = Browser::start().await?;
    browser.client.goto(&format!("{}/", stack.site)).await?;
    browser.wait_for_page("/").await?;
    eventually("the first page view", Duration::from_secs(20), || async {
        Ok(stack
            .events()
            .await?
            .iter()
            .any(|e| e.kind == "page_view")
            .then_some(()))
    })
    .await?;

    stack.stop_collector().await?;
    browser.click("#nav-products").await?;
    browser.wait_for_page("/products.html").await?;
    browser.click("#nav-about").await?;
    browser.wait_for_page("/about.html").await?;
    // Let the SDK try (and fail) to deliver, then reload with the queue still pending.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending = browser
        .eval("return Object.keys(localStorage).filter((k) => k.startsWith('spoor.q.')).map((k) => localStorage.getItem(k).length).reduce((a, b) => a + b, 0)")
        .await?;
    assert!(
        pending.as_u64().is_some_and(|n| n > 0),
        "the queue should hold undelivered events before the reload"
    );
    browser.client.refresh().await?;
    browser.wait_for_page("/about.html").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.restart_collector().await?;

    let expected = [
        "page_view /",
        "session_start /",
        "click / a#nav-products",
        "page_leave /",
        "page_view /products.html",
        "click /products.html a#nav-about",
        "page_leave /products.html",
        "page_view /about.html",
        "page_leave /about.html",
        "page_view /about.html",
    ];
    let events = stack
        .events_when(Duration::from_secs(60), |e| e.len() >= expected.len())
        .await?;
    browser.close().await?;
    let summaries: Vec<String> = events.iter().map(StoredEvent::summary).collect();
    assert_eq!(summaries, expected);
    assert!(events.iter().all(|e| e.session_id == events[0].session_id));
    let raw = stack.raw_event_rows().await?;
    assert!(
        raw >= events.len() as u64,
        "FINAL cannot hold more rows than were stored"
    );
    Ok(())
}
