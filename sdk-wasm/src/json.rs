//! Writing the wire JSON: string literals, numbers and fields appended to a `String`.
//!
//! Why not `serde` (with `serde_json` or a custom `Serializer`)? Every `Serialize` impl is
//! instantiated per struct and per option, which cost several KB of wasm; `serde_json` costs
//! tens of KB; `serde-wasm-bindgen` builds a JS object field by field (one wasm→JS call per
//! field). The tracker instead writes each event straight into its queue text, with the
//! parts that do not change (page, context) written once and copied. The shapes are checked
//! against `serde_json` over `spoor_protocol`'s types and against the collector's decoder
//! (tests here, in `tracker`, and in tests/tracker.rs).

use alloc::string::String;

/// Appends `s` as a JSON string literal (with quotes), escaped as `serde_json` does.
pub fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' => {
                out.push_str("\\u00");
                push_hex(out, c as u32 >> 4);
                push_hex(out, c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the lower-case hex digit of `n & 15`.
pub fn push_hex(out: &mut String, n: u32) {
    let d = (n & 15) as u8;
    out.push(char::from(if d < 10 { b'0' + d } else { b'a' - 10 + d }));
}

/// Appends the decimal digits of `n` (no `core::fmt`).
pub fn push_u64(out: &mut String, n: u64) {
    if n >= 10 {
        push_u64(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Appends `key` (written with its comma and colon, e.g. `,"url":`) and `value` as a string.
pub fn str_field(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    push_str_lit(out, value);
}

/// Appends `key` and `value` as a number.
pub fn num_field(out: &mut String, key: &str, value: u64) {
    out.push_str(key);
    push_u64(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json() {
        for s in [
            "",
            "plain",
            "order \"completed\"\n\t\r\\ \u{1}\u{1f}\u{7f} ü 日本 😀 </script>",
        ] {
            let mut out = String::new();
            push_str_lit(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn numbers_and_fields() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        let mut s = String::from("{\"a\":1");
        str_field(&mut s, ",\"b\":", "x\"");
        num_field(&mut s, ",\"c\":", 3);
        s.push('}');
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": "x\"", "c": 3}));
    }
}
