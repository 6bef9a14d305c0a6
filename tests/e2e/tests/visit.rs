//! A scripted visit to the demo shop in headless Chromium, against the real collector and
//! ClickHouse: the exact events stored, in order, with sessions, searches, clicks and identity.

use std::time::Duration;

use spoor_e2e::{Browser, Stack, StoredEvent, eventually};

async fn wait_for_events(
    stack: &Stack,
    what: &str,
    done: impl Fn(&[StoredEvent]) -> bool,
) -> anyhow::Result<Vec<StoredEvent>> {
    eventually(what, Duration::from_secs(20), || async {
        let events = stack.events().await?;
        Ok(done(&events).then_some(events))
    })
    .await
}

#[tokio::test]
async fn scripted_visit_stores_exactly_what_happened() -> anyhow::Result<()> {
    let stack = Stack::start("visit").await?;
    let browser = Browser::start().await?;
    let site = &stack.site;

    browser.client.goto(&format!("{site}/")).await?;
    browser.wait_for_page("/").await?;
    wait_for_events(&stack, "the first page view", |e| {
        e.iter().any(|e| e.kind == "page_view")
    })
    .await?;

    browser.click("#product-boots").await?;
    browser.wait_for_page("/product.html?id=boots").await?;

    browser.type_into("#search-input", "tent").await?;
    browser.click("#search-button").await?;
    browser.wait_for_page("/search.html?q=tent").await?;

    browser.client.goto(&format!("{site}/app.html")).await?;
    browser.wait_for_page("/app.html").await?;
    browser.click("#spa-orders").await?;
    browser.wait_for_page("/app.html/orders").await?;
    browser.click("#spa-settings").await?;
    browser.wait_for_page("/app.html/orders#/settings").await?;

    browser.type_into("#login-email", "ada@example.com").await?;
    browser
        .type_into("#login-password", "hunter2-secret")
        .await?;
    browser.click("#login-button").await?;

    browser.client.goto(&format!("{site}/about.html")).await?;
    browser.wait_for_page("/about.html").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser
        .eval("window.scrollTo(0, document.body.scrollHeight); return true")
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.click("#nav-products").await?;
    browser.wait_for_page("/products.html").await?;

    let expected = [
        "page_view /",
        "session_start /",
        "click / a#product-boots",
        "page_leave /",
        "page_view /product.html",
        "click /product.html button#search-button",
        "page_leave /product.html",
        "page_view /search.html",
        "search /search.html \"tent\" results=Some(1) via url",
        "page_leave /search.html",
        "page_view /app.html",
        "click /app.html a#spa-orders",
        "page_leave /app.html",
        "page_view /app.html/orders",
        "click /app.html/orders a#spa-settings",
        "page_leave /app.html/orders",
        "page_view /app.html/orders",
        "click /app.html/orders button#login-button",
        "identify /app.html/orders user-ada",
        "track /app.html/orders member_signin",
        "page_leave /app.html/orders",
        "page_view /about.html",
        "click /about.html a#nav-products",
        "page_leave /about.html",
    ];
    // The about page's click and its leave can reach ClickHouse in separate inserts, in either
    // order: read until the whole visit is there (or the time is up), then compare.
    let summaries = |events: &[StoredEvent]| -> Vec<String> {
        events.iter().map(StoredEvent::summary).collect()
    };
    let events = stack
        .events_when(Duration::from_secs(20), |e| summaries(e) == expected)
        .await?;
    browser.close().await?;
    assert_eq!(summaries(&events), expected, "{events:#?}");

    // One visitor, one session, identified part-way.
    let first = &events[0];
    for e in &events {
        assert_eq!(
            (&e.anonymous_id, &e.session_id, e.session_index),
            (&first.anonymous_id, &first.session_id, 1),
            "{e:?}"
        );
    }
    let identified_at = events.iter().position(|e| e.kind == "identify").unwrap();
    assert!(events[..identified_at].iter().all(|e| e.user_id.is_empty()));
    assert!(
        events[identified_at..]
            .iter()
            .all(|e| e.user_id == "user-ada")
    );
    assert_eq!(events[identified_at].traits, r#"{"level":"silver"}"#);

    // What was typed into the login form never leaves the browser.
    for e in &events {
        let text = format!("{e:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("ada@example.com"),
            "{e:?}"
        );
    }

    let click = &events[2];
    assert_eq!(
        (click.click_tag.as_str(), click.click_text.as_str()),
        ("a", "Ridge Boots")
    );
    assert_eq!(click.click_href, format!("{site}/product.html?id=boots"));
    assert!(!click.click_outbound && !click.click_download);
    assert_eq!(events[4].referrer, format!("{site}/"));
    assert_eq!(
        events[13].referrer,
        format!("{site}/app.html"),
        "SPA views carry the previous URL as referrer"
    );
    assert_eq!(events[16].url, format!("{site}/app.html/orders#/settings"));
    // The app sets each route's title after pushing its URL: the views carry the new title.
    let titles: Vec<&str> = [10, 13, 16]
        .iter()
        .map(|&i| events[i].title.as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "/app.html · Acme Outfitters",
            "/app.html/orders · Acme Outfitters",
            "/settings · Acme Outfitters"
        ]
    );

    // About: ~2 s on the page, scrolled to the bottom.
    let leave = events.last().unwrap();
    assert!((1500..=5000).contains(&leave.engaged_ms), "{leave:?}");
    assert_eq!(leave.max_scroll_pct, 100);
    Ok(())
}

