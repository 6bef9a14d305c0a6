//! Click autocapture: reading the description the JS side makes of a clicked element
//! (`describe` in js/core.js) and deciding what, if anything, is captured.
//!
//! The description is text, so that one wasm↔JS crossing carries it all: records
//! separated by U+001E, fields by U+001F.
//! 1. the clickable element: tag, type, name, id, autocomplete, class, role, text, href,
//!    download (`1` when the attribute is present);
//! 2. allowed `data-*` attributes: name, value, name, value…;
//! 3. then one record per element from it up towards `<body>` (at most five): tag, id,
//!    class, test attribute name, its value, nth-of-type, count of type (the JS side stops
//!    counting at 2: only "alone or not" matters).

use spoor_protocol::Click;

use crate::json::push_str_lit;
use crate::selector::{self, Node};
use crate::sensitive::{self, Field};
use crate::url;

/// What `Element.closest()` looks for: the elements whose clicks are captured (kept in step
/// with [`selector::is_clickable`]).
pub const CLICKABLE: &str = "a,button,select,textarea,summary,label,\
input:not([type=hidden]):not([type=password]),[role=button],[role=link],[role=menuitem],\
[role=tab],[role=checkbox],[role=radio],[role=switch],[role=option]";

const RS: char = '\u{1e}';
const FS: char = '\u{1f}';

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub tag: String,
    pub kind: String,
    pub name: String,
    pub id: String,
    pub autocomplete: String,
    pub class: String,
    pub role: String,
    pub text: String,
    pub href: String,
    pub download_attr: bool,
    pub data: Vec<(String, String)>,
    pub path: Vec<Node>,
}

fn field(it: &mut std::str::Split<'_, char>) -> String {
    it.next().unwrap_or("").into()
}

/// Reads a description; `None` for an empty one (nothing clickable, or opted out).
pub fn parse(desc: &str) -> Option<Target> {
    let mut records = desc.split(RS);
    let first = records.next().filter(|r| !r.is_empty())?;
    let mut f = first.split(FS);
    let mut t = Target {
        tag: field(&mut f).to_ascii_lowercase(),
        kind: field(&mut f).to_ascii_lowercase(),
        name: field(&mut f),
        id: field(&mut f),
        autocomplete: field(&mut f),
        class: field(&mut f),
        role: field(&mut f),
        text: field(&mut f),
        href: field(&mut f),
        download_attr: f.next() == Some("1"),
        ..Target::default()
    };
    if let Some(data) = records.next() {
        let mut f = data.split(FS);
        while let (Some(k), Some(v)) = (f.next(), f.next()) {
            if !k.is_empty() {
                t.data.push((k.into(), v.into()));
            }
        }
    }
    for rec in records {
        let mut f = rec.split(FS);
        let tag = field(&mut f).to_ascii_lowercase();
        let id = field(&mut f);
        let class = field(&mut f);
        let test_name = field(&mut f);
        let test_value = field(&mut f);
        t.path.push(Node {
            tag,
            id,
            class,
            test_attr: (!test_name.is_empty()).then_some((test_name, test_value)),
            nth_of_type: f.next().and_then(|n| n.parse().ok()).unwrap_or(1),
            of_type: f.next().and_then(|n| n.parse().ok()).unwrap_or(1),
        });
    }
    Some(t)
}

