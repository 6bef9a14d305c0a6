//! Site-search detection: from URL parameters, from search-form submits, and the results
//! count a page exposes.

use crate::url;

/// Longest query kept, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// A query found in the page URL: the first configured parameter (in configuration order)
/// with a non-blank value.
pub fn query_from_url(query_string: &str, params: &[String]) -> Option<String> {
    if query_string.is_empty() {
        return None;
    }
    params
        .iter()
        .filter_map(|p| url::param(query_string, p))
        .map(|v| clean(&v))
        .find(|v| !v.is_empty())
}

/// Trims, collapses whitespace and caps the length.
pub fn clean(q: &str) -> String {
    let mut out = String::with_capacity(q.len().min(MAX_QUERY_CHARS));
    for (n, word) in q.split_ascii_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    match out.char_indices().nth(MAX_QUERY_CHARS) {
        Some((i, _)) => out.get(..i).unwrap_or("").into(),
        None => out,
    }
}

/// What the SDK knows about a form control, read from the DOM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    /// Lower-case `type` attribute (`text` when absent).
    pub kind: String,
    pub name: String,
    pub id: String,
    pub role: String,
}

/// What the SDK knows about a submitted form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// `role="search"` on the form or an ancestor.
    pub role_search: bool,
    pub action: String,
    pub id: String,
    pub class: String,
    pub controls: Vec<Control>,
}

fn says_search(s: &str) -> bool {
    crate::url::has(&s.to_ascii_lowercase(), "search")
}

/// The index of the control holding the search query, when `form` is a search form.
/// A form counts as a search form when it has a `type=search` or `role=searchbox` control,
/// or a text control named like a search parameter, or it is marked as search itself
/// (`role=search`, or "search" in its action, id or class) and has a text control.
pub fn search_control(form: &Form, params: &[String]) -> Option<usize> {
    let text = |c: &Control| matches!(c.kind.as_str(), "text" | "search" | "");
    if let Some(i) = form
        .controls
        .iter()
        .position(|c| c.kind == "search" || c.role == "searchbox")
    {
        return Some(i);
    }
    if let Some(i) = form
        .controls
        .iter()
        .position(|c| text(c) && params.iter().any(|p| p.eq_ignore_ascii_case(&c.name)))
    {
        return Some(i);
    }
    let marked = form.role_search
        || says_search(&form.action)
        || says_search(&form.id)
        || says_search(&form.class);
    if marked {
        return form
            .controls
            .iter()
            .position(|c| text(c) && !crate::sensitive::is_sensitive_name(&c.name));
    }
    None
}

/// Window within which the same query seen again is the same search (a form submit
/// followed by the results page whose URL carries the query; a reload).
pub const REPEAT_MS: u64 = 30_000;

/// Whether `query` at `now` repeats the last recorded search.
pub fn is_repeat(last: Option<(&str, u64)>, query: &str, now: u64) -> bool {
    matches!(last, Some((q, t)) if q == query && now.saturating_sub(t) <= REPEAT_MS)
}

/// Encodes the last search for storage: `time|query`.
pub fn encode_last(query: &str, at: u64) -> String {
    let mut s = String::new();
    crate::json::push_u64(&mut s, at);
    s.push('|');
    s.push_str(query);
    s
}

pub fn decode_last(s: &str) -> Option<(&str, u64)> {
    let (t, q) = s.split_once('|')?;
    Some((q, t.parse().ok()?))
}

/// A results count as pages show it: `42`, `1,234`, `1.234`, `1 234`. Anything else is no
/// count.
pub fn parse_count(s: &str) -> Option<u32> {
    let s = s.trim_ascii();
    if s.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    let mut digits = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => {
                n = n.checked_mul(10)?.checked_add(c as u32 - '0' as u32)?;
                digits += 1;
            }
            ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'' if digits > 0 => {}
            _ => return None,
        }
    }
    (digits > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<String> {
        crate::config::DEFAULT_SEARCH_PARAMS
            .iter()
            .map(|s| (*s).into())
            .collect()
    }

    #[test]
    fn url_queries() {
        let p = params();
        for (qs, want) in [
            ("q=red+shoes", Some("red shoes")),
            ("page=2&query=%20boots%20%20%20brown ", Some("boots brown")),
            ("q=&search=hats", Some("hats")),
            ("q=+++", None),
            ("sort=price", None),
            ("", None),
            ("S=caps", Some("caps")),
            ("keyword=a&q=b", Some("b")),
        ] {
            assert_eq!(query_from_url(qs, &p).as_deref(), want, "{qs}");
        }
        assert_eq!(
            query_from_url("term=x", &["term".into()]).as_deref(),
            Some("x")
        );
        let long = "a".repeat(500);
        assert_eq!(query_from_url(&format!("q={long}"), &p).unwrap().len(), 200);
        assert_eq!(clean(&"é".repeat(300)).chars().count(), 200);
    }

    fn control(kind: &str, name: &str) -> Control {
        Control {
            kind: kind.into(),
            name: name.into(),
            ..Control::default()
        }
    }

    #[test]
    fn forms() {
        let p = params();
        let plain = |controls| Form {
            controls,
            ..Form::default()
        };
        let f = plain(vec![control("hidden", "csrf"), control("search", "x")]);
        assert_eq!(search_control(&f, &p), Some(1));
        let f = plain(vec![control("email", "email"), control("text", "q")]);
        assert_eq!(search_control(&f, &p), Some(1));
        // A login form is no search form.
        let f = plain(vec![control("text", "user"), control("password", "pw")]);
        assert_eq!(search_control(&f, &p), None);
        // Marked forms take their first text control, skipping sensitive names.
        let mut f = plain(vec![
            control("text", "card_number"),
            control("text", "find"),
        ]);
        assert_eq!(search_control(&f, &p), None);
        f.role_search = true;
        assert_eq!(search_control(&f, &p), Some(1));
        let f = Form {
            action: "/Search/results".into(),
            ..plain(vec![control("", "term")])
        };
        assert_eq!(search_control(&f, &p), Some(0));
        let f = plain(vec![Control {
            role: "searchbox".into(),
            ..control("text", "x")
        }]);
        assert_eq!(search_control(&f, &p), Some(0));
    }

    #[test]
    fn repeats() {
        assert!(!is_repeat(None, "a", 0));
        assert!(is_repeat(Some(("a", 1_000)), "a", 1_000 + REPEAT_MS));
        assert!(!is_repeat(Some(("a", 1_000)), "a", 1_001 + REPEAT_MS));
        assert!(!is_repeat(Some(("a", 1_000)), "b", 1_000));
        let s = encode_last("x|y", 42);
        assert_eq!(decode_last(&s), Some(("x|y", 42)));
        assert_eq!(decode_last("nope"), None);
    }

    #[test]
    fn counts() {
        for (s, want) in [
            ("42", Some(42)),
            (" 1,234 ", Some(1234)),
            ("1.234.567", Some(1_234_567)),
            ("1\u{a0}234", Some(1234)),
            ("0", Some(0)),
            ("", None),
            ("about 12", None),
            ("-3", None),
            (",5", None),
            ("99999999999", None),
        ] {
            assert_eq!(parse_count(s), want, "{s:?}");
        }
    }
}
