//! The Funnels, Paths and Retention pages: questions asked on demand ([`crate::analysis`]).

use std::fmt::Write;

use super::html::{esc, number, page, select, url};
use super::pages::{Params, chrome};
use super::{AppState, PageError};
use crate::analysis::funnel::{Breakdown, Conversion, MAX_STEPS, Step, StepKind};
use crate::analysis::paths::{self, Paths};
use crate::analysis::report::share;
use crate::analysis::retention::{Period, Retention};
use crate::analysis::{Funnel, Invalid, day_range_text, parse_day, parse_window};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The dashboard's funnels, paths and cohorts are stopped by the server after this long (a
/// question over years of events; the commands have no limit).
pub(super) const TIME_LIMIT_SECONDS: u32 = 60;

/// The conversion windows the form offers (any `N` + `m`/`h`/`d` is accepted).
const WINDOWS: &[(&str, &str)] = &[
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("7d", "7 days"),
    ("14d", "14 days"),
    ("30d", "30 days"),
];
const RANGES: &[u32] = &[7, 30, 90, 365];

/// The `days` choices of the forms.
fn day_options() -> Vec<(String, String)> {
    RANGES
        .iter()
        .map(|d| (d.to_string(), format!("{d} days")))
        .collect()
}

/// `/funnels?project=P&k=page&v=/shop&k=event&v=order_completed&window=7d&days=30&at=DAY`:
/// the steps are the `k`/`v` pairs in order (a `v` without its `k` is a page step); step 1 in
/// the `days` days up to `at` (today by default).
pub(super) async fn funnels(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FunnelForm::read(&pairs);
    let chrome = chrome(&state, form.project.as_deref()).await?;
    let project = chrome.project.clone();
    let mut body = String::from(
        "<h1>Funnels</h1><p class=\"sub\">Of the people who did step 1 in the chosen days, how many then did \
         each next step, in order, within the conversion window of their step 1. Read live from the events; \
         a visitor who signs in later counts once (as of the latest run); bots do not count.</p>",
    );
    let asked = form.funnel(&project);
    body += &form.render(&project);
    let status = match asked {
        Ok(None) => {
            let example = |label: &str, steps: &[(&str, &str)]| {
                let mut href = format!("/funnels?project={}", url(&project));
                for (k, v) in steps {
                    let _ = write!(href, "&amp;k={k}&amp;v={}", url(v));
                }
                format!("<a href=\"{href}\">{}</a>", esc(label))
            };
            let _ = write!(
                body,
                "<div class=\"panel\"><div class=\"empty\">Add at least two steps. For example: {}, {}, {}.</div></div>",
                example(
                    "any page → order",
                    &[("page", "/"), ("event", "order_completed")]
                ),
                example(
                    "search → click → order",
                    &[
                        ("event", "search"),
                        ("event", "click"),
                        ("event", "order_completed")
                    ]
                ),
                example(
                    "sign-up → order",
                    &[("event", "member_signup"), ("event", "order_completed")]
                ),
            );
            StatusCode::OK
        }
        Ok(Some(funnel)) => {
            let conversion = funnel
                .conversion(&state.db.time_limited(TIME_LIMIT_SECONDS))
                .await?;
            body += &funnel_table(&funnel, &conversion.total, &form.query(&project));
            if let Some(by) = funnel.breakdown {
                body += &groups_table(&funnel, by, &conversion);
            }
            StatusCode::OK
        }
        Err(Invalid(message)) => {
            body = body.replacen(
                "<form",
                &format!("<div class=\"error\">{}</div><form", esc(&message)),
                1,
            );
            StatusCode::BAD_REQUEST
        }
    };
    Ok((status, Html(page("Funnels", "funnels", &chrome, &body))).into_response())
}

/// The funnel form's fields, as given.
struct FunnelForm {
    project: Option<String>,
    steps: Vec<(String, String)>,
    window: String,
    days: String,
    at: String,
    by: String,
}

