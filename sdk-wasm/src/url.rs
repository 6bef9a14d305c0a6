//! URL text handling without a URL parser: split, query parameters, scrubbing, campaign
//! (UTM) fingerprint, SPA route keys, outbound and download detection.

/// Whether `needle` occurs in `hay` — a plain byte scan: the inputs are short, and core's
/// two-way string searcher costs about 2 KB of wasm.
pub fn has(hay: &str, needle: &str) -> bool {
    find(hay, needle).is_some()
}

/// Byte offset of the first `needle` in `hay`.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w == n)
}

/// The parts of an absolute URL (or of a relative one, with empty `origin`/`host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// `scheme://host[:port]`, or empty.
    pub origin: &'a str,
    /// `host[:port]`, without user info, or empty.
    pub host: &'a str,
    pub path: &'a str,
    /// Without the `?`.
    pub query: &'a str,
    /// Without the `#`.
    pub hash: &'a str,
}

pub fn split(url: &str) -> Parts<'_> {
    let (before_hash, hash) = url.split_once('#').unwrap_or((url, ""));
    let (before_query, query) = before_hash.split_once('?').unwrap_or((before_hash, ""));
    let (origin, host, path) = match find(before_query, "://") {
        Some(i) => {
            let after = before_query.get(i + 3..).unwrap_or("");
            let end = after.find('/').unwrap_or(after.len());
            let authority = after.get(..end).unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let origin_len = i + 3 + end;
            (
                before_query.get(..origin_len).unwrap_or(""),
                host,
                after.get(end..).unwrap_or(""),
            )
        }
        None => ("", "", before_query),
    };
    Parts {
        origin,
        host,
        path,
        query,
        hash,
    }
}

/// The `name=value` pairs of a query string, undecoded.
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// The decoded value of the first parameter called `name` (ASCII case-insensitive).
pub fn param(query: &str, name: &str) -> Option<String> {
    pairs(query)
        .find(|(k, _)| decode(k).eq_ignore_ascii_case(name))
        .map(|(_, v)| decode(v))
}

/// Percent-decoding with `+` as space; invalid escapes and invalid UTF-8 are kept/replaced.
pub fn decode(s: &str) -> String {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return s.into();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(c) = it.next() {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let mut ahead = it.clone();
                match (ahead.next().and_then(hex), ahead.next().and_then(hex)) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi * 16 + lo);
                        it = ahead;
                    }
                    _ => out.push(c),
                }
            }
            c => out.push(c),
        }
    }
    // Escapes that do not form UTF-8 leave the text as it was.
    String::from_utf8(out).unwrap_or_else(|_| s.into())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes everything but unreserved characters (for query parameter values).
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// `url` without the query parameters for which `drop` says yes. Unchanged text otherwise.
pub fn scrub(url: &str, drop: impl Fn(&str) -> bool) -> String {
    let (before_hash, hash) = match url.split_once('#') {
        Some((b, h)) => (b, Some(h)),
        None => (url, None),
    };
    let Some((base, query)) = before_hash.split_once('?') else {
        return url.into();
    };
    if !pairs(query).any(|(k, _)| drop(&decode(k))) {
        return url.into();
    }
    let mut out = String::from(base);
    let mut sep = '?';
    for (part, (k, _)) in query.split('&').filter(|s| !s.is_empty()).zip(pairs(query)) {
        if !drop(&decode(k)) {
            out.push(sep);
            sep = '&';
            out.push_str(part);
        }
    }
    if let Some(h) = hash {
        out.push('#');
        out.push_str(h);
    }
    out
}

const UTM: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// The campaign a URL carries, as one comparable string; empty when it has no UTM
/// parameters. A new non-empty campaign starts a new session.
pub fn campaign(query: &str) -> String {
    if !has(query, "utm_") {
        return String::new();
    }
    let mut out = String::new();
    let mut any = false;
    for (i, name) in UTM.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        if let Some(v) = param(query, name) {
            any |= !v.is_empty();
            out.push_str(&v);
        }
    }
    if any { out } else { String::new() }
}

/// What identifies a "page" for SPA page views: path and query, plus the hash when it is
/// used for routing (`#/…` or `#!…`) rather than as an in-page anchor.
pub fn route_key(url: &str) -> String {
    let p = split(url);
    let mut key = String::from(p.path);
    if !p.query.is_empty() {
        key.push('?');
        key.push_str(p.query);
    }
    if p.hash.starts_with('/') || p.hash.starts_with('!') {
        key.push('#');
        key.push_str(p.hash);
    }
    key
}

fn bare_host(h: &str) -> &str {
    let h = h.split_once(':').map_or(h, |(h, _)| h);
    h.strip_prefix("www.").unwrap_or(h)
}

