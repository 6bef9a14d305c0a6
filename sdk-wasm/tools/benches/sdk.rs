//! Main-thread cost of the SDK in headless Chromium: time per `spoor('track', …)` call and
//! per autocaptured click over 10 000 events each, and long tasks (> 50 ms) seen while the
//! SDK batches, compresses and delivers them — to the real collector, into ClickHouse
//! (`spoor_e2e::Stack`). Budget: < 0.05 ms per event, no long task.
//!
//! Run by `sdk-wasm/bench/run`, which builds the SDK and puts `bench/index.html` next to it
//! (the collector serves that folder at `/sdk/`); needs `SPOOR_CLICKHOUSE_URL`.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use spoor_e2e::{Browser, Stack};

const N: u64 = 10_000;
const CHUNK: u64 = 200;
const BUDGET_MS: f64 = 0.05;

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct Counts {
    tracks: u64,
    clicks: u64,
}

async fn run_async(browser: &Browser, script: &str) -> anyhow::Result<Value> {
    let script = format!("var cb = arguments[arguments.length - 1]; {script}.then(cb);");
    Ok(browser.client.execute_async(&script, vec![]).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stack = Stack::start("sdk_bench").await?;
    let browser = Browser::start().await?;
    browser
        .client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(300)),
            Some(Duration::from_secs(60)),
            None,
        ))
        .await?;
    browser
        .client
        .goto(&format!("{}/sdk/index.html", stack.collector))
        .await
        .context("the collector serves the SDK folder with bench/index.html in it")?;
    let ms = |v: Value| v.as_f64().unwrap_or(f64::NAN);
    let base = ms(run_async(
        &browser,
        &format!("runChunked({N}, {CHUNK}, clickTargets())"),
    )
    .await?);
    run_async(&browser, &format!("loadSdk({})", json!(stack.collector))).await?;
    browser.eval("window.longTasks.length = 0").await?;
    let track = ms(run_async(
        &browser,
        &format!(
            "runChunked({N}, {CHUNK}, function (i) {{ spoor('track', 'bench_event', {{i: i, plan: 'pro', tags: ['a', 'b']}}); }})"
        ),
    )
    .await?);
    let clicks = ms(run_async(
        &browser,
        &format!("runChunked({N}, {CHUNK}, clickTargets())"),
    )
    .await?);
    let n = N as f64;
    let (per_track, per_click) = (track / n, (clicks - base) / n);
    println!("track():            {per_track:.4} ms per call ({N} calls, {track:.1} ms in all)");
    println!(
        "autocaptured click: {per_click:.4} ms per click of SDK work ({:.4} ms with dispatch, {:.4} ms dispatch alone)",
        clicks / n,
        base / n
    );
    let sql =
        "SELECT countIf(type = 'track') AS tracks, countIf(type = 'click') AS clicks FROM events";
    let mut counts = Counts {
        tracks: 0,
        clicks: 0,
    };
    for _ in 0..180 {
        counts = stack.clickhouse.query(sql).fetch_one().await?;
        if counts.tracks >= N && counts.clicks >= N {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let long_tasks = browser.eval("return window.longTasks").await?;
    browser.close().await?;
    println!(
        "delivered:          {} track + {} click events stored in ClickHouse",
        counts.tracks, counts.clicks
    );
    println!("long tasks:         {long_tasks}");
    let mut over = Vec::new();
    for (name, v) in [("track", per_track), ("click", per_click)] {
        if v >= BUDGET_MS {
            over.push(format!("{name} {v:.4} ms >= {BUDGET_MS} ms"));
        }
    }
    if long_tasks.as_array().is_some_and(|a| !a.is_empty()) {
        over.push("long tasks".into());
    }
    if counts.tracks < N || counts.clicks < N {
        over.push("not all events delivered within 3 minutes".into());
    }
    if !over.is_empty() {
        bail!("OVER BUDGET: {}", over.join(", "));
    }
    Ok(())
}
