//! Byte-level string helpers. core's `str` searchers (char patterns with `memchr`, the
//! two-way substring searcher, reverse searchers) and integer parsing cost kilobytes of
//! wasm; these do what the SDK needs with one small loop each, and never panic. Separators
//! are ASCII bytes, so every cut falls on a character boundary.

/// The text before and after the first `sep`.
pub fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The text before and after the last `sep`.
pub fn rcut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().rposition(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `s` cut at the first `sep`; all of `s` and `""` when there is none.
pub fn cut_or_all(s: &str, sep: u8) -> (&str, &str) {
    cut(s, sep).unwrap_or((s, ""))
}

/// The pieces of `s` between `sep` bytes, like `str::split`.
pub fn pieces(s: &str, sep: u8) -> Pieces<'_> {
    Pieces { rest: Some(s), sep }
}

pub struct Pieces<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let (head, tail) = match cut(s, self.sep) {
            Some((h, t)) => (h, Some(t)),
            None => (s, None),
        };
        self.rest = tail;
        Some(head)
    }
}

/// The maximal non-empty runs of bytes of `s` for which `keep` holds (`keep` must hold
/// for ASCII bytes only, so that runs are whole characters).
pub fn runs(s: &str, keep: fn(u8) -> bool) -> Runs<'_> {
    Runs { rest: s, keep }
}

pub struct Runs<'a> {
    rest: &'a str,
    keep: fn(u8) -> bool,
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let keep = self.keep;
        let start = self.rest.bytes().position(keep)?;
        let rest = self.rest.get(start..)?;
        let end = rest.bytes().position(|b| !keep(b)).unwrap_or(rest.len());
        self.rest = rest.get(end..)?;
        rest.get(..end)
    }
}

/// Whether `needle` occurs in `hay`, ignoring ASCII case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..=h.len().saturating_sub(n.len())).any(|i| {
        h.get(i..i + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(n))
    })
}

/// Whether `word` is one of the space-separated words of `list`, ignoring ASCII case.
pub fn in_list(list: &str, word: &str) -> bool {
    pieces(list, b' ').any(|w| w.eq_ignore_ascii_case(word))
}

/// A decimal number of digits only (no sign, no spaces); `None` when empty, not all digits
/// or over `u64`.
pub fn int(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        let d = b.wrapping_sub(b'0');
        (d < 10).then_some(())?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_pieces() {
        assert_eq!(cut("a=b=c", b'='), Some(("a", "b=c")));
        assert_eq!(rcut("a=b=c", b'='), Some(("a=b", "c")));
        assert_eq!(cut("abc", b'='), None);
        assert_eq!(cut_or_all("abc", b'='), ("abc", ""));
        assert_eq!(cut("日=本", b'='), Some(("日", "本")));
        let v: Vec<&str> = pieces("a,,b,", b',').collect();
        assert_eq!(v, ["a", "", "b", ""]);
        assert_eq!(pieces("", b',').collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn byte_runs() {
        let v: Vec<&str> = runs("ab-12 é_x9", |b| b.is_ascii_alphanumeric()).collect();
        assert_eq!(v, ["ab", "12", "x9"]);
        assert_eq!(runs("--", |b| b.is_ascii_digit()).next(), None);
    }

    #[test]
    fn matching() {
        assert!(contains_ci("Card-Number", "card-num"));
        assert!(contains_ci("x", "") && contains_ci("", ""));
        assert!(!contains_ci("ab", "abc") && !contains_ci("", "a"));
        assert!(in_list("q query s", "QUERY") && !in_list("q query s", "que"));
    }

    #[test]
    fn integers() {
        assert_eq!(int("0"), Some(0));
        assert_eq!(int("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "-1", "1 ", "1e3", "18446744073709551616", "½"] {
            assert_eq!(int(bad), None, "{bad}");
        }
    }
}
