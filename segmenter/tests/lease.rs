//! The writer lease on real ClickHouse: one holder at a time, expiry and take-over, a race of
//! many processes, and the CLI waiting for (or giving up on) a busy database.

mod common;

use std::time::{Duration, Instant};

use common::*;
use spoor_segmenter::lease::{Lease, LeaseError, TTL};

async fn terms(db: &spoor_segmenter::Db) -> Vec<String> {
    rows(
        db,
        &format!(
            "SELECT concat(toString(term), ' ', holder) FROM {}.segmenter_lease ORDER BY term, holder",
            db.database()
        ),
    )
    .await
}

#[tokio::test]
async fn one_holder_at_a_time_until_it_releases() {
    let db = fresh_db("lease_one").await;
    let a = Lease::try_acquire(&db, "host:1:a", TTL).await.unwrap();
    match Lease::try_acquire(&db, "host:2:b", TTL).await {
        Err(LeaseError::Held(who)) => assert_eq!(who.holder, "host:1:a"),
        other => panic!("{other:?}"),
    }
    // The holder itself may take it again (a new term).
    let mut a2 = Lease::try_acquire(&db, "host:1:a", TTL).await.unwrap();
    assert_eq!(a2.term(), a.term() + 1);
    a2.renew(&db).await.unwrap();
    a2.release(&db).await.unwrap();
    let b = Lease::try_acquire(&db, "host:2:b", TTL).await.unwrap();
    assert_eq!(b.term(), 5);
    assert_eq!(
        terms(&db).await,
        [
            "1 host:1:a",
            "2 host:1:a",
            "3 host:1:a",
            "4 host:1:a",
            "5 host:2:b"
        ]
    );
}

#[tokio::test]
async fn an_expired_term_is_taken_over_and_its_holder_learns_it() {
    let db = fresh_db("lease_expiry").await;
    let mut a = Lease::try_acquire(&db, "host:1:a", Duration::from_secs(4))
        .await
        .unwrap();
    assert!(matches!(
        Lease::try_acquire(&db, "host:2:b", TTL).await,
        Err(LeaseError::Held(_))
    ));
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let _b = Lease::try_acquire(&db, "host:2:b", TTL).await.unwrap();
    match a.renew(&db).await {
        Err(LeaseError::Lost(winner)) => assert_eq!(winner, "host:2:b"),
        other => panic!("{other:?}"),
    }
    // hold_while stops the work when a renewal fails: the work stalls this process (a
    // blocking call) past the lease's time, another process takes the lease meanwhile.
    let mut c = Lease::try_acquire(&db, "host:2:b", Duration::from_secs(2))
        .await
        .unwrap();
    let thief = std::thread::spawn({
        // A client of its own: a clone would share connections driven by this (stalled) runtime.
        let db = spoor_segmenter::Db::new(&clickhouse_url(), db.layout().clone()).unwrap();
        move || {
            std::thread::sleep(Duration::from_secs(3));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(Lease::try_acquire(&db, "host:3:c", TTL))
                .unwrap();
        }
    });
    let stolen = async {
        std::thread::sleep(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(60)).await;
    };
    let started = Instant::now();
    let outcome = c.hold_while(&db, stolen).await;
    assert!(
        matches!(outcome, Err(LeaseError::Lost(ref w)) if w == "host:3:c"),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    thief.join().unwrap();
}

#[tokio::test]
async fn of_many_taking_it_at_once_exactly_one_holds_each_term() {
    let db = fresh_db("lease_race").await;
    for round in 0..4 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    Lease::try_acquire(&db, &format!("host:{i}:r{round}"), TTL).await
                })
            })
            .collect();
        let mut held = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(lease) => held.push(lease),
                Err(LeaseError::Held(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(held.len(), 1, "round {round}");
        held.pop().unwrap().release(&db).await.unwrap();
    }
    // ClickHouse kept one row per term: the inserts of the losers were dropped.
    let all = terms(&db).await;
    let mut numbers: Vec<&str> = all.iter().map(|t| t.split(' ').next().unwrap()).collect();
    let rows = numbers.len();
    numbers.dedup();
    assert_eq!(numbers.len(), rows, "{all:?}");
    assert_eq!(rows, 8, "a term taken and a release per round: {all:?}");
}

#[tokio::test]
async fn writing_commands_wait_for_the_lease_or_give_up_with_exit_code_8() {
    let db = fresh_db("lease_cli").await;
    insert(&db, &[page("2026-11-21T09:00:00Z", "a1", "s1", "/")]).await;
    let held = Lease::try_acquire(&db, "ops-box:42:abcd", TTL)
        .await
        .unwrap();
    let cli = |args: &[&str]| segmenter_command(&db, args).output().unwrap();
    for args in [
        &["run", "--quiet", "--lease-wait", "2s"][..],
        &[
            "forget",
            "--project",
            "p1",
            "--user",
            "u1",
            "--lease-wait",
            "0s",
        ],
    ] {
        let out = cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{args:?}: {err}");
        assert!(
            err.contains("another segmenter is writing to this database: ops-box:42:abcd"),
            "{err}"
        );
    }
    assert!(
        rows(
            &db,
            &format!(
                "SELECT run_id FROM {}.segmenter_runs WHERE mode IN ('full', 'incremental')",
                db.database()
            )
        )
        .await
        .is_empty(),
        "no run happened"
    );
    // Released while a run waits (once it says so): the run goes ahead.
    let mut waiting = segmenter_command(&db, &["run", "--quiet", "--lease-wait", "60s"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = waiting.stderr.take().unwrap();
    let (told, said) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("Waiting for another segmenter to finish writing: ops-box:42:abcd") {
                let _ = told.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let waited = said.recv_timeout(Duration::from_secs(60));
    held.release(&db).await.unwrap();
    let status = waiting.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(waited.is_ok(), "it never said it waits: {err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(
        rows(
            &db,
            &format!(
                "SELECT mode FROM {}.segmenter_runs WHERE mode IN ('full', 'incremental')",
                db.database()
            )
        )
        .await,
        ["full"]
    );
    // And it gave the lease back: the next one takes it at once.
    Lease::try_acquire(&db, "next:1:x", TTL).await.unwrap();
}
