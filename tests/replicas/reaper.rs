//! A replica killed with SIGKILL in the middle of a load: the other takes the reaper lease
//! when it lapses, nothing acknowledged is lost, and every session still expires once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::harness::{Cluster, client, eventually, read};

/// The reaper's tick in this test; the lease is three of them (`spawn_reaper` in the binary).
const INTERVAL_MS: i64 = 300;
const LEASE_MS: i64 = 3 * INTERVAL_MS;
/// Sessions live this long (`sessions.max_ttl_secs` caps every TTL).
const TTL_SECS: &str = "3";
/// Acknowledged creates wanted through each replica before the kill, and through B after it.
const BEFORE: usize = 20;
const AFTER: usize = 20;

/// A session a replica acknowledged (answered 2xx for).
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    room: String,
    user: String,
    via: &'static str,
    after_kill: bool,
}

#[derive(Default)]
struct Load {
    acks: Mutex<Vec<Ack>>,
    /// What went wrong with requests to B (there must be nothing).
    b_failures: Mutex<Vec<String>>,
    a_dead: AtomicBool,
    stop: AtomicBool,
}

impl Load {
    fn acked(&self, via: &str, after_kill: bool) -> usize {
        self.acks
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.via == via && a.after_kill == after_kill)
            .count()
    }
}

/// Creates sessions in a loop, alternating between A and B (only B once A is dead).
async fn worker(n: usize, load: Arc<Load>, a: String, b: String) {
    let client = client(true);
    let mut i = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        i += 1;
        let dead = load.a_dead.load(Ordering::SeqCst);
        let (via, base) = if !dead && (n + i).is_multiple_of(2) {
            ("a", &a)
        } else {
            ("b", &b)
        };
        let user = format!("load-{n}-{i}");
        let answer = client
            .post(format!("{base}/api/sessions"))
            .json(&json!({ "user_id": user }))
            .send()
            .await;
        let outcome = match answer {
            Ok(resp) => match read(resp).await {
                (200, body) => Ok(body),
                (status, body) => Err(format!("{status} {body}")),
            },
            Err(e) => Err(e.to_string()),
        };
        match (outcome, via) {
            (Ok(body), _) => load.acks.lock().unwrap().push(Ack {
                id: body["session_id"].as_str().unwrap().to_owned(),
                room: body["room_name"].as_str().unwrap().to_owned(),
                user,
                via,
                after_kill: dead,
            }),
            (Err(e), "b") => load.b_failures.lock().unwrap().push(e),
            // A's requests fail once it is killed: they were never acknowledged.
            (Err(_), _) => {}
        }
    }
}