/// An `http(s)` link to another host than the page's (`www.` ignored).
pub fn is_outbound(href: &str, page_host: &str) -> bool {
    let p = split(href);
    let web = p.origin.starts_with("http://") || p.origin.starts_with("https://");
    web && !p.host.is_empty() && !bare_host(p.host).eq_ignore_ascii_case(bare_host(page_host))
}

const DOWNLOADS: &[&str] = &[
    "pdf", "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "dmg", "exe", "msi", "pkg", "deb",
    "rpm", "apk", "iso", "csv", "xls", "xlsx", "doc", "docx", "ppt", "pptx", "odt", "ods", "txt",
    "rtf", "epub", "mp3", "wav", "flac", "mp4", "mov", "avi", "mkv", "webm",
];

/// A link to a file: its path ends in a known document/archive/media extension.
pub fn is_download(href: &str) -> bool {
    let path = split(href).path;
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            DOWNLOADS.iter().any(|d| d.eq_ignore_ascii_case(ext))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let p = split("https://u:p@shop.example:8080/a/b?q=1&x#frag");
        assert_eq!(p.origin, "https://u:p@shop.example:8080");
        assert_eq!(p.host, "shop.example:8080");
        assert_eq!((p.path, p.query, p.hash), ("/a/b", "q=1&x", "frag"));
        let p = split("http://h");
        assert_eq!((p.host, p.path, p.query, p.hash), ("h", "", "", ""));
        let p = split("/rel?x=1");
        assert_eq!((p.origin, p.path, p.query), ("", "/rel", "x=1"));
        let p = split("mailto:a@b.c");
        assert_eq!((p.host, p.path), ("", "mailto:a@b.c"));
    }

    #[test]
    fn params_decode() {
        assert_eq!(
            param("a=1&q=red+shoes%21", "q").as_deref(),
            Some("red shoes!")
        );
        assert_eq!(param("Q=%E6%97%A5", "q").as_deref(), Some("日"));
        assert_eq!(param("q", "q").as_deref(), Some(""));
        assert_eq!(param("qq=1", "q"), None);
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%ff"), "%ff");
        assert!(has("abc", "bc") && !has("abc", "cd") && has("a", ""));
        assert_eq!(encode("pk_1 a/é"), "pk_1%20a%2F%C3%A9");
    }

    #[test]
    fn scrubbing() {
        let drop = |k: &str| k == "token" || k == "email";
        for (url, want) in [
            ("https://x/p?a=1&token=s&b=2#h", "https://x/p?a=1&b=2#h"),
            ("https://x/p?token=s", "https://x/p"),
            ("https://x/p?token=s#h", "https://x/p#h"),
            ("https://x/p?email=a%40b&token=1&", "https://x/p"),
            ("https://x/p?a=1", "https://x/p?a=1"),
            ("https://x/p#token=1", "https://x/p#token=1"),
            ("https://x/p?to%6Ben=1&k=2", "https://x/p?k=2"),
            ("https://x/p?token=1#", "https://x/p#"),
        ] {
            assert_eq!(scrub(url, drop), want, "{url}");
        }
    }

    #[test]
    fn campaigns() {
        assert_eq!(campaign("a=1"), "");
        assert_eq!(
            campaign("utm_source=news&utm_campaign=spring"),
            "news||spring||"
        );
        assert_eq!(campaign("utm_source="), "");
        assert_ne!(campaign("utm_source=a"), campaign("utm_source=b"));
    }

    #[test]
    fn routes() {
        assert_eq!(route_key("https://x/a?b=1#section"), "/a?b=1");
        assert_eq!(route_key("https://x/#/products/1"), "/#/products/1");
        assert_eq!(route_key("https://x/#!/cart"), "/#!/cart");
        assert_ne!(route_key("https://x/app#/a"), route_key("https://x/app#/b"));
        assert_eq!(
            route_key("https://x/app#top"),
            route_key("https://x/app#bottom")
        );
    }

    #[test]
    fn outbound_and_downloads() {
        assert!(is_outbound("https://other.example/x", "shop.example"));
        assert!(!is_outbound("https://www.shop.example/x", "shop.example"));
        assert!(!is_outbound("https://shop.example:443/x", "shop.example"));
        assert!(!is_outbound("mailto:a@b.c", "shop.example"));
        assert!(!is_outbound("/local", "shop.example"));
        assert!(is_download("https://x/files/report.PDF?v=1"));
        assert!(is_download("/a/b.tar.gz"));
        assert!(!is_download("https://x/page.html"));
        assert!(!is_download("https://x/.zip"));
        assert!(!is_download("https://x/zip"));
    }
}
