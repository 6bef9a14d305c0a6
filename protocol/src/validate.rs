//! Pure validation of decoded events: what makes an event storable, and the reason when not.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{EventType, JsonEvent, Limits};

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMillis = i64;

/// Why an event cannot be stored. [`Rejection::code`] is stable: it is stored in
/// `events_rejected.reason` and used as a metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The event is not valid JSON of the event shape (unknown type, wrong field types…).
    Malformed(String),
    EventTooLarge {
        bytes: usize,
        max: usize,
    },
    InvalidEventId,
    InvalidTimestamp {
        field: &'static str,
    },
    /// A field the event's type needs is absent or empty.
    MissingField {
        field: &'static str,
        kind: EventType,
    },
    IdTooLong {
        field: &'static str,
        max: usize,
    },
    /// `properties` or `traits` is not a JSON object.
    NotAnObject {
        field: &'static str,
    },
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::EventTooLarge { .. } => "event_too_large",
            Rejection::InvalidEventId => "invalid_event_id",
            Rejection::InvalidTimestamp { .. } => "invalid_timestamp",
            Rejection::MissingField { .. } => "missing_field",
            Rejection::IdTooLong { .. } => "id_too_long",
            Rejection::NotAnObject { .. } => "not_an_object",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Malformed(why) => write!(f, "event is malformed: {why}"),
            Rejection::EventTooLarge { bytes, max } => {
                write!(f, "event is {bytes} bytes; at most {max} are allowed")
            }
            Rejection::InvalidEventId => f.write_str("event_id must be a UUID"),
            Rejection::InvalidTimestamp { field } => {
                write!(
                    f,
                    "{field} must be an RFC 3339 timestamp, e.g. 2026-11-21T10:00:00.000Z"
                )
            }
            Rejection::MissingField { field, kind } => {
                write!(f, "{} events need a non-empty `{field}`", kind.as_str())
            }
            Rejection::IdTooLong { field, max } => write!(f, "{field} is longer than {max} bytes"),
            Rejection::NotAnObject { field } => write!(f, "{field} must be a JSON object"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Parses an RFC 3339 timestamp to Unix milliseconds.
pub fn parse_timestamp(text: &str) -> Option<UnixMillis> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Checks an event and truncates over-long strings in place.
///
/// Returns whether anything was truncated. Ids are never truncated: an event with an
/// over-long id is rejected, since a cut id could merge two people.
pub fn validate_event(event: &mut JsonEvent, limits: &Limits) -> Result<bool, Rejection> {
    if !is_uuid(&event.event_id) {
        return Err(Rejection::InvalidEventId);
    }
    if parse_timestamp(&event.timestamp).is_none() {
        return Err(Rejection::InvalidTimestamp { field: "timestamp" });
    }
    check_id("anonymous_id", &event.anonymous_id, limits, true)?;
    check_id(
        "user_id",
        event.user_id.as_deref().unwrap_or(""),
        limits,
        false,
    )?;
    if let Some(session) = &event.session {
        check_id("session.id", &session.id, limits, true)?;
        if parse_timestamp(&session.started_at).is_none() {
            return Err(Rejection::InvalidTimestamp {
                field: "session.started_at",
            });
        }
    }
    for (field, value) in [("properties", &event.properties), ("traits", &event.traits)] {
        if value.as_ref().is_some_and(|v| !v.is_object()) {
            return Err(Rejection::NotAnObject { field });
        }
    }
    check_required_parts(event)?;
    Ok(truncate_strings(event, limits.max_string_bytes))
}

fn check_required_parts(event: &JsonEvent) -> Result<(), Rejection> {
    let kind = event.kind;
    let missing = |field| Err(Rejection::MissingField { field, kind });
    let non_empty = |s: Option<&String>| s.is_some_and(|s| !s.is_empty());
    match kind {
        EventType::PageView if event.page.is_none() => missing("page"),
        EventType::PageLeave if event.leave.is_none() => missing("leave"),
        EventType::Click if event.click.is_none() => missing("click"),
        EventType::Search if !non_empty(event.search.as_ref().map(|s| &s.query)) => {
            missing("search.query")
        }
        EventType::SessionStart if event.session.is_none() => missing("session"),
        EventType::Identify if !non_empty(event.user_id.as_ref()) => missing("user_id"),
        EventType::Track if !non_empty(event.name.as_ref()) => missing("name"),
        _ => Ok(()),
    }
}

fn check_id(
    field: &'static str,
    id: &str,
    limits: &Limits,
    required: bool,
) -> Result<(), Rejection> {
    if required && id.is_empty() {
        return Err(Rejection::Malformed(format!("{field} must not be empty")));
    }
    if id.len() > limits.max_id_bytes {
        return Err(Rejection::IdTooLong {
            field,
            max: limits.max_id_bytes,
        });
    }
    Ok(())
}

/// A UUID in its canonical hyphenated text form (any version, either case), other than the
/// nil UUID: every event sending it would collapse into one row under `ReplacingMergeTree`.
fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
        && bytes.iter().any(|b| !matches!(b, b'0' | b'-'))
}

