//! The pages. Each handler reads a few small result sets and renders them.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use spoor_schema::segmenter::Period;

use super::data::{Grid, grid};
use super::html::{Cell, Chrome, cards, col, esc, facts, number, page, table, url};
use super::{AppState, PageError};
use crate::segment::store;

/// Query-string parameters any page may use.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Params {
    pub(super) project: Option<String>,
    pub(super) period: Option<String>,
    pub(super) at: Option<String>,
    pub(super) person: Option<String>,
    pub(super) q: Option<String>,
    pub(super) status: Option<String>,
    pub(super) cohorts: Option<String>,
    pub(super) event: Option<String>,
    pub(super) page: Option<String>,
    pub(super) days: Option<String>,
}

type PageResult = Result<Html<String>, PageError>;

/// What every page's frame shows: the projects, the chosen one, how fresh the data is.
pub(super) async fn chrome(state: &AppState, wanted: Option<&str>) -> Result<Chrome, PageError> {
    let (projects, project) = projects(state, wanted).await?;
    let runs = grid(
        &state.db,
        "read the latest run",
        "SELECT count() AS runs, toString(max(finished_at)) AS at,
                dateDiff('second', max(finished_at), now64(3)) AS age
         FROM {db}.segmenter_runs WHERE mode IN ('full', 'incremental')",
        &[],
    )
    .await?;
    let row = runs.rows.first().cloned().unwrap_or_default();
    let updated = match runs.get(&row, "runs").parse::<u64>() {
        Ok(n) if n > 0 => runs
            .get(&row, "age")
            .parse::<i64>()
            .ok()
            .map(|age| (runs.get(&row, "at").to_owned(), age.max(0).unsigned_abs())),
        _ => None,
    };
    Ok(Chrome {
        projects,
        project,
        updated,
    })
}

/// The projects that have data, and the one the page shows.
async fn projects(
    state: &AppState,
    wanted: Option<&str>,
) -> Result<(Vec<String>, String), PageError> {
    let g = grid(
        &state.db,
        "list projects",
        "SELECT DISTINCT project_id FROM {db}.activity_daily ORDER BY project_id",
        &[],
    )
    .await?;
    let all: Vec<String> = g
        .rows
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    let project = match wanted {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => all.first().cloned().unwrap_or_default(),
    };
    Ok((all, project))
}

fn valid_date(text: Option<&str>) -> Option<String> {
    let text = text?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).ok().map(|d| d.to_string())
}

