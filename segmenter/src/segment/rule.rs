//! Segment definitions as written in TOML or JSON, and their validation into typed rules.
//!
//! A rule is a table with exactly one of these keys:
//!
//! * `all = [rules]`, `any = [rules]`, `not = rule`
//! * `field = "orders_total", op = "gte", value = 3` (a whitelisted profile field, see [`FIELDS`])
//! * `did = "order_completed", at_least = 2, at_most = 5, within_days = 30`
//! * `did_not = "page_view", within_days = 30`
//! * `first_did = "member_signup", within_days = 14`
//! * `searched = "shoes", within_days = 30` (case-insensitive substring of a search query)
//! * `visited = "/shoes", within_days = 7` (path prefix of a page view)
//!
//! An event is named by its type (`page_view`, `search`, …) or, for `track` events, by its
//! name (`order_completed`). `within_days = D` means the last D UTC days up to the run's as-of
//! day, that day included; without it, all history.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::RuleError;

/// Most nested levels of all/any/not.
pub const MAX_DEPTH: usize = 8;
/// Most predicates in one rule.
pub const MAX_PREDICATES: usize = 64;
/// Largest count in `at_least` / `at_most`.
pub const MAX_COUNT: u64 = 1_000_000_000;
/// Largest `within_days`.
pub const MAX_DAYS: u64 = 3650;
/// Longest text value.
pub const MAX_TEXT: usize = 500;
/// Most values in an `in` list.
pub const MAX_LIST: usize = 1000;

/// A segment definition file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// `[a-z0-9_-]`, 1 to 64 characters.
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: Kind,
    /// The project whose people the segment selects; empty for all projects.
    #[serde(default)]
    pub project: String,
    /// The rule. A static segment may instead list its members (`members` or `--ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RawRule>,
    /// Person ids of a static segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Recomputed on every run.
    #[default]
    Dynamic,
    /// Frozen when added.
    Static,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dynamic => "dynamic",
            Kind::Static => "static",
        }
    }
}

/// Definition file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// JSON for `.json` files, TOML otherwise.
    pub fn from_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

impl Definition {
    /// Parses and validates a definition.
    pub fn parse(text: &str, format: Format) -> Result<Definition, RuleError> {
        let mut definition: Definition = match format {
            Format::Toml => toml::from_str(text)
                .map_err(|e| invalid(format!("not a valid segment definition: {e}")))?,
            Format::Json => serde_json::from_str(text)
                .map_err(|e| invalid(format!("not a valid segment definition: {e}")))?,
        };
        if definition.name.is_empty() {
            definition.name.clone_from(&definition.id);
        }
        definition.validate()?;
        Ok(definition)
    }

    /// Checks everything [`Definition::parse`] checks.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(invalid(format!(
                "segment id {:?} must be 1 to 64 characters of a-z, 0-9, _ and -",
                self.id
            )));
        }
        check_text("name", &self.name)?;
        check_text("description", &self.description)?;
        check_text("project", &self.project)?;
        match (&self.rule, self.kind, self.members.is_empty()) {
            (None, Kind::Dynamic, _) => {
                return Err(invalid("a dynamic segment needs a rule".into()));
            }
            (Some(_), _, false) => {
                return Err(invalid(
                    "a segment has either a rule or a members list, not both".into(),
                ));
            }
            _ => {}
        }
        if !self.members.is_empty() && self.project.is_empty() {
            return Err(invalid(
                "a static segment with a members list needs a project".into(),
            ));
        }
        for member in &self.members {
            check_text("members", member)?;
        }
        if let Some(rule) = &self.rule {
            rule.validate()?;
        }
        Ok(())
    }
}

/// A rule exactly as written. [`RawRule::validate`] turns it into a [`Rule`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<RawRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<RawRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<RawRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_not: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_did: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searched: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visited: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u64>,
}

/// The type of a profile field, which decides its operators and parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int,
    Float,
    Text,
    Bool,
    Time,
    /// Text restricted to the lifecycle stages.
    Stage,
}

/// A whitelisted profile field: its name in rules and its SQL over the profile join
/// (`d` = profiles_dynamic, `s` = profiles_static).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub sql: &'static str,
    pub ty: FieldType,
}

const fn f(name: &'static str, sql: &'static str, ty: FieldType) -> Field {
    Field { name, sql, ty }
}

