//! One segmenter run: find what is new since the watermark, re-aggregate it, rebuild the
//! dynamic profiles and segments, and record the new watermark.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use spoor_schema::segmenter::Period;
use time::{Date, OffsetDateTime};

use crate::build::profiles::DynamicScope;
use crate::build::{self, RunCtx};
use crate::config::Lifecycle;
use crate::{Db, Error, segment};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rebuild everything from `events`, ignoring the watermark.
    pub full: bool,
    /// The time dynamic profiles and segments describe; now when `None`.
    pub as_of: Option<OffsetDateTime>,
    /// Events received up to this long before the previous watermark are read again, for
    /// rows a collector inserted late with an older `received_at`. Re-reading is harmless.
    pub overlap: Duration,
    pub lifecycle: Lifecycle,
    /// Draw progress bars on stderr (when it is a terminal).
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            full: false,
            as_of: None,
            overlap: Duration::from_secs(120),
            lifecycle: Lifecycle::default(),
            progress: false,
        }
    }
}

/// See [`RunReport::recomputed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recomputed {
    Everyone,
    Touched,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: u64,
    pub full: bool,
    pub new_events: u64,
    pub affected_days: usize,
    pub segments: usize,
    /// Whose dynamic profiles and segment memberships were recomputed: everyone, or (within the
    /// previous run's as-of day) only the people this run touched.
    pub recomputed: Recomputed,
    pub steps: Vec<(&'static str, Duration)>,
    pub elapsed: Duration,
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} ({}): {} new events, {} days re-aggregated, {} segments refreshed for {} in {:.2}s",
            self.run_id,
            if self.full { "full" } else { "incremental" },
            self.new_events,
            self.affected_days,
            self.segments,
            match self.recomputed {
                Recomputed::Everyone => "everyone",
                Recomputed::Touched => "the people touched",
            },
            self.elapsed.as_secs_f64()
        )
    }
}

/// The oldest ClickHouse the segmenter runs on: 25.7 brought lightweight updates (patch
/// parts), which its deletes use (`lightweight_delete_mode`).
pub const MIN_SERVER: (u32, u32) = (25, 7);

/// Whether a `version()` text (`26.9.2.1`) is at least [`MIN_SERVER`].
fn server_supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= MIN_SERVER,
        _ => false,
    }
}