impl FunnelForm {
    fn read(pairs: &[(String, String)]) -> FunnelForm {
        let mut form = FunnelForm {
            project: None,
            steps: Vec::new(),
            window: "7d".into(),
            days: "30".into(),
            at: String::new(),
            by: String::new(),
        };
        let mut kind = None;
        for (name, value) in pairs {
            match name.as_str() {
                "project" => form.project = Some(value.clone()),
                "k" => kind = Some(value.clone()),
                "v" => {
                    let kind = kind.take().unwrap_or_else(|| "page".into());
                    // The form's empty rows.
                    if !value.trim().is_empty() {
                        form.steps.push((kind, value.clone()));
                    }
                }
                "window" => form.window = value.trim().to_owned(),
                "days" => form.days = value.trim().to_owned(),
                "at" => form.at = value.trim().to_owned(),
                "by" => form.by = value.trim().to_owned(),
                _ => {}
            }
        }
        form
    }

    /// The funnel's query string (HTML-escaped, for links).
    fn query(&self, project: &str) -> String {
        let mut q = format!("project={}", url(project));
        for (k, v) in &self.steps {
            let _ = write!(q, "&amp;k={}&amp;v={}", url(k), url(v));
        }
        for (name, value) in [
            ("window", &self.window),
            ("days", &self.days),
            ("at", &self.at),
        ] {
            if !value.is_empty() {
                let _ = write!(q, "&amp;{name}={}", url(value));
            }
        }
        q
    }