/// The reaper lease's holder and end (Unix microseconds), if anyone took it yet.
async fn lease(db: &mut sqlx::PgConnection) -> Option<(String, i64)> {
    sqlx::query_as("SELECT holder, until FROM leases WHERE name = 'reaper'")
        .fetch_optional(db)
        .await
        .expect("read the lease")
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[tokio::test]
async fn after_a_kill_9_the_other_replica_reaps_and_nothing_acknowledged_is_lost() {
    let interval = INTERVAL_MS.to_string();
    let cluster = Cluster::start(&[
        ("JUNE__REAPER__INTERVAL_MS", &interval),
        ("JUNE__SESSIONS__MAX_TTL_SECS", TTL_SECS),
    ])
    .await;
    let mut db = cluster.db().await;
    // A starts alone, so it is the one holding the lease when it dies.
    let mut a = cluster.spawn("a").await;
    let (a_holder, _) = eventually(
        "A takes the reaper lease",
        Duration::from_secs(10),
        async || lease(&mut db).await,
    )
    .await;
    let b = cluster.spawn("b").await;

    let load = Arc::new(Load::default());
    let workers: Vec<_> = (0..6)
        .map(|n| tokio::spawn(worker(n, load.clone(), a.url(""), b.url(""))))
        .collect();
    eventually(
        "both replicas acknowledge creates",
        Duration::from_secs(30),
        async || {
            (load.acked("a", false) >= BEFORE && load.acked("b", false) >= BEFORE).then_some(())
        },
    )
    .await;

    let (holder_at_kill, until_at_kill) = lease(&mut db).await.expect("a lease");
    let killed_at = Utc::now();
    a.kill9();
    load.a_dead.store(true, Ordering::SeqCst);

    // B takes the lease once A's lapses: at its first tick after `until`.
    let (b_holder, b_until) = eventually(
        "B takes the reaper lease",
        Duration::from_secs(30),
        async || {
            lease(&mut db)
                .await
                .filter(|(holder, _)| *holder != a_holder)
        },
    )
    .await;
    // When B took it, by B's own clock (it writes `until = now + lease`): no test-side
    // polling delay is counted.
    let taken_at = b_until - LEASE_MS * 1000;
    let bound_ms = LEASE_MS + 2 * INTERVAL_MS + 2000;
    eprintln!(
        "B took the reaper lease {} ms after A's kill -9 (lease {LEASE_MS} ms)",
        (taken_at - micros(killed_at)) / 1000
    );
    assert!(
        taken_at - micros(killed_at) <= bound_ms * 1000,
        "B took the lease {} ms after the kill; the lease is {LEASE_MS} ms, the bound {bound_ms} ms",
        (taken_at - micros(killed_at)) / 1000
    );
    if holder_at_kill == a_holder {
        assert!(
            taken_at >= until_at_kill,
            "B waited for A's lease to lapse ({taken_at} < {until_at_kill})"
        );
    }
    assert_ne!(b_holder, a_holder);

    eventually(
        "B acknowledges creates after the kill",
        Duration::from_secs(30),
        async || (load.acked("b", true) >= AFTER).then_some(()),
    )
    .await;
    load.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let b_failures = load.b_failures.lock().unwrap().clone();
    assert!(b_failures.is_empty(), "B failed requests: {b_failures:?}");
    let acks = load.acks.lock().unwrap().clone();

    // Nothing acknowledged is lost: B serves every session either replica acknowledged.
    for ack in &acks {
        let (status, read) = b.get(&format!("/api/sessions/{}", ack.id)).await;
        assert_eq!(status, 200, "{ack:?}: {read}");
        assert_eq!(read["room_name"], ack.room.as_str(), "{ack:?}");
        assert_eq!(read["user_id"], ack.user.as_str(), "{ack:?}");
    }

    // Every session expires: the reaper (now B's) stores it and deletes its room.
    eventually(
        "every session is expired in the store",
        Duration::from_secs(60),
        async || {
            let live: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sessions WHERE status IN ('created', 'active')",
            )
            .fetch_one(&mut db)
            .await
            .unwrap();
            (live == 0).then_some(())
        },
    )
    .await;
    let stored = expiries(&mut db).await;
    for ack in &acks {
        let (status, ended_at) = stored
            .get(&ack.id)
            .unwrap_or_else(|| panic!("{ack:?} stored"));
        assert_eq!(status, "expired", "{ack:?}");
        assert!(ended_at.is_some(), "{ack:?} has its end time");
    }
    assert!(
        stored.values().all(|(status, _)| status == "expired"),
        "{stored:?}"
    );
    let rooms = cluster.lk.room_names();
    assert!(
        acks.iter().all(|ack| !rooms.contains(&ack.room)),
        "every expired session's room is deleted"
    );

    // Exactly once: later passes change nothing, no two replicas counted one expiry, and a
    // room is deleted twice at most once (the one A may have deleted just before it died,
    // without storing the expiry).
    tokio::time::sleep(Duration::from_millis(3 * INTERVAL_MS as u64)).await;
    assert_eq!(
        expiries(&mut db).await,
        stored,
        "a later pass changed nothing"
    );
    let counted: u64 = [&a, &b]
        .iter()
        .flat_map(|r| r.log_events())
        .filter(|e| e["message"] == "reaper pass")
        .map(|e| e["expired"].as_u64().unwrap_or_default())
        .sum();
    assert!(
        counted <= stored.len() as u64,
        "the reapers counted {counted} expiries of {} sessions",
        stored.len()
    );
    let mut deletes: HashMap<String, usize> = HashMap::new();
    for call in cluster.lk.calls() {
        if call.method == "DeleteRoom" {
            *deletes
                .entry(call.body["room"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = deletes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= 1 && twice.iter().all(|(_, n)| **n == 2),
        "rooms deleted more than once: {twice:?}"
    );
    assert!(
        acks.iter().all(|ack| deletes.contains_key(&ack.room)),
        "every acknowledged session's room was deleted"
    );
    drop((a, b, db));
    cluster.finish().await;
}

/// Every session's status and end time (Unix microseconds).
async fn expiries(db: &mut sqlx::PgConnection) -> HashMap<String, (String, Option<i64>)> {
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT id, status, ended_at FROM sessions")
            .fetch_all(db)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, status, ended)| (id, (status, ended)))
        .collect()
}
