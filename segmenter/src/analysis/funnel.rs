//! Conversion funnels: of the people who did step 1 in a time range, how many then did step 2,
//! then step 3, … in that order, each within the conversion window that starts at their step 1
//! (ClickHouse's `windowFunnel`). Read live from `events`, so a funnel includes events the
//! segmenter has not run over yet; people are joined across devices and across `identify` by
//! `identities` (as of the latest run), so an anonymous visit that later signs in counts once.
//!
//! A step is a page view whose path starts with a prefix, or an event: a type (`page_view`,
//! `click`, `search`, …) or a `track` event's name (`order_completed`). Bots' events do not count.

use serde::Deserialize;
use spoor_schema::segmenter::person_id_sql;
use time::{Duration, OffsetDateTime};

use super::Invalid;
use crate::run::unix_ms;
use crate::{Db, Error};

/// At most this many steps.
pub const MAX_STEPS: usize = 8;
/// A step's path or event name is at most this many bytes.
pub const MAX_VALUE: usize = 200;
/// The longest conversion window.
pub const MAX_WINDOW: Duration = Duration::days(90);

/// What a step matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A page view whose path starts with the value.
    Page,
    /// An event whose type, or (for a `track` event) name, is the value.
    Event,
}

impl StepKind {
    pub fn parse(text: &str) -> Result<StepKind, Invalid> {
        match text {
            "page" => Ok(StepKind::Page),
            "event" => Ok(StepKind::Event),
            other => Err(Invalid(format!(
                "a step is a \"page\" (a path prefix) or an \"event\" (a type or track event name), not {other:?}"
            ))),
        }
    }
}

/// What a funnel's people can be split by: a property of their step-1 event, or of their
/// first touch (their static profile, as of the latest run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    /// The step-1 event's device class (desktop, mobile, tablet).
    Device,
    Browser,
    Os,
    /// The first touch's referrer class (direct, search, social, email, …).
    Channel,
    /// The first touch's `utm_source`.
    UtmSource,
    /// The first touch's referrer domain.
    Referrer,
}

impl Breakdown {
    pub const ALL: [Breakdown; 6] = [
        Breakdown::Device,
        Breakdown::Browser,
        Breakdown::Os,
        Breakdown::Channel,
        Breakdown::UtmSource,
        Breakdown::Referrer,
    ];

    /// A breakdown by its name; `""` or `"none"` is none.
    pub fn parse(text: &str) -> Result<Option<Breakdown>, Invalid> {
        if text.is_empty() || text == "none" {
            return Ok(None);
        }
        Breakdown::ALL
            .into_iter()
            .find(|b| b.name() == text)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = Breakdown::ALL.iter().map(|b| b.name()).collect();
                Invalid(format!(
                    "a funnel is broken down by one of {}, not {text:?}",
                    names.join(", ")
                ))
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Breakdown::Device => "device",
            Breakdown::Browser => "browser",
            Breakdown::Os => "os",
            Breakdown::Channel => "channel",
            Breakdown::UtmSource => "utm_source",
            Breakdown::Referrer => "referrer",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Breakdown::Device => "Device",
            Breakdown::Browser => "Browser",
            Breakdown::Os => "Operating system",
            Breakdown::Channel => "First-touch channel",
            Breakdown::UtmSource => "First-touch UTM source",
            Breakdown::Referrer => "First-touch referrer",
        }
    }

    fn column(self) -> Column {
        match self {
            Breakdown::Device => Column::Event("device_class"),
            Breakdown::Browser => Column::Event("browser"),
            Breakdown::Os => Column::Event("os"),
            Breakdown::Channel => Column::Profile("first_referrer_class"),
            Breakdown::UtmSource => Column::Profile("first_utm_source"),
            Breakdown::Referrer => Column::Profile("first_referrer_domain"),
        }
    }
}

/// Where a breakdown's value is read.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// A column of `events`, on the person's earliest step-1 event.
    Event(&'static str),
    /// A column of `profiles_static`.
    Profile(&'static str),
}

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub value: String,
}