/// Every profile field a rule may test.
pub const FIELDS: &[Field] = &[
    f("is_identified", "d.is_identified", FieldType::Bool),
    f("first_seen_at", "d.first_seen_at", FieldType::Time),
    f("last_seen_at", "d.last_seen_at", FieldType::Time),
    f(
        "days_since_last_seen",
        "d.days_since_last_seen",
        FieldType::Int,
    ),
    f("active_days_7d", "d.active_days_7d", FieldType::Int),
    f("active_days_30d", "d.active_days_30d", FieldType::Int),
    f("sessions_7d", "d.sessions_7d", FieldType::Int),
    f("sessions_30d", "d.sessions_30d", FieldType::Int),
    f("sessions_total", "d.sessions_total", FieldType::Int),
    f("page_views_total", "d.page_views_total", FieldType::Int),
    f("page_views_30d", "d.page_views_30d", FieldType::Int),
    f(
        "avg_session_seconds",
        "d.avg_session_seconds",
        FieldType::Float,
    ),
    f(
        "avg_engaged_seconds",
        "d.avg_engaged_seconds",
        FieldType::Float,
    ),
    f("orders_total", "d.orders_total", FieldType::Int),
    f("revenue_total", "d.revenue_total", FieldType::Float),
    f("last_order_at", "d.last_order_at", FieldType::Time),
    f("rfm_recency", "d.rfm_recency", FieldType::Int),
    f("rfm_frequency", "d.rfm_frequency", FieldType::Int),
    f("rfm_monetary", "d.rfm_monetary", FieldType::Int),
    f("engagement_score", "d.engagement_score", FieldType::Int),
    f("lifecycle_stage", "d.lifecycle_stage", FieldType::Stage),
    f("signup_at", "s.signup_at", FieldType::Time),
    f("is_member", "(s.member_id != '')", FieldType::Bool),
    f("member_id", "s.member_id", FieldType::Text),
    f("level", "s.level", FieldType::Text),
    f("first_path", "s.first_path", FieldType::Text),
    f(
        "first_referrer_domain",
        "s.first_referrer_domain",
        FieldType::Text,
    ),
    f(
        "first_referrer_class",
        "s.first_referrer_class",
        FieldType::Text,
    ),
    f("first_utm_source", "s.first_utm_source", FieldType::Text),
    f("first_utm_medium", "s.first_utm_medium", FieldType::Text),
    f(
        "first_utm_campaign",
        "s.first_utm_campaign",
        FieldType::Text,
    ),
    f(
        "first_device_class",
        "s.first_device_class",
        FieldType::Text,
    ),
    f("first_browser", "s.first_browser", FieldType::Text),
    f("first_os", "s.first_os", FieldType::Text),
];

/// The lifecycle stages (values of `lifecycle_stage`).
pub const STAGES: &[&str] = &["new", "active", "returning", "loyal", "at_risk", "churned"];

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    In,
    NotIn,
    Contains,
    StartsWith,
    Before,
    After,
    WithinDays,
    NotWithinDays,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "eq" | "=" | "==" => Op::Eq,
            "ne" | "!=" => Op::Ne,
            "gt" | ">" => Op::Gt,
            "gte" | ">=" => Op::Gte,
            "lt" | "<" => Op::Lt,
            "lte" | "<=" => Op::Lte,
            "between" => Op::Between,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            "before" => Op::Before,
            "after" => Op::After,
            "within_days" => Op::WithinDays,
            "not_within_days" => Op::NotWithinDays,
            _ => return None,
        })
    }

    /// The operators a field type accepts.
    pub fn allowed(ty: FieldType) -> &'static [&'static str] {
        match ty {
            FieldType::Int | FieldType::Float => &[
                "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in",
            ],
            FieldType::Text => &["eq", "ne", "in", "not_in", "contains", "starts_with"],
            FieldType::Stage => &["eq", "ne", "in", "not_in"],
            FieldType::Bool => &["eq", "ne"],
            FieldType::Time => &["before", "after", "within_days", "not_within_days"],
        }
    }
}

/// A validated value of a profile predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// ms since the epoch.
    Time(i64),
    Days(u32),
    IntRange(i64, i64),
    FloatRange(f64, f64),
    IntList(Vec<i64>),
    FloatList(Vec<f64>),
    TextList(Vec<String>),
}

/// An event kind: a type, counted in its own `activity_daily` column (from a whitelist), or a
/// `track` event's name, counted in `activity_daily.event_counts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKey {
    /// The `activity_daily` column counting this type.
    Type(&'static str),
    Track(String),
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Not(Box<Rule>),
    Field {
        field: Field,
        trait_key: Option<String>,
        op: Op,
        value: Literal,
    },
    Did {
        event: EventKey,
        at_least: Option<u64>,
        at_most: Option<u64>,
        within_days: Option<u32>,
    },
    DidNot {
        event: EventKey,
        within_days: Option<u32>,
    },
    FirstDid {
        event: EventKey,
        within_days: u32,
    },
    Searched {
        term: String,
        within_days: Option<u32>,
    },
    Visited {
        prefix: String,
        within_days: Option<u32>,
    },
}

