//! Byte-level string helpers. core's `str` searchers (char patterns with `memchr`, the
//! two-way substring searcher, reverse searchers) and integer parsing cost kilobytes of
//! wasm; these do what the SDK needs with one small loop each, and never panic. Separators
//! are ASCII bytes, so every cut falls on a character boundary.

/// Where the first `sep` is. A plain loop: `Iterator::position` is a `try_fold` that
/// opt-level "z" keeps out of line, with the iterator's state in memory (measured: each
/// such search costs about twice the bytes).
fn find(s: &str, sep: u8) -> Option<usize> {
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b == sep {
            return Some(i);
        }
    }
    None
}

/// `s` without the byte at `i` (an ASCII separator): the text before and after it.
fn around(s: &str, i: usize) -> Option<(&str, &str)> {
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The text before and after the first `sep`.
pub fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    around(s, find(s, sep)?)
}

/// The text before and after the last `sep`.
pub fn rcut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let mut i = s.len();
    loop {
        i = i.checked_sub(1)?;
        if s.as_bytes().get(i) == Some(&sep) {
            return around(s, i);
        }
    }
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

/// Which bytes a [`runs`] run keeps. A code rather than a `fn(u8) -> bool`: a function
/// pointer is an indirect call, and one `call_indirect` keeps wasm's function table —
/// and through it `core::fmt` (referenced by `alloc`'s out-of-memory handler) — alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// ASCII digits.
    Digit,
    /// Anything but `-` and `_`.
    NoDash,
    /// Anything but ASCII whitespace.
    NoSpace,
}

impl Keep {
    fn keeps(self, b: u8) -> bool {
        match self {
            Keep::Digit => b.is_ascii_digit(),
            Keep::NoDash => b != b'-' && b != b'_',
            Keep::NoSpace => !b.is_ascii_whitespace(),
        }
    }
}

/// The maximal non-empty runs of bytes of `s` that `keep` keeps (every class answers the
/// same for all non-ASCII bytes, so that runs are whole characters).
pub fn runs(s: &str, keep: Keep) -> Runs<'_> {
    Runs { rest: s, keep }
}

pub struct Runs<'a> {
    rest: &'a str,
    keep: Keep,
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (keep, b) = (self.keep, self.rest.as_bytes());
        let mut start = 0;
        while !keep.keeps(*b.get(start)?) {
            start += 1;
        }
        let mut end = start;
        while b.get(end).is_some_and(|&c| keep.keeps(c)) {
            end += 1;
        }
        let run = self.rest.get(start..end)?;
        self.rest = self.rest.get(end..)?;
        Some(run)
    }
}

/// Whether `needle` occurs in `hay`, ignoring ASCII case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let mut i = 0;
    while let Some(w) = h.get(i..i + n.len()) {
        if w.eq_ignore_ascii_case(n) {
            return true;
        }
        i += 1;
    }
    false
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
    let mut n = 0u64;
    for &b in s.as_bytes() {
        let d = b.wrapping_sub(b'0');
        // No `checked_mul`: on wasm32 it is a 128-bit multiplication (`__multi3`).
        if d > 9 || n > (u64::MAX - u64::from(d)) / 10 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
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
        let v: Vec<&str> = runs("ab-12 é_x9", Keep::NoDash).collect();
        assert_eq!(v, ["ab", "12 é", "x9"]);
        assert_eq!(runs("--", Keep::Digit).next(), None);
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
