//! The segmenter benchmark (a program, not a test).
//!
//! Generates synthetic events inside ClickHouse (`INSERT … SELECT FROM numbers()`), times a
//! full rebuild and then an incremental run after 1 % new events, and reports the server's
//! peak memory. Budgets (DESIGN.md): full ≤ 60 s; incremental ≤ 10 % of full.
//!
//! ```text
//! local-clickhouse/ctl start --port 18390 --data-dir /tmp/spoor-bench-ch
//! cargo run --release -p spoor-segmenter --bin spoor-segmenter-bench -- \
//!     --clickhouse-url http://127.0.0.1:18390 --server-pid $(cat /tmp/spoor-bench-ch/server.pid)
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use spoor_schema::Layout;
use spoor_segmenter::segment::{Definition, Format, store};
use spoor_segmenter::{Db, RunOptions, RunReport, migrate, run_once};
use time::OffsetDateTime;

#[derive(Debug, Parser)]
struct Args {
    #[arg(
        long,
        env = "SPOOR_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    clickhouse_url: String,
    /// Scratch database; dropped and recreated.
    #[arg(long, default_value = "spoor_bench")]
    database: String,
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// Pid of the ClickHouse server process, to measure its peak memory (VmHWM).
    #[arg(long, env = "SPOOR_BENCH_SERVER_PID")]
    server_pid: Option<u32>,
    /// Reuse the generated events of a previous invocation.
    #[arg(long)]
    reuse: bool,
}

const FULL_BUDGET: Duration = Duration::from_secs(60);
/// The as-of time: the day after the synthetic month ends.
const AS_OF: &str = "2026-11-21T23:00:00Z";

/// Users `u` have 10 events each on average, in sessions of 4 events on one of 30 days (the
/// session id names its day: the 1 % added later, on the last day, opens new sessions there
/// rather than continuing sessions weeks old, which the SDK never sends);
/// a third of them identify on their third event. Event mix: 55 % page views, 15 % page
/// leaves, 10 % clicks, 6 % searches (1 in 7 finds nothing), 5 % orders (identified users),
/// the rest member events.
const GENERATE: &str = "
INSERT INTO {db}.events (project_id, event_id, type, name, timestamp, client_timestamp, sent_at, received_at,
    anonymous_id, user_id, session_id, session_index, session_started_at, url, path, referrer, referrer_domain,
    referrer_class, utm_source, search_query, search_results_count, engaged_ms, properties, traits, device_class,
    browser, os, source)
SELECT 'shop', generateUUIDv4(number),
       multiIf(is_identify, 'identify', r < 55 OR (r >= 90 AND uid = ''), 'page_view', r < 70, 'page_leave', r < 80, 'click', r < 86, 'search', 'track'),
       multiIf(is_identify OR r < 90 OR uid = '', '', r < 95, 'order_completed', r < 98, 'points_earned', 'member_signin'),
       ts, ts, ts,
       if({received_base:Int64} > 0, fromUnixTimestamp64Milli({received_base:Int64} + number % 1000, 'UTC'), ts + toIntervalSecond(1)),
       concat('a', toString(u)), uid, concat('s', toString(u), '-', toString(s), '-', toString(day)), toUInt32(s + 1), ts,
       concat('https://shop.example', p), p,
       if(j % 4 = 0, ['', 'https://www.google.com/', 'https://news.example/a', 'https://t.co/x'][h % 4 + 1], ''),
       if(j % 4 = 0, ['', 'www.google.com', 'news.example', 't.co'][h % 4 + 1], ''),
       if(j % 4 = 0, ['direct', 'search', 'other', 'social'][h % 4 + 1], ''),
       if(j % 4 = 0 AND h % 5 = 0, 'newsletter', ''),
       if(r >= 80 AND r < 86, concat('query ', toString(h % 1000)), ''),
       if(r >= 80 AND r < 86, toUInt32(h % 7), NULL),
       if(r >= 55 AND r < 70, h % 120000, 0),
       multiIf(r >= 90 AND r < 95, concat('{\"order_id\":\"o', toString(number), '\",\"revenue\":', toString((h % 20000) / 100), ',\"currency\":\"EUR\"}'),
          r >= 95 AND r < 98, concat('{\"points\":', toString(h % 500), ',\"reason\":\"order\"}'), '{}'),
       if(is_identify, concat('{\"level\":\"', ['bronze', 'silver', 'gold'][h % 3 + 1], '\"}'), '{}'),
       ['desktop', 'mobile', 'tablet'][h % 3 + 1], ['Chrome', 'Firefox', 'Safari'][h % 3 + 1], ['Windows', 'macOS', 'Android', 'iOS'][h % 4 + 1],
       if(r >= 86 AND NOT is_identify AND uid != '', 'server', 'browser')
