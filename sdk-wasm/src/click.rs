//! Click autocapture: reading the description the JS side makes of a clicked element
//! (`describe` in js/core.js) and deciding what, if anything, is captured.
//!
//! The description is text, so that one wasm↔JS crossing carries it all: records
//! separated by U+001E, fields by U+001F.
//! 1. the clickable element: tag, type, name, id, autocomplete, class, role, text, href,
//!    download (`1` when the attribute is present), and the link's `protocol`, `host` and
//!    `pathname` as the browser parses them;
//! 2. allowed `data-*` attributes: name, value, name, value…;
//! 3. then one record per element from it up towards `<body>` (at most five): tag, id,
//!    class, test attribute name, its value, nth-of-type, count of type (the JS side stops
//!    counting at 2: only "alone or not" matters).
//!
//! Tag names and types arrive in lower case (the DOM's `localName` and `type`).

use alloc::string::String;
use alloc::vec::Vec;

use crate::json::{push_str_lit, str_field};
use crate::selector::{self, Node};
use crate::sensitive::{self, Field};
use crate::text::{int, pieces};
use crate::url;

/// What `Element.closest()` looks for: the elements whose clicks are captured (kept in step
/// with [`selector::is_clickable`]).
pub const CLICKABLE: &str = "a,button,select,textarea,summary,label,\
input:not([type=hidden]):not([type=password]),[role=button],[role=link],[role=menuitem],\
[role=tab],[role=checkbox],[role=radio],[role=switch],[role=option]";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target<'a> {
    pub tag: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub id: &'a str,
    pub autocomplete: &'a str,
    pub class: &'a str,
    pub role: &'a str,
    pub text: &'a str,
    pub href: &'a str,
    pub download_attr: bool,
    /// The link's parts, as the element's `protocol` (with the colon), `host`, `pathname`.
    pub href_protocol: &'a str,
    pub href_host: &'a str,
    pub href_path: &'a str,
    /// Allowed `data-*` attributes: name, value, name, value… (U+001F-separated).
    pub data: &'a str,
    pub path: Vec<Node<'a>>,
}

/// Reads a description; `None` for an empty one (nothing clickable, or opted out).
pub fn parse(desc: &str) -> Option<Target<'_>> {
    let mut records = pieces(desc, 0x1e);
    let first = records.next().filter(|r| !r.is_empty())?;
    let mut f = pieces(first, 0x1f);
    let mut next = move || f.next().unwrap_or("");
    let mut t = Target {
        tag: next(),
        kind: next(),
        name: next(),
        id: next(),
        autocomplete: next(),
        class: next(),
        role: next(),
        text: next(),
        href: next(),
        download_attr: next() == "1",
        href_protocol: next(),
        href_host: next(),
        href_path: next(),
        data: records.next().unwrap_or(""),
        path: Vec::new(),
    };
    for rec in records {
        let mut f = pieces(rec, 0x1f);
        let mut next = move || f.next().unwrap_or("");
        let mut n = Node {
            tag: next(),
            id: next(),
            class: next(),
            test_attr: next(),
            test_value: next(),
            ..Node::default()
        };
        n.nth_of_type = int(next()).map_or(1, |v| v as u32);
        n.of_type = int(next()).map_or(1, |v| v as u32);
        t.path.push(n);
    }
    Some(t)
}

/// A captured click: the wire `click` object and the allowed data attributes as a JSON
/// object (`None` when there are none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// `,"click":{…}` as written into the event.
    pub click: String,
    /// `{"name":"value",…}`.
    pub properties: Option<String>,
}