impl Step {
    /// A step; the value is trimmed. A page step's value is a path (it starts with `/`).
    pub fn new(kind: StepKind, value: &str) -> Result<Step, Invalid> {
        let value = value.trim();
        let what = match kind {
            StepKind::Page => "a page step's path",
            StepKind::Event => "an event step's name",
        };
        if value.is_empty() {
            return Err(Invalid(format!("{what} is empty")));
        }
        if value.len() > MAX_VALUE {
            return Err(Invalid(format!("{what} is longer than {MAX_VALUE} bytes")));
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "{what} must not contain control characters"
            )));
        }
        if kind == StepKind::Page && !value.starts_with('/') {
            return Err(Invalid(format!(
                "{what} starts with \"/\" (a path such as /checkout), not {value:?}"
            )));
        }
        Ok(Step {
            kind,
            value: value.to_owned(),
        })
    }

    /// How the dashboard names the step.
    pub fn label(&self) -> String {
        match self.kind {
            StepKind::Page => format!("Viewed {}", self.value),
            StepKind::Event => format!("Did {}", self.value),
        }
    }
}

/// A funnel over one project's events.
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    pub project: String,
    pub steps: Vec<Step>,
    /// The later steps must follow step 1 within this time.
    pub window: Duration,
    /// Step 1 happened in `[from, until)`; the later steps may happen up to `until + window`.
    pub from: OffsetDateTime,
    pub until: OffsetDateTime,
    /// Split the people by this; `None`: one group.
    pub breakdown: Option<Breakdown>,
}

/// How many people reached each step: `[did step 1, then step 2, …]`, never increasing.
pub type Reached = Vec<u64>;

/// A funnel's answer: everyone, and each group of the breakdown (largest at step 1 first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub total: Reached,
    pub groups: Vec<(String, Reached)>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Level {
    value: String,
    level: u8,
    people: u64,
}

impl Funnel {
    /// Checks the funnel's shape: 2 to [`MAX_STEPS`] steps, a window from a minute to
    /// [`MAX_WINDOW`], `from` before `until`.
    pub fn new(
        project: &str,
        steps: Vec<Step>,
        window: Duration,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Funnel, Invalid> {
        if steps.len() < 2 {
            return Err(Invalid("a funnel needs at least 2 steps".into()));
        }
        if steps.len() > MAX_STEPS {
            return Err(Invalid(format!(
                "a funnel has at most {MAX_STEPS} steps, not {}",
                steps.len()
            )));
        }
        if window < Duration::minutes(1) || window > MAX_WINDOW {
            return Err(Invalid(format!(
                "the conversion window is between 1 minute and {} days",
                MAX_WINDOW.whole_days()
            )));
        }
        if from >= until {
            return Err(Invalid("the time range ends before it starts".into()));
        }
        Ok(Funnel {
            project: project.to_owned(),
            steps,
            window,
            from,
            until,
            breakdown: None,
        })
    }

    /// The funnel with its people split by `breakdown`.
    pub fn by(mut self, breakdown: Option<Breakdown>) -> Funnel {
        self.breakdown = breakdown;
        self
    }

    /// The SQL (`{db}` left for [`Db::sql`]): one row per funnel level reached (1 = did step 1
    /// only) with its number of people. Its text depends only on the number of steps and their
    /// kinds; every value is a parameter ([`Funnel::bind`]).
    pub fn sql(&self) -> String {
        // The group: the step-1 event's column (its earliest step-1 event), or the person's
        // static profile column; '' without a breakdown.
        let column = self.breakdown.map(Breakdown::column);
        let (join, group) = match column {
            Some(Column::Profile(column)) => (
                format!(
                    "\nLEFT ANY JOIN (SELECT person_id, {column} AS first FROM {{db}}.profiles_static WHERE project_id = {{project:String}}) AS s
    ON s.person_id = f.person"
                ),
                "s.first",
            ),
            Some(Column::Event(_)) => (String::new(), "f.value"),
            None => (String::new(), "''"),
        };
        let event_column = match column {
            Some(Column::Event(column)) => Some(column),
            _ => None,
        };
        format!(
            "SELECT {group} AS value, level, count() AS people FROM (
{per_person}) AS f{join}
WHERE level > 0
GROUP BY value, level
ORDER BY value, level",
            per_person = self.per_person(event_column),
        )
    }

