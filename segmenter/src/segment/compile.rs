//! Compiles a validated [`Rule`] to a ClickHouse `SELECT project_id, person_id`.
//!
//! Safety: the SQL text is built only from this file's constants, the whitelisted field SQL in
//! [`super::rule::FIELDS`] and parameter names `p0, p1, …` numbered in rule order. Every value
//! from the definition — strings, numbers, event names, trait names, lists — is a server-side
//! parameter. So the text depends only on the rule's *shape* (kinds, fields, operators), never
//! on its values; the property tests check exactly that.

use serde::Serialize;

use super::rule::{EventKey, FieldType, Literal, Op, Rule};

/// A parameter value, bound with `Query::param`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Param {
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Bool(bool),
    IntList(Vec<i64>),
    FloatList(Vec<f64>),
    TextList(Vec<String>),
}

/// Compiled SQL and its parameters. The SQL uses `{db}` for the database, `{scope}` for a
/// filter on the people (`1` for everyone, else a test of `person_key`, the 128-bit hash of
/// `(project_id, person_id)`; it narrows the static-profile join and every behavioural
/// subquery, not only the outer rows) and `{as_of:Int64}` for the as-of time
/// in ms, which the caller binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<(String, Param)>,
}

impl Compiled {
    /// The SQL for everyone (`candidates` = `None`) or for the people a query of
    /// `(project_id, person_id)` returns. `{db}` is left for [`crate::Db::sql`].
    pub fn scoped(&self, candidates: Option<&str>) -> String {
        match candidates {
            None => self.sql.replace("{scope_d}", "1").replace("{scope}", "1"),
            // Led by a one-column test, several times cheaper per row than the tuple `IN`.
            Some(c) => self
                .sql
                .replace(
                    "{scope_d}",
                    &format!(
                        "d.person_key IN (SELECT {key} FROM ({c}))",
                        key = candidate_key()
                    ),
                )
                .replace(
                    "{scope}",
                    &format!(
                        "person_key IN (SELECT {key} FROM ({c}))",
                        key = candidate_key()
                    ),
                ),
        }
    }

    pub fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        for (name, value) in &self.params {
            query = query.param(name, value);
        }
        query
    }
}

/// Compiles `rule` for the people of `project` (all projects when empty).
pub fn compile(rule: &Rule, project: &str) -> Compiled {
    let mut c = Compiler {
        params: Vec::new(),
        uses_static: false,
    };
    let project_filter = if project.is_empty() {
        "1".to_owned()
    } else {
        let p = c.param(Param::Text(project.to_owned()), "String");
        format!("d.project_id = {p}")
    };
    let condition = c.rule(rule);
    // The static profile is joined only when a field of it is tested (a structural choice).
    let join = if c.uses_static {
        "\nLEFT JOIN (SELECT * FROM {db}.profiles_static WHERE {scope}) AS s\n    ON s.project_id = d.project_id AND s.person_id = d.person_id"
    } else {
        ""
    };
    let sql = format!(
        "SELECT d.project_id AS project_id, d.person_id AS person_id
FROM {{db}}.profiles_dynamic AS d{join}
WHERE {{scope_d}}
  AND {project_filter}
  AND ({condition})"
    );
    Compiled {
        sql,
        params: c.params,
    }
}

/// The as-of day, in SQL.
const TODAY: &str = "toDate(fromUnixTimestamp64Milli({as_of:Int64}, 'UTC'))";

/// The person key of a candidate row (`project_id`, `person_id`).
fn candidate_key() -> String {
    spoor_schema::segmenter::person_key_of("project_id", "person_id")
}

struct Compiler {
    params: Vec<(String, Param)>,
    uses_static: bool,
}

impl Compiler {
    /// Adds a parameter and returns its placeholder `{pN:Type}`.
    fn param(&mut self, value: Param, ty: &str) -> String {
        let name = format!("p{}", self.params.len());
        let placeholder = format!("{{{name}:{ty}}}");
        self.params.push((name, value));
        placeholder
    }

    fn rule(&mut self, rule: &Rule) -> String {
        match rule {
            Rule::All(rules) => self.join(rules, " AND "),
            Rule::Any(rules) => self.join(rules, " OR "),
            Rule::Not(inner) => format!("NOT ({})", self.rule(inner)),
            Rule::Field {
                field,
                trait_key,
                op,
                value,
            } => {
                self.uses_static |= field.sql.contains("s.");
                let expr = match trait_key {
                    Some(key) => {
                        let k = self.param(Param::Text(key.clone()), "String");
                        format!(
                            "if(JSONType(s.traits, {k}) = 'String', JSONExtractString(s.traits, {k}), JSONExtractRaw(s.traits, {k}))"
                        )
                    }
                    None => field.sql.to_owned(),
                };
                self.field(&expr, field.ty, *op, value)
            }
            Rule::Did {
                event,
                at_least,
                at_most,
                within_days,
            } => {
                let mut parts = Vec::new();
                if let Some(n) = at_least {
                    let window = self.window(*within_days);
                    let k = self.event(event);
                    let n = self.param(Param::UInt(*n), "UInt64");
                    parts.push(format!(
                        "d.person_key IN (SELECT person_key FROM {{db}}.activity_daily WHERE {window} AND {{scope}} GROUP BY person_key HAVING sum({k}) >= {n})"
                    ));
                }
                if let Some(n) = at_most {
                    let window = self.window(*within_days);
                    let k = self.event(event);
                    let n = self.param(Param::UInt(*n), "UInt64");
                    parts.push(format!(
                        "d.person_key NOT IN (SELECT person_key FROM {{db}}.activity_daily WHERE {window} AND {{scope}} GROUP BY person_key HAVING sum({k}) > {n})"
                    ));
                }
                format!("({})", parts.join(" AND "))
            }
            Rule::DidNot { event, within_days } => {
                let window = self.window(*within_days);
                let k = self.event(event);
                format!(
                    "d.person_key NOT IN (SELECT person_key FROM {{db}}.activity_daily WHERE {window} AND {{scope}} AND {k} > 0)"
                )
            }
            Rule::FirstDid { event, within_days } => {
                let k = self.event(event);
                let d = self.param(Param::UInt(u64::from(*within_days)), "UInt32");
                format!(
                    "d.person_key IN (SELECT person_key FROM {{db}}.activity_daily WHERE day <= {TODAY} AND {k} > 0 AND {{scope}} GROUP BY person_key HAVING min(day) > {TODAY} - {d})"
                )
            }
            Rule::Searched { term, within_days } => {
                let window = self.window(*within_days);
                let t = self.param(Param::Text(term.clone()), "String");
                format!(
                    "d.person_key IN (SELECT person_key FROM {{db}}.activity_daily WHERE {window} AND {{scope}} AND arrayExists(q -> positionCaseInsensitiveUTF8(q, {t}) > 0, search_terms))"
                )
            }
            Rule::Visited {
                prefix,
                within_days,
            } => {
                let window = self.window(*within_days);
                let t = self.param(Param::Text(prefix.clone()), "String");
                format!(
                    "d.person_key IN (SELECT person_key FROM {{db}}.activity_daily WHERE {window} AND {{scope}} AND arrayExists(x -> startsWith(x, {t}), paths))"
                )
            }
        }
    }