pub(super) async fn reports(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> PageResult {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let period = match params.period.as_deref() {
        Some("weekly") => Period::Weekly,
        Some("monthly") => Period::Monthly,
        _ => Period::Daily,
    };
    let [summary, pages, sources, searches] = period.tables();
    let c = period.column();
    let series = grid(
        &state.db,
        "report",
        &format!(
            "SELECT toString({c}) AS period, visitors, new_visitors, returning_visitors, sessions, page_views,
                    bounce_rate, round(avg_session_seconds, 1) AS avg_session, round(avg_engaged_seconds, 1) AS avg_engaged,
                    searches, zero_result_searches, orders, round(revenue, 2) AS revenue, conversion_rate,
                    signups, signins, points_earned, points_redeemed, tickets_opened, tickets_resolved,
                    round(median_first_response_seconds / 60, 1) AS first_response_min,
                    round(median_resolution_seconds / 3600, 2) AS resolution_h, round(csat_avg, 2) AS csat
             FROM {{db}}.{} WHERE project_id = {{project:String}} ORDER BY {c} DESC LIMIT 90",
            summary.name
        ),
        &[("project", &project)],
    )
    .await?;
    let at = valid_date(params.at.as_deref())
        .or_else(|| {
            series
                .rows
                .first()
                .map(|r| series.get(r, "period").to_owned())
        })
        .unwrap_or_default();
    let chosen = series.rows.iter().find(|r| series.get(r, "period") == at);
    let mut body = format!(
        "<h1>{} report</h1><p class=\"sub\">Project {} · UTC periods · bots and duplicate events excluded</p><p class=\"tabs\">",
        match period {
            Period::Daily => "Daily",
            Period::Weekly => "Weekly",
            Period::Monthly => "Monthly",
        },
        esc(&project)
    );
    for p in Period::ALL {
        let on = if p == period { " class=\"on\"" } else { "" };
        body += &format!(
            "<a href=\"/reports?project={}&amp;period={}\"{on}>{}</a>",
            url(&project),
            p.as_str(),
            p.as_str()
        );
    }
    body += "</p>";
    if let Some(row) = chosen {
        let g = |name: &str| number(series.get(row, name));
        let pct = |name: &str| {
            series
                .get(row, name)
                .parse::<f64>()
                .map_or_else(|_| "–".to_owned(), |x| format!("{:.1}%", 100.0 * x))
        };
        body += &format!("<h2>{} {}</h2>", esc(c), esc(&at));
        body += &cards(&[
            ("Visitors", g("visitors")),
            (
                "New / returning",
                format!("{} / {}", g("new_visitors"), g("returning_visitors")),
            ),
            ("Sessions", g("sessions")),
            ("Page views", g("page_views")),
            ("Bounce rate", pct("bounce_rate")),
            ("Avg session (s)", g("avg_session")),
            ("Avg engaged (s)", g("avg_engaged")),
            ("Orders", g("orders")),
            ("Revenue", g("revenue")),
            ("Conversion", pct("conversion_rate")),
            ("Sign-ups", g("signups")),
            (
                "Points earned / redeemed",
                format!("{} / {}", g("points_earned"), g("points_redeemed")),
            ),
            (
                "Tickets opened / resolved",
                format!("{} / {}", g("tickets_opened"), g("tickets_resolved")),
            ),
            (
                "Median 1st response (min)",
                or_dash(&g("first_response_min")),
            ),
            ("Median resolution (h)", or_dash(&g("resolution_h"))),
            ("CSAT", or_dash(&g("csat"))),
        ]);
        let breakdown = |table: &str, columns: &str, order: &str| {
            format!(
                "SELECT {columns} FROM {{db}}.{table} WHERE project_id = {{project:String}} AND {c} = {{at:Date}} ORDER BY {order} LIMIT 15"
            )
        };
        let p = [("project", project.as_str()), ("at", at.as_str())];
        let top_pages = grid(
            &state.db,
            "report pages",
            &breakdown(
                pages.name,
                "path, views, visitors, entries, exits, round(avg_engaged_seconds, 1) AS engaged",
                "views DESC, path",
            ),
            &p,
        )
        .await?;
        let top_sources = grid(
            &state.db,
            "report sources",
            &breakdown(
                sources.name,
                "if(referrer_class = '', 'direct', referrer_class) AS class, referrer_domain, utm_source, utm_medium, utm_campaign, sessions, visitors, bounces",
                "sessions DESC, referrer_domain",
            ),
            &p,
        )
        .await?;
        let top_searches = grid(
            &state.db,
            "report searches",
            &breakdown(
                searches.name,
                "query, searches, searchers, zero_results",
                "searches DESC, query",
            ),
            &p,
        )
        .await?;
        let zero = grid(
            &state.db,
            "report zero-result searches",
            &format!(
                "SELECT query, zero_results FROM {{db}}.{} WHERE project_id = {{project:String}} AND {c} = {{at:Date}} AND zero_results > 0 ORDER BY zero_results DESC, query LIMIT 15",
                searches.name
            ),
            &p,
        )
        .await?;
        body += "<h2>Top pages, entries and exits</h2>";
        body += &table(
            &top_pages,
            &[
                col("path", "Path", Cell::Text),
                col("views", "Views", Cell::Bar),
                col("visitors", "Visitors", Cell::Num),
                col("entries", "Entries", Cell::Num),
                col("exits", "Exits", Cell::Num),
                col("engaged", "Avg engaged (s)", Cell::Num),
            ],
            &project,
            "No page views in this period.",
        );
        body += "<h2>Referrers and UTM sources</h2>";
        body += &table(
            &top_sources,
            &[
                col("class", "Channel", Cell::Tag),
                col("referrer_domain", "Referrer", Cell::Text),
                col("utm_source", "utm_source", Cell::Text),
                col("utm_medium", "utm_medium", Cell::Text),
                col("utm_campaign", "utm_campaign", Cell::Text),
                col("sessions", "Sessions", Cell::Bar),
                col("visitors", "Visitors", Cell::Num),
                col("bounces", "Bounces", Cell::Num),
            ],
            &project,
            "No sessions in this period.",
        );
        body += "<div class=\"grid2\"><div><h2>Top searches</h2>";
        body += &table(
            &top_searches,
            &[
                col("query", "Query", Cell::Text),
                col("searches", "Searches", Cell::Bar),
                col("searchers", "People", Cell::Num),
                col("zero_results", "No results", Cell::Num),
            ],
            &project,
            "No searches in this period.",
        );
        body += "</div><div><h2>Searches that found nothing</h2>";
        body += &table(
            &zero,
            &[
                col("query", "Query", Cell::Text),
                col("zero_results", "Times", Cell::Bar),
            ],
            &project,
            "Every search found something.",
        );
        body += "</div></div>";
    }
    body += "<h2>All periods</h2>";
    body += &table(
        &series,
        &[
            col("period", c, Cell::Text),
            col("visitors", "Visitors", Cell::Bar),
            col("new_visitors", "New", Cell::Num),
            col("sessions", "Sessions", Cell::Num),
            col("page_views", "Views", Cell::Num),
            col("bounce_rate", "Bounce", Cell::Pct),
            col("avg_session", "Avg s", Cell::Num),
            col("orders", "Orders", Cell::Num),
            col("revenue", "Revenue", Cell::Num),
            col("conversion_rate", "Conv.", Cell::Pct),
            col("signups", "Sign-ups", Cell::Num),
            col("tickets_opened", "Tickets", Cell::Num),
            col("csat", "CSAT", Cell::Num),
        ],
        &project,
        "No data yet: run `spoor-segmenter run` after events arrive.",
    );
    Ok(Html(page("Reports", "reports", &chrome, &body)))
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "–".to_owned()
    } else {
        text.to_owned()
    }
}