fn invalid(message: String) -> RuleError {
    RuleError::Invalid(message)
}

fn check_text(what: &str, text: &str) -> Result<(), RuleError> {
    if text.len() > MAX_TEXT {
        return Err(invalid(format!("{what} is longer than {MAX_TEXT} bytes")));
    }
    if text.contains('\0') {
        return Err(invalid(format!("{what} must not contain NUL characters")));
    }
    Ok(())
}

/// Event types and the `activity_daily` column that counts each.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("page_view", "page_views"),
    ("page_leave", "page_leaves"),
    ("click", "clicks"),
    ("search", "searches"),
    ("session_start", "session_starts"),
    ("identify", "identifies"),
    ("track", "tracks"),
];

/// Track events of the conventions that `activity_daily` counts in a column of their own:
/// reading it is cheaper than looking the name up in `event_counts` (a map), and the counts
/// are the same.
const TRACK_COLUMNS: &[(&str, &str)] = &[
    ("order_completed", "orders"),
    ("member_signup", "signups"),
    ("member_signin", "signins"),
];

/// The `activity_daily` column that counts an event type or convention event (`page_view` →
/// `page_views`, `order_completed` → `orders`); `None` for other `track` names, which
/// `event_counts` counts.
pub fn event_column(name: &str) -> Option<&'static str> {
    EVENT_TYPES
        .iter()
        .chain(TRACK_COLUMNS)
        .find(|(n, _)| *n == name)
        .map(|(_, column)| *column)
}

fn event_key(text: &str) -> Result<EventKey, RuleError> {
    if text.is_empty()
        || text.len() > 200
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | ' ' | '/'))
    {
        return Err(invalid(format!(
            "event {text:?} must be an event type (page_view, search, …) or a track event name of letters, digits, _ - . : / and spaces"
        )));
    }
    match EVENT_TYPES
        .iter()
        .chain(TRACK_COLUMNS)
        .find(|(name, _)| *name == text)
    {
        Some((_, column)) => Ok(EventKey::Type(column)),
        None => Ok(EventKey::Track(text.to_owned())),
    }
}

fn days(value: Option<u64>) -> Result<Option<u32>, RuleError> {
    match value {
        None => Ok(None),
        Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(Some(d as u32)),
        Some(d) => Err(invalid(format!(
            "within_days must be between 1 and {MAX_DAYS}, not {d}"
        ))),
    }
}

fn count(what: &str, value: Option<u64>) -> Result<Option<u64>, RuleError> {
    match value {
        Some(n) if n > MAX_COUNT => Err(invalid(format!(
            "{what} must be at most {MAX_COUNT}, not {n}"
        ))),
        other => Ok(other),
    }
}

impl RawRule {
    /// Validates the rule and everything in it.
    pub fn validate(&self) -> Result<Rule, RuleError> {
        let mut predicates = 0;
        self.validate_at(0, &mut predicates)
    }

