//! The writer lease: one segmenter process at a time writes the derived tables.
//!
//! Two runs at once over the same database would interleave their deletes, inserts and the
//! working tables each empties at its start (`touched_people`, `segment_scratch`,
//! `report_people`) and leave wrong numbers behind without any error. So every command that
//! writes derived tables (`run`, `forget`, `segments add`/`delete`) holds the lease while it
//! writes, and releases it when done.
//!
//! The lease lives in ClickHouse (`segmenter_lease`), not in a coordinator: each term is one
//! row, taken by an `INSERT` with the deduplication token `writer/<term>`. When several
//! processes take the same term at once, ClickHouse keeps the first insert and drops the
//! others as duplicates, so exactly one holds it — they all read back who. A term expires
//! ([`TTL`]) unless renewed (a new term by the same holder, every third of it, while the
//! command runs), so a crashed process blocks the others for at most that long.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;

use crate::{Db, Error};

/// How long a term lasts without renewal.
pub const TTL: Duration = Duration::from_secs(120);
const NAME: &str = "writer";

/// Who holds the lease, when a command could not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Host, process id and a random id of the process holding it.
    pub holder: String,
    /// Until when (UTC, server time), unless it renews.
    pub until: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (until {} UTC unless it renews)",
            self.holder, self.until
        )
    }
}

/// The lease, held.
#[derive(Debug)]
pub struct Lease {
    holder: String,
    term: u64,
    ttl: Duration,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Term {
    term: u64,
    holder: String,
    until: String,
    held: bool,
}

/// This process's name in the lease: host, pid and a random id (two processes never share it).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

/// Runs `work` holding the lease (renewed while it runs; released after), taken as a new
/// holder; waits up to `wait` while another process holds it (`on_wait` is told who, once).
pub async fn with_lease<T>(
    db: &Db,
    wait: Duration,
    on_wait: impl FnOnce(&Holder),
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let holder = holder_id();
    let mut lease = Lease::acquire(db, &holder, TTL, wait, on_wait).await?;
    let done = lease.hold_while(db, work).await;
    let released = lease.release(db).await;
    let out = done??;
    released?;
    Ok(out)
}

impl Lease {
    /// Takes the lease as `holder` if nobody else holds it; else says who does.
    pub async fn try_acquire(db: &Db, holder: &str, ttl: Duration) -> Result<Lease, LeaseError> {
        // Two rounds: when another process takes the same term at the same moment, the second
        // round reports it as the holder.
        for _ in 0..2 {
            let latest = latest(db).await?;
            if let Some(t) = &latest
                && t.held
                && t.holder != holder
            {
                return Err(LeaseError::Held(Holder {
                    holder: t.holder.clone(),
                    until: t.until.clone(),
                }));
            }
            let term = latest.map_or(1, |t| t.term + 1);
            if take(db, term, holder, ttl).await? == holder {
                return Ok(Lease {
                    holder: holder.to_owned(),
                    term,
                    ttl,
                });
            }
        }
        let held = latest(db).await?.map(|t| Holder {
            holder: t.holder,
            until: t.until,
        });
        Err(LeaseError::Held(held.unwrap_or(Holder {
            holder: "another process".into(),
            until: "now".into(),
        })))
    }

    /// [`Lease::try_acquire`], waiting up to `wait` (checking every second) while another
    /// process holds it; `on_wait` is told who, once.
    pub async fn acquire(
        db: &Db,
        holder: &str,
        ttl: Duration,
        wait: Duration,
        on_wait: impl FnOnce(&Holder),
    ) -> Result<Lease, LeaseError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut on_wait = Some(on_wait);
        loop {
            match Lease::try_acquire(db, holder, ttl).await {
                Err(LeaseError::Held(who)) if tokio::time::Instant::now() < deadline => {
                    if let Some(tell) = on_wait.take() {
                        tell(&who);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// Extends the lease by a new term; fails when another process took it meanwhile (this
    /// one let it expire).
    pub async fn renew(&mut self, db: &Db) -> Result<(), LeaseError> {
        let term = self.term + 1;
        let winner = take(db, term, &self.holder, self.ttl).await?;
        if winner != self.holder {
            return Err(LeaseError::Lost(winner));
        }
        self.term = term;
        Ok(())
    }

    /// Gives the lease up at once (a term that has already expired).
    pub async fn release(self, db: &Db) -> Result<(), LeaseError> {
        take(db, self.term + 1, &self.holder, Duration::ZERO).await?;
        Ok(())
    }

    /// Runs `work` while holding the lease, renewing it every third of its time to live; if
    /// a renewal fails, `work` is stopped (dropped) and the error returned.
    pub async fn hold_while<F: Future>(
        &mut self,
        db: &Db,
        work: F,
    ) -> Result<F::Output, LeaseError> {
        tokio::pin!(work);
        let every = self.ttl / 3;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = ticks.tick() => self.renew(db).await?,
            }
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }
}

/// Why the lease is not (or no longer) this process's.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("another segmenter is writing to this database: {0}")]
    Held(Holder),
    #[error("the writer lease was taken over by {0} (this process did not renew it in time)")]
    Lost(String),
    #[error(transparent)]
    Db(#[from] Error),
}

impl From<LeaseError> for Error {
    fn from(error: LeaseError) -> Error {
        match error {
            LeaseError::Db(error) => error,
            other => Error::Busy(other.to_string()),
        }
    }
}

async fn latest(db: &Db) -> Result<Option<Term>, Error> {
    db.query(&db.sql(
        "SELECT term, holder, toString(expires_at) AS until, expires_at > now64(3) AS held
         FROM {db}.segmenter_lease WHERE name = {name:String}
         ORDER BY term DESC LIMIT 1",
        &[],
    ))
    .param("name", NAME)
    .fetch_optional()
    .await
    .map_err(|e| Error::query("read the writer lease", e))
}

/// Inserts `holder`'s row for `term` (dropped by ClickHouse if that term is already taken)
/// and returns who holds the term.
async fn take(db: &Db, term: u64, holder: &str, ttl: Duration) -> Result<String, Error> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let insert = db
        .query(&db.sql(
            "INSERT INTO {db}.segmenter_lease (name, term, holder, taken_at, expires_at)
             SELECT {name:String}, {term:UInt64}, {holder:String}, now64(3),
                    now64(3) + toIntervalMillisecond({ttl:Int64})",
            &[],
        ))
        .param("name", NAME)
        .param("term", term)
        .param("holder", holder)
        .param("ttl", ttl_ms)
        .with_setting("insert_deduplicate", "1")
        .with_setting("insert_deduplication_token", format!("{NAME}/{term}"));
    db.execute("take the writer lease", insert).await?;
    db.query(&db.sql(
        "SELECT holder FROM {db}.segmenter_lease
         WHERE name = {name:String} AND term = {term:UInt64} LIMIT 1",
        &[],
    ))
    .param("name", NAME)
    .param("term", term)
    .fetch_one()
    .await
    .map_err(|e| Error::query("read the writer lease", e))
}
