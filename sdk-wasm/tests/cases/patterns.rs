// Cases for the rules that run on the browser's engines (src/pattern.rs): included by the
// native unit tests (src/pattern.rs, the `regex` crate) and by the browser suite
// (tests/web.rs, Chromium's RegExp and decodeURIComponent), so both engines are held to
// the same answers.

/// `sensitive::is_sensitive_name`.
pub(super) const SENSITIVE_NAMES: &[(&str, bool)] = &[
    ("password", true),
    ("new-password", true),
    ("user_pass", true),
    ("cc-number", true),
    ("cardNumber", true),
    ("card_num", true),
    ("CVC", true),
    ("cvv2", true),
    ("card-csc", true),
    ("ssn", true),
    ("social_security_no", true),
    ("iban", true),
    ("routing_number", true),
    ("cc", true),
    ("billing-cc-exp", true),
    ("pin", true),
    ("PIN_code", true),
    ("api_token", true),
    ("one-time-code", true),
    ("tax-id", true),
    ("", false),
    ("email", false),
    ("q", false),
    ("search", false),
    ("shipping", false),
    ("pinterest", false),
    ("expand", false),
    ("username", false),
    ("accent", false),
    ("success", false),
];

/// `sensitive::looks_like_number_secret`.
pub(super) const NUMBER_SECRETS: &[(&str, bool)] = &[
    ("4111 1111 1111 1111", true),
    ("4111-1111-1111-1111", true),
    ("4111111111111111", true),
    ("card 4111111111111 ok", true),
    ("1234567890123456789", true),
    ("SSN 123-45-6789", true),
    ("123-45-6789", true),
    ("", false),
    ("Buy now", false),
    ("Order 12345", false),
    ("+49 30 1234567", false),
    ("2026-11-21", false),
    ("Page 1 of 10", false),
    ("123456789012", false),
    ("12345678901234567890", false),
    ("4111  1111 1111 1111", false),
    ("1123-45-6789", false),
    ("123-45-67890", false),
];

/// `url::is_download`, on a link's path (`pathname`).
pub(super) const DOWNLOADS: &[(&str, bool)] = &[
    ("/files/report.PDF", true),
    ("/a/b.tar.gz", true),
    ("/media/talk.mp3", true),
    ("sheet.xlsx", true),
    ("/page.html", false),
    ("/.zip", false),
    ("/zip", false),
    ("/zip/", false),
    ("/a.pdfx", false),
    ("/", false),
    ("", false),
];

/// `url::decode`: input and result.
pub(super) const DECODED: &[(&str, &str)] = &[
    ("red+shoes%21", "red shoes!"),
    ("%E6%97%A5", "日"),
    ("%C3%A9%F0%9F%98%80", "é😀"),
    ("a%2Bb%20c", "a+b c"),
    ("", ""),
    // Malformed or not UTF-8: the input as it was (decodeURIComponent throws).
    ("%zz%41", "%zz%41"),
    ("%zz%4", "%zz%4"),
    ("%4", "%4"),
    ("%", "%"),
    ("%ff", "%ff"),
    ("%C3", "%C3"),
    ("%+1", "%+1"),
    ("%C0%AF", "%C0%AF"),
    ("%ED%A0%80", "%ED%A0%80"),
    ("%E6%97", "%E6%97"),
    ("%F5%80%80%80", "%F5%80%80%80"),
];
