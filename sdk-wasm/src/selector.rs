//! Stable CSS selectors for clicked elements, built from an abstract description of the
//! element and its ancestors (the DOM glue reads it; the rules live here).
//!
//! Stable means: survives re-renders and deploys where possible. So an element's own `id` or
//! test attribute anchors the selector, generated-looking ids and classes (hashes, counters,
//! CSS-in-JS) and state classes (`active`, `is-open`) are left out, and `:nth-of-type` is
//! used only to tell same-tag siblings apart.

/// One element on the path from the clicked element up to `<body>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// Lower-case tag name.
    pub tag: String,
    pub id: String,
    /// The `class` attribute as written.
    pub class: String,
    /// The first of `data-testid`, `data-test`, `data-cy`, `data-spoor-id` with its value.
    pub test_attr: Option<(String, String)>,
    /// 1-based position among siblings with the same tag.
    pub nth_of_type: u32,
    /// Number of siblings (including itself) with the same tag.
    pub of_type: u32,
}

/// Attributes tests and people put on elements to name them.
pub const TEST_ATTRS: [&str; 4] = ["data-testid", "data-test", "data-cy", "data-spoor-id"];

/// Most path segments in a selector.
const MAX_DEPTH: usize = 5;
/// Most classes per segment.
const MAX_CLASSES: usize = 2;

/// Elements whose clicks are captured: the clicked element or its nearest such ancestor.
pub fn is_clickable(tag: &str, role: &str, kind: &str) -> bool {
    match tag {
        "a" | "button" | "select" | "textarea" | "summary" | "label" => true,
        "input" => !matches!(kind, "hidden" | "password"),
        _ => matches!(
            role,
            "button" | "link" | "menuitem" | "tab" | "checkbox" | "radio" | "switch" | "option"
        ),
    }
}

fn ident_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && !b[0].is_ascii_digit()
        && (b[0] != b'-' || b.len() < 2 || !b[1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Ids and classes that look machine-made: a run of 3+ digits, or a segment mixing
/// letters and digits (`css-1x9f2a`, `sc-bdVaJa3`), or a framework prefix.
pub fn looks_generated(s: &str) -> bool {
    let mut run = 0;
    for c in s.bytes() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    const PREFIXES: [&str; 6] = ["css-", "sc-", "ember", "jsx-", "svelte-", "ng-"];
    PREFIXES.iter().any(|p| s.starts_with(p))
        || s.split(['-', '_']).any(|seg| {
            seg.len() >= 5
                && seg.bytes().any(|c| c.is_ascii_digit())
                && seg.bytes().any(|c| c.is_ascii_alphabetic())
        })
}

const STATE_CLASSES: [&str; 12] = [
    "active", "selected", "open", "opened", "closed", "focus", "focused", "hover", "disabled",
    "show", "hidden", "current",
];

fn stable_class(c: &str) -> bool {
    ident_ok(c)
        && !looks_generated(c)
        && !STATE_CLASSES.contains(&c)
        && !c.starts_with("is-")
        && !c.starts_with("has-")
}

fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push('[');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("\"]");
}

/// Builds the selector for `path[0]` (the clicked element), `path[1..]` its ancestors up to
/// but excluding `<body>`.
pub fn build(path: &[Node]) -> String {
    let mut segments: Vec<String> = Vec::new();
    for node in path.iter().take(MAX_DEPTH) {
        let mut seg = String::from(node.tag.as_str());
        if ident_ok(&node.id) && !looks_generated(&node.id) {
            seg.push('#');
            seg.push_str(&node.id);
            segments.push(seg);
            break;
        }
        if let Some((name, value)) = &node.test_attr {
            push_attr(&mut seg, name, value);
            segments.push(seg);
            break;
        }
        for c in node
            .class
            .split_ascii_whitespace()
            .filter(|c| stable_class(c))
            .take(MAX_CLASSES)
        {
            seg.push('.');
            seg.push_str(c);
        }
        if node.of_type > 1 {
            seg.push_str(":nth-of-type(");
            crate::json::push_u64(&mut seg, u64::from(node.nth_of_type));
            seg.push(')');
        }
        segments.push(seg);
    }
    let mut out = String::new();
    for (i, seg) in segments.iter().rev().enumerate() {
        if i > 0 {
            out.push_str(" > ");
        }
        out.push_str(seg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(tag: &str, id: &str, class: &str, nth: u32, of: u32) -> Node {
        Node {
            tag: tag.into(),
            id: id.into(),
            class: class.into(),
            test_attr: None,
            nth_of_type: nth,
            of_type: of,
        }
    }

    #[test]
    fn selectors() {
        // An id anchors.
        let p = [node("a", "", "btn", 1, 1), node("div", "hero", "", 1, 1)];
        assert_eq!(build(&p), "div#hero > a.btn");
        // Generated ids, hashed and state classes are skipped; siblings told apart.
        let p = [
            node("li", "item-12345", "css-1x9f2a card active is-open", 3, 5),
            node("ul", ":r1:", "list", 1, 1),
            node("main", "", "", 1, 1),
        ];
        assert_eq!(build(&p), "main > ul.list > li.card:nth-of-type(3)");
        // Test attributes anchor, quoted.
        let mut b = node("button", "", "primary large xl", 1, 1);
        b.test_attr = Some(("data-testid".into(), "buy \"now\"".into()));
        let p = [b, node("div", "app", "", 1, 1)];
        assert_eq!(build(&p), r#"button[data-testid="buy \"now\""]"#);
        // Depth is capped at five segments.
        let deep: Vec<Node> = (0..8).map(|_| node("div", "", "", 1, 1)).collect();
        assert_eq!(build(&deep).matches("div").count(), 5);
        // At most two classes.
        let p = [node("span", "", "a b c", 1, 1)];
        assert_eq!(build(&p), "span.a.b");
        assert_eq!(build(&[]), "");
    }

    #[test]
    fn generated_names() {
        for s in [
            "css-1x9f2a",
            "sc-bdVaJa",
            "ember123",
            "item-12345",
            "a1b2c3d4",
            "jsx-99",
        ] {
            assert!(looks_generated(s), "{s}");
        }
        for s in [
            "btn",
            "nav-item",
            "col-md-6",
            "h1",
            "card_title",
            "product-list",
        ] {
            assert!(!looks_generated(s), "{s}");
        }
        assert!(!ident_ok("1abc") && !ident_ok("a b") && !ident_ok(":r1:") && ident_ok("a_b-c"));
    }

    #[test]
    fn clickables() {
        assert!(is_clickable("a", "", ""));
        assert!(is_clickable("button", "", ""));
        assert!(is_clickable("input", "", "submit"));
        assert!(!is_clickable("input", "", "password"));
        assert!(is_clickable("div", "button", ""));
        assert!(!is_clickable("div", "", ""));
        assert!(!is_clickable("span", "presentation", ""));
    }
}