fn truncate_strings(event: &mut JsonEvent, max: usize) -> bool {
    let mut truncated = false;
    let mut cut = |s: &mut String| truncated |= truncate(s, max);
    if let Some(name) = &mut event.name {
        cut(name);
    }
    if let Some(page) = &mut event.page {
        for s in [
            &mut page.url,
            &mut page.path,
            &mut page.title,
            &mut page.referrer,
        ] {
            cut(s);
        }
    }
    if let Some(click) = &mut event.click {
        for s in [&mut click.tag, &mut click.text, &mut click.selector] {
            cut(s);
        }
        if let Some(href) = &mut click.href {
            cut(href);
        }
    }
    if let Some(search) = &mut event.search {
        cut(&mut search.query);
        cut(&mut search.source);
    }
    if let Some(context) = &mut event.context {
        for s in [&mut context.locale, &mut context.tz, &mut context.lib] {
            cut(s);
        }
    }
    truncated
}

/// Cuts `s` to at most `max` bytes on a character boundary. Returns whether it cut.
fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Click, Page, PageLeave, Search, Session};

    fn event(kind: EventType) -> JsonEvent {
        JsonEvent {
            event_id: "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e".into(),
            kind,
            name: None,
            timestamp: "2026-11-21T10:00:00.100Z".into(),
            anonymous_id: "anon-1".into(),
            user_id: None,
            session: None,
            page: None,
            click: None,
            search: None,
            leave: None,
            properties: None,
            traits: None,
            context: None,
        }
    }

    #[track_caller]
    fn check(mut e: JsonEvent, expected: Result<bool, &str>) {
        let got = validate_event(&mut e, &Limits::default()).map_err(|r| r.code());
        assert_eq!(got, expected, "{e:?}");
    }

    #[test]
    fn each_type_needs_its_part() {
        // Every type has a part it cannot do without.
        for kind in EventType::ALL {
            check(event(kind), Err("missing_field"));
        }
        let with = |kind, f: fn(&mut JsonEvent)| {
            let mut e = event(kind);
            f(&mut e);
            e
        };
        check(
            with(EventType::PageView, |e| e.page = Some(Page::default())),
            Ok(false),
        );
        check(
            with(EventType::PageLeave, |e| {
                e.leave = Some(PageLeave::default())
            }),
            Ok(false),
        );
        check(
            with(EventType::Click, |e| e.click = Some(Click::default())),
            Ok(false),
        );
        check(
            with(EventType::Search, |e| {
                e.search = Some(Search {
                    query: "shoes".into(),
                    ..Search::default()
                })
            }),
            Ok(false),
        );
        check(
            with(EventType::Search, |e| e.search = Some(Search::default())),
            Err("missing_field"),
        );
        check(
            with(EventType::Identify, |e| e.user_id = Some("u1".into())),
            Ok(false),
        );
        check(
            with(EventType::Identify, |e| e.user_id = Some(String::new())),
            Err("missing_field"),
        );
        check(
            with(EventType::Track, |e| {
                e.name = Some("order_completed".into())
            }),
            Ok(false),
        );
        check(
            with(EventType::SessionStart, |e| {
                e.session = Some(Session {
                    id: "s1".into(),
                    index: 1,
                    started_at: "2026-11-21T10:00:00Z".into(),
                    previous_id: None,
                })
            }),
            Ok(false),
        );
    }

    #[test]
    fn ids_and_timestamps() {
        let page_view = || {
            let mut e = event(EventType::PageView);
            e.page = Some(Page::default());
            e
        };
        type Case = (fn(&mut JsonEvent), Result<bool, &'static str>);
        let cases: Vec<Case> = vec![
            (
                |e| e.event_id = "not-a-uuid".into(),
                Err("invalid_event_id"),
            ),
            (
                |e| e.event_id = "0B6A3C4E-8F7D-4A51-9D0E-3F1C2B4A5D6E".into(),
                Ok(false),
            ),
            (
                |e| e.event_id = "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6".into(),
                Err("invalid_event_id"),
            ),
            (
                |e| e.event_id = "00000000-0000-0000-0000-000000000000".into(),
                Err("invalid_event_id"),
            ),
            (
                |e| e.timestamp = "yesterday".into(),
                Err("invalid_timestamp"),
            ),
            (
                |e| e.timestamp = "2026-11-21T10:00:00+02:00".into(),
                Ok(false),
            ),
            (|e| e.anonymous_id = String::new(), Err("malformed")),
            (|e| e.anonymous_id = "a".repeat(201), Err("id_too_long")),
            (|e| e.user_id = Some("u".repeat(201)), Err("id_too_long")),
            (
                |e| e.properties = Some(serde_json::json!([1])),
                Err("not_an_object"),
            ),
            (
                |e| e.traits = Some(serde_json::json!({"level": "gold"})),
                Ok(false),
            ),
        ];
        for (mutate, expected) in cases {
            let mut e = page_view();
            mutate(&mut e);
            check(e, expected);
        }
    }

    #[test]
    fn long_strings_are_truncated_on_char_boundaries() {
        let mut e = event(EventType::PageView);
        e.page = Some(Page {
            title: "é".repeat(3000),
            ..Page::default()
        });
        assert_eq!(validate_event(&mut e, &Limits::default()), Ok(true));
        let title = &e.page.unwrap().title;
        assert_eq!(title.len(), 4096);
        assert!(title.chars().all(|c| c == 'é'));
    }

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_timestamp("2026-11-21T10:00:00.100Z"),
            Some(1_795_255_200_100)
        );
        assert_eq!(parse_timestamp("2026-11-21 10:00:00"), None);
    }
}
