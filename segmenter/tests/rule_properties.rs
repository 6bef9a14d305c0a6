//! Property tests of the segment compiler: hostile rule text cannot change the query's shape.
//!
//! For random rule *shapes* (kinds, fields, operators, nesting), two fillings with independent
//! random values — strings full of quotes, backslashes, comments, braces and parameter syntax,
//! and numbers at the extremes — must compile to byte-identical SQL, and every value must travel
//! as a parameter. Random definition text must never panic the parser.

use proptest::prelude::*;
use serde_json::{Value, json};
use spoor_segmenter::segment::rule::{EVENT_TYPES, FIELDS, FieldType, Op, STAGES};
use spoor_segmenter::segment::{Definition, Format, RawRule, compile};

#[derive(Debug, Clone)]
enum Shape {
    All(Vec<Shape>),
    Any(Vec<Shape>),
    Not(Box<Shape>),
    Field {
        field: usize,
        op: usize,
    },
    Trait {
        op: usize,
    },
    Did {
        ty: Option<usize>,
        least: bool,
        most: bool,
        within: bool,
    },
    DidNot {
        ty: Option<usize>,
        within: bool,
    },
    FirstDid {
        ty: Option<usize>,
    },
    Searched {
        within: bool,
    },
    Visited {
        within: bool,
    },
}

/// `Some(i)`: the i-th event type (a structural choice); `None`: a random track name (a value).
fn event_type() -> impl Strategy<Value = Option<usize>> {
    prop::option::of(0..EVENT_TYPES.len())
}

fn event(ty: Option<usize>, f: &mut Filler) -> String {
    match ty {
        Some(i) => EVENT_TYPES[i].0.to_owned(),
        None => f.event(),
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        (0..FIELDS.len(), 0..9usize).prop_map(|(field, op)| Shape::Field { field, op }),
        (0..6usize).prop_map(|op| Shape::Trait { op }),
        (event_type(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(ty, least, most, within)| Shape::Did {
                ty,
                least,
                most,
                within,
            }
        ),
        (event_type(), any::<bool>()).prop_map(|(ty, within)| Shape::DidNot { ty, within }),
        event_type().prop_map(|ty| Shape::FirstDid { ty }),
        any::<bool>().prop_map(|within| Shape::Searched { within }),
        any::<bool>().prop_map(|within| Shape::Visited { within }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Shape::All),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Shape::Any),
            inner.prop_map(|s| Shape::Not(Box::new(s))),
        ]
    })
}

/// Values to fill a shape with: a cycle of hostile strings and a pseudo-random stream.
struct Filler {
    strings: Vec<String>,
    next: usize,
    state: u64,
}

const HOSTILE: &[&str] = &[
    "'",
    "\\'",
    "''; DROP TABLE events; --",
    "/* comment */",
    "-- comment",
    "{p0:String}",
    "{db}",
    "`backtick`",
    "\" OR 1=1 --",
    "x\\",
    "é☃\u{202e}",
    "%s %d",
    "?",
];

impl Filler {
    fn new(strings: Vec<String>, seed: u64) -> Filler {
        Filler {
            strings,
            next: 0,
            state: seed | 1,
        }
    }
    fn u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
    fn text(&mut self) -> String {
        let s = if self.strings.is_empty() || self.u64().is_multiple_of(2) {
            HOSTILE[(self.u64() % HOSTILE.len() as u64) as usize].to_owned()
        } else {
            self.next += 1;
            self.strings[self.next % self.strings.len()].clone()
        };
        if s.trim().is_empty() {
            "x".to_owned()
        } else {
            s
        }
    }
    fn int(&mut self) -> i64 {
        match self.u64() % 4 {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => 0,
            _ => self.u64() as i64,
        }
    }
    fn days(&mut self) -> u64 {
        1 + self.u64() % 3650
    }
    fn count(&mut self) -> u64 {
        self.u64() % 1_000_000_000
    }
    fn event(&mut self) -> String {
        const CHARS: &[u8] = b"abcXYZ019_-.:/ ";
        let n = 1 + (self.u64() % 20) as usize;
        (0..n)
            .map(|_| CHARS[(self.u64() % CHARS.len() as u64) as usize] as char)
            .collect::<String>()
            .replace(' ', "_")
    }
    fn trait_key(&mut self) -> String {
        format!("k{}", self.u64() % 1000)
    }
}

