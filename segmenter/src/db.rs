//! The segmenter's handle on ClickHouse: a client, the layout, and SQL templating.
//!
//! SQL text is written in this crate with `{db}` (the database) and `{name}` markers for
//! fragments that this crate builds itself (filters, period expressions). Values never go into
//! the text: they are server-side parameters `{name:Type}` bound with [`clickhouse::query::Query::param`].

use clickhouse::Client;
use spoor_schema::{Layout, Table};

use crate::Error;

/// Settings every query runs with.
const SETTINGS: &[(&str, &str)] = &[
    // Deletes of re-aggregated days are visible to the insert that follows.
    ("lightweight_deletes_sync", "2"),
    // A DELETE writes a patch part with the deleted rows' mask (cost ∝ rows deleted) instead
    // of a mutation that rewrites every part's mask (cost ∝ table); see
    // `spoor_schema::segmenter::BLOCK_COLUMNS`. Needs ClickHouse 25.7 or newer.
    ("lightweight_delete_mode", "lightweight_update"),
    ("mutations_sync", "2"),
    ("join_use_nulls", "0"),
    ("async_insert", "0"),
];

#[derive(Clone)]
pub struct Db {
    client: Client,
    layout: Layout,
}

impl Db {
    /// A handle on `layout.database` at `url`. Checks the layout's names.
    pub fn new(url: &str, layout: Layout) -> Result<Db, Error> {
        layout.validate().map_err(Error::Config)?;
        let mut client = Client::default().with_url(url);
        for (name, value) in SETTINGS {
            client = client.with_setting(*name, *value);
        }
        if layout.cluster.is_some() {
            // Tables are sharded by different keys: subqueries and joins must see every shard.
            // Each step reads what the previous one wrote: an insert through a Distributed
            // table must have reached the shards when it returns, not be queued in background.
            client = client
                .with_setting("distributed_product_mode", "global")
                .with_setting("prefer_global_in_and_join", "1")
                .with_setting("distributed_foreground_insert", "1");
        }
        Ok(Db { client, layout })
    }