    fn join(&mut self, rules: &[Rule], with: &str) -> String {
        let parts: Vec<String> = rules
            .iter()
            .map(|r| format!("({})", self.rule(r)))
            .collect();
        parts.join(with)
    }

    /// The count of `event` on an `activity_daily` row: a whitelisted column for a type, the
    /// `event_counts` entry (a parameter) for a track name.
    fn event(&mut self, event: &EventKey) -> String {
        match event {
            EventKey::Type(column) => column.to_string(),
            EventKey::Track(name) => {
                let p = self.param(Param::Text(name.clone()), "String");
                format!("event_counts[{p}]")
            }
        }
    }

    /// The days of `within_days` up to the as-of day (all history when `None`).
    fn window(&mut self, within_days: Option<u32>) -> String {
        match within_days {
            Some(days) => {
                let d = self.param(Param::UInt(u64::from(days)), "UInt32");
                format!("day <= {TODAY} AND day > {TODAY} - {d}")
            }
            None => format!("day <= {TODAY}"),
        }
    }

    fn field(&mut self, expr: &str, ty: FieldType, op: Op, value: &Literal) -> String {
        let scalar_type = match ty {
            FieldType::Int => "Int64",
            FieldType::Float => "Float64",
            FieldType::Text | FieldType::Stage => "String",
            FieldType::Bool => "Bool",
            FieldType::Time => "Int64",
        };
        let value_sql = |c: &mut Compiler, value: &Literal| -> String {
            match value {
                Literal::Int(v) => c.param(Param::Int(*v), scalar_type),
                Literal::Float(v) => c.param(Param::Float(*v), scalar_type),
                Literal::Text(v) => c.param(Param::Text(v.clone()), scalar_type),
                Literal::Bool(v) => c.param(Param::Bool(*v), scalar_type),
                Literal::Time(ms) => {
                    let p = c.param(Param::Int(*ms), "Int64");
                    format!("fromUnixTimestamp64Milli({p}, 'UTC')")
                }
                Literal::Days(d) => c.param(Param::UInt(u64::from(*d)), "UInt32"),
                Literal::IntList(v) => c.param(Param::IntList(v.clone()), "Array(Int64)"),
                Literal::FloatList(v) => c.param(Param::FloatList(v.clone()), "Array(Float64)"),
                Literal::TextList(v) => c.param(Param::TextList(v.clone()), "Array(String)"),
                Literal::IntRange(a, b) => {
                    let a = c.param(Param::Int(*a), "Int64");
                    let b = c.param(Param::Int(*b), "Int64");
                    format!("{a} AND {b}")
                }
                Literal::FloatRange(a, b) => {
                    let a = c.param(Param::Float(*a), "Float64");
                    let b = c.param(Param::Float(*b), "Float64");
                    format!("{a} AND {b}")
                }
            }
        };
        let v = value_sql(self, value);
        let as_of = "fromUnixTimestamp64Milli({as_of:Int64}, 'UTC')";
        match op {
            Op::Eq => format!("{expr} = {v}"),
            Op::Ne => format!("{expr} != {v}"),
            Op::Gt => format!("{expr} > {v}"),
            Op::Gte => format!("{expr} >= {v}"),
            Op::Lt => format!("{expr} < {v}"),
            Op::Lte => format!("{expr} <= {v}"),
            Op::Between => format!("{expr} BETWEEN {v}"),
            Op::In => format!("has({v}, {expr})"),
            Op::NotIn => format!("NOT has({v}, {expr})"),
            Op::Contains => format!("positionCaseInsensitiveUTF8({expr}, {v}) > 0"),
            Op::StartsWith => format!("startsWith({expr}, {v})"),
            Op::Before => format!("{expr} < {v}"),
            Op::After => format!("{expr} > {v}"),
            Op::WithinDays => format!("{expr} >= {as_of} - toIntervalDay({v})"),
            Op::NotWithinDays => {
                format!("NOT ifNull({expr} >= {as_of} - toIntervalDay({v}), false)")
            }
        }
    }
}