#[tokio::test]
async fn outbound_links_and_downloads_are_flagged() -> anyhow::Result<()> {
    let stack = Stack::start("links").await?;
    let browser = Browser::start().await?;
    browser.client.goto(&format!("{}/", stack.site)).await?;
    browser.wait_for_page("/").await?;
    // Keep the page: the clicks are captured, the navigations are not taken.
    browser
        .eval("document.addEventListener('click', (e) => e.preventDefault()); return true")
        .await?;
    browser.click("#download-catalog").await?;
    browser.click("#outbound-guide").await?;
    browser.click("#cta").await?;
    // A middle click opens the link in a new tab (an `auxclick`); a right click is no click.
    browser
        .eval(
            "const a = document.getElementById('outbound-guide');
             for (const button of [2, 1]) a.dispatchEvent(new MouseEvent('auxclick', { button, bubbles: true }));
             return true",
        )
        .await?;
    let events = wait_for_events(&stack, "four clicks", |e| {
        e.iter().filter(|e| e.kind == "click").count() == 4
    })
    .await?;
    browser.close().await?;
    let clicks: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "click")
        .map(|e| {
            (
                e.click_selector.as_str(),
                e.click_outbound,
                e.click_download,
                e.click_href.as_str(),
            )
        })
        .collect();
    assert_eq!(
        clicks,
        [
            (
                "a#download-catalog",
                false,
                true,
                format!("{}/catalog.pdf", stack.site).as_str()
            ),
            (
                "a#outbound-guide",
                true,
                false,
                "https://trails.example.org/guide"
            ),
            ("button#cta", false, false, ""),
            (
                "a#outbound-guide",
                true,
                false,
                "https://trails.example.org/guide"
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn back_to_a_page_in_the_back_forward_cache_is_a_new_view() -> anyhow::Result<()> {
    let stack = Stack::start("back").await?;
    let browser = Browser::start().await?;
    browser.client.goto(&format!("{}/", stack.site)).await?;
    browser.wait_for_page("/").await?;
    browser.click("#product-boots").await?;
    browser.wait_for_page("/product.html?id=boots").await?;
    browser.client.back().await?;
    browser.wait_for_page("/").await?;
    let restored = browser
        .eval("return performance.getEntriesByType('navigation')[0].type")
        .await?;
    // The restored page's view and the product page's leave come within milliseconds of
    // each other, in either order: Chromium shows the cached page before it hides the one
    // being left. So the last two are compared as a set.
    let expected = [
        "page_view /",
        "session_start /",
        "click / a#product-boots",
        "page_leave /",
        "page_view /product.html",
        "page_leave /product.html",
        "page_view /",
    ];
    let settled = |events: &[StoredEvent]| -> Vec<String> {
        let mut s: Vec<String> = events.iter().map(StoredEvent::summary).collect();
        if s.len() == expected.len() {
            s[5..].sort();
        }
        s
    };
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want[5..].sort();
    let events = stack
        .events_when(Duration::from_secs(20), |e| settled(e) == want)
        .await?;
    browser.close().await?;
    // Restored from the cache, not loaded again (a reload would be a new view anyway).
    assert_eq!(
        restored, "navigate",
        "the page was loaded again, not restored"
    );
    assert_eq!(settled(&events), want, "{events:#?}");
    assert!(events.iter().all(|e| e.session_id == events[0].session_id));
    let views: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "page_view" && e.path == "/")
        .collect();
    assert_ne!(views[0].event_id, views[1].event_id);
    Ok(())
}