    fn keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut key = |present: bool, name| {
            if present {
                keys.push(name)
            }
        };
        key(self.all.is_some(), "all");
        key(self.any.is_some(), "any");
        key(self.not.is_some(), "not");
        key(self.field.is_some(), "field");
        key(self.did.is_some(), "did");
        key(self.did_not.is_some(), "did_not");
        key(self.first_did.is_some(), "first_did");
        key(self.searched.is_some(), "searched");
        key(self.visited.is_some(), "visited");
        keys
    }

    fn validate_at(&self, depth: usize, predicates: &mut usize) -> Result<Rule, RuleError> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "rules nest deeper than {MAX_DEPTH} levels"
            )));
        }
        let keys = self.keys();
        let [kind] = keys[..] else {
            return Err(invalid(format!(
                "each rule needs exactly one of all, any, not, field, did, did_not, first_did, searched, visited; found {}",
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(", ")
                }
            )));
        };
        let extra = |allowed: &[&str]| -> Result<(), RuleError> {
            let present = [
                ("op", self.op.is_some()),
                ("value", self.value.is_some()),
                ("at_least", self.at_least.is_some()),
                ("at_most", self.at_most.is_some()),
                ("within_days", self.within_days.is_some()),
            ];
            for (name, is) in present {
                if is && !allowed.contains(&name) {
                    return Err(invalid(format!(
                        "`{name}` has no meaning in a `{kind}` rule"
                    )));
                }
            }
            Ok(())
        };
        if !matches!(kind, "all" | "any" | "not") {
            *predicates += 1;
            if *predicates > MAX_PREDICATES {
                return Err(invalid(format!(
                    "a rule has at most {MAX_PREDICATES} predicates"
                )));
            }
        }
        let list = |rules: &Vec<RawRule>, predicates: &mut usize| -> Result<Vec<Rule>, RuleError> {
            if rules.is_empty() {
                return Err(invalid(format!("`{kind}` needs at least one rule")));
            }
            rules
                .iter()
                .map(|r| r.validate_at(depth + 1, predicates))
                .collect()
        };
        Ok(match kind {
            "all" => {
                extra(&[])?;
                Rule::All(list(self.all.as_ref().unwrap_or(&Vec::new()), predicates)?)
            }
            "any" => {
                extra(&[])?;
                Rule::Any(list(self.any.as_ref().unwrap_or(&Vec::new()), predicates)?)
            }
            "not" => {
                extra(&[])?;
                let inner = self.not.as_deref().cloned().unwrap_or_default();
                Rule::Not(Box::new(inner.validate_at(depth + 1, predicates)?))
            }
            "field" => {
                extra(&["op", "value"])?;
                self.field_rule()?
            }
            "did" => {
                extra(&["at_least", "at_most", "within_days"])?;
                let at_least = count("at_least", self.at_least)?;
                let at_most = count("at_most", self.at_most)?;
                if let (Some(lo), Some(hi)) = (at_least, at_most)
                    && lo > hi
                {
                    return Err(invalid(format!(
                        "at_least ({lo}) is greater than at_most ({hi}): nobody can match"
                    )));
                }
                Rule::Did {
                    event: event_key(self.did.as_deref().unwrap_or_default())?,
                    at_least: if at_most.is_none() {
                        Some(at_least.unwrap_or(1))
                    } else {
                        at_least
                    },
                    at_most,
                    within_days: days(self.within_days)?,
                }
            }
            "did_not" => {
                extra(&["within_days"])?;
                Rule::DidNot {
                    event: event_key(self.did_not.as_deref().unwrap_or_default())?,
                    within_days: days(self.within_days)?,
                }
            }
            "first_did" => {
                extra(&["within_days"])?;
                Rule::FirstDid {
                    event: event_key(self.first_did.as_deref().unwrap_or_default())?,
                    within_days: days(self.within_days)?.ok_or_else(|| {
                        invalid(
                            "`first_did` needs within_days (first did it within the last D days)"
                                .into(),
                        )
                    })?,
                }
            }
            "searched" => {
                extra(&["within_days"])?;
                let term = self.searched.clone().unwrap_or_default();
                check_text("searched", &term)?;
                if term.trim().is_empty() {
                    return Err(invalid("`searched` needs a non-empty term".into()));
                }
                Rule::Searched {
                    term: term.trim().to_lowercase(),
                    within_days: days(self.within_days)?,
                }
            }
            _ => {
                extra(&["within_days"])?;
                let prefix = self.visited.clone().unwrap_or_default();
                check_text("visited", &prefix)?;
                if prefix.is_empty() {
                    return Err(invalid(
                        "`visited` needs a path prefix such as \"/shoes\"".into(),
                    ));
                }
                Rule::Visited {
                    prefix,
                    within_days: days(self.within_days)?,
                }
            }
        })
    }

    fn field_rule(&self) -> Result<Rule, RuleError> {
        let name = self.field.as_deref().unwrap_or_default();
        let (field, trait_key) = match name.strip_prefix("traits.") {
            Some(key) => {
                if key.is_empty()
                    || key.len() > 64
                    || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(invalid(format!(
                        "trait name {key:?} must be 1 to 64 letters, digits or _"
                    )));
                }
                (
                    Field {
                        name: "traits",
                        sql: "s.traits",
                        ty: FieldType::Text,
                    },
                    Some(key.to_owned()),
                )
            }
            None => {
                let field = FIELDS.iter().find(|f| f.name == name).ok_or_else(|| {
                    invalid(format!(
                        "unknown profile field {name:?}; known fields: {}, and traits.<name>",
                        FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                (*field, None)
            }
        };
        let op_text = self
            .op
            .as_deref()
            .ok_or_else(|| invalid(format!("field {name:?} needs an `op`")))?;
        let op = Op::parse(op_text)
            .filter(|_| Op::allowed(field.ty).contains(&canonical(op_text)))
            .ok_or_else(|| {
                invalid(format!(
                    "operator {op_text:?} does not apply to {name:?}; use one of: {}",
                    Op::allowed(field.ty).join(", ")
                ))
            })?;
        let value = self
            .value
            .as_ref()
            .ok_or_else(|| invalid(format!("field {name:?} needs a `value`")))?;
        let value = literal(name, field.ty, op, value)?;
        Ok(Rule::Field {
            field,
            trait_key,
            op,
            value,
        })
    }
}

/// The canonical name of an operator alias (`>=` → `gte`).
fn canonical(op: &str) -> &str {
    match op {
        "=" | "==" => "eq",
        "!=" => "ne",
        ">" => "gt",
        ">=" => "gte",
        "<" => "lt",
        "<=" => "lte",
        other => other,
    }
}

fn literal(
    name: &str,
    ty: FieldType,
    op: Op,
    value: &serde_json::Value,
) -> Result<Literal, RuleError> {
    use serde_json::Value;
    let wrong = |expected: &str| {
        invalid(format!(
            "field {name:?} with {op:?} needs {expected}, not {}",
            shorten(&value.to_string())
        ))
    };
    let int = |v: &Value| -> Result<i64, RuleError> {
        match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| {
                invalid(format!(
                    "{n} is not a whole number that fits in 64 bits (field {name:?})"
                ))
            }),
            _ => Err(wrong("a whole number")),
        }
    };
    let float = |v: &Value| -> Result<f64, RuleError> {
        match v.as_f64() {
            Some(x) if x.is_finite() && x.abs() < 1e300 => Ok(x),
            Some(_) => Err(invalid(format!("{v} is too large (field {name:?})"))),
            None => Err(wrong("a number")),
        }
    };
    let text = |v: &Value| -> Result<String, RuleError> {
        match v {
            Value::String(s) => {
                check_text(name, s)?;
                if ty == FieldType::Stage && !STAGES.contains(&s.as_str()) {
                    return Err(invalid(format!(
                        "{s:?} is not a lifecycle stage; use one of: {}",
                        STAGES.join(", ")
                    )));
                }
                Ok(s.clone())
            }
            _ => Err(wrong("a string")),
        }
    };
    let list = |v: &Value| -> Result<Vec<Value>, RuleError> {
        match v {
            Value::Array(items) if !items.is_empty() && items.len() <= MAX_LIST => {
                Ok(items.clone())
            }
            Value::Array(_) => Err(invalid(format!(
                "field {name:?}: the list needs 1 to {MAX_LIST} values"
            ))),
            _ => Err(wrong("a list")),
        }
    };
    Ok(match (ty, op) {
        (FieldType::Int, Op::Between) => match &list(value)?[..] {
            [a, b] => Literal::IntRange(int(a)?, int(b)?),
            _ => return Err(wrong("a list of two numbers [low, high]")),
        },
        (FieldType::Float, Op::Between) => match &list(value)?[..] {
            [a, b] => Literal::FloatRange(float(a)?, float(b)?),
            _ => return Err(wrong("a list of two numbers [low, high]")),
        },
        (FieldType::Int, Op::In | Op::NotIn) => {
            Literal::IntList(list(value)?.iter().map(int).collect::<Result<_, _>>()?)
        }
        (FieldType::Float, Op::In | Op::NotIn) => {
            Literal::FloatList(list(value)?.iter().map(float).collect::<Result<_, _>>()?)
        }
        (FieldType::Text | FieldType::Stage, Op::In | Op::NotIn) => {
            Literal::TextList(list(value)?.iter().map(text).collect::<Result<_, _>>()?)
        }
        (FieldType::Int, _) => Literal::Int(int(value)?),
        (FieldType::Float, _) => Literal::Float(float(value)?),
        (FieldType::Text | FieldType::Stage, _) => Literal::Text(text(value)?),
        (FieldType::Bool, _) => match value {
            Value::Bool(b) => Literal::Bool(*b),
            _ => return Err(wrong("true or false")),
        },
        (FieldType::Time, Op::WithinDays | Op::NotWithinDays) => {
            let d = match value {
                Value::Number(n) => n.as_u64(),
                _ => None,
            };
            Literal::Days(days(d)?.ok_or_else(|| wrong("a number of days"))?)
        }
        (FieldType::Time, _) => match value {
            Value::String(s) => Literal::Time(parse_time(s).ok_or_else(|| {
                invalid(format!(
                    "field {name:?}: {:?} is not a date (2026-11-21) or RFC 3339 time",
                    shorten(s)
                ))
            })?),
            _ => return Err(wrong("a date such as \"2026-11-21\"")),
        },
    })
}

fn parse_time(text: &str) -> Option<i64> {
    let at = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .ok()?
                .midnight()
                .assume_utc()
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