fn fill(shape: &Shape, f: &mut Filler) -> RawRule {
    let mut raw = RawRule::default();
    match shape {
        Shape::All(items) => raw.all = Some(items.iter().map(|s| fill(s, f)).collect()),
        Shape::Any(items) => raw.any = Some(items.iter().map(|s| fill(s, f)).collect()),
        Shape::Not(inner) => raw.not = Some(Box::new(fill(inner, f))),
        Shape::Field { field, op } => {
            let field = FIELDS[*field];
            let ops = Op::allowed(field.ty);
            let op = ops[op % ops.len()];
            raw.field = Some(field.name.to_owned());
            raw.op = Some(op.to_owned());
            raw.value = Some(value(field.ty, op, f));
        }
        Shape::Trait { op } => {
            let ops = Op::allowed(FieldType::Text);
            let op = ops[op % ops.len()];
            raw.field = Some(format!("traits.{}", f.trait_key()));
            raw.op = Some(op.to_owned());
            raw.value = Some(value(FieldType::Text, op, f));
        }
        Shape::Did {
            ty,
            least,
            most,
            within,
        } => {
            raw.did = Some(event(*ty, f));
            let (a, b) = (f.count(), f.count());
            if *least {
                raw.at_least = Some(a.min(b));
            }
            if *most {
                raw.at_most = Some(a.max(b));
            }
            if *within {
                raw.within_days = Some(f.days());
            }
        }
        Shape::DidNot { ty, within } => {
            raw.did_not = Some(event(*ty, f));
            raw.within_days = within.then(|| f.days());
        }
        Shape::FirstDid { ty } => {
            raw.first_did = Some(event(*ty, f));
            raw.within_days = Some(f.days());
        }
        Shape::Searched { within } => {
            raw.searched = Some(f.text());
            raw.within_days = within.then(|| f.days());
        }
        Shape::Visited { within } => {
            raw.visited = Some(f.text());
            raw.within_days = within.then(|| f.days());
        }
    }
    raw
}

fn value(ty: FieldType, op: &str, f: &mut Filler) -> Value {
    let scalar = |f: &mut Filler| -> Value {
        match ty {
            FieldType::Int => json!(f.int()),
            FieldType::Float => json!((f.int() as f64) / 3.0),
            FieldType::Text => json!(f.text()),
            FieldType::Stage => json!(STAGES[(f.u64() % STAGES.len() as u64) as usize]),
            FieldType::Bool => json!(f.u64().is_multiple_of(2)),
            FieldType::Time => json!(format!(
                "2026-{:02}-{:02}",
                1 + f.u64() % 12,
                1 + f.u64() % 28
            )),
        }
    };
    match op {
        "between" => json!([scalar(f), scalar(f)]),
        "in" | "not_in" => {
            let n = 1 + (f.u64() % 5) as usize;
            Value::Array((0..n).map(|_| scalar(f)).collect())
        }
        "within_days" | "not_within_days" => json!(f.days()),
        _ => scalar(f),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn values_never_change_the_sql(
        shape in shape(),
        strings_a in prop::collection::vec("\\PC{1,30}", 0..6),
        strings_b in prop::collection::vec("[\\x20-\\x7e]{1,30}", 0..6),
        seed_a in any::<u64>(),
        seed_b in any::<u64>(),
        project in "[\\x20-\\x7e]{1,20}",
    ) {
        let a = fill(&shape, &mut Filler::new(strings_a, seed_a));
        let b = fill(&shape, &mut Filler::new(strings_b, seed_b));
        let rule_a = a.validate().map_err(|e| TestCaseError::fail(format!("{e}: {a:?}")))?;
        let rule_b = b.validate().map_err(|e| TestCaseError::fail(format!("{e}: {b:?}")))?;
        let ca = compile(&rule_a, &project);
        let cb = compile(&rule_b, "p1");
        prop_assert_eq!(&ca.sql, &cb.sql);
        prop_assert_eq!(ca.params.len(), cb.params.len());
        // Parameter names are p0, p1, … in order, and each appears in the SQL.
        for (i, (name, _)) in ca.params.iter().enumerate() {
            prop_assert_eq!(name, &format!("p{i}"));
            let placeholder = format!("{{{name}:");
            prop_assert!(ca.sql.contains(&placeholder), "{} not in SQL", name);
        }
        // No value from the rule text is in the SQL: hostile strings go to parameters.
        for needle in ["\\'", "DROP TABLE", "/* comment", "-- comment", "`backtick`", "\" OR", "é☃", "%s"] {
            prop_assert!(!ca.sql.contains(needle), "{:?} leaked into SQL", needle);
        }
    }

    #[test]
    fn arbitrary_definition_text_never_panics(text in "\\PC{0,300}") {
        let _ = Definition::parse(&text, Format::Toml);
        let _ = Definition::parse(&text, Format::Json);
    }

    #[test]
    fn arbitrary_json_rules_are_refused_or_compile(
        keys in prop::collection::vec(prop_oneof![
            Just("field"), Just("op"), Just("value"), Just("did"), Just("at_least"), Just("within_days"),
            Just("searched"), Just("visited"), Just("not"), Just("all"), Just("bogus")
        ], 1..4),
        text in "\\PC{0,20}",
        number in any::<i64>(),
    ) {
        let mut rule = serde_json::Map::new();
        for (i, key) in keys.iter().enumerate() {
            let v = match (*key, i % 3) {
                ("not", _) => json!({"visited": text}),
                ("all", _) => json!([{"visited": text}]),
                (_, 0) => json!(text),
                (_, 1) => json!(number),
                _ => json!([text, number]),
            };
            rule.insert((*key).to_owned(), v);
        }
        let def = json!({"id": "x", "rule": rule}).to_string();
        if let Ok(definition) = Definition::parse(&def, Format::Json) {
            let compiled = compile(&definition.rule.unwrap().validate().unwrap(), "");
            let head = "SELECT d.project_id AS project_id, d.person_id AS person_id\nFROM {db}.profiles_dynamic";
            prop_assert!(compiled.sql.starts_with(head));
        }
    }
}