    /// The funnel asked for; `None` when fewer than two steps are given (the form is shown).
    fn funnel(&self, project: &str) -> Result<Option<Funnel>, Invalid> {
        let window = parse_window(&self.window)?;
        let (from, until) = day_range_text(&self.days, &self.at)?;
        let by = Breakdown::parse(&self.by)?;
        let steps = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, (kind, value))| {
                StepKind::parse(kind)
                    .and_then(|kind| Step::new(kind, value))
                    .map_err(|Invalid(m)| Invalid(format!("step {}: {m}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if steps.len() < 2 {
            return Ok(None);
        }
        Funnel::new(project, steps, window, from, until).map(|f| Some(f.by(by)))
    }

    fn render(&self, project: &str) -> String {
        let mut out = format!(
            "<form class=\"query\" method=\"get\" action=\"/funnels\"><input type=\"hidden\" name=\"project\" value=\"{}\">",
            esc(project)
        );
        let rows = (self.steps.len() + 1).clamp(3, MAX_STEPS);
        for i in 0..rows {
            let (kind, value) = self
                .steps
                .get(i)
                .map_or(("page", ""), |(k, v)| (k.as_str(), v.as_str()));
            let selected = |k: &str| if k == kind { " selected" } else { "" };
            let _ = write!(
                out,
                "<div class=\"row\"><b>{}</b><select name=\"k\"><option value=\"page\"{}>Page view, path starts with</option>\
                 <option value=\"event\"{}>Event (type or name)</option></select>\
                 <input name=\"v\" value=\"{}\" placeholder=\"{}\"></div>",
                i + 1,
                selected("page"),
                selected("event"),
                esc(value),
                match i {
                    0 => "/shop",
                    1 => "order_completed",
                    _ => "optional",
                },
            );
        }
        let windows: Vec<(String, String)> = WINDOWS
            .iter()
            .map(|(value, label)| ((*value).to_owned(), (*label).to_owned()))
            .collect();
        let breakdowns: Vec<(String, String)> =
            std::iter::once((String::new(), "nothing".to_owned()))
                .chain(
                    Breakdown::ALL
                        .iter()
                        .map(|b| (b.name().to_owned(), b.label().to_lowercase())),
                )
                .collect();
        let _ = write!(
            out,
            "<div class=\"row\"><b></b>within {} of step 1, step 1 in the last {} up to \
             <input type=\"date\" name=\"at\" value=\"{}\"> split by {} <button>Show</button></div></form>",
            select("window", &windows, &self.window),
            select("days", &day_options(), &self.days),
            esc(&self.at),
            select("by", &breakdowns, &self.by),
        );
        out
    }
}

/// `query`: the funnel's query string, for the links to its people.
fn funnel_table(funnel: &Funnel, people: &[u64], query: &str) -> String {
    let first = people.first().copied().unwrap_or(0);
    let last = people.last().copied().unwrap_or(0);
    let mut out = format!(
        "<div class=\"cards\"><div class=\"card\"><div class=\"label\">Did step 1</div><div class=\"value\">{}</div></div>\
         <div class=\"card\"><div class=\"label\">Did every step</div><div class=\"value\">{}</div></div>\
         <div class=\"card\"><div class=\"label\">Conversion</div><div class=\"value\">{}</div></div></div>\
         <h2>Steps</h2><div class=\"panel\"><table><thead><tr><th>Step</th><th class=\"num\">People</th>\
         <th class=\"num\">Of step 1</th><th class=\"num\">From the step before</th><th class=\"num\">Dropped</th><th>People (CSV)</th></tr></thead><tbody>",
        number(&first.to_string()),
        number(&last.to_string()),
        share(last, first),
    );
    for (i, (step, &n)) in funnel.steps.iter().zip(people).enumerate() {
        let before = if i == 0 {
            None
        } else {
            people.get(i - 1).copied()
        };
        let width = if first == 0 {
            0.0
        } else {
            160.0 * n as f64 / first as f64
        };
        let _ = write!(
            out,
            "<tr><td>{}. {}</td><td class=\"num\">{}<span class=\"bar\" style=\"width:{width:.0}px\"></span></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            i + 1,
            esc(&step.label()),
            number(&n.to_string()),
            share(n, first),
            before.map_or_else(String::new, |b| share(n, b)),
            before.map_or_else(String::new, |b| number(&b.saturating_sub(n).to_string())),
            people_links(query, i + 1, funnel.steps.len()),
        );
    }
    out += "</tbody></table></div>";
    out
}

/// Links to the CSV of who reached step `step`, and (before the last step) of who stopped there.
fn people_links(query: &str, step: usize, steps: usize) -> String {
    let mut out = format!("<a href=\"/funnels/people.csv?{query}&amp;reached={step}\">reached</a>");
    if step < steps {
        let _ = write!(
            out,
            " · <a href=\"/funnels/people.csv?{query}&amp;reached={step}&amp;stopped=1\">stopped here</a>"
        );
    }
    out
}

/// `/funnels/people.csv?<the funnel>&reached=K[&stopped=1]`: the people who reached step K —
/// or only those who went no further — as CSV (`project_id,person_id,steps`), for a campaign
/// tool or a static segment (`segments add --ids`).
pub(super) async fn funnel_people(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = FunnelForm::read(&pairs);
    let chrome = chrome(&state, form.project.as_deref()).await?;
    let bad = |message: String| Ok((StatusCode::BAD_REQUEST, message).into_response());
    let funnel = match form.funnel(&chrome.project) {
        Ok(Some(funnel)) => funnel,
        Ok(None) => return bad("A funnel needs at least two steps.".to_owned()),
        Err(Invalid(message)) => return bad(message),
    };
    let value = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let reached = match value("reached").map(str::parse::<u8>) {
        Some(Ok(k)) if (1..=funnel.steps.len()).contains(&usize::from(k)) => k,
        _ => {
            return bad(format!(
                "reached is the number of a step, 1 to {}",
                funnel.steps.len()
            ));
        }
    };
    let stopped = value("stopped") == Some("1");
    let sql = state.db.sql(&funnel.people_sql(), &[]);
    let rows = funnel
        .bind_people(
            state.db.time_limited(TIME_LIMIT_SECONDS).query(&sql),
            reached,
            stopped,
        )
        .fetch_bytes("CSVWithNames")
        .map_err(|e| PageError::from(crate::Error::query("funnel people", e)))?;
    let which = if stopped { "stopped" } else { "reached" };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"funnel-step{reached}-{which}.csv\""),
            ),
        ],
        axum::body::Body::from_stream(rows),
    )
        .into_response())
}

