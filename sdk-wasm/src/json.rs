//! A minimal JSON *writer* for the protocol types: a `serde::Serializer` that appends to a
//! `String`.
//!
//! Why not `serde_json` or `serde-wasm-bindgen`? `serde_json` (with float formatting) costs
//! tens of KB of wasm, and `serde-wasm-bindgen` builds a JS object field by field — one
//! wasm→JS call per field — before `JSON.stringify` walks it again. This writer produces the
//! wire text in linear memory in one pass, knows only what the protocol needs (structs,
//! strings, integers, bools, options, sequences, unit variants) and lets free-form JSON
//! (`properties`, `traits`) through verbatim via [`Raw`]. Native tests check its output
//! against `serde_json` for every event shape.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Newtype-struct name that marks already-serialised JSON text to copy verbatim.
const RAW: &str = "\0spoor-raw-json";

/// JSON text that is copied into the output unchanged. The caller guarantees it is valid
/// JSON (it comes from `JSON.stringify`, or from [`Writer`] itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(pub String);

impl Serialize for Raw {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(RAW, self.0.as_str())
    }
}

/// Serialises `value` as compact JSON.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut w = Writer {
        out: String::with_capacity(512),
        raw: false,
    };
    value.serialize(&mut w).ok()?;
    Some(w.out)
}

/// Appends `s` as a JSON string literal (with quotes) to `out`.
pub fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `get`, not indexing: the positions are at ASCII bytes, but a slicing panic
        // would drag `core::fmt`'s char formatting into the wasm.
        out.push_str(s.get(start..i).unwrap_or(""));
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or(""));
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the decimal digits of `n` (no `core::fmt`).
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in buf.iter().skip(i) {
        out.push(char::from(b));
    }
}

/// The one error this writer has: a value the protocol never contains (floats, maps, bytes).
#[derive(Debug)]
pub struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unsupported value")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

struct Writer {
    out: String,
    /// The next string is verbatim JSON ([`Raw`]).
    raw: bool,
}

/// A struct or sequence being written; `first` tells whether a comma is due.
pub struct Compound<'a> {
    w: &'a mut Writer,
    first: bool,
}

impl Compound<'_> {
    fn sep(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.w.out.push(',');
        }
    }
}

