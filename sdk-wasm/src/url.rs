//! URL text handling without a URL parser: split, query parameters, scrubbing, campaign
//! (UTM) fingerprint, SPA route keys, outbound and download detection.

use alloc::string::String;

use crate::pattern;
use crate::text::{self, cut, cut_or_all, pieces};

/// The parts of a URL, as the browser's `URL` gives them. The shipped SDK never splits a URL
/// itself: the JS side reads the page's parts from `location` and a link's from the
/// element (`protocol`, `host`, `pathname`); this splitter is for native builds (the tests'
/// platform).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// `https:`, `mailto:`, … (with the colon, as `URL.protocol`) — empty for relative URLs.
    pub scheme: &'a str,
    /// `host[:port]`, without user info.
    pub host: &'a str,
    pub path: &'a str,
    /// Without the `?`.
    pub query: &'a str,
    /// Without the `#`.
    pub hash: &'a str,
}

#[cfg(not(target_arch = "wasm32"))]
pub fn split(url: &str) -> Parts<'_> {
    let (rest, hash) = cut_or_all(url, b'#');
    let (rest, query) = cut_or_all(rest, b'?');
    let mut p = Parts {
        scheme: "",
        host: "",
        path: rest,
        query,
        hash,
    };
    if let Some(i) = rest.find(':')
        && !rest[..i].contains('/')
    {
        p.scheme = &rest[..=i];
        let after = &rest[i + 1..];
        p.path = after;
        if let Some(auth_path) = after.strip_prefix("//") {
            let end = auth_path.find('/').unwrap_or(auth_path.len());
            let authority = &auth_path[..end];
            p.host = text::rcut(authority, b'@').map_or(authority, |(_, h)| h);
            p.path = &auth_path[end..];
        }
    }
    p
}

/// The `name=value` pairs of a query string, undecoded, skipping empty pieces.
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    pieces(query, b'&')
        .filter(|p| !p.is_empty())
        .map(|p| cut_or_all(p, b'='))
}

/// The decoded value of the first parameter called `name` (case-insensitive).
pub fn param(query: &str, name: &str) -> Option<String> {
    pairs(query)
        .find(|(k, _)| decode(k).eq_ignore_ascii_case(name))
        .map(|(_, v)| decode(v))
}

/// Percent-decoding with `+` as space; a malformed escape or a result that is not UTF-8
/// gives back the input unchanged (the browser's `decodeURIComponent`, see [`pattern`]).
pub use crate::pattern::decode;

/// Percent-encoding for a query parameter value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            for d in [b >> 4, b & 15] {
                out.push(char::from(if d < 10 { b'0' + d } else { b'A' - 10 + d }));
            }
        }
    }
    out
}

/// `url` without the query parameters for which `drop(decoded name)` holds. The rest of the
/// URL is kept byte for byte.
pub fn scrub(url: &str, drop: impl Fn(&str) -> bool) -> String {
    let (before_hash, hash) = cut_or_all(url, b'#');
    let Some((base, query)) = cut(before_hash, b'?') else {
        return url.into();
    };
    if !pairs(query).any(|(k, _)| drop(&decode(k))) {
        return url.into();
    }
    let mut out = String::from(base);
    let mut sep = '?';
    for part in pieces(query, b'&').filter(|p| !p.is_empty()) {
        if !drop(&decode(cut_or_all(part, b'=').0)) {
            out.push(sep);
            sep = '&';
            out.push_str(part);
        }
    }
    if url.len() > before_hash.len() {
        out.push('#');
        out.push_str(hash);
    }
    out
}

const UTM: &str = "utm_source utm_medium utm_campaign utm_term utm_content";

/// The campaign a URL carries: its UTM values joined with `|`, or empty without any.
pub fn campaign(query: &str) -> String {
    let mut out = String::new();
    let mut any = false;
    for (i, name) in pieces(UTM, b' ').enumerate() {
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

/// What identifies a page view for SPA navigation: path and query, plus the hash when it is
/// a route (`#/…` or `#!…`), not an in-page anchor.
pub fn route_key(path: &str, query: &str, hash: &str) -> String {
    let mut key = String::from(path);
    if !query.is_empty() {
        key.push('?');
        key.push_str(query);
    }
    if hash.starts_with('/') || hash.starts_with('!') {
        key.push('#');
        key.push_str(hash);
    }
    key
}

fn bare_host(h: &str) -> &str {
    let h = cut_or_all(h, b':').0;
    h.strip_prefix("www.").unwrap_or(h)
}

/// Whether a link (its `protocol`, with the colon, and `host`) leads to another site than
/// `page_host` (`www.` and ports aside).
pub fn is_outbound(protocol: &str, host: &str, page_host: &str) -> bool {
    matches!(protocol, "http:" | "https:")
        && !host.is_empty()
        && !bare_host(host).eq_ignore_ascii_case(bare_host(page_host))
}

/// A path whose last segment is `name.ext` with a downloadable file's extension.
const DOWNLOAD: &str = "[^/]\\.(pdf|zip|t?gz|bz2|xz|7z|rar|tar|dmg|exe|msi|pkg|deb|rpm|apk|iso|csv|xlsx?|\
docx?|pptx?|od[ts]|txt|rtf|epub|mp[34]|wav|flac|mov|avi|mkv|webm)$";

/// Whether a link's path points to a file people download (by its extension).
pub fn is_download(path: &str) -> bool {
    pattern::test(DOWNLOAD, path)
}

/// Whether `hay` contains `needle` (case-insensitive).
pub fn has(hay: &str, needle: &str) -> bool {
    text::contains_ci(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let p = split("https://u:p@shop.example:8080/a/b?q=1&x#frag");
        assert_eq!(p.scheme, "https:");
        assert_eq!(p.host, "shop.example:8080");
        assert_eq!((p.path, p.query, p.hash), ("/a/b", "q=1&x", "frag"));
        let p = split("http://h");
        assert_eq!((p.host, p.path, p.query, p.hash), ("h", "", "", ""));
        let p = split("/rel?x=1");
        assert_eq!((p.scheme, p.path, p.query), ("", "/rel", "x=1"));
        let p = split("/a:b/c");
        assert_eq!((p.scheme, p.path), ("", "/a:b/c"));
        let p = split("mailto:a@b.c");
        assert_eq!((p.scheme, p.host, p.path), ("mailto:", "", "a@b.c"));
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
        // decode itself: the shared cases (tests/cases/patterns.rs, src/pattern.rs).
        assert!(has("abc", "BC") && !has("abc", "cd") && has("a", ""));
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
        let key = |u| {
            let p = split(u);
            route_key(p.path, p.query, p.hash)
        };
        assert_eq!(key("https://x/a?b=1#section"), "/a?b=1");
        assert_eq!(key("https://x/#/products/1"), "/#/products/1");
        assert_eq!(key("https://x/#!/cart"), "/#!/cart");
        assert_ne!(key("https://x/app#/a"), key("https://x/app#/b"));
        assert_eq!(key("https://x/app#top"), key("https://x/app#bottom"));
    }

    #[test]
    fn outbound_and_downloads() {
        let out = |u| {
            let p = split(u);
            is_outbound(p.scheme, p.host, "shop.example")
        };
        assert!(out("https://other.example/x"));
        assert!(!out("https://www.shop.example/x"));
        assert!(!out("https://shop.example:443/x"));
        assert!(!out("mailto:a@b.c"));
        assert!(!out("/local"));
        // is_download: the shared cases (tests/cases/patterns.rs, src/pattern.rs).
    }
}
