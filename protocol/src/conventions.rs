//! Event conventions: the `track` events and `identify` traits that Spoor's segmenter
//! understands, as typed helpers.
//!
//! Backends (or the browser SDK) send these as ordinary `track` events: the name goes in
//! `Event::name`, the properties struct (serialised with serde) in `Event::properties`, and
//! member traits in `Event::traits` of an `identify` event. Nothing here needs `serde_json`:
//! the structs are plain serde types, so the wasm SDK can serialise them with
//! `serde-wasm-bindgen` and a backend with `serde_json`.
//!
//! | name | properties | used for |
//! | --- | --- | --- |
//! | `order_completed` | [`OrderCompleted`] `{order_id, revenue, currency, items}` | orders, revenue, RFM, conversion |
//! | `member_signup` | [`MemberSignup`] `{member_id?, method?}` | members.signup_at, sign-ups |
//! | `member_signin` | [`MemberSignin`] `{method?}` | members.signins, last login |
//! | `points_earned` / `points_redeemed` | [`Points`] `{points, reason}` | members.points_balance |
//! | `level_changed` | [`LevelChanged`] `{level, previous_level?}` | members.level |
//! | `ticket_opened` | [`TicketOpened`] `{ticket_id, channel, priority, subject}` | tickets |
//! | `ticket_replied` | [`TicketReplied`] `{ticket_id, by: agent\|customer}` | first response time |
//! | `ticket_resolved` | [`TicketResolved`] `{ticket_id}` | resolution time |
//! | `ticket_rated` | [`TicketRated`] `{ticket_id, score: 1-5}` | CSAT |
//!
//! Member traits go with `identify`: [`MemberTraits`] `{level?, member_id?, name?, address?,
//! email_sha256?, phone_sha256?}`. Raw e-mail addresses and phone numbers are never sent:
//! either omit them (the default) or send [`hash_email`] / [`hash_phone`].
//!
//! ```
//! use spoor_protocol::conventions::{order_completed, OrderItem};
//! let order = order_completed("o-1", 42.5, "EUR").item(OrderItem::new("sku-1", 1, 42.5));
//! assert_eq!(order.name(), "order_completed");
//! assert_eq!(order.properties().items.len(), 1);
//! ```

use serde::{Deserialize, Serialize};

/// Event names of the conventions, as stored in `events.name`.
pub mod names {
    pub const ORDER_COMPLETED: &str = "order_completed";
    pub const MEMBER_SIGNUP: &str = "member_signup";
    pub const MEMBER_SIGNIN: &str = "member_signin";
    pub const POINTS_EARNED: &str = "points_earned";
    pub const POINTS_REDEEMED: &str = "points_redeemed";
    pub const LEVEL_CHANGED: &str = "level_changed";
    pub const TICKET_OPENED: &str = "ticket_opened";
    pub const TICKET_REPLIED: &str = "ticket_replied";
    pub const TICKET_RESOLVED: &str = "ticket_resolved";
    pub const TICKET_RATED: &str = "ticket_rated";

    /// Every conventional `track` name.
    pub const ALL: [&str; 10] = [
        ORDER_COMPLETED,
        MEMBER_SIGNUP,
        MEMBER_SIGNIN,
        POINTS_EARNED,
        POINTS_REDEEMED,
        LEVEL_CHANGED,
        TICKET_OPENED,
        TICKET_REPLIED,
        TICKET_RESOLVED,
        TICKET_RATED,
    ];
}

/// A `track` event's name and properties, ready to go into an [`crate::Event`].
#[derive(Debug, Clone, PartialEq)]
pub struct Track<P> {
    name: &'static str,
    properties: P,
}

