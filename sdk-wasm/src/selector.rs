//! Stable CSS selectors for clicked elements, built from an abstract description of the
//! element and its ancestors (the DOM glue reads it; the rules live here).
//!
//! Stable means: survives re-renders and deploys where possible. So an element's own `id` or
//! test attribute anchors the selector, generated-looking ids and classes (hashes, counters,
//! CSS-in-JS) and state classes (`active`, `is-open`) are left out, and `:nth-of-type` is
//! used only to tell same-tag siblings apart.

use alloc::string::String;

use crate::text::{Keep, in_list, pieces, runs};

/// One element on the path from the clicked element up to `<body>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Node<'a> {
    /// Lower-case tag name.
    pub tag: &'a str,
    pub id: &'a str,
    /// The `class` attribute as written.
    pub class: &'a str,
    /// The first of [`TEST_ATTRS`] on the element (empty: none) and its value.
    pub test_attr: &'a str,
    pub test_value: &'a str,
    /// 1-based position among siblings with the same tag.
    pub nth_of_type: u32,
    /// Number of siblings (including itself) with the same tag (the JS side stops at 2).
    pub of_type: u32,
}

/// Attributes tests and people put on elements to name them (the JS side looks for them).
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
        _ => in_list(
            "button link menuitem tab checkbox radio switch option",
            role,
        ),
    }
}

fn ident_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let starts_badly = match b {
        [first, ..] if first.is_ascii_digit() => true,
        [b'-', second, ..] => second.is_ascii_digit(),
        _ => false,
    };
    !b.is_empty()
        && b.len() <= 40
        && !starts_badly
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Ids and classes that look machine-made: a run of 3+ digits, or a segment mixing
/// letters and digits (`css-1x9f2a`, `sc-bdVaJa3`), or a framework prefix.
pub fn looks_generated(s: &str) -> bool {
    runs(s, Keep::Digit).any(|r| r.len() >= 3)
        || pieces("css- sc- ember jsx- svelte- ng-", b' ').any(|p| s.starts_with(p))
        || runs(s, Keep::NoDash).any(|seg| {
            seg.len() >= 5
                && seg.bytes().any(|c| c.is_ascii_digit())
                && seg.bytes().any(|c| c.is_ascii_alphabetic())
        })
}

const STATE_CLASSES: &str =
    "active selected open opened closed focus focused hover disabled show hidden current";

fn stable_class(c: &str) -> bool {
    ident_ok(c)
        && !looks_generated(c)
        && !in_list(STATE_CLASSES, c)
        && !c.starts_with("is-")
        && !c.starts_with("has-")
}

/// Whether `node` anchors the selector (its own id or test attribute identifies it).
fn anchored(node: &Node<'_>) -> bool {
    ident_ok(node.id) && !looks_generated(node.id) || !node.test_attr.is_empty()
}

fn push_segment(out: &mut String, node: &Node<'_>) {
    out.push_str(node.tag);
    if ident_ok(node.id) && !looks_generated(node.id) {
        out.push('#');
        out.push_str(node.id);
    } else if !node.test_attr.is_empty() {
        out.push('[');
        out.push_str(node.test_attr);
        out.push_str("=\"");
        for c in node.test_value.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("\"]");
    } else {
        let classes = runs(node.class, Keep::NoSpace).filter(|c| stable_class(c));
        for c in classes.take(MAX_CLASSES) {
            out.push('.');
            out.push_str(c);
        }
        if node.of_type > 1 {
            out.push_str(":nth-of-type(");
            crate::json::push_u64(out, u64::from(node.nth_of_type));
            out.push(')');
        }
    }
}

/// Builds the selector for `path[0]` (the clicked element), `path[1..]` its ancestors up to
/// but excluding `<body>`: from the nearest anchored element (or the fifth) down.
pub fn build(path: &[Node<'_>]) -> String {
    let top = path.len().min(MAX_DEPTH);
    let top = path
        .iter()
        .take(top)
        .position(anchored)
        .map_or(top, |i| i + 1);
    let mut out = String::new();
    for node in path.iter().take(top).rev() {
        if !out.is_empty() {
            out.push_str(" > ");
        }
        push_segment(&mut out, node);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(tag: &'a str, id: &'a str, class: &'a str, nth: u32, of: u32) -> Node<'a> {
        Node {
            tag,
            id,
            class,
            nth_of_type: nth,
            of_type: of,
            ..Node::default()
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
        b.test_attr = "data-testid";
        b.test_value = "buy \"now\"";
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
