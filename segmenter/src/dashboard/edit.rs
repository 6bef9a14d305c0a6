//! Writing from the dashboard: a segment's definition previewed, saved or deleted — what
//! `spoor-segmenter segments add|delete` do — so marketers need no command line.
//!
//! Saving and deleting hold the writer lease like the commands do, waiting at most
//! [`LEASE_WAIT`] for a run to finish. Browsers send the sign-in with every request, also with
//! a form another site submits, so [`same_origin`] refuses every write a browser says comes
//! from elsewhere.

use std::fmt::Write;
use std::time::Duration;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{esc, number, page, url};
use super::pages::{Params, chrome};
use super::{AppState, PageError};
use crate::segment::store::{self, Preview};
use crate::segment::{Definition, Format};
use crate::{Error, lease};

/// How long a save or delete waits for a running segmenter to release the lease.
pub(super) const LEASE_WAIT: Duration = Duration::from_secs(20);

/// Refuses a write (any method but GET, HEAD and OPTIONS) that a browser says comes from
/// another site: `Sec-Fetch-Site` other than `same-origin` (or `none`, the user's own action),
/// or, from browsers without it, an `Origin` that is not this host. A request with neither
/// header is no browser's (scripts, curl) and is let through: it must sign in like any other.
pub(super) async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || is_same_origin(request.headers())
    {
        next.run(request).await
    } else {
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            origin = ?request.headers().get(header::ORIGIN),
            "refused a cross-site write to the dashboard"
        );
        (
            StatusCode::FORBIDDEN,
            "This change did not come from the dashboard's own pages, so it was refused.",
        )
            .into_response()
    }
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// What a new segment's form starts with.
fn template(project: &str) -> String {
    format!(
        "id = \"shop_visitors_7d\"\nname = \"Visited the shop this week\"\ndescription = \"\"\nproject = {}\n\
         # kind = \"static\"   # frozen when saved; dynamic (the default) is recomputed by every run\n\n\
         [rule]\nall = [\n  {{ visited = \"/shop\", within_days = 7 }},\n  {{ did_not = \"order_completed\", within_days = 7 }},\n]\n",
        toml_string(project)
    )
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// `/segments/new?project=P[&from=ID]`: the editor, empty (a template) or with a saved
/// segment's definition.
pub(super) async fn editor(
    State(state): State<AppState>,
    Query(params): Query<EditParams>,
) -> Result<Response, PageError> {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let text = match params.from.as_deref() {
        Some(id) => {
            let (_, definition) = store::get(&state.db, id).await?;
            toml::to_string(&definition).unwrap_or_else(|_| template(&chrome.project))
        }
        None => template(&chrome.project),
    };
    let body = editor_body(&chrome.project, &text, None, "");
    Ok(Html(page("New segment", "segments", &chrome, &body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct EditParams {
    project: Option<String>,
    from: Option<String>,
}

/// The editor's form.
#[derive(Debug, Deserialize)]
pub(super) struct Submitted {
    #[serde(default)]
    project: String,
    #[serde(default)]
    definition: String,
    /// `preview` or `save`.
    #[serde(default)]
    action: String,
}

/// The editor posted: `preview` shows who the rule selects now; `save` stores it (under the
/// lease) and goes to the segment's page. An invalid definition comes back with the error.
pub(super) async fn submit(
    State(state): State<AppState>,
    Form(form): Form<Submitted>,
) -> Result<Response, PageError> {
    let chrome = chrome(&state, Some(&form.project)).await?;
    let project = chrome.project.clone();
    let shown = |status: StatusCode, body: String| {
        (
            status,
            Html(page("New segment", "segments", &chrome, &body)),
        )
            .into_response()
    };
    let definition = match Definition::parse(&form.definition, Format::Toml) {
        Ok(d) => d,
        Err(error) => {
            let body = editor_body(&project, &form.definition, None, &error.to_string());
            return Ok(shown(StatusCode::BAD_REQUEST, body));
        }
    };
    if form.action != "save" {
        let preview = match store::preview(&state.db, &definition).await {
            Ok(p) => p,
            Err(Error::Segment(error)) => {
                let body = editor_body(&project, &form.definition, None, &error.to_string());
                return Ok(shown(StatusCode::BAD_REQUEST, body));
            }
            Err(other) => return Err(other.into()),
        };
        let body = editor_body(&project, &form.definition, Some(&preview), "");
        return Ok(shown(StatusCode::OK, body));
    }
    let saved = lease::with_lease(
        &state.db,
        LEASE_WAIT,
        |_| {},
        store::add(&state.db, &definition, None),
    )
    .await;
    match saved {
        Ok(_) => {
            tracing::info!(segment = definition.id, "segment saved from the dashboard");
            Ok(Redirect::to(&format!(
                "/segments/{}?project={}",
                url(&definition.id),
                url(&project)
            ))
            .into_response())
        }
        Err(Error::Segment(error)) => {
            let body = editor_body(&project, &form.definition, None, &error.to_string());
            Ok(shown(StatusCode::BAD_REQUEST, body))
        }
        Err(Error::Busy(who)) => {
            let body = editor_body(&project, &form.definition, None, &busy("saved", &who));
            Ok(shown(StatusCode::SERVICE_UNAVAILABLE, body))
        }
        Err(other) => Err(other.into()),
    }
}

/// Why `what` ("saved", "deleted") did not happen: the lease stayed with `who`.
fn busy(what: &str, who: &str) -> String {
    format!(
        "Not {what}: a segmenter run is writing ({who}) and did not finish within {} s. Try again in a minute.",
        LEASE_WAIT.as_secs()
    )
}

/// `/segments/{id}/delete`: asks before deleting (the form posts to the same address).
pub(super) async fn confirm_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let chrome = chrome(&state, params.project.as_deref()).await?;
    let (summary, _) = store::get(&state.db, &id).await?;
    let body = format!(
        "<h1>Delete {name}?</h1><p class=\"sub\">Its {members} current members are removed from it; who joined and \
         left it, and when, stays in the history. A segment saved again under the id <code>{id}</code> starts anew.</p>\
         <form class=\"inline\" method=\"post\" action=\"/segments/{idu}/delete?project={p}\">\
         <button class=\"danger\">Delete the segment</button></form> \
         <a href=\"/segments/{idu}?project={p}\">Keep it</a>",
        name = esc(&summary.name),
        members = number(&summary.members.to_string()),
        id = esc(&summary.segment_id),
        idu = url(&summary.segment_id),
        p = url(&chrome.project),
    );
    Ok(Html(page("Delete segment", "segments", &chrome, &body)).into_response())
}

/// `POST /segments/{id}/delete`: deletes the segment (its history stays), under the lease.
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, PageError> {
    let deleted =
        lease::with_lease(&state.db, LEASE_WAIT, |_| {}, store::delete(&state.db, &id)).await;
    match deleted {
        Ok(()) => {
            tracing::info!(segment = id, "segment deleted from the dashboard");
            let project = params.project.unwrap_or_default();
            Ok(Redirect::to(&format!("/segments?project={}", url(&project))).into_response())
        }
        Err(Error::Busy(who)) => {
            Ok((StatusCode::SERVICE_UNAVAILABLE, busy("deleted", &who)).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

/// The rule keys and profile fields, under the editor (the fields from the whitelist itself).
fn reference() -> String {
    use crate::segment::rule::{FIELDS, FieldType};
    let mut fields = String::new();
    for (ty, name) in [
        (FieldType::Int, "whole numbers"),
        (FieldType::Float, "numbers"),
        (FieldType::Time, "times (or use within_days = D)"),
        (FieldType::Bool, "true / false"),
        (FieldType::Text, "text"),
        (
            FieldType::Stage,
            "new, active, returning, loyal, at_risk, churned",
        ),
    ] {
        let names: Vec<String> = FIELDS
            .iter()
            .filter(|f| f.ty == ty)
            .map(|f| format!("<code>{}</code>", f.name))
            .collect();
        if !names.is_empty() {
            let _ = write!(fields, "<dt>{name}</dt><dd>{}</dd>", names.join(" "));
        }
    }
    format!(
        "<details><summary>Rule reference</summary><div class=\"panel\"><dl>\
         <dt><code>all = [ … ]</code>, <code>any = [ … ]</code>, <code>not = {{ … }}</code></dt><dd>rules combined</dd>\
         <dt><code>field = F, op = O, value = V</code></dt><dd>a profile field; O is eq, ne, gt, gte, lt, lte, between, in, not_in, \
         contains, starts_with, before, after, within_days, not_within_days</dd>\
         <dt><code>did = E, at_least = N, at_most = M, within_days = D</code></dt><dd>did event E (a type such as page_view, \
         click, search, or a track event's name such as order_completed) that often in the last D days</dd>\
         <dt><code>did_not = E, within_days = D</code></dt><dd>did not do E</dd>\
         <dt><code>first_did = E, within_days = D</code></dt><dd>did E for the first time in the last D days</dd>\
         <dt><code>searched = \"term\", within_days = D</code></dt><dd>searched for something containing the term</dd>\
         <dt><code>visited = \"/path\", within_days = D</code></dt><dd>viewed a page whose path starts with it</dd>\
         {fields}<dt>traits</dt><dd><code>traits.KEY</code>: the latest value identify gave KEY</dd></dl></div></details>"
    )
}

fn editor_body(project: &str, text: &str, preview: Option<&Preview>, error: &str) -> String {
    let mut out = String::from(
        "<h1>New segment</h1><p class=\"sub\">A segment is a rule over people's profiles and behaviour, written in TOML \
         (the same format as <code>spoor-segmenter segments add FILE</code>; the rule keys are listed in the segmenter's README). \
         <b>Preview</b> shows who it selects now; <b>Save</b> stores it — a saved id replaces the segment of that id. \
         A dynamic segment gets its members at once, from the latest run, and every run keeps them current.</p>",
    );
    if !error.is_empty() {
        let _ = write!(out, "<div class=\"error\">{}</div>", esc(error));
    }
    let _ = write!(
        out,
        "<form class=\"query\" method=\"post\" action=\"/segments/new\"><input type=\"hidden\" name=\"project\" value=\"{}\">\
         <textarea name=\"definition\" rows=\"16\" spellcheck=\"false\">{}</textarea>\
         <div class=\"row\"><button name=\"action\" value=\"preview\">Preview</button> \
         <button name=\"action\" value=\"save\">Save</button></div></form>",
        esc(project),
        esc(text)
    );
    out += &reference();
    if let Some(p) = preview {
        let _ = write!(
            out,
            "<div class=\"cards\"><div class=\"card\"><div class=\"label\">People it selects now</div><div class=\"value\">{}</div></div></div>",
            number(&p.people.to_string())
        );
        if let Some(ms) = p.as_of_ms {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map(|t| t.date().to_string())
                .unwrap_or_default();
            let _ = write!(
                out,
                "<p class=\"sub\">From the profiles as of {at}, the latest run's day.</p>"
            );
        }
        if !p.sample.is_empty() {
            out += "<h2>Some of them</h2><div class=\"panel\"><table><tbody>";
            for (project, person) in &p.sample {
                let _ = write!(
                    out,
                    "<tr><td><a href=\"/profiles?project={}&amp;person={}\">{}</a></td><td>{}</td></tr>",
                    url(project),
                    url(person),
                    esc(person),
                    esc(project)
                );
            }
            out += "</tbody></table></div>";
        }
    }
    out
}