impl<P: Serialize> Track<P> {
    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn properties(&self) -> &P {
        &self.properties
    }
    /// The name and the properties, to put into `Event::name` and (serialised) `Event::properties`.
    pub fn into_parts(self) -> (&'static str, P) {
        (self.name, self.properties)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: String,
    pub quantity: u32,
    /// Unit price, in the order's currency.
    pub price: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl OrderItem {
    pub fn new(sku: impl Into<String>, quantity: u32, price: f64) -> OrderItem {
        OrderItem {
            sku: sku.into(),
            quantity,
            price,
            name: None,
        }
    }
}

/// `order_completed`: revenue is the order total in `currency` (ISO 4217).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCompleted {
    pub order_id: String,
    pub revenue: f64,
    pub currency: String,
    #[serde(default)]
    pub items: Vec<OrderItem>,
}

pub fn order_completed(
    order_id: impl Into<String>,
    revenue: f64,
    currency: impl Into<String>,
) -> Track<OrderCompleted> {
    Track {
        name: names::ORDER_COMPLETED,
        properties: OrderCompleted {
            order_id: order_id.into(),
            revenue,
            currency: currency.into(),
            items: Vec::new(),
        },
    }
}

impl Track<OrderCompleted> {
    /// Adds an order line.
    pub fn item(mut self, item: OrderItem) -> Self {
        self.properties.items.push(item);
        self
    }
}

/// `member_signup`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberSignup {
    /// The loyalty-programme member number, when it differs from the user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// How they signed up, e.g. `email`, `google`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

pub fn member_signup(member_id: Option<String>, method: Option<String>) -> Track<MemberSignup> {
    Track {
        name: names::MEMBER_SIGNUP,
        properties: MemberSignup { member_id, method },
    }
}

/// `member_signin`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberSignin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

pub fn member_signin(method: Option<String>) -> Track<MemberSignin> {
    Track {
        name: names::MEMBER_SIGNIN,
        properties: MemberSignin { method },
    }
}

/// `points_earned` / `points_redeemed`: `points` is positive in both; the name says which way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Points {
    pub points: u64,
    pub reason: String,
}

pub fn points_earned(points: u64, reason: impl Into<String>) -> Track<Points> {
    Track {
        name: names::POINTS_EARNED,
        properties: Points {
            points,
            reason: reason.into(),
        },
    }
}

pub fn points_redeemed(points: u64, reason: impl Into<String>) -> Track<Points> {
    Track {
        name: names::POINTS_REDEEMED,
        properties: Points {
            points,
            reason: reason.into(),
        },
    }
}

/// `level_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelChanged {
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_level: Option<String>,
}

pub fn level_changed(
    level: impl Into<String>,
    previous_level: Option<String>,
) -> Track<LevelChanged> {
    Track {
        name: names::LEVEL_CHANGED,
        properties: LevelChanged {
            level: level.into(),
            previous_level,
        },
    }
}

/// `ticket_opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOpened {
    pub ticket_id: String,
    /// e.g. `email`, `chat`, `phone`, `web`.
    pub channel: String,
    /// e.g. `low`, `normal`, `high`, `urgent`.
    pub priority: String,
    pub subject: String,
}

pub fn ticket_opened(
    ticket_id: impl Into<String>,
    channel: impl Into<String>,
    priority: impl Into<String>,
    subject: impl Into<String>,
) -> Track<TicketOpened> {
    Track {
        name: names::TICKET_OPENED,
        properties: TicketOpened {
            ticket_id: ticket_id.into(),
            channel: channel.into(),
            priority: priority.into(),
            subject: subject.into(),
        },
    }
}

/// Who replied to a ticket. The first `agent` reply is the ticket's first response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepliedBy {
    Agent,
    Customer,
}

/// `ticket_replied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReplied {
    pub ticket_id: String,
    pub by: RepliedBy,
}

pub fn ticket_replied(ticket_id: impl Into<String>, by: RepliedBy) -> Track<TicketReplied> {
    Track {
        name: names::TICKET_REPLIED,
        properties: TicketReplied {
            ticket_id: ticket_id.into(),
            by,
        },
    }
}

/// `ticket_resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResolved {
    pub ticket_id: String,
}

pub fn ticket_resolved(ticket_id: impl Into<String>) -> Track<TicketResolved> {
    Track {
        name: names::TICKET_RESOLVED,
        properties: TicketResolved {
            ticket_id: ticket_id.into(),
        },
    }
}

/// `ticket_rated`: a customer-satisfaction score from 1 to 5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRated {
    pub ticket_id: String,
    pub score: u8,
}

/// The score is clamped to 1–5.
pub fn ticket_rated(ticket_id: impl Into<String>, score: u8) -> Track<TicketRated> {
    Track {
        name: names::TICKET_RATED,
        properties: TicketRated {
            ticket_id: ticket_id.into(),
            score: score.clamp(1, 5),
        },
    }
}

/// A postal address, as a member trait.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub country: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub city: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub postal_code: String,
}

/// Member traits sent with `identify`. Every field is optional; absent fields are left out of
/// the JSON so they never overwrite an earlier value. E-mail and phone only ever as hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTraits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// [`hash_email`] of the address; never the address itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_sha256: Option<String>,
    /// [`hash_phone`] of the number; never the number itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_sha256: Option<String>,
}