    /// The same handle, its queries stopped by the server after `seconds`
    /// (`max_execution_time`): for questions a person waits for.
    pub fn time_limited(&self, seconds: u32) -> Db {
        Db {
            client: self
                .client
                .clone()
                .with_setting("max_execution_time", seconds.to_string()),
            layout: self.layout.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn database(&self) -> &str {
        &self.layout.database
    }

    /// Checks that the server answers, with a message that says where we looked.
    pub async fn ping(&self) -> Result<(), Error> {
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map(|_| ())
            .map_err(|source| Error::Unreachable {
                source: Box::new(source),
            })
    }

    /// Replaces `{db}` and the given `{marker}`s in `template`.
    pub fn sql(&self, template: &str, fragments: &[(&str, &str)]) -> String {
        let mut sql = template.replace("{db}", &self.layout.database);
        for (marker, text) in fragments {
            sql = sql.replace(&format!("{{{marker}}}"), text);
        }
        debug_assert!(!has_unfilled_marker(&sql), "unfilled marker in SQL: {sql}");
        sql
    }

    /// A query for `sql` (already templated). `?` has no meaning here: use parameters.
    pub fn query(&self, sql: &str) -> clickhouse::query::Query {
        self.client.query(sql)
    }

    /// `DELETE FROM` the table that stores `table`'s rows (the local table in cluster mode).
    pub fn delete_where(&self, table: &Table, condition: &str) -> String {
        format!(
            "DELETE FROM {}.{}{} WHERE {condition}",
            self.layout.database,
            spoor_schema::segmenter::storage_name(table, &self.layout),
            self.layout.on_cluster()
        )
    }

    /// `TRUNCATE` the table that stores `table`'s rows.
    pub fn truncate(&self, table: &Table) -> String {
        format!(
            "TRUNCATE TABLE IF EXISTS {}.{}{}",
            self.layout.database,
            spoor_schema::segmenter::storage_name(table, &self.layout),
            self.layout.on_cluster()
        )
    }

    /// Replaces all of `table`'s rows with `from`'s (tables without a partition key), at once.
    pub fn replace_all(&self, table: &Table, from: &Table) -> String {
        format!(
            "ALTER TABLE {db}.{}{} REPLACE PARTITION tuple() FROM {db}.{}",
            spoor_schema::segmenter::storage_name(table, &self.layout),
            self.layout.on_cluster(),
            spoor_schema::segmenter::storage_name(from, &self.layout),
            db = self.layout.database,
        )
    }

    /// Replaces one partition (a numeric partition value) of `table` with `from`'s, at once.
    pub fn replace_partition(&self, table: &Table, from: &Table, partition: u64) -> String {
        format!(
            "ALTER TABLE {db}.{}{} REPLACE PARTITION {partition} FROM {db}.{}",
            spoor_schema::segmenter::storage_name(table, &self.layout),
            self.layout.on_cluster(),
            spoor_schema::segmenter::storage_name(from, &self.layout),
            db = self.layout.database,
        )
    }

    /// A query for a `REPLACE PARTITION` statement that may replace from an empty source (no
    /// rows left, or a shard without any): newer servers refuse that unless told to; older ones
    /// do it without the setting, which they would not know.
    pub async fn replacing(&self, sql: &str) -> Result<clickhouse::query::Query, Error> {
        let has_setting: u64 = self
            .query("SELECT count() FROM system.settings WHERE name = 'allow_replace_partition_from_empty_source'")
            .fetch_one()
            .await
            .map_err(|e| Error::query("read server settings", e))?;
        let query = self.query(sql);
        Ok(if has_setting > 0 {
            query.with_setting("allow_replace_partition_from_empty_source", "1")
        } else {
            query
        })
    }

    /// Runs a statement, naming `step` in the error.
    pub async fn execute(
        &self,
        step: &'static str,
        query: clickhouse::query::Query,
    ) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let result = query
            .execute()
            .await
            .map_err(|source| Error::query(step, source));
        tracing::debug!(
            step,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Statement finished"
        );
        result
    }
}

/// `{word}` with no colon: a template marker nobody filled (parameters are `{name:Type}`).
fn has_unfilled_marker(sql: &str) -> bool {
    let mut rest = sql;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return false;
        };
        let inner = &after[..end];
        if !inner.is_empty()
            && !inner.contains(':')
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !matches!(inner, "shard" | "replica")
        {
            return true;
        }
        rest = &after[end..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templating_fills_markers_and_keeps_parameters() {
        let db = Db::new("http://127.0.0.1:1", Layout::single("spoor")).unwrap();
        let sql = db.sql(
            "SELECT count() FROM {db}.events WHERE {filter} AND day = {day:Date}",
            &[("filter", "1")],
        );
        assert_eq!(
            sql,
            "SELECT count() FROM spoor.events WHERE 1 AND day = {day:Date}"
        );
        assert!(has_unfilled_marker("SELECT {oops}"));
        assert!(!has_unfilled_marker("SELECT {p:UInt8}, '{}'"));
    }

    #[test]
    fn cluster_mode_alters_the_local_tables_on_cluster() {
        use spoor_schema::segmenter::{ACTIVITY_DAILY, PROFILES_DYNAMIC};
        let cluster = Layout {
            database: "spoor".into(),
            cluster: Some("prod".into()),
        };
        let db = Db::new("http://127.0.0.1:1", cluster).unwrap();
        assert_eq!(
            db.delete_where(&ACTIVITY_DAILY, "has({days:Array(Date)}, day)"),
            "DELETE FROM spoor.activity_daily_local ON CLUSTER prod WHERE has({days:Array(Date)}, day)"
        );
        assert_eq!(
            db.truncate(&ACTIVITY_DAILY),
            "TRUNCATE TABLE IF EXISTS spoor.activity_daily_local ON CLUSTER prod"
        );
        assert_eq!(
            db.replace_all(
                &PROFILES_DYNAMIC,
                &spoor_schema::segmenter::PROFILES_DYNAMIC_NEXT
            ),
            "ALTER TABLE spoor.profiles_dynamic_local ON CLUSTER prod REPLACE PARTITION tuple() FROM spoor.profiles_dynamic_next_local"
        );
        assert_eq!(
            db.replace_partition(
                &ACTIVITY_DAILY,
                &spoor_schema::segmenter::ACTIVITY_DAILY_NEXT,
                20_261_121
            ),
            "ALTER TABLE spoor.activity_daily_local ON CLUSTER prod REPLACE PARTITION 20261121 FROM spoor.activity_daily_next_local"
        );
        let single = Db::new("http://127.0.0.1:1", Layout::single("spoor")).unwrap();
        assert_eq!(
            single.truncate(&ACTIVITY_DAILY),
            "TRUNCATE TABLE IF EXISTS spoor.activity_daily"
        );
    }

    #[test]
    fn bad_database_names_are_refused() {
        let err = Db::new("http://x", Layout::single("a;DROP"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("database name"), "{err}");
    }
}
