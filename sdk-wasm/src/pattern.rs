//! Text patterns and percent-decoding done by the browser's own engines.
//!
//! The rules stay here, in Rust, as pattern text ([`crate::sensitive`], [`crate::url`]);
//! what runs them in the shipped SDK is the browser's `RegExp` and `decodeURIComponent`
//! (imports of src/sdk.rs, js/core.js). Hand-written matchers and a percent-decoder with
//! UTF-8 checks cost about 0.9 KB of gzipped wasm that every page would download for
//! engines it already has (measured: sdk-wasm/README.md "Size").
//!
//! Patterns are written in the common subset of JavaScript's and the `regex` crate's
//! syntax — literals, `[…]` classes spelled with ASCII ranges (not `\d`, whose meaning
//! differs), `|`, `(…)`, `?`, `{m,n}`, `^`, `$`, no look-around — and match ASCII case
//! insensitively. Native builds (the tests) run the same text with the `regex` crate, and
//! the browser suites (tests/web.rs) run it in Chromium.

use alloc::string::String;

/// Whether `pattern` (case-insensitive) matches somewhere in `text`. `'static`: the browser
/// side compiles each pattern once, keyed by where its text lives.
#[cfg(target_arch = "wasm32")]
pub fn test(pattern: &'static str, text: &str) -> bool {
    !text.is_empty() && crate::sdk::re(pattern, text)
}

/// Native builds: the same pattern text, by the `regex` crate, on bytes (as ASCII).
#[cfg(not(target_arch = "wasm32"))]
pub fn test(pattern: &'static str, text: &str) -> bool {
    let re = regex::bytes::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(false)
        .build();
    !text.is_empty() && re.is_ok_and(|re| re.is_match(text.as_bytes()))
}

/// Percent-decoding with `+` as space, as `decodeURIComponent`: a malformed escape or a
/// result that is not UTF-8 gives back the input unchanged.
#[cfg(target_arch = "wasm32")]
pub fn decode(s: &str) -> String {
    crate::sdk::unescape(s)
}

/// Native builds: the same rules in Rust.
#[cfg(not(target_arch = "wasm32"))]
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        bytes.push(match c {
            b'+' => b' ',
            b'%' => {
                let digit = |h: u8| char::from(h).to_digit(16);
                let Some((Some(hi), Some(lo))) =
                    b.get(i..i + 2).map(|h| (digit(h[0]), digit(h[1])))
                else {
                    return s.into();
                };
                i += 2;
                (hi * 16 + lo) as u8
            }
            c => c,
        });
    }
    String::from_utf8(bytes).unwrap_or_else(|_| s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    mod cases {
        include!("../tests/cases/patterns.rs");
    }

    #[test]
    fn patterns_match_case_insensitively_and_never_on_empty_text() {
        assert!(test("ab[0-9]", "xAB7"));
        assert!(!test("ab[0-9]", "ab"));
        assert!(!test("x?", ""));
    }

    #[test]
    fn rules_give_the_answers_of_the_shared_cases() {
        for &(s, want) in cases::SENSITIVE_NAMES {
            assert_eq!(crate::sensitive::is_sensitive_name(s), want, "{s:?}");
        }
        for &(s, want) in cases::NUMBER_SECRETS {
            assert_eq!(crate::sensitive::looks_like_number_secret(s), want, "{s:?}");
        }
        for &(s, want) in cases::DOWNLOADS {
            assert_eq!(crate::url::is_download(s), want, "{s:?}");
        }
        for &(s, want) in cases::DECODED {
            assert_eq!(decode(s), want, "{s:?}");
        }
    }
}
