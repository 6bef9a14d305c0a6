//! Main-thread cost of the SDK in headless Chromium: time per `spoor('track', …)` call and
//! per autocaptured click — the median of five rounds of 10 000 events each —, and long tasks
//! (> 50 ms) seen while the SDK batches, compresses and delivers them — to the real collector,
//! into ClickHouse (`spoor_e2e::Stack`). Budget: < 0.05 ms per event, no long task.
//!
//! Run by `sdk-wasm/bench/run`, which builds the SDK and puts `bench/index.html` next to it
//! (the collector serves that folder at `/sdk/`); needs `SPOOR_CLICKHOUSE_URL`.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use spoor_e2e::{Browser, Stack};

const N: u64 = 10_000;
/// Timed rounds of N events each; the figures are their medians (the machine's noise between
/// single runs is ±20 %).
const ROUNDS: u64 = 5;
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
    let ms = |v: Value| v.as_f64().unwrap_or(f64::NAN);
    let clicks_script = format!("runChunked({N}, {CHUNK}, clickTargets())");
    let track_script = format!(
        "runChunked({N}, {CHUNK}, function (i) {{ spoor('track', 'bench_event', {{i: i, plan: 'pro', tags: ['a', 'b']}}); }})"
    );
    let sql =
        "SELECT countIf(type = 'track') AS tracks, countIf(type = 'click') AS clicks FROM events";
    let mut counts = Counts {
        tracks: 0,
        clicks: 0,
    };
    let (mut base, mut track, mut click) = (Vec::new(), Vec::new(), Vec::new());
    let mut long_tasks = Vec::new();
    let mut delivered = true;
    // Each round is the whole measurement on a freshly loaded page: the browser's own click
    // dispatch before the SDK is on it (subtracted below), then N track() calls and N clicks
    // right after the SDK starts, its sending and compressing running between the loop's
    // tasks. The next round starts once this one's events are stored.
    for round in 1..=ROUNDS {
        browser
            .client
            .goto(&format!("{}/sdk/index.html", stack.collector))
            .await
            .context("the collector serves the SDK folder with bench/index.html in it")?;
        base.push(ms(run_async(&browser, &clicks_script).await?) / N as f64);
        run_async(&browser, &format!("loadSdk({})", json!(stack.collector))).await?;
        browser.eval("window.longTasks.length = 0").await?;
        track.push(ms(run_async(&browser, &track_script).await?) / N as f64);
        click.push(ms(run_async(&browser, &clicks_script).await?) / N as f64);
        let want = round * N;
        delivered = false;
        for _ in 0..180 {
            counts = stack.clickhouse.query(sql).fetch_one().await?;
            if counts.tracks >= want && counts.clicks >= want {
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if let Some(a) = browser.eval("return window.longTasks").await?.as_array() {
            long_tasks.extend(a.iter().cloned());
        }
        if !delivered {
            break;
        }
    }
    // A round's click work: its clicks minus its own page's dispatch alone.
    let work: Vec<f64> = click.iter().zip(&base).map(|(c, b)| c - b).collect();
    let (per_track, per_click) = (median(&track), median(&work));
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rounds = track.len();
    println!(
        "track():            {per_track:.4} ms per call, median of {rounds} rounds of {N} calls ({})",
        list(&track)
    );
    println!(
        "autocaptured click: {per_click:.4} ms per click of SDK work, median of {rounds} rounds of {N} clicks ({}; dispatch alone {})",
        list(&work),
        list(&base)
    );
    browser.close().await?;
    println!(
        "delivered:          {} track + {} click events stored in ClickHouse",
        counts.tracks, counts.clicks
    );
    println!("long tasks:         {}", json!(long_tasks));
    let mut over = Vec::new();
    for (name, v) in [("track", per_track), ("click", per_click)] {
        if v >= BUDGET_MS {
            over.push(format!("{name} {v:.4} ms >= {BUDGET_MS} ms"));
        }
    }
    if !long_tasks.is_empty() {
        over.push("long tasks".into());
    }
    if !delivered {
        over.push("not all events delivered within 45 s of a round".into());
    }
    if !over.is_empty() {
        bail!("OVER BUDGET: {}", over.join(", "));
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