/// What a captured click becomes: the `click` payload and the allowed data attributes as a
/// JSON object (`None` when there are none). `None` overall when the element must not be
/// captured. `scrub` says which query parameters leave the `href`.
pub fn capture(
    t: &Target,
    page_host: &str,
    scrub: impl Fn(&str) -> bool,
) -> Option<(Click, Option<String>)> {
    if !selector::is_clickable(&t.tag, &t.role, &t.kind) {
        return None;
    }
    let field = Field {
        tag: &t.tag,
        kind: &t.kind,
        name: &t.name,
        id: &t.id,
        autocomplete: &t.autocomplete,
        class: &t.class,
    };
    if sensitive::refuse(&field) {
        return None;
    }
    let form_field = matches!(t.tag.as_str(), "input" | "select" | "textarea");
    // Whitespace collapsed, at most 200 characters (as search queries).
    let mut text = if form_field {
        // Never a value; a button-like input is named by its type.
        String::new()
    } else {
        crate::search::clean(&t.text)
    };
    if sensitive::looks_like_number_secret(&text) {
        text.clear();
    }
    let href = (!t.href.is_empty()).then(|| url::scrub(&t.href, &scrub));
    let (outbound, download) = match &href {
        Some(h) => (
            url::is_outbound(h, page_host),
            t.download_attr || url::is_download(h),
        ),
        None => (false, false),
    };
    let props = (!t.data.is_empty()).then(|| {
        let mut s = String::from("{");
        for (i, (k, v)) in t.data.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_str_lit(&mut s, k);
            s.push(':');
            push_str_lit(&mut s, v);
        }
        s.push('}');
        s
    });
    Some((
        Click {
            tag: t.tag.clone(),
            text,
            href,
            selector: selector::build(&t.path),
            outbound,
            download,
        },
        props,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(first: &[&str], data: &[&str], path: &[&[&str]]) -> String {
        let mut recs = vec![first.join("\u{1f}"), data.join("\u{1f}")];
        recs.extend(path.iter().map(|p| p.join("\u{1f}")));
        recs.join("\u{1e}")
    }

    fn no_scrub(_: &str) -> bool {
        false
    }

    #[test]
    fn link_click() {
        let d = desc(
            &[
                "A",
                "",
                "",
                "",
                "",
                "btn",
                "",
                "  Buy \n now ",
                "https://shop.example/buy?token=1&x=2",
                "",
            ],
            &["product-id", "42", "variant", "red \"x\""],
            &[
                &["a", "", "btn", "", "", "2", "3"],
                &["div", "hero", "", "", "", "1", "1"],
            ],
        );
        let t = parse(&d).unwrap();
        let (c, props) = capture(&t, "shop.example", |k| k == "token").unwrap();
        assert_eq!(c.tag, "a");
        assert_eq!(c.text, "Buy now");
        assert_eq!(c.href.as_deref(), Some("https://shop.example/buy?x=2"));
        assert_eq!(c.selector, "div#hero > a.btn:nth-of-type(2)");
        assert!(!c.outbound && !c.download);
        assert_eq!(
            props.as_deref(),
            Some(r#"{"product-id":"42","variant":"red \"x\""}"#)
        );
        let v: serde_json::Value = serde_json::from_str(props.as_deref().unwrap()).unwrap();
        assert_eq!(v["variant"], "red \"x\"");
    }

    #[test]
    fn outbound_and_download_flags() {
        let t = parse(&desc(
            &[
                "a",
                "",
                "",
                "",
                "",
                "",
                "",
                "Docs",
                "https://other.example/x.pdf",
                "",
            ],
            &[],
            &[&["a", "", "", "", "", "1", "1"]],
        ))
        .unwrap();
        let (c, props) = capture(&t, "shop.example", no_scrub).unwrap();
        assert!(c.outbound && c.download);
        assert_eq!(props, None);
        let t = parse(&desc(
            &[
                "a",
                "",
                "",
                "",
                "",
                "",
                "",
                "Get",
                "https://shop.example/get",
                "1",
            ],
            &[],
            &[],
        ))
        .unwrap();
        assert!(capture(&t, "shop.example", no_scrub).unwrap().0.download);
    }

    #[test]
    fn never_values_and_sensitive_fields_refused() {
        // An input's "text" is never kept, even if the description carried one.
        let t = parse(&desc(
            &[
                "input",
                "submit",
                "go",
                "",
                "",
                "",
                "",
                "secret value",
                "",
                "",
            ],
            &[],
            &[],
        ))
        .unwrap();
        assert_eq!(capture(&t, "h", no_scrub).unwrap().0.text, "");
        for first in [
            ["input", "password", "pw", "", "", "", "", "", "", ""],
            ["input", "hidden", "csrf", "", "", "", "", "", "", ""],
            ["input", "text", "cardnumber", "", "", "", "", "", "", ""],
            ["input", "text", "x", "", "cc-csc", "", "", "", "", ""],
            ["button", "", "", "ssn-reveal", "", "", "", "Show", "", ""],
            ["div", "", "", "", "", "", "", "not clickable", "", ""],
        ] {
            let t = parse(&desc(&first, &[], &[])).unwrap();
            assert_eq!(capture(&t, "h", no_scrub), None, "{first:?}");
        }
        // Text that looks like a card number is dropped, the click is kept.
        let t = parse(&desc(
            &[
                "button",
                "",
                "",
                "",
                "",
                "",
                "",
                "4111 1111 1111 1111",
                "",
                "",
            ],
            &[],
            &[],
        ))
        .unwrap();
        assert_eq!(capture(&t, "h", no_scrub).unwrap().0.text, "");
        // Role-based clickables count.
        let t = parse(&desc(
            &["div", "", "", "", "", "", "button", "Open", "", ""],
            &[],
            &[],
        ))
        .unwrap();
        assert_eq!(capture(&t, "h", no_scrub).unwrap().0.text, "Open");
    }

    #[test]
    fn empty_and_odd_descriptions() {
        assert_eq!(parse(""), None);
        let t = parse("button").unwrap();
        assert_eq!(t.tag, "button");
        assert!(t.path.is_empty() && t.data.is_empty());
        let long = "x".repeat(400);
        let t = parse(&desc(
            &["button", "", "", "", "", "", "", &long, "", ""],
            &[],
            &[],
        ))
        .unwrap();
        assert_eq!(capture(&t, "h", no_scrub).unwrap().0.text.len(), 200);
    }
}