/// The groups with the most people at step 1 get a row each; the rest share one.
const GROUP_ROWS: usize = 12;

fn groups_table(funnel: &Funnel, by: Breakdown, conversion: &Conversion) -> String {
    let mut rows: Vec<(String, Vec<u64>)> = conversion
        .groups
        .iter()
        .take(GROUP_ROWS)
        .map(|(value, reached)| {
            let name = if value.is_empty() { "(none)" } else { value };
            (esc(name), reached.clone())
        })
        .collect();
    let rest = &conversion.groups[conversion.groups.len().min(GROUP_ROWS)..];
    if !rest.is_empty() {
        let mut sum = vec![0; funnel.steps.len()];
        for (_, reached) in rest {
            for (s, n) in sum.iter_mut().zip(reached) {
                *s += n;
            }
        }
        rows.push((format!("<i>{} others</i>", rest.len()), sum));
    }
    let mut out = format!(
        "<h2>By {}</h2><div class=\"panel\"><table><thead><tr><th>{}</th>",
        esc(&by.label().to_lowercase()),
        esc(by.label())
    );
    for i in 1..=funnel.steps.len() {
        let _ = write!(out, "<th class=\"num\">Step {i}</th>");
    }
    out += "<th class=\"num\">Conversion</th></tr></thead><tbody>";
    for (name, reached) in rows {
        let _ = write!(out, "<tr><td>{name}</td>");
        for n in &reached {
            let _ = write!(out, "<td class=\"num\">{}</td>", number(&n.to_string()));
        }
        let (first, last) = (
            reached.first().copied().unwrap_or(0),
            reached.last().copied().unwrap_or(0),
        );
        let _ = write!(out, "<td class=\"num\">{}</td></tr>", share(last, first));
    }
    out += "</tbody></table></div>";
    out
}