FROM (
    SELECT number, u, j, s, h, r, is_identify, uid, p, day,
           {start:DateTime64(3, 'UTC')} + toIntervalDay(day) + toIntervalSecond(second + j * 40) AS ts
    FROM (
        SELECT number,
               (number + {offset:UInt64}) % {users:UInt64} AS u,
               intDiv(number + {offset:UInt64}, {users:UInt64}) AS j,
               intDiv(j, 4) AS s,
               cityHash64(number + {offset:UInt64}) AS h,
               h % 100 AS r,
               u % 3 = 0 AND j = 2 AS is_identify,
               if(u % 3 = 0 AND j >= 2, concat('u', toString(u)), '') AS uid,
               concat('/', ['shop', 'blog', 'help', 'account'][h % 4 + 1], '/', toString(h % 200)) AS p,
               if({day:Int32} >= 0, toUInt32({day:Int32}), cityHash64(u, s) % 30) AS day,
               cityHash64(s, u) % 80000 AS second
        FROM numbers({count:UInt64})
    )
)";

const SEGMENTS: &[&str] = &[
    "id = \"big_spenders\"\n[rule]\nall = [{ field = \"revenue_total\", op = \"gte\", value = 150 }, { field = \"lifecycle_stage\", op = \"in\", value = [\"active\", \"loyal\", \"returning\"] }]\n",
    "id = \"searchers_7d\"\n[rule]\ndid = \"search\"\nat_least = 2\nwithin_days = 7\n",
    "id = \"shop_visitors_no_order\"\n[rule]\nall = [{ visited = \"/shop\", within_days = 14 }, { did_not = \"order_completed\", within_days = 30 }]\n",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    // `SPOOR_LOG=spoor_segmenter=debug` times every statement of a run.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SPOOR_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match bench(&args).await {
        Ok(within_budget) => {
            if within_budget {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

async fn bench(args: &Args) -> anyhow::Result<bool> {
    let db = Db::new(&args.clickhouse_url, Layout::single(&args.database))?;
    db.ping().await?;
    let as_of = OffsetDateTime::parse(AS_OF, &time::format_description::well_known::Rfc3339)?;
    let start = "2026-10-22 08:00:00.000";
    if !args.reuse {
        db.client()
            .query(&format!("DROP DATABASE IF EXISTS {}", args.database))
            .execute()
            .await?;
        migrate(&db).await?;
        let at = Instant::now();
        generate(&db, args, 0, args.events, start, -1, 0).await?;
        println!(
            "generated {} events for {} users in {:.1}s",
            args.events,
            args.users,
            at.elapsed().as_secs_f64()
        );
    } else {
        // Keep the events; drop everything the segmenter made.
        let tables: Vec<String> = db
            .client()
            .query("SELECT name FROM system.tables WHERE database = ? AND name NOT IN ('events', 'events_rejected', 'spoor_migrations')")
            .bind(&args.database)
            .fetch_all()
            .await?;
        for table in tables {
            db.client()
                .query(&format!("DROP TABLE IF EXISTS {}.`{table}`", args.database))
                .execute()
                .await?;
        }
        db.client()
            .query(&format!(
                "DELETE FROM {}.spoor_migrations WHERE component = 'segmenter'",
                args.database
            ))
            .execute()
            .await?;
        migrate(&db).await?;
    }
    for text in SEGMENTS {
        store::add(&db, &Definition::parse(text, Format::Toml)?, None).await?;
    }
    let counts = db
        .client()
        .query(&format!(
            "SELECT count(), uniqExact(anonymous_id) FROM {}.events",
            args.database
        ))
        .fetch_one::<(u64, u64)>()
        .await?;
    println!("events: {}, anonymous ids: {}", counts.0, counts.1);

    let options = RunOptions {
        full: true,
        as_of: Some(as_of),
        overlap: Duration::ZERO,
        progress: true,
        ..RunOptions::default()
    };
    settle(&db).await?;
    reset_peak(args.server_pid);
    let full = run_once(&db, &options).await?;
    let full_peak = peak(args.server_pid);
    print_report("full rebuild", &full, full_peak);

    // 1 % new events on the newest day, received after the watermark.
    let new = args.events / 100;
    let received_base: i64 = db
        .client()
        .query(&format!(
            "SELECT toUnixTimestamp64Milli(max(received_at)) + 1000 FROM {}.events",
            args.database
        ))
        .fetch_one()
        .await?;
    let offset = db
        .client()
        .query(&format!("SELECT count() FROM {}.events", args.database))
        .fetch_one::<u64>()
        .await?;
    let at = Instant::now();
    generate(&db, args, offset, new, start, 29, received_base).await?;
    println!(
        "inserted {new} new events in {:.1}s",
        at.elapsed().as_secs_f64()
    );
    let options = RunOptions {
        full: false,
        ..options
    };
    // Runs come every few minutes (`run --every 5m`): by then the server has merged the parts
    // the previous run and the new events wrote. Measured in that steady state, not while the
    // full rebuild's 20 M rows are still being merged underneath.
    settle(&db).await?;
    reset_peak(args.server_pid);
    let incremental = run_once(&db, &options).await?;
    let incremental_peak = peak(args.server_pid);
    print_report("incremental", &incremental, incremental_peak);

    // The first run of a new UTC day recomputes every dynamic profile and segment (their
    // windows moved); reported, not budgeted.
    let next_day = RunOptions {
        as_of: Some(as_of + time::Duration::DAY),
        ..options.clone()
    };
    settle(&db).await?;
    let rollover = run_once(&db, &next_day).await?;
    print_report("first run of the next day (no new events)", &rollover, None);

    let full_s = full.elapsed.as_secs_f64();
    let inc_s = incremental.elapsed.as_secs_f64();
    let full_ok = full.elapsed <= FULL_BUDGET;
    let inc_ok = inc_s <= 0.10 * full_s;
    println!();
    println!(
        "full rebuild: {full_s:.1}s (budget {}s) {}",
        FULL_BUDGET.as_secs(),
        if full_ok { "PASS" } else { "FAIL" }
    );
    println!(
        "incremental after 1 % new events: {inc_s:.1}s = {:.1} % of full (budget 10 %) {}",
        100.0 * inc_s / full_s,
        if inc_ok { "PASS" } else { "FAIL" }
    );
    match (full_peak, incremental_peak) {
        (Some(f), Some(i)) => println!(
            "ClickHouse server peak RSS: full {} MiB, incremental {} MiB",
            f / 1024,
            i / 1024
        ),
        _ => println!("ClickHouse server peak RSS: not measured (pass --server-pid)"),
    }
    Ok(full_ok && inc_ok)
}

async fn generate(
    db: &Db,
    args: &Args,
    offset: u64,
    count: u64,
    start: &str,
    day: i32,
    received_base: i64,
) -> anyhow::Result<()> {
    let sql = GENERATE.replace("{db}", db.database());
    db.client()
        .query(&sql)
        .with_setting("max_insert_threads", "2")
        .param("offset", offset)
        .param("count", count)
        .param("users", args.users)
        .param("start", start)
        .param("day", day)
        .param("received_base", received_base)
        .execute()
        .await?;
    Ok(())
}

/// Waits until the server has no merge or mutation running in the bench database (at most
/// five minutes), and says how long that took.
async fn settle(db: &Db) -> anyhow::Result<()> {
    let at = Instant::now();
    loop {
        let busy: u64 = db
            .client()
            .query(
                "SELECT count() FROM (SELECT 1 FROM system.merges WHERE database = ?
                      UNION ALL SELECT 1 FROM system.mutations WHERE database = ? AND NOT is_done)",
            )
            .bind(db.database())
            .bind(db.database())
            .fetch_one()
            .await?;
        if busy == 0 || at.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "(waited {:.1}s for the server's background merges to finish)",
        at.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_report(what: &str, report: &RunReport, peak_kib: Option<u64>) {
    println!("{what}: {report}");
    for (step, took) in &report.steps {
        println!("  {step:<18} {:>7.2}s", took.as_secs_f64());
    }
    if let Some(kib) = peak_kib {
        println!("  server peak RSS   {:>7} MiB", kib / 1024);
    }
}

/// Resets the server's peak-RSS counter (Linux `clear_refs`), when we know its pid.
fn reset_peak(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
}

/// The server's peak RSS in KiB since the last reset.
fn peak(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
