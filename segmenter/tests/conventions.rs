//! Contract test: events built with the protocol's convention helpers feed the segmenter's
//! views. If a property is renamed on one side, this fails.

mod common;

use common::*;
use serde::Serialize;
use spoor_protocol::conventions::{
    Address, MemberTraits, OrderItem, RepliedBy, Track, level_changed, member_signin,
    member_signup, order_completed, points_earned, points_redeemed, ticket_opened, ticket_rated,
    ticket_replied, ticket_resolved,
};

fn conv<P: Serialize>(when: &str, user: &str, event: Track<P>) -> Ev {
    let (name, properties) = event.into_parts();
    track(
        when,
        user,
        name,
        &serde_json::to_string(&properties).unwrap(),
    )
}

#[tokio::test]
async fn events_built_with_the_protocol_helpers_feed_members_tickets_and_reports() {
    let db = fresh_db("conventions").await;
    let traits = MemberTraits::default()
        .level("silver")
        .address(Address {
            city: "Porto".into(),
            country: "PT".into(),
            ..Address::default()
        })
        .email("Ana@Example.com");
    insert(
        &db,
        &[
            page("2026-11-21T09:00:00Z", "a1", "s1", "/").user("m1"),
            ev("identify", "2026-11-21T09:00:01Z", "a1")
                .user("m1")
                .session("s1")
                .traits(&serde_json::to_string(&traits).unwrap()),
            conv(
                "2026-11-21T09:01:00Z",
                "m1",
                member_signup(Some("M-7".into()), Some("email".into())),
            ),
            conv("2026-11-21T09:02:00Z", "m1", member_signin(None)),
            conv("2026-11-21T09:03:00Z", "m1", points_earned(200, "welcome")),
            conv("2026-11-21T09:04:00Z", "m1", points_redeemed(50, "coupon")),
            conv(
                "2026-11-21T09:05:00Z",
                "m1",
                level_changed("gold", Some("silver".into())),
            ),
            conv(
                "2026-11-21T09:06:00Z",
                "m1",
                order_completed("o-9", 30.0, "EUR").item(OrderItem::new("A", 2, 15.0)),
            ),
            conv(
                "2026-11-21T10:00:00Z",
                "m1",
                ticket_opened("T-1", "email", "high", "Late parcel"),
            ),
            conv(
                "2026-11-21T10:10:00Z",
                "agent",
                ticket_replied("T-1", RepliedBy::Agent),
            ),
            conv("2026-11-21T11:00:00Z", "agent", ticket_resolved("T-1")),
            conv("2026-11-21T11:05:00Z", "m1", ticket_rated("T-1", 5)),
        ],
    )
    .await;
    run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(
        rows(&db, "SELECT member_id, level, points_balance, signins, city, country, orders, revenue FROM {db}.members").await,
        ["m1\tgold\t150\t1\tPorto\tPT\t1\t30"]
    );
    assert_eq!(
        rows(&db, "SELECT member_id, level, JSONHas(traits, 'email_sha256') FROM {db}.profiles_static WHERE person_id = 'm1'").await,
        ["M-7\tgold\t1"]
    );
    assert_eq!(
        rows(&db, "SELECT ticket_id, channel, priority, status, response_seconds, resolution_seconds, csat FROM {db}.tickets").await,
        ["T-1\temail\thigh\tresolved\t600\t3600\t5"]
    );
    assert_eq!(
        rows(&db, "SELECT orders, revenue, signups, signins, points_earned, points_redeemed, tickets_opened, tickets_resolved, csat_avg FROM {db}.report_daily").await,
        ["1\t30\t1\t1\t200\t50\t1\t1\t5"]
    );
}