/// `/paths?project=P&page=/shop&days=30&at=DAY`: where visitors came from to a page and went
/// next, in their sessions; without a page, the most viewed pages to pick from.
pub(super) async fn paths(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
    let (page_path, at) = (text(&params.page), text(&params.at));
    let days = match text(&params.days) {
        d if d.is_empty() => "30".to_owned(),
        d => d,
    };
    let (page_path, days, at) = (page_path.as_str(), days.as_str(), at.as_str());
    let mut body = format!(
        "<h1>Paths</h1><p class=\"sub\">Where visitors came from to a page, and where they went next, within their \
         sessions. Read live from the events; a reload counts once.</p>\
         <form class=\"query\" method=\"get\" action=\"/paths\"><input type=\"hidden\" name=\"project\" value=\"{}\">\
         <div class=\"row\">Page <input name=\"page\" value=\"{}\" placeholder=\"/checkout\"> in the last {} \
         up to <input type=\"date\" name=\"at\" value=\"{}\"> <button>Show</button></div></form>",
        esc(&project),
        esc(page_path),
        select("days", &day_options(), days),
        esc(at),
    );
    let asked = day_range_text(days, at).and_then(|(from, until)| {
        if page_path.is_empty() {
            Ok((None, from, until))
        } else {
            Paths::new(&project, page_path, from, until).map(|p| (Some(p), from, until))
        }
    });
    let link = |path: &str| {
        if path == paths::ENTRY || path == paths::EXIT {
            esc(path)
        } else {
            format!(
                "<a href=\"/paths?project={}&amp;page={}&amp;days={}&amp;at={}\">{}</a>",
                url(&project),
                url(path),
                url(days),
                url(at),
                esc(path)
            )
        }
    };
    match asked {
        Err(Invalid(message)) => {
            body = body.replacen(
                "<form",
                &format!("<div class=\"error\">{}</div><form", esc(&message)),
                1,
            );
            return Ok((
                StatusCode::BAD_REQUEST,
                Html(page("Paths", "paths", &chrome, &body)),
            )
                .into_response());
        }
        Ok((None, from, until)) => {
            let top = paths::top_pages(
                &state.db.time_limited(TIME_LIMIT_SECONDS),
                &project,
                from,
                until,
            )
            .await?;
            body += "<h2>Most viewed pages</h2><div class=\"panel\"><table><thead><tr><th>Page</th><th class=\"num\">Views</th></tr></thead><tbody>";
            for (path, views) in &top {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                    link(path),
                    number(&views.to_string())
                );
            }
            if top.is_empty() {
                body +=
                    "<tr><td class=\"empty\" colspan=\"2\">No page views in these days.</td></tr>";
            }
            body += "</tbody></table></div>";
        }
        Ok((Some(question), _, _)) => {
            let around = question
                .around(&state.db.time_limited(TIME_LIMIT_SECONDS))
                .await?;
            let side = |title: &str, rows: &[(String, u64)]| {
                let mut out = format!(
                    "<div><h2>{title}</h2><div class=\"panel\"><table><thead><tr><th>Page</th><th class=\"num\">Views</th>\
                     <th class=\"num\">Share</th></tr></thead><tbody>"
                );
                for (path, n) in rows {
                    let share = if around.views == 0 {
                        0.0
                    } else {
                        100.0 * *n as f64 / around.views as f64
                    };
                    let _ = write!(
                        out,
                        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{share:.1}%</td></tr>",
                        link(path),
                        number(&n.to_string())
                    );
                }
                if rows.is_empty() {
                    out += "<tr><td class=\"empty\" colspan=\"3\">Nobody viewed this page in these days.</td></tr>";
                }
                out + "</tbody></table></div></div>"
            };
            let _ = write!(
                body,
                "<div class=\"cards\"><div class=\"card\"><div class=\"label\">Views of {}</div><div class=\"value\">{}</div></div></div>\
                 <div class=\"grid2\">{}{}</div>",
                esc(&question.page),
                number(&around.views.to_string()),
                side("Came from", &around.came_from),
                side("Went to", &around.went_to),
            );
        }
    }
    Ok(Html(page("Paths", "paths", &chrome, &body)).into_response())
}