pub(super) async fn segments(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> PageResult {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let list = store::list(&state.db).await?;
    let g = Grid {
        columns: [
            "segment_id",
            "name",
            "kind",
            "project_id",
            "members",
            "description",
        ]
        .map(String::from)
        .to_vec(),
        rows: list
            .iter()
            .map(|s| {
                vec![
                    s.segment_id.clone(),
                    s.name.clone(),
                    s.kind.clone(),
                    if s.project_id.is_empty() {
                        "all".into()
                    } else {
                        s.project_id.clone()
                    },
                    s.members.to_string(),
                    s.description.clone(),
                ]
            })
            .collect(),
    };
    let body = format!(
        "<h1>Segments</h1><p class=\"sub\">Dynamic segments are recomputed on every run; static ones are frozen when added. \
         Add one here or with <code>spoor-segmenter segments add FILE.toml</code>.</p><p><a class=\"button\" href=\"/segments/new?project={}\">New segment</a></p>{}",
        url(&project),
        table(
            &g,
            &[
                col("segment_id", "Segment", Cell::Segment),
                col("name", "Name", Cell::Text),
                col("kind", "Kind", Cell::Tag),
                col("project_id", "Project", Cell::Text),
                col("members", "Members", Cell::Bar),
                col("description", "Description", Cell::Text),
            ],
            &project,
            "No segments yet.",
        )
    );
    Ok(Html(page("Segments", "segments", &chrome, &body)))
}

pub(super) async fn segment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> PageResult {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let (summary, definition) = store::get(&state.db, &id).await?;
    let p = [("id", id.as_str())];
    let daily = grid(
        &state.db,
        "segment history",
        "SELECT toString(toDate(at)) AS day, countIf(change = 'entered') AS joined, countIf(change = 'exited') AS left_
         FROM {db}.segment_changes WHERE segment_id = {id:String} GROUP BY day ORDER BY day DESC LIMIT 30",
        &p,
    )
    .await?;
    let members = grid(
        &state.db,
        "segment members",
        "SELECT person_id, project_id, toString(entered_at) AS entered_at FROM {db}.segment_members
         WHERE segment_id = {id:String} ORDER BY entered_at DESC, person_id LIMIT 200",
        &p,
    )
    .await?;
    let changes = grid(
        &state.db,
        "segment changes",
        "SELECT toString(at) AS at, change, person_id FROM {db}.segment_changes
         WHERE segment_id = {id:String} ORDER BY at DESC, change, person_id LIMIT 200",
        &p,
    )
    .await?;
    let definition_json = serde_json::to_string_pretty(&definition.rule).unwrap_or_default();
    let mut body = format!(
        "<h1>{}</h1><p class=\"sub\">{} · {} segment · {} members{}</p>",
        esc(&summary.name),
        esc(&summary.segment_id),
        esc(&summary.kind),
        number(&summary.members.to_string()),
        if summary.description.is_empty() {
            String::new()
        } else {
            format!(" · {}", esc(&summary.description))
        }
    );
    let _ = write!(
        body,
        "<p><a class=\"button\" href=\"/segments/new?project={p}&amp;from={id}\">Edit</a>\
         <a class=\"button\" href=\"/segments/{id}/delete?project={p}\">Delete…</a></p>",
        p = url(&project),
        id = url(&summary.segment_id),
    );
    body += "<div class=\"grid2\"><div><h2>Joined and left, by day</h2>";
    body += &table(
        &daily,
        &[
            col("day", "Day", Cell::Text),
            col("joined", "Joined", Cell::Num),
            col("left_", "Left", Cell::Num),
        ],
        &project,
        "No changes yet.",
    );
    body += &format!(
        "</div><div><h2>Rule</h2><pre>{}</pre></div></div>",
        esc(&definition_json)
    );
    body += &format!(
        "<div class=\"grid2\"><div><h2>Members</h2><p><a href=\"/segments/{}/members.csv\">Download all members (CSV)</a></p>",
        url(&summary.segment_id)
    );
    body += &table(
        &members,
        &[
            col("person_id", "Person", Cell::Person),
            col("entered_at", "Entered", Cell::Text),
        ],
        &project,
        "Nobody is in this segment.",
    );
    body += "</div><div><h2>History</h2>";
    body += &table(
        &changes,
        &[
            col("at", "When", Cell::Text),
            col("change", "Change", Cell::Tag),
            col("person_id", "Person", Cell::Person),
        ],
        &project,
        "No history yet.",
    );
    body += "</div></div>";
    Ok(Html(page(&summary.name, "segments", &chrome, &body)))
}

/// The segment's members as a CSV download (see [`store::export`]).
pub(super) async fn segment_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, PageError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let rows = store::export(&state.db, &id).await?;
    // Segment ids are [a-z0-9_-] (checked when added), so the file name needs no quoting.
    let disposition = format!("attachment; filename=\"{id}-members.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(rows),
    )
        .into_response())
}