type Res = Result<(), Unsupported>;

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> Res {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Res {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Res {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Res {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Res {
        if v < 0 {
            self.out.push('-');
        }
        push_u64(&mut self.out, v.unsigned_abs());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Res {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Res {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Res {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Res {
        push_u64(&mut self.out, v);
        Ok(())
    }
    fn serialize_f32(self, _v: f32) -> Res {
        Err(Unsupported)
    }
    fn serialize_f64(self, _v: f64) -> Res {
        Err(Unsupported)
    }
    fn serialize_char(self, v: char) -> Res {
        let mut b = [0u8; 4];
        self.serialize_str(v.encode_utf8(&mut b))
    }
    fn serialize_str(self, v: &str) -> Res {
        if self.raw {
            self.raw = false;
            self.out.push_str(v);
        } else {
            push_str_lit(&mut self.out, v);
        }
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Res {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Res {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Res {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Res {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _n: &'static str, _i: u32, variant: &'static str) -> Res {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Res {
        self.raw = name == RAW;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _value: &T,
    ) -> Res {
        Err(Unsupported)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        self.out.push('[');
        Ok(Compound {
            w: self,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(self, _n: &'static str, _l: usize) -> Result<Compound<'a>, Unsupported> {
        self.out.push('{');
        Ok(Compound {
            w: self,
            first: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _l: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        self.sep();
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Res {
        self.w.out.push(']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Res {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
        self.sep();
        push_str_lit(&mut self.w.out, key);
        self.w.out.push(':');
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Res {
        self.w.out.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spoor_protocol::{
        Batch, Click, Context, Event, EventType, Page, PageLeave, Search, Session,
    };

    fn event(kind: EventType) -> Event<Raw> {
        Event {
            event_id: "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e".into(),
            kind,
            name: None,
            timestamp: "2026-11-21T10:00:00.100Z".into(),
            anonymous_id: "a-1".into(),
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

    /// The same event with `Raw` replaced by the JSON value it holds, for serde_json.
    fn as_value(e: &Event<Raw>) -> Event<serde_json::Value> {
        let conv = |r: &Option<Raw>| r.as_ref().map(|r| serde_json::from_str(&r.0).unwrap());
        Event {
            event_id: e.event_id.clone(),
            kind: e.kind,
            name: e.name.clone(),
            timestamp: e.timestamp.clone(),
            anonymous_id: e.anonymous_id.clone(),
            user_id: e.user_id.clone(),
            session: e.session.clone(),
            page: e.page.clone(),
            click: e.click.clone(),
            search: e.search.clone(),
            leave: e.leave.clone(),
            properties: conv(&e.properties),
            traits: conv(&e.traits),
            context: e.context.clone(),
        }
    }

    #[track_caller]
    fn check(e: Event<Raw>) {
        let ours = to_string(&e).expect("serialises");
        let theirs = serde_json::to_string(&as_value(&e)).unwrap();
        assert_eq!(ours, theirs);
        // And it reads back as the collector would read it.
        let back: Event<serde_json::Value> = serde_json::from_str(&ours).unwrap();
        assert_eq!(back, as_value(&e));
    }

    #[test]
    fn every_event_shape_matches_serde_json() {
        check(event(EventType::PageView));
        let mut e = event(EventType::Track);
        e.name = Some("order \"completed\"\n\t\u{1}\u{7f} ü 日本 😀".into());
        e.user_id = Some("u\\1".into());
        e.properties = Some(Raw(r#"{"a":[1,2.5,null,true],"b":{"c":"d"}}"#.into()));
        e.traits = Some(Raw("{}".into()));
        e.session = Some(Session {
            id: "s".into(),
            index: u32::MAX,
            started_at: "t".into(),
            previous_id: Some("p".into()),
        });
        e.page = Some(Page {
            url: "https://x/?q=1".into(),
            path: "/".into(),
            title: "</script>".into(),
            referrer: String::new(),
        });
        e.click = Some(Click {
            tag: "a".into(),
            text: "Buy".into(),
            href: Some("/buy".into()),
            selector: "#buy".into(),
            outbound: true,
            download: false,
        });
        e.search = Some(Search {
            query: "shoes".into(),
            results_count: Some(0),
            source: "url".into(),
        });
        e.leave = Some(PageLeave {
            engaged_ms: u64::MAX,
            max_scroll_pct: 100,
        });
        e.context = Some(Context {
            locale: "en".into(),
            tz: "Europe/Berlin".into(),
            screen_w: 1,
            screen_h: 0,
            viewport_w: 3,
            viewport_h: 4,
            lib: "spoor-wasm/0.1.0".into(),
        });
        check(e);
    }

    #[test]
    fn every_event_type_name_matches() {
        for kind in EventType::ALL {
            check(event(kind));
        }
    }

    #[test]
    fn batch_matches_serde_json() {
        let b = Batch {
            v: 1,
            sent_at: "now".into(),
            key: Some("pk_1".into()),
            events: vec![event(EventType::Click), event(EventType::Search)],
            dropped: Some(2),
        };
        let ours = to_string(&b).unwrap();
        let theirs = serde_json::to_string(&Batch {
            v: 1,
            sent_at: "now".into(),
            key: Some("pk_1".into()),
            events: b.events.iter().map(as_value).collect(),
            dropped: b.dropped,
        })
        .unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn integers() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        assert_eq!(to_string(&-42i32).unwrap(), "-42");
        assert_eq!(to_string(&i64::MIN).unwrap(), i64::MIN.to_string());
    }

    #[test]
    fn floats_are_refused() {
        assert_eq!(to_string(&1.5f64), None);
    }
}
