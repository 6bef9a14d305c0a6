//! Paths: where visitors came from to a page and where they went next, within their session.
//! Read live from `events` (page views, bots left out). A reload — the same page twice in a
//! row — counts as one view. Before the page's first view in a session is `(entry)`, after its
//! last `(exit)`.

use serde::Deserialize;
use time::OffsetDateTime;

use super::Invalid;
use crate::run::unix_ms;
use crate::{Db, Error};

/// The page that starts a session (a "came from" of none).
pub const ENTRY: &str = "(entry)";
/// The page that ends a session (a "went to" of none).
pub const EXIT: &str = "(exit)";
/// At most this many pages each way.
pub const TOP: u32 = 15;

/// The question: around `page`, in `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub project: String,
    /// A path, exactly (`/shop`).
    pub page: String,
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// The answer: the page's views, and the pages before and after them with their counts, most
/// frequent first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Around {
    pub views: u64,
    pub came_from: Vec<(String, u64)>,
    pub went_to: Vec<(String, u64)>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Neighbour {
    side: u8,
    path: String,
    views: u64,
    /// Every view of the page (each has one page before it, and one after).
    total: u64,
}

/// The page views of the sessions that viewed the page, reloads collapsed, each with the page
/// before and after it (`''` at a session's ends); then the most frequent of those each side,
/// with the page's views (`total`: each view has one page before it and one after).
const AROUND: &str = "
WITH steps AS (
    SELECT path AS path_now,
           lagInFrame(path, 1, '') OVER w AS before,
           leadInFrame(path, 1, '') OVER w AS after
    FROM (
        SELECT session_id, path, t FROM (
            SELECT session_id, path, (timestamp, event_id) AS t,
                   lagInFrame(path, 1, '') OVER (PARTITION BY session_id ORDER BY timestamp, event_id
                       ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS previous
            FROM {db}.events
            WHERE project_id = {project:String} AND type = 'page_view' AND NOT is_bot AND session_id != ''
              AND timestamp >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
              AND timestamp < fromUnixTimestamp64Milli({until:Int64}, 'UTC')
              AND session_id IN (
                  SELECT session_id FROM {db}.events
                  WHERE project_id = {project:String} AND type = 'page_view' AND path = {page:String}
                    AND timestamp >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
                    AND timestamp < fromUnixTimestamp64Milli({until:Int64}, 'UTC'))
        )
        WHERE path != previous
    )
    WINDOW w AS (PARTITION BY session_id ORDER BY t ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)
)
SELECT side, path, views, sum(views) OVER (PARTITION BY side) AS total FROM (
    SELECT 0 AS side, if(before = '', {entry:String}, before) AS path, count() AS views
    FROM steps WHERE path_now = {page:String} GROUP BY path
    UNION ALL
    SELECT 1, if(after = '', {exit:String}, after), count()
    FROM steps WHERE path_now = {page:String} GROUP BY 2
)
ORDER BY side, views DESC, path
LIMIT {top:UInt32} BY side";

impl Paths {
    pub fn new(
        project: &str,
        page: &str,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Paths, Invalid> {
        let page = page.trim();
        if !page.starts_with('/') || page.len() > 2048 || page.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "a page is a path such as /checkout, not {page:?}"
            )));
        }
        if from >= until {
            return Err(Invalid("the time range ends before it starts".into()));
        }
        Ok(Paths {
            project: project.to_owned(),
            page: page.to_owned(),
            from,
            until,
        })
    }

    /// The pages around [`Paths::page`].
    pub async fn around(&self, db: &Db) -> Result<Around, Error> {
        let sql = db.sql(AROUND, &[]);
        let rows: Vec<Neighbour> = db
            .query(&sql)
            .param("project", self.project.as_str())
            .param("page", self.page.as_str())
            .param("from", unix_ms(self.from))
            .param("until", unix_ms(self.until))
            .param("entry", ENTRY)
            .param("exit", EXIT)
            .param("top", TOP)
            .fetch_all()
            .await
            .map_err(|e| Error::query("paths", e))?;
        let views = rows.first().map_or(0, |r| r.total);
        let side = |s: u8| {
            rows.iter()
                .filter(|r| r.side == s)
                .map(|r| (r.path.clone(), r.views))
                .collect()
        };
        Ok(Around {
            views,
            came_from: side(0),
            went_to: side(1),
        })
    }
}

/// The most viewed pages in `[from, until)`, for picking one.
pub async fn top_pages(
    db: &Db,
    project: &str,
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<(String, u64)>, Error> {
    #[derive(Debug, Deserialize, clickhouse::Row)]
    struct Page {
        path: String,
        views: u64,
    }
    let pages: Vec<Page> = db
        .query(&db.sql(
            // uniqExact(event_id): a retried copy of an event not merged away yet counts once.
            "SELECT path, uniqExact(event_id) AS views FROM {db}.events
             WHERE project_id = {project:String} AND type = 'page_view' AND NOT is_bot
               AND timestamp >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
               AND timestamp < fromUnixTimestamp64Milli({until:Int64}, 'UTC')
             GROUP BY path ORDER BY views DESC, path LIMIT 20",
            &[],
        ))
        .param("project", project)
        .param("from", unix_ms(from))
        .param("until", unix_ms(until))
        .fetch_all()
        .await
        .map_err(|e| Error::query("top pages", e))?;
    Ok(pages.into_iter().map(|p| (p.path, p.views)).collect())
}