pub(super) async fn profiles(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> PageResult {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let wanted = params.person.as_deref().map(str::trim).unwrap_or_default();
    let mut body = format!(
        "<h1>Profiles</h1><p class=\"sub\">Look up a person by user id, anonymous id or <code>anon:&lt;id&gt;</code>.</p>\
<form class=\"search\" method=\"get\" action=\"/profiles\"><input type=\"hidden\" name=\"project\" value=\"{}\">\
<input name=\"person\" placeholder=\"user id or anonymous id\" value=\"{}\" autofocus> <button>Look up</button></form>",
        esc(&project),
        esc(wanted)
    );
    if wanted.is_empty() {
        let recent = grid(
            &state.db,
            "recent profiles",
            "SELECT person_id, lifecycle_stage, toString(last_seen_at) AS last_seen_at, page_views_total, orders_total,
                    round(revenue_total, 2) AS revenue, engagement_score
             FROM {db}.profiles_dynamic WHERE project_id = {project:String} ORDER BY last_seen_at DESC, person_id LIMIT 50",
            &[("project", &project)],
        )
        .await?;
        body += "<h2>Recently seen</h2>";
        body += &table(
            &recent,
            &[
                col("person_id", "Person", Cell::Person),
                col("lifecycle_stage", "Stage", Cell::Tag),
                col("last_seen_at", "Last seen", Cell::Text),
                col("page_views_total", "Views", Cell::Num),
                col("orders_total", "Orders", Cell::Num),
                col("revenue", "Revenue", Cell::Num),
                col("engagement_score", "Engagement", Cell::Bar),
            ],
            &project,
            "No profiles yet.",
        );
        return Ok(Html(page("Profiles", "profiles", &chrome, &body)));
    }
    // The person: as given, as an anonymous id, or the user an anonymous id resolves to.
    let resolved = grid(
        &state.db,
        "resolve person",
        "SELECT person_id FROM (
             SELECT person_id, 1 AS rank FROM {db}.profiles_static WHERE project_id = {project:String} AND person_id = {person:String}
             UNION ALL
             SELECT person_id, 2 FROM {db}.profiles_static WHERE project_id = {project:String} AND person_id = concat('anon:', {person:String})
             UNION ALL
             SELECT user_id, 3 FROM {db}.identities WHERE project_id = {project:String} AND anonymous_id = {person:String}
         ) ORDER BY rank LIMIT 1",
        &[("project", &project), ("person", wanted)],
    )
    .await?;
    let Some(person) = resolved.rows.first().and_then(|r| r.first()).cloned() else {
        return Err(PageError::NotFound(format!(
            "No profile for {wanted:?} in project {project:?}."
        )));
    };
    let p = [("project", project.as_str()), ("person", person.as_str())];
    let st = grid(
        &state.db,
        "static profile",
        "SELECT * EXCEPT (version, project_id) FROM {db}.profiles_static WHERE project_id = {project:String} AND person_id = {person:String}",
        &p,
    )
    .await?;
    let dy = grid(
        &state.db,
        "dynamic profile",
        "SELECT * EXCEPT (version, project_id) FROM {db}.profiles_dynamic WHERE project_id = {project:String} AND person_id = {person:String}",
        &p,
    )
    .await?;
    let in_segments = grid(
        &state.db,
        "person segments",
        "SELECT segment_id, toString(entered_at) AS entered_at FROM {db}.segment_members
         WHERE project_id = {project:String} AND person_id = {person:String} ORDER BY segment_id",
        &p,
    )
    .await?;
    let activity = grid(
        &state.db,
        "person activity",
        "SELECT toString(day) AS day, sum(events) AS events, sum(page_views) AS page_views, sum(sessions) AS sessions,
                sum(searches) AS searches, sum(orders) AS orders, round(sum(revenue), 2) AS revenue
         FROM {db}.person_activity WHERE project_id = {project:String} AND person_id = {person:String}
         GROUP BY day ORDER BY day DESC LIMIT 60",
        &p,
    )
    .await?;
    let as_facts = |g: &Grid| -> String {
        match g.rows.first() {
            Some(row) => facts(
                &g.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        let shown = match v.parse::<f64>() {
                            Ok(x) if v.contains('.') && x.is_finite() => number(v),
                            _ => v.clone(),
                        };
                        (c.as_str(), shown)
                    })
                    .collect::<Vec<_>>(),
            ),
            None => {
                "<div class=\"panel\"><div class=\"empty\">Not computed yet.</div></div>".to_owned()
            }
        }
    };
    body += &format!("<h2>{}</h2>", esc(&person));
    body += "<div class=\"grid2\"><div><h2>Static profile</h2>";
    body += &as_facts(&st);
    body += "</div><div><h2>Dynamic profile</h2>";
    body += &as_facts(&dy);
    body += "</div></div><div class=\"grid2\"><div><h2>Segments</h2>";
    body += &table(
        &in_segments,
        &[
            col("segment_id", "Segment", Cell::Segment),
            col("entered_at", "Since", Cell::Text),
        ],
        &project,
        "In no segment.",
    );
    body += "</div><div><h2>Activity by day</h2>";
    body += &table(
        &activity,
        &[
            col("day", "Day", Cell::Text),
            col("events", "Events", Cell::Num),
            col("page_views", "Views", Cell::Num),
            col("sessions", "Sessions", Cell::Num),
            col("searches", "Searches", Cell::Num),
            col("orders", "Orders", Cell::Num),
            col("revenue", "Revenue", Cell::Num),
        ],
        &project,
        "No activity.",
    );
    body += "</div></div>";
    Ok(Html(page(&person, "profiles", &chrome, &body)))
}

