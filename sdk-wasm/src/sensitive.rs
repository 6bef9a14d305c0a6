//! Refusing to capture what may be private: password/hidden fields, fields named like
//! card numbers, security codes or national ids, and text that looks like such a number.

use crate::pattern;

/// What marks a name, `id`, `autocomplete` or class (any case) as sensitive: a part such as
/// `pass`, `cvc` or `card-num`, or a whole word (between non-alphanumerics) such as `cc`,
/// `pin` or `exp`.
const SENSITIVE_NAME: &str = "pass|pwd|secret|token|cc[-_]|ccnum|card[-_]?num|credit[-_]?card|\
cvc|cvv|csc|security[-_]?code|ssn|social[-_]security|iban|routing|account[-_]?number|\
tax[-_]?id|one-time-code|otp|(^|[^a-z0-9])(cc|pin|exp|cvn|sin|nin|bsn|tin)([^a-z0-9]|$)";

/// Whether a name-like attribute marks its element as sensitive.
pub fn is_sensitive_name(s: &str) -> bool {
    pattern::test(SENSITIVE_NAME, s)
}

/// Text that looks like a payment card number — 13 to 19 digits, single spaces or dashes
/// between them allowed — or a US social security number (`123-45-6789`).
const NUMBER_SECRET: &str = "(^|[^0-9])[0-9]([ -]?[0-9]){12,18}([^0-9]|$)|\
(^|[^0-9-])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9-]|$)";

/// Whether visible text looks like a card number or a social security number.
pub fn looks_like_number_secret(text: &str) -> bool {
    pattern::test(NUMBER_SECRET, text)
}

/// What decides whether an element may be captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field<'a> {
    pub tag: &'a str,
    /// Lower-case `type` attribute.
    pub kind: &'a str,
    pub name: &'a str,
    pub id: &'a str,
    pub autocomplete: &'a str,
    pub class: &'a str,
}

/// Whether a click on this element must not be captured at all.
pub fn refuse(f: &Field<'_>) -> bool {
    let input = matches!(f.tag, "input" | "textarea" | "select");
    (input && matches!(f.kind, "password" | "hidden"))
        || is_sensitive_name(f.name)
        || is_sensitive_name(f.id)
        || is_sensitive_name(f.autocomplete)
        || (input && is_sensitive_name(f.class))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Names and number secrets: the shared cases (tests/cases/patterns.rs, src/pattern.rs).

    #[test]
    fn refusals() {
        let f = |tag, kind, name| Field {
            tag,
            kind,
            name,
            ..Field::default()
        };
        assert!(refuse(&f("input", "password", "x")));
        assert!(refuse(&f("input", "hidden", "x")));
        assert!(refuse(&f("input", "text", "cc-number")));
        assert!(refuse(&f("button", "", "cvc-help")));
        assert!(!refuse(&f("input", "submit", "go")));
        assert!(!refuse(&f("a", "", "")));
        assert!(refuse(&Field {
            tag: "input",
            autocomplete: "cc-exp",
            ..Field::default()
        }));
        // Classes count only on form fields (a "token" class on a div is styling).
        assert!(refuse(&Field {
            tag: "input",
            class: "js-card-number",
            ..Field::default()
        }));
        assert!(!refuse(&Field {
            tag: "div",
            class: "token-list",
            ..Field::default()
        }));
    }
}
