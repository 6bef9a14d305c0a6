//! Refusing to capture what may be private: password/hidden fields, fields named like
//! card numbers, security codes or national ids, and text that looks like such a number.

use crate::text::{Keep, contains_ci, in_list, pieces, runs};

/// Substrings (of a name, `id`, `autocomplete` or class, any case) that mark a field as
/// sensitive.
const SENSITIVE_PARTS: &str = "pass pwd secret token cc- cc_ ccnum cardnum card-num \
card_num creditcard credit-card credit_card cvc cvv csc securitycode security-code \
security_code ssn social-security social_security iban routing accountnumber \
account-number account_number taxid tax-id tax_id one-time-code otp";

/// Whole words (split on non-alphanumerics) that mark a field as sensitive.
const SENSITIVE_WORDS: &str = "cc pin exp cvn sin nin bsn tin";

/// Whether a name-like attribute marks its element as sensitive.
pub fn is_sensitive_name(s: &str) -> bool {
    !s.is_empty()
        && (pieces(SENSITIVE_PARTS, b' ').any(|p| contains_ci(s, p))
            || runs(s, Keep::Alnum).any(|w| in_list(SENSITIVE_WORDS, w)))
}

/// Text that looks like a payment card number (13–19 digits with optional spaces/dashes)
/// or a US social security number (`ddd-dd-dddd`).
pub fn looks_like_number_secret(text: &str) -> bool {
    let mut run = 0;
    let mut best = 0;
    let mut seps = 0;
    for c in text.bytes() {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if (c == b' ' || c == b'-') && run > 0 && seps < 4 {
            seps += 1;
        } else {
            run = 0;
            seps = 0;
        }
    }
    (13..=19).contains(&best) || is_ssn(text)
}

/// A `ddd-dd-dddd` group among the digit-and-dash runs of `text`.
fn is_ssn(text: &str) -> bool {
    runs(text, Keep::DigitDash).any(|w| {
        let mut lens = pieces(w, b'-').map(str::len);
        (lens.next(), lens.next(), lens.next(), lens.next()) == (Some(3), Some(2), Some(4), None)
    })
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

    #[test]
    fn names() {
        for s in [
            "password",
            "new-password",
            "user_pass",
            "cc-number",
            "cardNumber",
            "card_num",
            "CVC",
            "cvv2",
            "card-csc",
            "ssn",
            "social_security_no",
            "iban",
            "routing_number",
            "cc",
            "billing-cc-exp",
            "pin",
            "api_token",
            "one-time-code",
        ] {
            assert!(is_sensitive_name(s), "{s}");
        }
        for s in [
            "",
            "email",
            "q",
            "search",
            "shipping",
            "pinterest",
            "expand",
            "username",
            "accent",
        ] {
            assert!(!is_sensitive_name(s), "{s}");
        }
    }

    #[test]
    fn number_secrets() {
        for s in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "SSN 123-45-6789",
        ] {
            assert!(looks_like_number_secret(s), "{s}");
        }
        for s in [
            "Buy now",
            "Order 12345",
            "+49 30 1234567",
            "2026-11-21",
            "Page 1 of 10",
        ] {
            assert!(!looks_like_number_secret(s), "{s}");
        }
    }

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