/// Applies the migrations the segmenter needs: the collector's (so that `events` exists even
/// when the segmenter starts first) and its own. Refuses a server older than [`MIN_SERVER`].
pub async fn migrate(db: &Db) -> Result<(), Error> {
    let version: String = db
        .query("SELECT version()")
        .fetch_one()
        .await
        .map_err(|e| Error::query("read the server version", e))?;
    if !server_supported(&version) {
        return Err(Error::ServerTooOld { version });
    }
    spoor_schema::migrate(
        db.client(),
        "collector",
        db.layout(),
        spoor_schema::INGEST_MIGRATIONS,
    )
    .await?;
    spoor_schema::migrate(
        db.client(),
        "segmenter",
        db.layout(),
        spoor_schema::SEGMENTER_MIGRATIONS,
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Watermark {
    runs: u64,
    watermark_ms: i64,
    as_of_day: String,
    config: String,
    rebuild_requested: bool,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct NewEvents {
    count: u64,
    max_received_ms: i64,
}

/// Runs once. The database must be migrated ([`migrate`]).
pub async fn run_once(db: &Db, options: &RunOptions) -> Result<RunReport, Error> {
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let now_ms = unix_ms(now);
    let as_of_ms = unix_ms(options.as_of.unwrap_or(now));
    let previous: Watermark = db
        .query(&db.sql(
            "SELECT countIf(r.mode != {rebuild:String}) AS runs,
                    toUnixTimestamp64Milli(max(watermark)) AS watermark_ms,
                    toString(toDate(argMax(r.as_of, r.run_id))) AS as_of_day, argMax(r.config, r.run_id) AS config,
                    argMax(r.mode, r.run_id) = {rebuild:String} AS rebuild_requested
             FROM {db}.segmenter_runs AS r",
            &[],
        ))
        .param("rebuild", spoor_schema::segmenter::REBUILD_REQUESTED)
        .fetch_one()
        .await
        .map_err(|e| Error::query("read watermark", e))?;
    // A migration that changed a derived table asks for a full rebuild.
    let full = options.full || previous.runs == 0 || previous.rebuild_requested;
    let overlap_ms = i64::try_from(options.overlap.as_millis()).unwrap_or(i64::MAX);
    let since_ms = (!full).then(|| previous.watermark_ms.saturating_sub(overlap_ms));
    let new: NewEvents = db
        .query(&db.sql(
            "SELECT count() AS count, toUnixTimestamp64Milli(max(received_at)) AS max_received_ms
             FROM {db}.events WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')",
            &[],
        ))
        .param("since", since_ms.unwrap_or(i64::MIN / 2))
        .fetch_one()
        .await
        .map_err(|e| Error::query("read new events", e))?;
    let watermark_ms = if new.count == 0 {
        previous.watermark_ms
    } else {
        new.max_received_ms.max(previous.watermark_ms)
    };
    // Run ids are the start time in ms, made strictly increasing.
    let run_id = u64::try_from(now_ms)
        .unwrap_or(0)
        .max(last_run_id(db).await? + 1);

    let mut ctx = RunCtx {
        run_id,
        as_of_ms,
        now_ms,
        since_ms,
        days: Vec::new(),
        report_days: Vec::new(),
    };
    if !full {
        ctx.days = fetch_days(
            db,
            &ctx,
            "SELECT DISTINCT toString(toDate(timestamp)) FROM {db}.events
             WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')",
        )
        .await?;
    }

    let progress = Progress::new(options.progress, 9 + Period::ALL.len() as u64);
    let mut steps = Vec::new();
    let mut step = |name: &'static str, at: Instant| steps.push((name, at.elapsed()));
    let something_new = full || new.count > 0;

    progress.step("identity");
    let at = Instant::now();
    build::profiles::clear_touched(db).await?;
    if something_new {
        build::identity::update(db, &ctx).await?;
        if !full {
            // Days where an anonymous history just joined (or left) a user: their visitor
            // counts change.
            let extra = fetch_days(
                db,
                &ctx,
                "SELECT DISTINCT toString(day) FROM {db}.activity_daily
                 WHERE user_id = '' AND (project_id, anonymous_id) IN (
                     SELECT project_id, anonymous_id FROM {db}.identity_changes WHERE run_id = {run:UInt64})",
            )
            .await?;
            ctx.days.extend(extra);
            ctx.days.sort();
            ctx.days.dedup();
        }
    }
    step("identity", at);
    let rebuild_days = full || !ctx.days.is_empty();

    progress.step("sessions");
    let at = Instant::now();
    // The start days of the sessions this run recomputes, before and after: a session's start
    // day can be a neighbour of the re-aggregated days (a session crossing midnight), and its
    // day's report (so its week's and month's) changes with it.
    let mut session_days = Vec::new();
    if rebuild_days && !full {
        let changed = db.sql(build::sessions::CHANGED, &[]);
        session_days = fetch_days(
            db,
            &ctx,
            &format!(
                "SELECT DISTINCT toString(day) FROM {{db}}.sessions
                 WHERE has({{session_days:Array(Date)}}, day) AND ({changed})"
            ),
        )
        .await?;
    }
    if rebuild_days {
        build::sessions::rebuild(db, &ctx).await?;
    }
    if rebuild_days && !full {
        session_days.extend(
            fetch_days(
                db,
                &ctx,
                "SELECT DISTINCT toString(day) FROM {db}.sessions WHERE version = {run:UInt64}",
            )
            .await?,
        );
    }
    step("sessions", at);

    progress.step("activity");
    let at = Instant::now();
    if rebuild_days {
        build::activity::rebuild(db, &ctx).await?;
    }
    step("activity", at);

    progress.step("static profiles");
    let at = Instant::now();
    ctx.report_days.clone_from(&ctx.days);
    ctx.report_days.extend(session_days);
    ctx.report_days.sort();
    ctx.report_days.dedup();
    build::profiles::record_touched(db, &ctx).await?;
    if rebuild_days && !full {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let moved = build::profiles::first_seen_days(db, &ctx).await?;
        ctx.report_days
            .extend(moved.iter().filter_map(|t| Date::parse(t, &format).ok()));
        ctx.report_days.sort();
        ctx.report_days.dedup();
    }
    if rebuild_days {
        build::profiles::rebuild_static(db, &ctx).await?;
    }
    step("profiles_static", at);

    for period in Period::ALL {
        progress.step(match period {
            Period::Daily => "daily reports",
            Period::Weekly => "weekly reports",
            Period::Monthly => "monthly reports",
        });
        let at = Instant::now();
        if rebuild_days {
            build::reports::rebuild(db, &ctx, period).await?;
        }
        step(
            match period {
                Period::Daily => "report_daily",
                Period::Weekly => "report_weekly",
                Period::Monthly => "report_monthly",
            },
            at,
        );
    }

    // Within the previous run's as-of day (and thresholds), only the people this run touched
    // can have changed: every window of the dynamic profile and of segment rules is whole days.
    let config = serde_json::to_string(&options.lifecycle).unwrap_or_default();
    let as_of_day = OffsetDateTime::from_unix_timestamp_nanos(i128::from(as_of_ms) * 1_000_000)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    let scope = if !full
        && previous.runs > 0
        && previous.as_of_day == as_of_day
        && previous.config == config
    {
        DynamicScope::Touched
    } else {
        DynamicScope::All
    };
    progress.step("dynamic profiles");
    let at = Instant::now();
    build::profiles::rebuild_dynamic(db, &ctx, &options.lifecycle, scope).await?;
    step("profiles_dynamic", at);

    progress.step("segments");
    let at = Instant::now();
    let candidates = (scope == DynamicScope::Touched).then(|| {
        db.sql(
            "SELECT project_id, person_id FROM {db}.profiles_dynamic
             WHERE version IN ({version:UInt64}, {version:UInt64} + 1)
             UNION DISTINCT
             SELECT project_id, concat('anon:', anonymous_id) FROM {db}.identity_changes WHERE run_id = {run:UInt64}",
            &[],
        )
    });
    let segments =
        segment::store::refresh_dynamic(db, ctx.run_id, as_of_ms, now_ms, candidates.as_deref())
            .await?;
    step("segments", at);

    progress.step("watermark");
    let affected_days = if full {
        count_days(db).await?
    } else {
        ctx.days.len()
    };
    let record = db.sql(
        "INSERT INTO {db}.segmenter_runs (run_id, mode, started_at, finished_at, as_of, watermark, config, new_events, affected_days)
         VALUES ({run:UInt64}, {mode:String}, fromUnixTimestamp64Milli({now:Int64}, 'UTC'), now64(3),
                 fromUnixTimestamp64Milli({as_of:Int64}, 'UTC'), fromUnixTimestamp64Milli({watermark:Int64}, 'UTC'),
                 {config:String}, {new_events:UInt64}, {affected:UInt32})",
        &[],
    );
    db.execute(
        "record run",
        ctx.bind(db.query(&record))
            .param("mode", if full { "full" } else { "incremental" })
            .param("config", &config)
            .param("watermark", watermark_ms)
            .param("new_events", new.count)
            .param("affected", u32::try_from(affected_days).unwrap_or(u32::MAX)),
    )
    .await?;
    progress.finish();
    Ok(RunReport {
        run_id,
        full,
        new_events: new.count,
        affected_days,
        segments,
        recomputed: match scope {
            DynamicScope::All => Recomputed::Everyone,
            DynamicScope::Touched => Recomputed::Touched,
        },
        steps,
        elapsed: started.elapsed(),
    })
}

async fn last_run_id(db: &Db) -> Result<u64, Error> {
    db.query(&db.sql("SELECT max(run_id) FROM {db}.segmenter_runs", &[]))
        .fetch_one::<u64>()
        .await
        .map_err(|e| Error::query("read last run", e))
}

async fn count_days(db: &Db) -> Result<usize, Error> {
    let n: u64 = db
        .query(&db.sql("SELECT uniqExact(day) FROM {db}.activity_daily", &[]))
        .fetch_one()
        .await
        .map_err(|e| Error::query("count days", e))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

async fn fetch_days(db: &Db, ctx: &RunCtx, template: &str) -> Result<Vec<Date>, Error> {
    let texts: Vec<String> = ctx
        .bind(db.query(&db.sql(template, &[])))
        .fetch_all()
        .await
        .map_err(|e| Error::query("find affected days", e))?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut days: Vec<Date> = texts
        .iter()
        .filter_map(|t| Date::parse(t, &format).ok())
        .collect();
    days.sort();
    Ok(days)
}

pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

struct Progress(ProgressBar);

impl Progress {
    fn new(enabled: bool, steps: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(steps),
            if enabled {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
        {
            bar.set_style(style);
        }
        if enabled {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Progress(bar)
    }

    fn step(&self, name: &'static str) {
        if self.0.position() > 0 || !self.0.message().is_empty() {
            self.0.inc(1);
        }
        self.0.set_message(name);
    }

    fn finish(&self) {
        self.0.inc(1);
        self.0.finish_with_message("done");
    }
}

#[cfg(test)]
mod tests {
    use super::server_supported;

    #[test]
    fn servers_from_25_7_on_are_supported() {
        assert!(server_supported("26.9.2.1"));
        assert!(server_supported("25.7.1.3997"));
        assert!(server_supported("25.10.1"));
        assert!(!server_supported("25.6.5.41"));
        assert!(!server_supported("24.12.1"));
        assert!(!server_supported("unknown"));
    }
}
