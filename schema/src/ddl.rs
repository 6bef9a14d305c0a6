//! Table definitions as data, rendered to DDL for one server or for a cluster.
//!
//! One source for both deployments: on a single server a table is one `*MergeTree`; in cluster
//! mode it becomes a `Replicated*MergeTree` named `<table>_local` on every node plus a
//! `Distributed` table under the plain name, both created `ON CLUSTER`. Readers and writers use
//! the plain name either way.

/// Where the tables live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The database holding Spoor's tables. Must be a plain identifier.
    pub database: String,
    /// `Some(name)` renders cluster DDL for the ClickHouse cluster `name`.
    pub cluster: Option<String>,
}

impl Layout {
    pub fn single(database: impl Into<String>) -> Layout {
        Layout {
            database: database.into(),
            cluster: None,
        }
    }

    /// Checks that the names are plain identifiers, since they are spliced into DDL.
    pub fn validate(&self) -> Result<(), String> {
        if !is_identifier(&self.database) {
            return Err(format!(
                "database name {:?} must match [A-Za-z_][A-Za-z0-9_]*",
                self.database
            ));
        }
        if let Some(cluster) = &self.cluster
            && !is_identifier(cluster)
        {
            return Err(format!(
                "cluster name {cluster:?} must match [A-Za-z_][A-Za-z0-9_]*"
            ));
        }
        Ok(())
    }

