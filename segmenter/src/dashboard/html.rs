//! HTML building blocks: escaping, the page frame, tables and cards. Every value that comes
//! from data passes through [`esc`].

use std::fmt::Write;

use super::data::Grid;

/// Escapes text for HTML element content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub(super) fn url(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink:#1d2330; --muted:#6b7385; --line:#e4e7ee; --bg:#f6f7fb; --card:#fff; --accent:#3b5bdb; --good:#2b8a3e; --bad:#c92a2a; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header { background:#151a26; color:#fff; padding:0 24px; display:flex; align-items:center; gap:28px; height:56px; }
header .brand { font-weight:700; letter-spacing:.02em; }
header .brand span { color:#8fa6ff; }
header nav a { color:#c9d1e4; text-decoration:none; margin-right:18px; padding:17px 0; border-bottom:2px solid transparent; }
header nav a.on, header nav a:hover { color:#fff; border-bottom-color:#8fa6ff; }
header nav { margin-right:auto; }
header select { background:#232a3b; color:#fff; border:1px solid #3a4257; border-radius:6px; padding:4px 8px; }
main { max-width:1200px; margin:0 auto; padding:24px; }
h1 { font-size:22px; margin:0 0 4px; }
h2 { font-size:16px; margin:28px 0 10px; }
p.sub { color:var(--muted); margin:0 0 18px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(170px,1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:22px; font-weight:650; margin-top:2px; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:auto; }
table { border-collapse:collapse; width:100%; font-size:14px; }
th, td { text-align:left; padding:7px 12px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.03em; background:#fafbfd; position:sticky; top:0; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr:last-child td { border-bottom:0; }
tr:hover td { background:#f8f9fd; }
a { color:var(--accent); }
.tabs a { display:inline-block; padding:5px 12px; border:1px solid var(--line); border-radius:20px; margin-right:6px; text-decoration:none; color:var(--ink); background:#fff; }
.tabs a.on { background:var(--accent); border-color:var(--accent); color:#fff; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:18px; }
@media (max-width: 800px) { .grid2 { grid-template-columns:1fr; } }
dl { display:grid; grid-template-columns:max-content 1fr; gap:6px 16px; margin:0; padding:14px 16px; }
dt { color:var(--muted); }
dd { margin:0; word-break:break-word; }
.tag { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; background:#edf0ff; color:#364fc7; }
.tag.entered { background:#e6f6ea; color:var(--good); }
.tag.exited { background:#fdeaea; color:var(--bad); }
.empty { color:var(--muted); padding:18px; }
form.search input { padding:7px 10px; border:1px solid var(--line); border-radius:6px; width:280px; font:inherit; }
form.search button { padding:7px 14px; border:0; border-radius:6px; background:var(--accent); color:#fff; font:inherit; cursor:pointer; }
form.query { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; margin-bottom:18px; }
form.query .row { display:flex; gap:8px; align-items:center; margin-bottom:6px; }
form.query .row b { color:var(--muted); width:18px; text-align:right; font-weight:600; }
form.query select, form.query input { padding:6px 9px; border:1px solid var(--line); border-radius:6px; font:inherit; background:#fff; }
form.query input[name=v], form.query input[name=page], form.query input[name=event] { width:300px; }
form.query button { padding:7px 14px; border:0; border-radius:6px; background:var(--accent); color:#fff; font:inherit; cursor:pointer; }
form.query textarea { width:100%; font:13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; border:1px solid var(--line); border-radius:6px; padding:10px; margin-bottom:8px; }
form.inline { display:inline; }
details { margin-bottom:18px; }
summary { cursor:pointer; color:var(--accent); margin-bottom:8px; }
button.danger { padding:5px 12px; border:1px solid var(--bad); border-radius:6px; background:#fff; color:var(--bad); font:inherit; cursor:pointer; }
a.button { display:inline-block; padding:5px 12px; border:1px solid var(--accent); border-radius:6px; text-decoration:none; margin-right:6px; }
.error { background:#fdeaea; color:var(--bad); border-radius:8px; padding:10px 14px; margin-bottom:14px; }
td.heat { text-align:center; font-variant-numeric:tabular-nums; }
pre { background:#151a26; color:#e6e9f2; padding:14px; border-radius:10px; overflow:auto; font-size:13px; }
header .fresh { font-size:13px; color:#b9c2d9; white-space:nowrap; }
header .fresh.stale { color:#ffb86b; }
.bar { display:inline-block; height:8px; background:#b8c5ff; border-radius:4px; vertical-align:middle; margin-left:8px; }
"#;

/// What the frame of every page shows besides the page itself.
#[derive(Debug, Default)]
pub(super) struct Chrome {
    /// The projects with data, and the one shown.
    pub(super) projects: Vec<String>,
    pub(super) project: String,
    /// The latest finished run (UTC time) and its age in seconds; `None`: no run yet.
    pub(super) updated: Option<(String, u64)>,
}

/// Data older than this is shown as stale: `run --every` has stopped, or is failing.
const STALE_AFTER_SECONDS: u64 = 3600;

/// "Updated 3 min ago" (stale after an hour), or that no run has happened yet.
fn freshness(updated: Option<&(String, u64)>) -> String {
    let Some((at, age)) = updated else {
        return "<div class=\"fresh stale\" title=\"Numbers appear after the first run: spoor-segmenter run\">No run yet</div>".to_owned();
    };
    let ago = match *age {
        0..60 => "just now".to_owned(),
        60..7200 => format!("{} min ago", age / 60),
        7200..172_800 => format!("{} h ago", age / 3600),
        _ => format!("{} days ago", age / 86_400),
    };
    let stale = if *age > STALE_AFTER_SECONDS {
        " stale"
    } else {
        ""
    };
    format!(
        "<div class=\"fresh{stale}\" title=\"Latest segmenter run finished at {} UTC\">Updated {ago}</div>",
        esc(at)
    )
}

/// The page frame: header with navigation, project picker and freshness, then `body`.
pub(super) fn page(title: &str, section: &str, chrome: &Chrome, body: &str) -> String {
    let (projects, project) = (&chrome.projects, chrome.project.as_str());
    let mut nav = String::new();
    for (href, label) in [
        ("/reports", "Reports"),
        ("/funnels", "Funnels"),
        ("/paths", "Paths"),
        ("/retention", "Retention"),
        ("/segments", "Segments"),
        ("/profiles", "Profiles"),
        ("/members", "Members"),
        ("/tickets", "Tickets"),
    ] {
        let on = if href.trim_start_matches('/') == section {
            " class=\"on\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<a href=\"{href}?project={}\"{on}>{label}</a>",
            url(project)
        );
    }
    let mut picker = String::new();
    if !projects.is_empty() {
        let _ = write!(
            picker,
            "<form method=\"get\"><select name=\"project\" onchange=\"{PICKER_SCRIPT}\" aria-label=\"Project\">"
        );
        for p in projects {
            let selected = if p == project { " selected" } else { "" };
            let _ = write!(
                picker,
                "<option value=\"{0}\"{selected}>{0}</option>",
                esc(p)
            );
        }
        picker.push_str("</select></form>");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Spoor</title><style>{STYLE}</style></head><body>\
<header><div class=\"brand\">Spoor <span>segments</span></div><nav>{nav}</nav>{picker}{fresh}</header>\
<main>{body}</main></body></html>",
        esc(title),
        fresh = freshness(chrome.updated.as_ref()),
    )
}

/// The pages' one script: the project picker's `onchange` (the Content-Security-Policy allows
/// it by its hash, see `dashboard::app`).
pub(super) const PICKER_SCRIPT: &str = "this.form.submit()";

/// A column of a rendered table: the result column, its heading, and how to show a cell.
pub(super) struct Col<'a> {
    pub(super) name: &'a str,
    pub(super) label: &'a str,
    pub(super) kind: Cell,
}

#[derive(Clone, Copy)]
pub(super) enum Cell {
    Text,
    Num,
    /// A number with a bar scaled to the column's largest value.
    Bar,
    /// A percentage from a 0–1 ratio.
    Pct,
    /// A link to the person's profile.
    Person,
    /// A link to the segment.
    Segment,
    Tag,
}

pub(super) const fn col<'a>(name: &'a str, label: &'a str, kind: Cell) -> Col<'a> {
    Col { name, label, kind }
}

/// Renders `grid` as a table with `cols`; `project` goes into links.
pub(super) fn table(grid: &Grid, cols: &[Col<'_>], project: &str, empty: &str) -> String {
    if grid.rows.is_empty() {
        return format!(
            "<div class=\"panel\"><div class=\"empty\">{}</div></div>",
            esc(empty)
        );
    }
    let mut out = String::from("<div class=\"panel\"><table><thead><tr>");
    for c in cols {
        let class = if matches!(c.kind, Cell::Num | Cell::Bar | Cell::Pct) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", esc(c.label));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &grid.rows {
        out.push_str("<tr>");
        for c in cols {
            let v = grid.get(row, c.name);
            let cell = match c.kind {
                Cell::Text => format!("<td>{}</td>", esc(v)),
                Cell::Num => format!("<td class=\"num\">{}</td>", esc(&number(v))),
                Cell::Bar => {
                    let max = grid
                        .rows
                        .iter()
                        .filter_map(|r| grid.get(r, c.name).parse::<f64>().ok())
                        .fold(0.0_f64, f64::max);
                    let width = v
                        .parse::<f64>()
                        .ok()
                        .filter(|_| max > 0.0)
                        .map_or(0.0, |x| 60.0 * x / max);
                    format!(
                        "<td class=\"num\">{}<span class=\"bar\" style=\"width:{width:.0}px\"></span></td>",
                        esc(&number(v))
                    )
                }
                Cell::Pct => format!(
                    "<td class=\"num\">{}</td>",
                    v.parse::<f64>()
                        .map_or_else(|_| esc(v), |x| format!("{:.1}%", 100.0 * x))
                ),
                Cell::Person => format!(
                    "<td><a href=\"/profiles?project={}&amp;person={}\">{}</a></td>",
                    url(project),
                    url(v),
                    esc(v)
                ),
                Cell::Segment => format!(
                    "<td><a href=\"/segments/{}?project={}\">{}</a></td>",
                    url(v),
                    url(project),
                    esc(v)
                ),
                Cell::Tag => format!("<td><span class=\"tag {0}\">{0}</span></td>", esc(v)),
            };
            out.push_str(&cell);
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A `<select>` of `options` (value, label) with `chosen` selected; a chosen value the options
/// lack (typed into the URL) is kept as one more option, labelled by itself.
pub(super) fn select(name: &str, options: &[(String, String)], chosen: &str) -> String {
    let mut out = format!("<select name=\"{}\">", esc(name));
    for (value, label) in options {
        let on = if value == chosen { " selected" } else { "" };
        let _ = write!(
            out,
            "<option value=\"{}\"{on}>{}</option>",
            esc(value),
            esc(label)
        );
    }
    if !options.iter().any(|(value, _)| value == chosen) {
        let _ = write!(
            out,
            "<option value=\"{0}\" selected>{0}</option>",
            esc(chosen)
        );
    }
    out + "</select>"
}

/// Key figures as cards: (label, value).
pub(super) fn cards(items: &[(&str, String)]) -> String {
    let mut out = String::from("<div class=\"cards\">");
    for (label, value) in items {
        let _ = write!(
            out,
            "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div></div>",
            esc(label),
            esc(value)
        );
    }
    out.push_str("</div>");
    out
}

/// Definition list of (label, value).
pub(super) fn facts(items: &[(&str, String)]) -> String {
    let mut out = String::from("<div class=\"panel\"><dl>");
    for (label, value) in items {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(label), esc(value));
    }
    out.push_str("</dl></div>");
    out
}

/// Numbers with thousands separators; at most two decimals.
pub(super) fn number(text: &str) -> String {
    let Ok(x) = text.parse::<f64>() else {
        return text.to_owned();
    };
    if !x.is_finite() {
        return text.to_owned();
    }
    let rounded = if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    };
    let (int, frac) = rounded
        .split_once('.')
        .map_or((rounded.as_str(), ""), |(i, f)| (i, f));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(url("a b&c/é"), "a%20b%26c%2F%C3%A9");
        assert_eq!(number("1234567"), "1,234,567");
        assert_eq!(number("-1234.5"), "-1,234.50");
        assert_eq!(number("0.333333"), "0.33");
        assert_eq!(number("n/a"), "n/a");
    }
}