pub(super) async fn members(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> PageResult {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let q = params.q.clone().unwrap_or_default();
    let p = [("project", project.as_str()), ("q", q.as_str())];
    let totals = grid(
        &state.db,
        "member totals",
        "SELECT count() AS members, sum(points_balance) AS points, sum(signins) AS signins, round(sum(revenue), 2) AS revenue
         FROM {db}.members WHERE project_id = {project:String}",
        &p,
    )
    .await?;
    let list = grid(
        &state.db,
        "members",
        "SELECT member_id, level, points_balance, points_earned, points_redeemed, signins,
                toString(last_login_at) AS last_login_at, toString(signup_at) AS signup_at,
                city, country, orders, round(revenue, 2) AS revenue
         FROM {db}.members
         WHERE project_id = {project:String} AND ({q:String} = '' OR positionCaseInsensitiveUTF8(member_id, {q:String}) > 0)
         ORDER BY points_balance DESC, member_id LIMIT 200",
        &p,
    )
    .await?;
    let t = |name: &str| {
        totals
            .rows
            .first()
            .map_or("0".to_owned(), |r| number(totals.get(r, name)))
    };
    let mut body = format!(
        "<h1>Members</h1><p class=\"sub\">Points balance is earned − redeemed; level is the latest level_changed or level trait.</p>{}",
        cards(&[
            ("Members", t("members")),
            ("Points outstanding", t("points")),
            ("Sign-ins", t("signins")),
            ("Lifetime revenue", t("revenue")),
        ])
    );
    body += &format!(
        "<h2>Members</h2><form class=\"search\" method=\"get\"><input type=\"hidden\" name=\"project\" value=\"{}\"><input name=\"q\" placeholder=\"member id\" value=\"{}\"> <button>Filter</button></form><br>",
        esc(&project),
        esc(&q)
    );
    body += &table(
        &list,
        &[
            col("member_id", "Member", Cell::Person),
            col("level", "Level", Cell::Tag),
            col("points_balance", "Points", Cell::Bar),
            col("points_earned", "Earned", Cell::Num),
            col("points_redeemed", "Redeemed", Cell::Num),
            col("signins", "Sign-ins", Cell::Num),
            col("last_login_at", "Last login", Cell::Text),
            col("signup_at", "Signed up", Cell::Text),
            col("city", "City", Cell::Text),
            col("country", "Country", Cell::Text),
            col("orders", "Orders", Cell::Num),
            col("revenue", "Revenue", Cell::Num),
        ],
        &project,
        "No members.",
    );
    Ok(Html(page("Members", "members", &chrome, &body)))
}

pub(super) async fn tickets(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> PageResult {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let project = chrome.project.clone();
    let status = match params.status.as_deref() {
        Some(s @ ("open" | "answered" | "resolved" | "reopened")) => s.to_owned(),
        _ => String::new(),
    };
    let p = [("project", project.as_str()), ("status", status.as_str())];
    let totals = grid(
        &state.db,
        "ticket totals",
        "SELECT count() AS tickets, countIf(status != 'resolved') AS unresolved,
                round(quantileExactIf(0.5)(response_seconds, response_seconds IS NOT NULL) / 60, 1) AS response_min,
                round(quantileExactIf(0.5)(resolution_seconds, resolution_seconds IS NOT NULL) / 3600, 2) AS resolution_h,
                round(avgIf(csat, csat IS NOT NULL), 2) AS csat
         FROM {db}.tickets WHERE project_id = {project:String}",
        &p,
    )
    .await?;
    let list = grid(
        &state.db,
        "tickets",
        "SELECT ticket_id, user_id, channel, priority, subject, status, toString(opened_at) AS opened_at,
                round(response_seconds / 60, 1) AS response_min, round(resolution_seconds / 3600, 2) AS resolution_h,
                csat, replies
         FROM {db}.tickets
         WHERE project_id = {project:String} AND ({status:String} = '' OR status = {status:String})
         ORDER BY opened_at DESC, ticket_id LIMIT 200",
        &p,
    )
    .await?;
    let t = |name: &str| {
        totals
            .rows
            .first()
            .map_or("–".to_owned(), |r| or_dash(&number(totals.get(r, name))))
    };
    let mut body = format!(
        "<h1>Tickets</h1><p class=\"sub\">First response is the first agent reply; resolution is opened → resolved.</p>{}<p class=\"tabs\" style=\"margin-top:18px\">",
        cards(&[
            ("Tickets", t("tickets")),
            ("Unresolved", t("unresolved")),
            ("Median 1st response (min)", t("response_min")),
            ("Median resolution (h)", t("resolution_h")),
            ("CSAT", t("csat")),
        ])
    );
    for s in ["", "open", "answered", "resolved", "reopened"] {
        let on = if s == status { " class=\"on\"" } else { "" };
        body += &format!(
            "<a href=\"/tickets?project={}&amp;status={s}\"{on}>{}</a>",
            url(&project),
            if s.is_empty() { "all" } else { s }
        );
    }
    body += "</p>";
    body += &table(
        &list,
        &[
            col("ticket_id", "Ticket", Cell::Text),
            col("user_id", "Customer", Cell::Person),
            col("channel", "Channel", Cell::Text),
            col("priority", "Priority", Cell::Tag),
            col("subject", "Subject", Cell::Text),
            col("status", "Status", Cell::Tag),
            col("opened_at", "Opened", Cell::Text),
            col("response_min", "1st response (min)", Cell::Num),
            col("resolution_h", "Resolution (h)", Cell::Num),
            col("csat", "CSAT", Cell::Num),
            col("replies", "Replies", Cell::Num),
        ],
        &project,
        "No tickets.",
    );
    Ok(Html(page("Tickets", "tickets", &chrome, &body)))
}