/// `/retention?project=P&period=week|month&cohorts=N&at=DAY`: cohorts by the week (month) people
/// were first seen, up to `at` (today by default).
pub(super) async fn retention(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let asked = retention_asked(&params, &project);
    let period = asked.as_ref().map_or(Period::Week, |r| r.period);
    let event = params.event.as_deref().unwrap_or_default().trim();
    let at = params.at.as_deref().unwrap_or_default().trim();
    let mut body = String::from(
        "<h1>Retention</h1><p class=\"sub\">People grouped by the period they were first seen, and the share of \
         each group active — any event, or the event you name — in the periods after. As of the latest run.</p><div class=\"tabs\">",
    );
    for p in [Period::Week, Period::Month] {
        let _ = write!(
            body,
            "<a href=\"/retention?project={}&amp;period={}&amp;event={}&amp;at={}\"{}>{}</a>",
            url(&project),
            p.name(),
            url(event),
            url(at),
            if p == period { " class=\"on\"" } else { "" },
            if p == Period::Week {
                "Weekly"
            } else {
                "Monthly"
            },
        );
    }
    let _ = write!(
        body,
        "</div><h2></h2><form class=\"query\" method=\"get\" action=\"/retention\">\
         <input type=\"hidden\" name=\"project\" value=\"{}\"><input type=\"hidden\" name=\"period\" value=\"{}\">\
         <div class=\"row\">Active means doing <input name=\"event\" value=\"{}\" placeholder=\"any event (or: order_completed, search, …)\"> \
         up to <input type=\"date\" name=\"at\" value=\"{}\"> <button>Show</button></div></form>",
        esc(&project),
        period.name(),
        esc(event),
        esc(at),
    );
    let retention = match asked {
        Ok(r) => r,
        Err(Invalid(message)) => {
            let _ = write!(
                body,
                "<h2></h2><div class=\"error\">{}</div>",
                esc(&message)
            );
            return Ok((
                StatusCode::BAD_REQUEST,
                Html(page("Retention", "retention", &chrome, &body)),
            )
                .into_response());
        }
    };
    let cohorts = retention
        .cohorts(&state.db.time_limited(TIME_LIMIT_SECONDS))
        .await?;
    let unit = if period == Period::Week {
        "Week"
    } else {
        "Month"
    };
    let _ = write!(
        body,
        "<h2>{} cohorts up to {}</h2><div class=\"panel\"><table><thead><tr><th>First seen</th><th class=\"num\">People</th>",
        cohorts.len(),
        retention.until
    );
    for n in 0..cohorts.len() {
        let _ = write!(body, "<th class=\"num\">{unit} {n}</th>");
    }
    body += "</tr></thead><tbody>";
    // The "all cohorts" row: period n over the cohorts old enough to have one.
    let mut total = vec![(0u64, 0u64); cohorts.len()];
    for cohort in cohorts.iter().rev() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td>",
            cohort.start,
            number(&cohort.people.to_string())
        );
        for (n, &active) in cohort.active.iter().enumerate() {
            if let Some(t) = total.get_mut(n) {
                t.0 += active;
                t.1 += cohort.people;
            }
            body += &heat(active, cohort.people);
        }
        body += "</tr>";
    }
    body += "<tr><td><b>All cohorts</b></td><td></td>";
    for (active, people) in total {
        body += &heat(active, people);
    }
    body += "</tr></tbody></table></div>";
    Ok(Html(page("Retention", "retention", &chrome, &body)).into_response())
}

fn retention_asked(params: &Params, project: &str) -> Result<Retention, Invalid> {
    let period = match params.period.as_deref().map(str::trim) {
        None | Some("") => Period::Week,
        Some(p) => Period::parse(p)?,
    };
    let cohorts = match params.cohorts.as_deref().map(str::trim) {
        None | Some("") => {
            if period == Period::Week {
                8
            } else {
                6
            }
        }
        Some(n) => n
            .parse()
            .map_err(|_| Invalid(format!("cohorts is a number, not {n:?}")))?,
    };
    let until = parse_day(params.at.as_deref().unwrap_or_default().trim())?;
    Retention::new(project, period, cohorts, until)?.doing(params.event.as_deref())
}

/// A cell: the share of `people` that `active` is, shaded by it; the count on hover.
fn heat(active: u64, people: u64) -> String {
    if people == 0 {
        return "<td class=\"heat\">–</td>".to_owned();
    }
    let share = active as f64 / people as f64;
    let ink = if share > 0.55 { "#fff" } else { "inherit" };
    format!(
        "<td class=\"heat\" style=\"background:rgba(59,91,219,{:.2});color:{ink}\" title=\"{active} of {people}\">{:.1}%</td>",
        0.06 + 0.84 * share,
        100.0 * share
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn form_pairs_steps_in_order() {
        let pairs: Vec<(String, String)> = [
            ("project", "p1"),
            ("k", "page"),
            ("v", "/shop"),
            ("k", "event"),
            ("v", " "),
            ("v", "/cart"),
            ("k", "event"),
            ("v", "order_completed"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        let form = FunnelForm::read(&pairs);
        assert_eq!(
            form.steps,
            [
                ("page".to_owned(), "/shop".to_owned()),
                ("page".to_owned(), "/cart".to_owned()),
                ("event".to_owned(), "order_completed".to_owned())
            ]
        );
        let funnel = form.funnel("p1").unwrap().unwrap();
        assert_eq!(funnel.steps.len(), 3);
        assert_eq!(funnel.until - funnel.from, Duration::days(30));
    }
}
