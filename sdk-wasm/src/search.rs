//! Site-search detection: from URL parameters, from search-form submits, and the results
//! count a page exposes.

use alloc::string::String;
use alloc::vec::Vec;

use crate::text::{cut, in_list, int, pieces};
use crate::url;

/// Longest query kept, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// A query found in the page URL: the first configured parameter (in configuration order)
/// with a non-blank value.
pub fn query_from_url(query_string: &str, params: &str) -> Option<String> {
    if query_string.is_empty() {
        return None;
    }
    pieces(params, b' ')
        .filter_map(|p| url::param(query_string, p))
        .map(|v| clean(&v))
        .find(|v| !v.is_empty())
}

/// Trims, collapses whitespace and caps the length (in characters).
pub fn clean(q: &str) -> String {
    let mut out = String::new();
    let (mut n, mut space) = (0, false);
    for c in q.chars() {
        if c.is_ascii_whitespace() {
            space = n > 0;
            continue;
        }
        if space {
            if n == MAX_QUERY_CHARS {
                break;
            }
            out.push(' ');
            n += 1;
            space = false;
        }
        if n == MAX_QUERY_CHARS {
            break;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// What the SDK knows about a form control, read from the DOM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control<'a> {
    /// The control's `type` property (lower case; `text` for a plain input).
    pub kind: &'a str,
    pub name: &'a str,
    pub id: &'a str,
    pub role: &'a str,
}

/// What the SDK knows about a submitted form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form<'a> {
    /// `role="search"` on the form or an ancestor.
    pub role_search: bool,
    pub action: &'a str,
    pub id: &'a str,
    pub class: &'a str,
    pub controls: Vec<Control<'a>>,
}

/// Reads the JS side's form description (records U+001E, fields U+001F): first the form —
/// role=search (`1`), action, id, class, method — then one record per control — type,
/// name, id, role. Returns the form and whether it submits with GET.
pub fn parse_form(desc: &str) -> (Form<'_>, bool) {
    let mut recs = pieces(desc, 0x1e);
    let mut f = pieces(recs.next().unwrap_or(""), 0x1f);
    let mut next = move || f.next().unwrap_or("");
    let mut form = Form {
        role_search: next() == "1",
        action: next(),
        id: next(),
        class: next(),
        controls: Vec::new(),
    };
    let get = !next().eq_ignore_ascii_case("post");
    for rec in recs {
        let mut c = pieces(rec, 0x1f);
        let mut next = move || c.next().unwrap_or("");
        form.controls.push(Control {
            kind: next(),
            name: next(),
            id: next(),
            role: next(),
        });
    }
    (form, get)
}

fn says_search(s: &str) -> bool {
    url::has(s, "search")
}

/// The index of the control holding the search query, when `form` is a search form.
/// A form counts as a search form when it has a `type=search` or `role=searchbox` control,
/// or a text control named like a search parameter, or it is marked as search itself
/// (`role=search`, or "search" in its action, id or class) and has a text control.
pub fn search_control(form: &Form<'_>, params: &str) -> Option<usize> {
    let text = |c: &&Control<'_>| matches!(c.kind, "text" | "search" | "");
    let c = &form.controls;
    c.iter()
        .position(|c| c.kind == "search" || c.role == "searchbox")
        .or_else(|| c.iter().position(|c| text(&c) && in_list(params, c.name)))
        .or_else(|| {
            let marked = form.role_search
                || says_search(form.action)
                || says_search(form.id)
                || says_search(form.class);
            c.iter()
                .position(|c| marked && text(&c) && !crate::sensitive::is_sensitive_name(c.name))
        })
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
    let (t, q) = cut(s, b'|')?;
    Some((q, int(t)?))
}

/// A results count as pages show it: `42`, `1,234`, `1.234`, `1 234`. Anything else is no
/// count.
pub fn parse_count(s: &str) -> Option<u32> {
    let mut n: u32 = 0;
    let mut digits = 0;
    for c in s.trim_ascii().chars() {
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

    fn params() -> &'static str {
        crate::config::DEFAULT_SEARCH_PARAMS
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
            assert_eq!(query_from_url(qs, p).as_deref(), want, "{qs}");
        }
        assert_eq!(query_from_url("term=x", "term").as_deref(), Some("x"));
        let long = "a".repeat(500);
        assert_eq!(query_from_url(&format!("q={long}"), p).unwrap().len(), 200);
        assert_eq!(clean(&"é".repeat(300)).chars().count(), 200);
    }

    fn control<'a>(kind: &'a str, name: &'a str) -> Control<'a> {
        Control {
            kind,
            name,
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
        assert_eq!(search_control(&f, p), Some(1));
        let f = plain(vec![control("email", "email"), control("text", "q")]);
        assert_eq!(search_control(&f, p), Some(1));
        // A login form is no search form.
        let f = plain(vec![control("text", "user"), control("password", "pw")]);
        assert_eq!(search_control(&f, p), None);
        // Marked forms take their first text control, skipping sensitive names.
        let mut f = plain(vec![
            control("text", "card_number"),
            control("text", "find"),
        ]);
        assert_eq!(search_control(&f, p), None);
        f.role_search = true;
        assert_eq!(search_control(&f, p), Some(1));
        let f = Form {
            action: "/Search/results",
            ..plain(vec![control("", "term")])
        };
        assert_eq!(search_control(&f, p), Some(0));
        let f = plain(vec![Control {
            role: "searchbox",
            ..control("text", "x")
        }]);
        assert_eq!(search_control(&f, p), Some(0));
    }

    #[test]
    fn form_descriptions() {
        let (f, get) = parse_form(
            "1\u{1f}/find\u{1f}f\u{1f}c\u{1f}POST\u{1e}search\u{1f}q\u{1f}i\u{1f}searchbox\u{1e}text",
        );
        assert!(f.role_search && !get);
        assert_eq!((f.action, f.id, f.class), ("/find", "f", "c"));
        assert_eq!(
            f.controls,
            [
                Control {
                    kind: "search",
                    name: "q",
                    id: "i",
                    role: "searchbox"
                },
                Control {
                    kind: "text",
                    ..Control::default()
                }
            ]
        );
        let (f, get) = parse_form("");
        assert!(get && f.controls.is_empty() && !f.role_search);
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