impl MemberTraits {
    pub fn level(mut self, level: impl Into<String>) -> Self {
        self.level = Some(level.into());
        self
    }
    pub fn member_id(mut self, member_id: impl Into<String>) -> Self {
        self.member_id = Some(member_id.into());
        self
    }
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }
    /// Stores the hash of `email` (trimmed, lower-cased), not the address.
    #[cfg(feature = "hash")]
    pub fn email(mut self, email: &str) -> Self {
        self.email_sha256 = Some(hash_email(email));
        self
    }
    /// Stores the hash of `phone` (digits and a leading +), not the number.
    #[cfg(feature = "hash")]
    pub fn phone(mut self, phone: &str) -> Self {
        self.phone_sha256 = Some(hash_phone(phone));
        self
    }
}

/// Lower-case hex SHA-256 of the trimmed, lower-cased e-mail address.
#[cfg(feature = "hash")]
pub fn hash_email(email: &str) -> String {
    sha256_hex(email.trim().to_lowercase().as_bytes())
}

/// Lower-case hex SHA-256 of the phone number reduced to a leading `+` and its digits.
#[cfg(feature = "hash")]
pub fn hash_phone(phone: &str) -> String {
    let trimmed = phone.trim();
    let mut normal: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with('+') {
        normal.insert(0, '+');
    }
    sha256_hex(normal.as_bytes())
}

/// Lower-case hex SHA-256.
#[cfg(feature = "hash")]
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for byte in digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "hash")]
    fn sha256_known_answers() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    #[cfg(feature = "hash")]
    fn contact_details_are_normalised_before_hashing() {
        assert_eq!(
            hash_email("  Ada@Example.COM "),
            hash_email("ada@example.com")
        );
        assert_eq!(hash_phone("+49 (30) 123-45"), hash_phone("+4930 12345"));
        assert_ne!(hash_phone("+4930"), hash_phone("4930"));
        let traits = MemberTraits::default().email("ada@example.com");
        assert_eq!(traits.email_sha256.as_deref().map(str::len), Some(64));
    }

    #[test]
    fn builders_name_their_events() {
        let cases: Vec<(&str, &str)> = vec![
            (
                order_completed("o", 1.0, "EUR").name(),
                names::ORDER_COMPLETED,
            ),
            (member_signup(None, None).name(), names::MEMBER_SIGNUP),
            (member_signin(None).name(), names::MEMBER_SIGNIN),
            (points_earned(5, "r").name(), names::POINTS_EARNED),
            (points_redeemed(5, "r").name(), names::POINTS_REDEEMED),
            (level_changed("gold", None).name(), names::LEVEL_CHANGED),
            (
                ticket_opened("t", "chat", "low", "s").name(),
                names::TICKET_OPENED,
            ),
            (
                ticket_replied("t", RepliedBy::Agent).name(),
                names::TICKET_REPLIED,
            ),
            (ticket_resolved("t").name(), names::TICKET_RESOLVED),
            (ticket_rated("t", 9).name(), names::TICKET_RATED),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert_eq!(ticket_rated("t", 9).properties().score, 5);
        assert_eq!(ticket_rated("t", 0).properties().score, 1);
        let (name, order) = order_completed("o-1", 42.5, "EUR")
            .item(OrderItem::new("A", 2, 21.25))
            .into_parts();
        assert_eq!(name, "order_completed");
        assert_eq!(order.items[0].quantity, 2);
    }

    #[cfg(feature = "json")]
    #[test]
    fn wire_shapes() {
        let json = |v: &dyn ToJson| v.to_json();
        assert_eq!(
            json(&ticket_replied("t-1", RepliedBy::Agent).into_parts().1),
            r#"{"ticket_id":"t-1","by":"agent"}"#
        );
        assert_eq!(
            json(
                &order_completed("o-1", 42.5, "EUR")
                    .item(OrderItem::new("A", 1, 42.5))
                    .into_parts()
                    .1
            ),
            r#"{"order_id":"o-1","revenue":42.5,"currency":"EUR","items":[{"sku":"A","quantity":1,"price":42.5}]}"#
        );
        assert_eq!(
            json(&MemberTraits::default().level("gold").address(Address {
                city: "Lyon".into(),
                ..Address::default()
            })),
            r#"{"level":"gold","address":{"city":"Lyon"}}"#
        );
        assert_eq!(json(&member_signup(None, None).into_parts().1), "{}");
    }

    #[cfg(feature = "json")]
    trait ToJson {
        fn to_json(&self) -> String;
    }

    #[cfg(feature = "json")]
    impl<T: Serialize> ToJson for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}