    /// One row per person with an event of a step: `person`, `level` (the steps reached, in
    /// order and in time) and, with `group_column`, `value`: that column of their earliest
    /// step-1 event.
    fn per_person(&self, group_column: Option<&str>) -> String {
        let conditions: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let matches = match step.kind {
                    StepKind::Page => {
                        format!("e.type = 'page_view' AND startsWith(e.path, {{s{i}:String}})")
                    }
                    StepKind::Event => format!(
                        "(e.type = {{s{i}:String}} OR (e.type = 'track' AND e.name = {{s{i}:String}}))"
                    ),
                };
                // Step 1 only inside the range; the later ones up to a window after it.
                let range = if i == 0 {
                    " AND e.timestamp < fromUnixTimestamp64Milli({until:Int64}, 'UTC')"
                } else {
                    ""
                };
                format!("({matches}{range}) AS c{i}")
            })
            .collect();
        let names: Vec<String> = (0..self.steps.len()).map(|i| format!("c{i}")).collect();
        let (inner, grouped) = match group_column {
            Some(column) => (
                format!("e.{column} AS g, "),
                ", argMinIf(g, t, c0) AS value".to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "    SELECT person, windowFunnel({{window:UInt64}})(t, {list}) AS level{grouped}
    FROM (
        SELECT {person} AS person, toUInt64(toUnixTimestamp64Milli(e.timestamp)) AS t, {inner}
               {conditions}
        FROM {{db}}.events AS e
        LEFT ANY JOIN {{db}}.identities AS i ON i.project_id = e.project_id AND i.anonymous_id = e.anonymous_id
        WHERE e.project_id = {{project:String}} AND NOT e.is_bot
          AND e.timestamp >= fromUnixTimestamp64Milli({{from:Int64}}, 'UTC')
          AND e.timestamp < fromUnixTimestamp64Milli({{end:Int64}}, 'UTC')
          AND ({any})
    )
    GROUP BY person
",
            person = person_id_sql("e.user_id", "i.user_id", "e.anonymous_id"),
            list = names.join(", "),
            conditions = conditions.join(",\n               "),
            any = names.join(" OR "),
        )
    }

    /// The SQL of the people themselves (`project_id, person_id, steps`, by person id): those
    /// who reached step `{reached:UInt8}` — only those who stopped there when `{stopped:UInt8}`
    /// is 1 (bound by [`Funnel::bind_people`]). The breakdown is left out.
    pub fn people_sql(&self) -> String {
        format!(
            "SELECT {{project:String}} AS project_id, person AS person_id, level AS steps FROM (
{}) AS f
WHERE level >= {{reached:UInt8}} AND ({{stopped:UInt8}} = 0 OR level = {{reached:UInt8}})
ORDER BY person_id",
            self.per_person(None)
        )
    }

    /// Binds the parameters of [`Funnel::people_sql`]: who reached step `reached` (1-based),
    /// or only who stopped there.
    pub fn bind_people(
        &self,
        query: clickhouse::query::Query,
        reached: u8,
        stopped: bool,
    ) -> clickhouse::query::Query {
        self.bind(query)
            .param("reached", reached)
            .param("stopped", u8::from(stopped))
    }

    /// Binds the parameters of [`Funnel::sql`].
    pub fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        for (i, step) in self.steps.iter().enumerate() {
            query = query.param(&format!("s{i}"), step.value.as_str());
        }
        query
            .param("project", self.project.as_str())
            .param("window", millis(self.window).max(0).unsigned_abs())
            .param("from", unix_ms(self.from))
            .param("until", unix_ms(self.until))
            .param(
                "end",
                unix_ms(self.until).saturating_add(millis(self.window)),
            )
    }

    /// How many people reached each step, in all and in each group of the breakdown.
    pub async fn conversion(&self, db: &Db) -> Result<Conversion, Error> {
        let levels: Vec<Level> = self
            .bind(db.query(&db.sql(&self.sql(), &[])))
            .fetch_all()
            .await
            .map_err(|e| Error::query("funnel", e))?;
        let reached = |rows: &[Level]| -> Reached {
            (1..=self.steps.len())
                .map(|step| {
                    rows.iter()
                        .filter(|l| usize::from(l.level) >= step)
                        .map(|l| l.people)
                        .sum()
                })
                .collect()
        };
        let mut groups: Vec<(String, Reached)> = Vec::new();
        if self.breakdown.is_some() {
            // Rows come ordered by group.
            for chunk in levels.chunk_by(|a, b| a.value == b.value) {
                groups.push((chunk[0].value.clone(), reached(chunk)));
            }
            groups.sort_by(|a, b| b.1.first().cmp(&a.1.first()).then_with(|| a.0.cmp(&b.0)));
        }
        Ok(Conversion {
            total: reached(&levels),
            groups,
        })
    }

    /// How many people reached each step, in all.
    pub async fn people(&self, db: &Db) -> Result<Reached, Error> {
        Ok(self.conversion(db).await?.total)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn steps(spec: &[(StepKind, &str)]) -> Vec<Step> {
        spec.iter()
            .map(|(k, v)| Step::new(*k, v).unwrap())
            .collect()
    }

    #[test]
    fn steps_are_checked() {
        assert!(Step::new(StepKind::Page, "/shop").is_ok());
        assert_eq!(Step::new(StepKind::Page, " /shop ").unwrap().value, "/shop");
        for (kind, bad) in [
            (StepKind::Page, ""),
            (StepKind::Page, "shop"),
            (StepKind::Event, "   "),
            (StepKind::Event, "a\nb"),
            (StepKind::Event, &"x".repeat(MAX_VALUE + 1)),
        ] {
            assert!(Step::new(kind, bad).is_err(), "{bad:?} accepted");
        }
        assert!(StepKind::parse("page").is_ok() && StepKind::parse("pages").is_err());
    }

    #[test]
    fn funnels_are_checked() {
        let from = datetime!(2026-11-01 0:00 UTC);
        let until = datetime!(2026-12-01 0:00 UTC);
        let two = steps(&[(StepKind::Page, "/"), (StepKind::Event, "order_completed")]);
        assert!(Funnel::new("p", two.clone(), Duration::days(7), from, until).is_ok());
        assert!(Funnel::new("p", two[..1].to_vec(), Duration::days(7), from, until).is_err());
        let nine = vec![two[0].clone(); MAX_STEPS + 1];
        assert!(Funnel::new("p", nine, Duration::days(7), from, until).is_err());
        assert!(Funnel::new("p", two.clone(), Duration::seconds(59), from, until).is_err());
        assert!(Funnel::new("p", two.clone(), Duration::days(91), from, until).is_err());
        assert!(Funnel::new("p", two, Duration::days(7), until, from).is_err());
    }

    /// The SQL text depends on the steps' kinds only: hostile values change nothing in it.
    #[test]
    fn values_never_reach_the_sql_text() {
        let from = datetime!(2026-11-01 0:00 UTC);
        let until = datetime!(2026-12-01 0:00 UTC);
        let funnel = |a: &str, b: &str, project: &str| {
            Funnel::new(
                project,
                steps(&[(StepKind::Page, a), (StepKind::Event, b)]),
                Duration::days(7),
                from,
                until,
            )
            .unwrap()
            .sql()
        };
        let plain = funnel("/shop", "order_completed", "shop");
        let hostile = funnel(
            "/x') OR 1=1 --",
            "a'); DROP TABLE events; --{s0:String}",
            "p' OR '1'='1",
        );
        assert_eq!(plain, hostile);
        assert!(!plain.contains("shop") && !plain.contains("order_completed"));
    }
}
