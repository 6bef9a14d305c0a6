//! The thinnest path through every real part: Chromium opens the demo shop, the SDK sends a
//! page view, the collector stores it in ClickHouse, and the segmenter derives the daily report.

use std::time::Duration;

use serde::Deserialize;
use spoor_e2e::{Browser, Stack};

#[derive(Debug, Deserialize, clickhouse::Row)]
struct PageView {
    path: String,
    title: String,
    anonymous_id: String,
    session_id: String,
    browser: String,
    device_class: String,
    lib: String,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Daily {
    page_views: u64,
    visitors: u64,
}

#[tokio::test]
async fn a_page_view_travels_from_chromium_to_the_daily_report() -> anyhow::Result<()> {
    let stack = Stack::start("skeleton").await?;
    let browser = Browser::start().await?;
    browser.client.goto(&format!("{}/", stack.site)).await?;

    let row: PageView = stack
        .wait_for_row(
            "SELECT ?fields FROM events WHERE type = 'page_view' AND project_id = 'dev'",
            Duration::from_secs(20),
        )
        .await?;
    assert_eq!(row.path, "/");
    assert_eq!(row.title, "Home · Acme Outfitters");
    assert!(!row.anonymous_id.is_empty(), "{row:?}");
    assert!(!row.session_id.is_empty(), "{row:?}");
    assert!(row.lib.starts_with("spoor"), "{row:?}");
    assert!(row.browser.contains("Chrom"), "{row:?}");
    assert_eq!(row.device_class, "desktop", "{row:?}");
    browser.close().await?;

    let db = spoor_segmenter::Db::new(
        &spoor_local_clickhouse::url_from_env(),
        spoor_schema::Layout::single(&stack.database),
    )?;
    spoor_segmenter::migrate(&db).await?;
    spoor_segmenter::run_once(&db, &spoor_segmenter::RunOptions::default()).await?;
    let daily: Daily = stack
        .clickhouse
        .query("SELECT page_views, visitors FROM report_daily WHERE project_id = 'dev' AND day = today()")
        .fetch_one()
        .await?;
    assert_eq!((daily.page_views, daily.visitors), (1, 1));
    Ok(())
}