/// What a click becomes; `None` when the element must not be captured. `scrub` says which
/// query parameters leave the `href`.
pub fn capture(t: &Target<'_>, page_host: &str, scrub: impl Fn(&str) -> bool) -> Option<Captured> {
    if !selector::is_clickable(t.tag, t.role, t.kind) {
        return None;
    }
    let field = Field {
        tag: t.tag,
        kind: t.kind,
        name: t.name,
        id: t.id,
        autocomplete: t.autocomplete,
        class: t.class,
    };
    if sensitive::refuse(&field) {
        return None;
    }
    // Whitespace collapsed, at most 200 characters (as search queries). A form field's
    // text is never kept (a button-like input is named by its type).
    let form_field = matches!(t.tag, "input" | "select" | "textarea");
    let mut text = crate::search::clean(if form_field { "" } else { t.text });
    if sensitive::looks_like_number_secret(&text) {
        text.clear();
    }
    let mut c = String::with_capacity(160);
    str_field(&mut c, ",\"click\":{\"tag\":", t.tag);
    str_field(&mut c, ",\"text\":", &text);
    let (mut outbound, mut download) = (false, false);
    if !t.href.is_empty() {
        let href = url::scrub(t.href, scrub);
        outbound = url::is_outbound(t.href_protocol, t.href_host, page_host);
        download = t.download_attr || url::is_download(t.href_path);
        str_field(&mut c, ",\"href\":", &href);
    }
    str_field(&mut c, ",\"selector\":", &selector::build(&t.path));
    for (key, on) in [(",\"outbound\":", outbound), (",\"download\":", download)] {
        c.push_str(key);
        c.push_str(if on { "true" } else { "false" });
    }
    c.push('}');
    let mut props = String::new();
    let mut f = pieces(t.data, 0x1f);
    while let (Some(k), Some(v)) = (f.next(), f.next()) {
        if !k.is_empty() {
            props.push(if props.is_empty() { '{' } else { ',' });
            push_str_lit(&mut props, k);
            props.push(':');
            push_str_lit(&mut props, v);
        }
    }
    let properties = (!props.is_empty()).then(|| props + "}");
    Some(Captured {
        click: c,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A description as the JS side makes it (leaked: the parsed target borrows it).
    /// The link's protocol, host and path are added from its href (the element's URL parts).
    fn desc(first: &[&str], data: &[&str], path: &[&[&str]]) -> &'static str {
        let mut first = first.to_vec();
        let link = url::split(first.get(8).copied().unwrap_or(""));
        first.extend([link.scheme, link.host, link.path]);
        let mut recs = vec![first.join("\u{1f}"), data.join("\u{1f}")];
        recs.extend(path.iter().map(|p| p.join("\u{1f}")));
        recs.join("\u{1e}").leak()
    }

    fn no_scrub(_: &str) -> bool {
        false
    }

    /// `capture`, with the click read back through the protocol's own type.
    fn cap(
        t: &Target<'_>,
        host: &str,
        scrub: impl Fn(&str) -> bool,
    ) -> Option<(spoor_protocol::Click, Option<String>)> {
        let c = capture(t, host, scrub)?;
        let json = c.click.strip_prefix(",\"click\":").unwrap();
        Some((serde_json::from_str(json).unwrap(), c.properties))
    }

    #[test]
    fn link_click() {
        let d = desc(
            &[
                "a",
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
        let t = parse(d).unwrap();
        let (c, props) = cap(&t, "shop.example", |k| k == "token").unwrap();
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
        let t = parse(desc(
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
        let (c, props) = cap(&t, "shop.example", no_scrub).unwrap();
        assert!(c.outbound && c.download);
        assert_eq!(props, None);
        let t = parse(desc(
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
        assert!(cap(&t, "shop.example", no_scrub).unwrap().0.download);
    }

    #[test]
    fn never_values_and_sensitive_fields_refused() {
        // An input's "text" is never kept, even if the description carried one.
        let t = parse(desc(
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
        assert_eq!(cap(&t, "h", no_scrub).unwrap().0.text, "");
        for first in [
            ["input", "password", "pw", "", "", "", "", "", "", ""],
            ["input", "hidden", "csrf", "", "", "", "", "", "", ""],
            ["input", "text", "cardnumber", "", "", "", "", "", "", ""],
            ["input", "text", "x", "", "cc-csc", "", "", "", "", ""],
            ["button", "", "", "ssn-reveal", "", "", "", "Show", "", ""],
            ["div", "", "", "", "", "", "", "not clickable", "", ""],
        ] {
            let t = parse(desc(&first, &[], &[])).unwrap();
            assert_eq!(cap(&t, "h", no_scrub), None, "{first:?}");
        }
        // Text that looks like a card number is dropped, the click is kept.
        let t = parse(desc(
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
        assert_eq!(cap(&t, "h", no_scrub).unwrap().0.text, "");
        // Role-based clickables count.
        let t = parse(desc(
            &["div", "", "", "", "", "", "button", "Open", "", ""],
            &[],
            &[],
        ))
        .unwrap();
        assert_eq!(cap(&t, "h", no_scrub).unwrap().0.text, "Open");
    }

    #[test]
    fn empty_and_odd_descriptions() {
        assert_eq!(parse(""), None);
        let t = parse("button").unwrap();
        assert_eq!(t.tag, "button");
        assert!(t.path.is_empty() && t.data.is_empty());
        let long = "x".repeat(400);
        let t = parse(desc(
            &["button", "", "", "", "", "", "", &long, "", ""],
            &[],
            &[],
        ))
        .unwrap();
        assert_eq!(cap(&t, "h", no_scrub).unwrap().0.text.len(), 200);
    }
}