    /// ` ON CLUSTER name` in cluster mode, empty otherwise.
    pub fn on_cluster(&self) -> String {
        match &self.cluster {
            Some(cluster) => format!(" ON CLUSTER {cluster}"),
            None => String::new(),
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: the only names Spoor splices into SQL.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    /// Shown to data teams by `DESCRIBE` and `system.columns`.
    pub comment: &'static str,
    /// `MATERIALIZED` expression: the server computes the column on insert; inserts leave it out.
    pub materialized: Option<&'static str>,
}

impl Column {
    /// The column's definition in `CREATE TABLE` and `ALTER TABLE … ADD COLUMN`.
    pub fn definition(&self) -> String {
        let materialized = self
            .materialized
            .map(|e| format!(" MATERIALIZED {e}"))
            .unwrap_or_default();
        format!(
            "`{}` {}{materialized} COMMENT '{}'",
            self.name,
            self.ty,
            escape(self.comment)
        )
    }
}

/// `col!(name, "Type", "comment")`, or `col!(name, "Type", materialized "expression", "comment")`.
#[macro_export]
macro_rules! col {
    ($name:ident, $ty:literal, $comment:literal) => {
        $crate::Column {
            name: stringify!($name),
            ty: $ty,
            comment: $comment,
            materialized: None,
        }
    };
    ($name:ident, $ty:literal, materialized $expr:literal, $comment:literal) => {
        $crate::Column {
            name: stringify!($name),
            ty: $ty,
            comment: $comment,
            materialized: Some($expr),
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    MergeTree,
    /// Rows with the same sorting key collapse on merge; readers use `FINAL` for exact counts.
    ReplacingMergeTree {
        version: Option<&'static str>,
    },
}

impl Engine {
    fn render(self, replicated: Option<(&str, &str)>) -> String {
        let (family, args) = match self {
            Engine::MergeTree => ("MergeTree", Vec::new()),
            Engine::ReplacingMergeTree { version } => {
                ("ReplacingMergeTree", version.into_iter().collect())
            }
        };
        match replicated {
            None => format!("{family}({})", args.join(", ")),
            Some((database, table)) => {
                let mut all = vec![
                    format!("'/clickhouse/tables/{{shard}}/{database}/{table}'"),
                    "'{replica}'".to_owned(),
                ];
                all.extend(args.iter().map(|a| a.to_string()));
                format!("Replicated{family}({})", all.join(", "))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub comment: &'static str,
    pub columns: &'static [Column],
    pub engine: Engine,
    pub partition_by: Option<&'static str>,
    pub order_by: &'static str,
    /// Expression that spreads rows over shards in cluster mode.
    pub sharding_key: &'static str,
    /// Table settings, e.g. `non_replicated_deduplication_window = 1000`.
    pub settings: &'static [&'static str],
}

impl Table {
    /// The names of the columns an insert writes (all but the materialized ones), comma-separated.
    pub fn insert_columns(&self) -> String {
        self.columns
            .iter()
            .filter(|c| c.materialized.is_none())
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `CREATE TABLE` statements for this layout: one on a single server, the replicated
    /// local table and the distributed table in cluster mode. `ttl` is a TTL expression such as
    /// `toDateTime(timestamp) + INTERVAL 365 DAY`.
    pub fn create_statements(&self, layout: &Layout, ttl: Option<&str>) -> Vec<String> {
        let db = &layout.database;
        let on_cluster = layout.on_cluster();
        let columns = self
            .columns
            .iter()
            .map(|c| format!("    {}", c.definition()))
            .collect::<Vec<_>>()
            .join(",\n");
        let local_name = match layout.cluster {
            Some(_) => format!("{}_local", self.name),
            None => self.name.to_owned(),
        };
        let engine = self.engine.render(
            layout
                .cluster
                .as_ref()
                .map(|_| (db.as_str(), local_name.as_str())),
        );
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS {db}.{local_name}{on_cluster}\n(\n{columns}\n)\nENGINE = {engine}\n"
        );
        if let Some(partition_by) = self.partition_by {
            sql += &format!("PARTITION BY {partition_by}\n");
        }
        sql += &format!("ORDER BY {}\n", self.order_by);
        if let Some(ttl) = ttl {
            sql += &format!("TTL {ttl}\n");
        }
        if !self.settings.is_empty() {
            sql += &format!("SETTINGS {}\n", self.settings.join(", "));
        }
        sql += &format!("COMMENT '{}'", escape(self.comment));
        let mut statements = vec![sql];
        if let Some(cluster) = &layout.cluster {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name}{on_cluster} AS {db}.{local_name}\nENGINE = Distributed({cluster}, {db}, {local_name}, {key})",
                name = self.name,
                key = self.sharding_key,
            ));
        }
        statements
    }

    /// The `DROP TABLE` statements that undo [`Table::create_statements`] (distributed table
    /// first in cluster mode). For derived tables whose layout a migration changes.
    pub fn drop_statements(&self, layout: &Layout) -> Vec<String> {
        let db = &layout.database;
        let on_cluster = layout.on_cluster();
        let mut statements = Vec::new();
        if layout.cluster.is_some() {
            statements.push(format!(
                "DROP TABLE IF EXISTS {db}.{}{on_cluster} SYNC",
                self.name
            ));
            statements.push(format!(
                "DROP TABLE IF EXISTS {db}.{}_local{on_cluster} SYNC",
                self.name
            ));
        } else {
            statements.push(format!("DROP TABLE IF EXISTS {db}.{} SYNC", self.name));
        }
        statements
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Table = Table {
        name: "things",
        comment: "Things' table",
        columns: &[
            col!(id, "UUID", "The id"),
            col!(at, "DateTime64(3, 'UTC')", "When"),
        ],
        engine: Engine::ReplacingMergeTree { version: None },
        partition_by: Some("toYYYYMM(at)"),
        order_by: "(toDate(at), id)",
        sharding_key: "cityHash64(id)",
        settings: &["non_replicated_deduplication_window = 1000"],
    };

    #[test]
    fn single_server_ddl() {
        let sql = T.create_statements(
            &Layout::single("spoor"),
            Some("toDateTime(at) + INTERVAL 30 DAY"),
        );
        assert_eq!(
            sql,
            vec![
                "CREATE TABLE IF NOT EXISTS spoor.things\n(\n    `id` UUID COMMENT 'The id',\n    `at` DateTime64(3, 'UTC') COMMENT 'When'\n)\nENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMM(at)\nORDER BY (toDate(at), id)\nTTL toDateTime(at) + INTERVAL 30 DAY\nSETTINGS non_replicated_deduplication_window = 1000\nCOMMENT 'Things\\' table'"
            ]
        );
    }

    #[test]
    fn cluster_ddl_is_replicated_local_plus_distributed() {
        let layout = Layout {
            database: "spoor".into(),
            cluster: Some("prod".into()),
        };
        let sql = T.create_statements(&layout, None);
        assert_eq!(sql.len(), 2);
        assert!(
            sql[0].starts_with("CREATE TABLE IF NOT EXISTS spoor.things_local ON CLUSTER prod\n"),
            "{}",
            sql[0]
        );
        assert!(
            sql[0].contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/spoor/things_local', '{replica}')\n"),
            "{}",
            sql[0]
        );
        assert_eq!(
            sql[1],
            "CREATE TABLE IF NOT EXISTS spoor.things ON CLUSTER prod AS spoor.things_local\nENGINE = Distributed(prod, spoor, things_local, cityHash64(id))"
        );
        // Dropped in the reverse order: the distributed table, then the replicated one.
        assert_eq!(
            T.drop_statements(&layout),
            [
                "DROP TABLE IF EXISTS spoor.things ON CLUSTER prod SYNC",
                "DROP TABLE IF EXISTS spoor.things_local ON CLUSTER prod SYNC"
            ]
        );
        assert_eq!(
            T.drop_statements(&Layout::single("spoor")),
            ["DROP TABLE IF EXISTS spoor.things SYNC"]
        );
    }

    #[test]
    fn identifiers() {
        for ok in ["spoor", "_x1", "Spoor_2"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1abc", "a-b", "a b", "x;DROP", "a`b", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
        let bad = Layout {
            database: "spoor".into(),
            cluster: Some("c'x".into()),
        };
        assert!(bad.validate().unwrap_err().contains("cluster name"));
    }
}
