//! The behaviour every store adapter must have, written once and run per backend.

use chrono::{Duration, DurationRound, TimeZone, Utc};
use june_domain::ports::TurnSummary;
use june_domain::ports::{EventCursor, IdempotencyState, Presence};
use june_domain::ports::{PageCursor, SessionFilter, StoreError, TurnGeneration, TurnStart};
use june_domain::{
    Heard, HistoryEntry, InterruptedBy, Interruption, Partials, RecordOutcome, RecordedEvent,
    Reply, Role, Session, SessionKind, SessionStatus, TokenUsage, TurnFailure, TurnRecord,
    TurnSource, TurnTimings,
};
use june_store::Stores;
use uuid::Uuid;

/// The contract as `#[tokio::test]`s, for a backend whose `fresh()` gives a `Db` with
/// `stores` and an async `cleanup()`.
#[macro_export]
macro_rules! store_contract {
    ($fresh:path) => {
        store_contract!(@tests $fresh;
            sessions_round_trip,
            room_sessions_keep_their_kind,
            live_room_names_are_unique,
            status_only_moves_forward,
            listing_filters_and_pages,
            history_appends_reads_and_clears,
            sessions_are_found_by_room_sid_and_live_ones_listed_oldest_first,
            presence_counts_people_and_newer_news_wins,
            presence_counts_hold_under_duplicates_reordering_and_batches,
            the_same_news_applied_twice_at_once_counts_once,
            a_room_of_thousands_keeps_the_exact_count,
            reconciliation_repairs_drift_from_what_livekit_lists,
            events_are_recorded_once_and_listed_newest_first,
            idempotency_keys_claim_once_and_replay_the_response,
            racing_status_changes_are_won_exactly_once,
            a_lease_has_one_holder_until_it_lapses,
            batches_do_what_single_calls_do,
            concurrent_creates_of_one_room_name_store_exactly_one,
            voice_state_claims_once_counts_turns_and_skips_resent_finals,
            the_store_answers_a_ping,
            turn_records_are_kept_paged_resumed_and_summed,
        );
    };
    (@tests $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let db = $fresh().await;
                contract::$name(&db.stores).await;
                db.cleanup().await;
            }
        )*
    };
}

pub fn session(user: &str, room: &str) -> Session {
    june_testkit::session()
        .user(user)
        .room(room)
        .sid("RM_abc")
        .voice(true)
        .metadata(serde_json::json!({"topic": {"a": [1, 2]}}))
        .build()
}

/// A room session (adopted, `voice.adopt_rooms`) reads back as one, through every read; an
/// ordinary session stays owned.
pub async fn room_sessions_keep_their_kind(db: &Stores) {
    let owned = session("alice", "room-owned");
    let room = Session {
        user_id: june_domain::ROOM_SESSION_OWNER.into(),
        kind: SessionKind::Room,
        voice: false,
        metadata: Default::default(),
        ..session("x", "ozzu-main")
    };
    db.sessions.insert(&owned).await.unwrap();
    db.sessions.insert(&room).await.unwrap();
    assert_eq!(db.sessions.get(room.id).await.unwrap(), room);
    assert_eq!(
        db.sessions.get(owned.id).await.unwrap().kind,
        SessionKind::Owned
    );
    let live = db.sessions.find_live_by_room("ozzu-main").await.unwrap();
    assert_eq!(live.map(|s| s.kind), Some(SessionKind::Room));
    let by_sid = db
        .sessions
        .find_by_room_sids(std::slice::from_ref(&room.livekit_room_sid))
        .await
        .unwrap();
    assert!(
        by_sid
            .iter()
            .any(|s| s.id == room.id && s.kind == SessionKind::Room)
    );
    let listed = db
        .sessions
        .list(&SessionFilter {
            user_id: Some(june_domain::ROOM_SESSION_OWNER.into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed, vec![room.clone()]);
    let ended = db
        .sessions
        .advance_status(room.id, SessionStatus::Expired, Utc::now())
        .await
        .unwrap();
    assert_eq!(ended.session.kind, SessionKind::Room);
}

pub async fn sessions_round_trip(db: &Stores) {
    let s = session("alice", "room-a");
    db.sessions.insert(&s).await.unwrap();
    assert_eq!(db.sessions.get(s.id).await.unwrap(), s);
    assert!(matches!(
        db.sessions.get(Uuid::new_v4()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        db.sessions.find_live_by_room("room-a").await.unwrap(),
        Some(s)
    );
    assert_eq!(db.sessions.find_live_by_room("nope").await.unwrap(), None);
}

pub async fn live_room_names_are_unique(db: &Stores) {
    let first = session("alice", "shared");
    db.sessions.insert(&first).await.unwrap();
    let second = session("bob", "shared");
    assert!(matches!(
        db.sessions.insert(&second).await,
        Err(StoreError::Conflict(_))
    ));
    // Once the first has ended, the name is free again.
    assert!(
        db.sessions
            .advance_status(first.id, SessionStatus::Ended, Utc::now())
            .await
            .unwrap()
            .changed
    );
    db.sessions.insert(&second).await.unwrap();
    assert_eq!(
        db.sessions
            .find_live_by_room("shared")
            .await
            .unwrap()
            .map(|s| s.id),
        Some(second.id)
    );
}

pub async fn status_only_moves_forward(db: &Stores) {
    let s = session("alice", "room-fwd");
    db.sessions.insert(&s).await.unwrap();
    let t = Utc::now()
        .duration_trunc(Duration::microseconds(1))
        .unwrap();

    let active = db
        .sessions
        .advance_status(s.id, SessionStatus::Active, t)
        .await
        .unwrap()
        .session;
    assert_eq!(active.status, SessionStatus::Active);
    assert_eq!(active.ended_at, None);

    let ended = db
        .sessions
        .advance_status(s.id, SessionStatus::Ended, t)
        .await
        .unwrap()
        .session;
    assert_eq!(ended.status, SessionStatus::Ended);
    assert_eq!(ended.ended_at, Some(t));

    // A late "active" or "expired" changes nothing.
    for late in [
        SessionStatus::Active,
        SessionStatus::Created,
        SessionStatus::Expired,
    ] {
        let after = db
            .sessions
            .advance_status(s.id, late, t + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(after.session, ended);
        assert!(!after.changed);
    }
    assert!(matches!(
        db.sessions
            .advance_status(Uuid::new_v4(), SessionStatus::Ended, t)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn listing_filters_and_pages(db: &Stores) {
    let base = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut s = session(if i % 2 == 0 { "even" } else { "odd" }, &format!("r{i}"));
        s.created_at = base + Duration::seconds(i);
        ids.push(s.id);
        db.sessions.insert(&s).await.unwrap();
    }
    db.sessions
        .advance_status(ids[4], SessionStatus::Ended, base)
        .await
        .unwrap();

    let page = |user: Option<&str>, status, limit, after| SessionFilter {
        user_id: user.map(str::to_owned),
        status,
        limit,
        after,
    };
    let all = db.sessions.list(&page(None, None, 10, None)).await.unwrap();
    let got: Vec<Uuid> = all.iter().map(|s| s.id).collect();
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    assert_eq!(got, newest_first);

    let first = db.sessions.list(&page(None, None, 2, None)).await.unwrap();
    let cursor = PageCursor {
        created_at: first[1].created_at,
        id: first[1].id,
    };
    let second = db
        .sessions
        .list(&page(None, None, 2, Some(cursor)))
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]]
    );

    let even = db
        .sessions
        .list(&page(Some("even"), None, 10, None))
        .await
        .unwrap();
    assert_eq!(even.len(), 3);
    let even_live = db
        .sessions
        .list(&page(Some("even"), Some(SessionStatus::Created), 10, None))
        .await
        .unwrap();
    assert_eq!(even_live.len(), 2);
}

pub async fn history_appends_reads_and_clears(db: &Stores) {
    let s = session("alice", "room-h");
    db.sessions.insert(&s).await.unwrap();
    let at = Utc::now()
        .duration_trunc(Duration::microseconds(1))
        .unwrap();
    for (i, role) in [Role::User, Role::Assistant, Role::User]
        .into_iter()
        .enumerate()
    {
        db.history
            .append(
                s.id,
                &HistoryEntry {
                    role,
                    content: format!("line {i}"),
                    timestamp: at,
                },
            )
            .await
            .unwrap();
    }
    let last_two = db.history.recent(s.id, 2).await.unwrap();
    assert_eq!(
        last_two
            .iter()
            .map(|e| e.content.as_str())
            .collect::<Vec<_>>(),
        vec!["line 1", "line 2"]
    );
    assert_eq!(last_two[0].role, Role::Assistant);
    assert_eq!(last_two[0].timestamp, at);

    db.history.clear(s.id).await.unwrap();
    assert!(db.history.recent(s.id, 10).await.unwrap().is_empty());

    let orphan = HistoryEntry {
        role: Role::User,
        content: "x".into(),
        timestamp: at,
    };
    assert!(matches!(
        db.history.append(Uuid::new_v4(), &orphan).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn sessions_are_found_by_room_sid_and_live_ones_listed_oldest_first(db: &Stores) {
    let base = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let mut a = session("a", "ra");
    a.created_at = base;
    a.livekit_room_sid = "RM_a".into();
    let mut b = session("b", "rb");
    b.created_at = base + Duration::seconds(1);
    b.livekit_room_sid = "RM_b".into();
    let mut c = session("c", "rc");
    c.created_at = base + Duration::seconds(2);
    for s in [&c, &a, &b] {
        db.sessions.insert(s).await.unwrap();
    }
    db.sessions
        .advance_status(b.id, SessionStatus::Ended, base)
        .await
        .unwrap();
    assert_eq!(
        db.sessions
            .find_by_room_sids(&["RM_b".into()])
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec![b.id]
    );
    assert!(
        db.sessions
            .find_by_room_sids(&["RM_none".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let live: Vec<Uuid> = db
        .sessions
        .list_live(10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![a.id, c.id]);
    assert_eq!(db.sessions.list_live(1).await.unwrap().len(), 1);
}

pub async fn presence_counts_people_and_newer_news_wins(db: &Stores) {
    let s = session("alice", "room-p");
    db.sessions.insert(&s).await.unwrap();
    let t = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 10).unwrap();
    db.presence
        .record_presence(&[Presence {
            session_id: s.id,
            identity: "bob".into(),
            present: false,
            at: t + Duration::seconds(5),
        }])
        .await
        .unwrap();
    // An older join arriving late changes nothing.
    db.presence
        .record_presence(&[Presence {
            session_id: s.id,
            identity: "bob".into(),
            present: true,
            at: t,
        }])
        .await
        .unwrap();
    db.presence
        .record_presence(&[Presence {
            session_id: s.id,
            identity: "carol".into(),
            present: true,
            at: t + Duration::seconds(1),
        }])
        .await
        .unwrap();
    db.presence
        .record_presence(&[Presence {
            session_id: s.id,
            identity: "dan".into(),
            present: true,
            at: t + Duration::seconds(2),
        }])
        .await
        .unwrap();
    let now = db.sessions.get(s.id).await.unwrap();
    assert_eq!(now.participant_count, 2);
    assert_eq!(now.last_activity_at, Some(t + Duration::seconds(5)));
    assert!(matches!(
        db.presence
            .record_presence(&[Presence {
                session_id: Uuid::new_v4(),
                identity: "x".into(),
                present: true,
                at: t,
            }])
            .await,
        Err(StoreError::NotFound)
    ));
}

/// News about `who` in session `s`, `secs` after a fixed instant.
fn news(s: &Session, who: &str, present: bool, secs: i64) -> Presence {
    Presence {
        session_id: s.id,
        identity: who.into(),
        present,
        at: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + Duration::seconds(secs),
    }
}

/// The session's (participant_count, last_activity_at), as stored.
async fn counted(db: &Stores, s: &Session) -> (u32, Option<chrono::DateTime<Utc>>) {
    let now = db.sessions.get(s.id).await.unwrap();
    (now.participant_count, now.last_activity_at)
}

pub async fn presence_counts_hold_under_duplicates_reordering_and_batches(db: &Stores) {
    let s = session("alice", "room-inc");
    db.sessions.insert(&s).await.unwrap();
    let at = |secs| Some(news(&s, "", true, secs).at);
    let record = |batch: Vec<Presence>| async move { db.presence.record_presence(&batch).await };

    record(vec![news(&s, "a", true, 1)]).await.unwrap();
    record(vec![news(&s, "b", true, 2)]).await.unwrap();
    assert_eq!(counted(db, &s).await, (2, at(2)));
    // A duplicate join, delivered again, changes nothing.
    record(vec![news(&s, "a", true, 1)]).await.unwrap();
    record(vec![news(&s, "b", true, 2), news(&s, "b", true, 2)])
        .await
        .unwrap();
    assert_eq!(counted(db, &s).await, (2, at(2)));
    // A leave older than the join it follows changes nothing either.
    record(vec![news(&s, "a", false, 0)]).await.unwrap();
    assert_eq!(counted(db, &s).await, (2, at(2)));
    // A leave, then its duplicate: counted once.
    record(vec![news(&s, "a", false, 3)]).await.unwrap();
    record(vec![news(&s, "a", false, 3)]).await.unwrap();
    assert_eq!(counted(db, &s).await, (1, at(3)));
    // Several pieces about one identity in one batch: the latest wins, in any order; of
    // equal times the later in the slice.
    record(vec![
        news(&s, "c", true, 5),
        news(&s, "c", false, 7),
        news(&s, "c", true, 6),
        news(&s, "d", true, 8),
        news(&s, "d", false, 8),
        news(&s, "e", false, 9),
        news(&s, "e", true, 9),
    ])
    .await
    .unwrap();
    assert_eq!(counted(db, &s).await, (2, at(9)), "b and e");
    // A rejoin after a leave counts again; news older than the last activity keeps it.
    record(vec![news(&s, "a", true, 10), news(&s, "b", false, 4)])
        .await
        .unwrap();
    assert_eq!(counted(db, &s).await, (2, at(10)), "a and e");
    // Another session's news moves only its own count.
    let other = session("bob", "room-inc-2");
    db.sessions.insert(&other).await.unwrap();
    record(vec![news(&other, "a", true, 1), news(&s, "f", true, 11)])
        .await
        .unwrap();
    assert_eq!(counted(db, &other).await, (1, at(1)));
    assert_eq!(counted(db, &s).await, (3, at(11)));
}

/// Two replicas (or two webhook lanes) applying the same deliveries at the same moment:
/// each piece of news changes the row once, so it is counted once.
pub async fn the_same_news_applied_twice_at_once_counts_once(db: &Stores) {
    let s = session("alice", "room-twice");
    db.sessions.insert(&s).await.unwrap();
    let joins: Vec<Presence> = (0..50)
        .map(|i| news(&s, &format!("p{i}"), true, i))
        .collect();
    for round in 0..5 {
        let batch: Vec<Presence> = joins
            .iter()
            .map(|n| Presence {
                present: round % 2 == 0,
                at: n.at + Duration::seconds(100 * round),
                ..n.clone()
            })
            .collect();
        let tasks = (0..2).map(|_| {
            let (presence, batch) = (db.presence.clone(), batch.clone());
            tokio::spawn(async move { presence.record_presence(&batch).await })
        });
        for done in futures_util::future::join_all(tasks).await {
            done.unwrap().unwrap();
        }
        let expected = if round % 2 == 0 { 50 } else { 0 };
        assert_eq!(counted(db, &s).await.0, expected, "round {round}");
    }
}

pub async fn a_room_of_thousands_keeps_the_exact_count(db: &Stores) {
    let s = session("alice", "room-big");
    db.sessions.insert(&s).await.unwrap();
    let joins: Vec<Presence> = (0..3000)
        .map(|i| news(&s, &format!("p{i:05}"), true, i))
        .collect();
    // In webhook-sized batches, and one batch larger than a statement's chunk.
    for batch in joins[..2000].chunks(64) {
        db.presence.record_presence(batch).await.unwrap();
    }
    db.presence.record_presence(&joins[2000..]).await.unwrap();
    assert_eq!(counted(db, &s).await, (3000, Some(joins[2999].at)));
    let leaves: Vec<Presence> = joins
        .iter()
        .step_by(3)
        .map(|n| Presence {
            present: false,
            at: n.at + Duration::hours(1),
            ..n.clone()
        })
        .collect();
    for batch in leaves.chunks(64) {
        db.presence.record_presence(batch).await.unwrap();
    }
    assert_eq!(counted(db, &s).await.0, 2000);
}

pub async fn reconciliation_repairs_drift_from_what_livekit_lists(db: &Stores) {
    // A count that disagrees with the rows (as a lost update or a hand edit would leave).
    let s = Session {
        participant_count: 7,
        ..session("alice", "room-drift")
    };
    db.sessions.insert(&s).await.unwrap();
    db.presence
        .record_presence(&[
            news(&s, "here", true, 1),
            news(&s, "ghost", true, 2),
            news(&s, "back", false, 3),
            news(&s, "late", true, 50),
        ])
        .await
        .unwrap();
    assert_eq!(counted(db, &s).await.0, 10, "the drift is kept, not hidden");

    // LiveKit lists `here` and `back` (and an agent we never counted) at t+20: `ghost`'s
    // leave was lost, `back`'s rejoin too; `late`'s news is newer than the listing.
    let at = news(&s, "", true, 20).at;
    let listed = ["here", "back", "agent-1"].map(String::from);
    let count = db.presence.reconcile(s.id, &listed, at).await.unwrap();
    assert_eq!(count, 3, "here, back and late");
    assert_eq!(counted(db, &s).await, (3, Some(news(&s, "", true, 50).at)));
    // The repair is news like any other: newer news still wins over it.
    db.presence
        .record_presence(&[news(&s, "ghost", true, 21), news(&s, "back", true, 10)])
        .await
        .unwrap();
    assert_eq!(counted(db, &s).await.0, 4);
    // Reconciling again with the same listing and time changes nothing more than the rows.
    assert_eq!(
        db.presence
            .reconcile(
                s.id,
                &["here", "back", "ghost", "late"].map(String::from),
                at
            )
            .await
            .unwrap(),
        4
    );
    assert!(matches!(
        db.presence.reconcile(Uuid::new_v4(), &[], at).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn events_are_recorded_once_and_listed_newest_first(db: &Stores) {
    let s = session("alice", "room-e");
    db.sessions.insert(&s).await.unwrap();
    let t = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let ev = |id: &str, secs: i64, session: Option<Uuid>| RecordedEvent {
        id: id.into(),
        event: "participant_joined".into(),
        session_id: session,
        room_name: Some("room-e".into()),
        participant: Some("bob".into()),
        track_sid: None,
        created_at: t + Duration::seconds(secs),
        received_at: t + Duration::seconds(secs + 1),
        payload: serde_json::json!({"id": id, "nested": {"n": [1, 2]}}),
    };
    let seen = |id: &str| {
        let ids = [id.to_owned()];
        async move { !db.events.seen(&ids).await.unwrap().is_empty() }
    };
    let record = |e: RecordedEvent| async move { db.events.record(&[e]).await.unwrap() == [true] };
    assert!(!seen("EV_1").await);
    assert!(record(ev("EV_1", 1, Some(s.id))).await);
    assert!(seen("EV_1").await);
    assert!(!record(ev("EV_1", 1, Some(s.id))).await, "duplicate");
    assert!(record(ev("EV_2", 3, Some(s.id))).await);
    assert!(record(ev("EV_3", 2, Some(s.id))).await);
    assert!(record(ev("EV_stray", 9, None)).await);

    let all = db.events.list(s.id, 10, None).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["EV_2", "EV_3", "EV_1"]);
    assert_eq!(all[2], ev("EV_1", 1, Some(s.id)));
    let cursor = EventCursor {
        created_at: all[0].created_at,
        id: all[0].id.clone(),
    };
    let rest = db.events.list(s.id, 10, Some(cursor)).await.unwrap();
    assert_eq!(rest.len(), 2);
}

pub async fn idempotency_keys_claim_once_and_replay_the_response(db: &Stores) {
    let t = Utc.with_ymd_and_hms(2026, 4, 2, 0, 0, 0).unwrap();
    let day = Duration::hours(24);
    let key = format!("key-{}", Uuid::new_v4());
    let begin = |fp: &'static str, now| {
        let key = key.clone();
        async move {
            db.idempotency
                .begin(&key, fp, now, now - day)
                .await
                .unwrap()
        }
    };
    assert_eq!(begin("body-a", t).await, IdempotencyState::Started);
    assert_eq!(begin("body-a", t).await, IdempotencyState::InProgress);
    assert_eq!(begin("body-b", t).await, IdempotencyState::Mismatch);
    let response = serde_json::json!({"session_id": "s1", "n": [1]});
    db.idempotency.complete(&key, &response).await.unwrap();
    assert_eq!(
        begin("body-a", t).await,
        IdempotencyState::Completed(response.clone())
    );
    // A failed request releases only an unfinished claim.
    db.idempotency.abandon(&key).await.unwrap();
    assert_eq!(
        begin("body-a", t).await,
        IdempotencyState::Completed(response)
    );
    // After 24 h the key is new again.
    assert_eq!(
        begin("body-b", t + day + Duration::seconds(1)).await,
        IdempotencyState::Started
    );
    db.idempotency.abandon(&key).await.unwrap();
    assert_eq!(
        begin("body-c", t + day + Duration::seconds(2)).await,
        IdempotencyState::Started
    );
}

/// Ten writers race the same step: the database lets exactly one win.
pub async fn racing_status_changes_are_won_exactly_once(db: &Stores) {
    let s = session("racer", &format!("room-race-{}", Uuid::new_v4().simple()));
    db.sessions.insert(&s).await.unwrap();
    let at = Utc::now();
    let racers = (0..10).map(|_| db.sessions.advance_status(s.id, SessionStatus::Expired, at));
    let results = futures_util::future::join_all(racers).await;
    let wins = results
        .into_iter()
        .filter(|r| r.as_ref().unwrap().changed)
        .count();
    assert_eq!(wins, 1);
}

pub async fn a_lease_has_one_holder_until_it_lapses(db: &Stores) {
    let t = Utc.with_ymd_and_hms(2026, 4, 3, 0, 0, 0).unwrap();
    let minute = Duration::minutes(1);
    let lease = |holder: &'static str, now: chrono::DateTime<Utc>| async move {
        db.leases
            .try_lease("test-lease", holder, now, now + minute)
            .await
            .unwrap()
    };
    assert!(lease("a", t).await);
    assert!(!lease("b", t + Duration::seconds(30)).await);
    assert!(
        lease("a", t + Duration::seconds(30)).await,
        "the holder renews"
    );
    assert!(!lease("b", t + Duration::seconds(89)).await);
    assert!(
        lease("b", t + Duration::seconds(91)).await,
        "lapsed: b takes it"
    );
    assert!(!lease("a", t + Duration::seconds(92)).await);
}

pub async fn batches_do_what_single_calls_do(db: &Stores) {
    let (a, b) = (session("alice", "room-ba"), session("bob", "room-bb"));
    db.sessions.insert(&a).await.unwrap();
    db.sessions.insert(&b).await.unwrap();
    let mut found = db
        .sessions
        .find_by_room_sids(&[
            b.livekit_room_sid.clone(),
            "RM_nobody".into(),
            a.livekit_room_sid.clone(),
        ])
        .await
        .unwrap();
    found.sort_by_key(|s| s.user_id.clone());
    assert_eq!(found, vec![a.clone(), b.clone()]);

    let t = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 10).unwrap();
    let news = |s: &Session, who: &str, present: bool, secs: i64| Presence {
        session_id: s.id,
        identity: who.into(),
        present,
        at: t + Duration::seconds(secs),
    };
    db.presence
        .record_presence(&[
            news(&a, "p1", true, 1),
            news(&b, "p1", true, 1),
            news(&a, "p2", true, 2),
            news(&a, "p1", false, 3),
            // Older news arriving late changes nothing, inside a batch too.
            news(&a, "p1", true, 0),
        ])
        .await
        .unwrap();
    let (a_now, b_now) = (
        db.sessions.get(a.id).await.unwrap(),
        db.sessions.get(b.id).await.unwrap(),
    );
    assert_eq!(a_now.participant_count, 1);
    assert_eq!(a_now.last_activity_at, Some(t + Duration::seconds(3)));
    assert_eq!(b_now.participant_count, 1);
    // News about a session that does not exist fails the batch (the caller retries singly).
    assert!(matches!(
        db.presence
            .record_presence(&[
                news(&a, "p9", true, 1),
                news(&session("x", "room-x"), "p", true, 1)
            ])
            .await,
        Err(StoreError::NotFound)
    ));
    // ... and writes none of it.
    assert_eq!(db.sessions.get(a.id).await.unwrap(), a_now);

    let ev = |id: &str| RecordedEvent {
        id: id.into(),
        event: "participant_joined".into(),
        session_id: Some(a.id),
        room_name: Some("room-ba".into()),
        participant: Some("p1".into()),
        track_sid: None,
        created_at: t,
        received_at: t,
        payload: serde_json::json!({"id": id}),
    };
    assert_eq!(db.events.record(&[ev("EV_B0")]).await.unwrap(), [true]);
    assert_eq!(
        db.events
            .record(&[ev("EV_B1"), ev("EV_B0"), ev("EV_B2")])
            .await
            .unwrap(),
        vec![true, false, true]
    );
    let seen = db
        .events
        .seen(&["EV_B1".into(), "EV_none".into(), "EV_B0".into()])
        .await
        .unwrap();
    assert_eq!(
        seen,
        ["EV_B1".to_owned(), "EV_B0".to_owned()]
            .into_iter()
            .collect()
    );
    let many: Vec<String> = (0..1200).map(|i| format!("EV_M{i}")).collect();
    let records: Vec<RecordedEvent> = many.iter().map(|id| ev(id)).collect();
    assert!(
        db.events
            .record(&records)
            .await
            .unwrap()
            .iter()
            .all(|new| *new)
    );
    assert_eq!(db.events.seen(&many).await.unwrap().len(), 1200);
}

pub async fn concurrent_creates_of_one_room_name_store_exactly_one(db: &Stores) {
    // Inserts in flight together may be written as one statement: the rule still holds
    // inside it, and every caller gets its own answer.
    let inserts = (0..20).map(|i| {
        let sessions = db.sessions.clone();
        let room = if i % 2 == 0 {
            "room-contested".to_owned()
        } else {
            format!("room-own-{i}")
        };
        let s = session(&format!("u{i}"), &room);
        async move { (room, sessions.insert(&s).await) }
    });
    let answers = futures_util::future::join_all(inserts).await;
    let contested: Vec<_> = answers
        .iter()
        .filter(|(room, _)| room == "room-contested")
        .collect();
    assert_eq!(contested.iter().filter(|(_, r)| r.is_ok()).count(), 1);
    assert!(
        contested
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .all(|e| matches!(e, StoreError::Conflict(_)))
    );
    assert!(
        answers
            .iter()
            .filter(|(room, _)| room != "room-contested")
            .all(|(_, r)| r.is_ok())
    );
}

pub async fn voice_state_claims_once_counts_turns_and_skips_resent_finals(db: &Stores) {
    let s = session("vera", &format!("room-voice-{}", Uuid::new_v4().simple()));
    db.sessions.insert(&s).await.unwrap();
    let unknown = Uuid::new_v4();
    let t = Utc.with_ymd_and_hms(2026, 4, 4, 0, 0, 0).unwrap();

    // Dispatch: claimed once, given back, claimed again; racing replicas: one winner.
    assert!(db.voice.claim_dispatch(s.id, t).await.unwrap());
    assert!(!db.voice.claim_dispatch(s.id, t).await.unwrap());
    db.voice.release_dispatch(s.id).await.unwrap();
    let racers = (0..10).map(|_| db.voice.claim_dispatch(s.id, t));
    let wins = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
    assert!(!db.voice.claim_dispatch(unknown, t).await.unwrap());
    db.voice.release_dispatch(unknown).await.unwrap();

    // Turns: 0 before the first, then counted; an unknown session is NotFound. A final
    // numbers its turn in the same write; the generation remembers what bumped it.
    let generation = |n, by| TurnGeneration {
        generation: n,
        bumped_by: by,
    };
    assert_eq!(db.voice.current_turn(s.id).await.unwrap().generation, 0);
    assert_eq!(db.voice.next_turn(s.id).await.unwrap(), 1);
    assert_eq!(
        db.voice.current_turn(s.id).await.unwrap(),
        generation(1, InterruptedBy::VoiceOnset)
    );
    assert_eq!(
        db.voice.start_turn(s.id).await.unwrap(),
        TurnStart {
            generation: 2,
            turn: 1
        }
    );
    assert_eq!(
        db.voice.current_turn(s.id).await.unwrap(),
        generation(2, InterruptedBy::NewerFinal)
    );
    assert_eq!(
        db.turns.allocate_turn(s.id).await.unwrap(),
        2,
        "chat shares the count"
    );
    assert_eq!(
        db.voice.start_turn(s.id).await.unwrap(),
        TurnStart {
            generation: 3,
            turn: 3
        }
    );
    assert!(matches!(
        db.voice.next_turn(unknown).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.voice.start_turn(unknown).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.turns.allocate_turn(unknown).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.voice.current_turn(unknown).await,
        Err(StoreError::NotFound)
    ));

    // Finals: the same text within the window is a resend.
    let window = Duration::seconds(3);
    let final_ = |text: &'static str, secs: i64| {
        db.voice
            .note_final(s.id, text, t + Duration::seconds(secs), window)
    };
    assert!(final_("hello", 0).await.unwrap());
    assert!(
        !final_("hello", 3).await.unwrap(),
        "a resend within the window"
    );
    assert!(final_("other", 4).await.unwrap());
    assert!(final_("hello", 5).await.unwrap(), "not the last text");
    assert!(final_("hello", 9).await.unwrap(), "outside the window");
    assert!(
        !db.voice
            .note_final(unknown, "hello", t, window)
            .await
            .unwrap()
    );
}

pub async fn the_store_answers_a_ping(db: &Stores) {
    db.health.ping().await.unwrap();
}

/// Turn `n` of session `s`: every field set (interrupted ones and failed ones too), so a
/// round trip proves the whole record survives; `first_tts` and `tokens` vary for the summary.
pub fn turn_record(s: Uuid, n: u64, first_tts: Option<u64>, tokens: u64) -> TurnRecord {
    let t = Utc.with_ymd_and_hms(2026, 5, 5, 12, 0, 0).unwrap() + Duration::seconds(n as i64);
    TurnRecord {
        session_id: s,
        turn: n,
        source: if n.is_multiple_of(2) {
            TurnSource::Chat
        } else {
            TurnSource::Voice
        },
        started_at: t,
        heard: Heard {
            text: format!("question {n} \u{e9}"),
            confidence: Some(0.875),
            language: Some("en".into()),
            partials: Some(Partials {
                count: 3,
                first_ms_before_final: 900,
            }),
        },
        reply: Reply {
            sentences: vec!["One.".into(), "Two.".into()],
            text: "One. Two.".into(),
        },
        outcome: match n % 3 {
            0 => RecordOutcome::Completed,
            1 => RecordOutcome::Interrupted,
            _ => RecordOutcome::Failed,
        },
        interrupted: (n % 3 == 1).then_some(Interruption {
            after_sentence: 2,
            by: InterruptedBy::VoiceOnset,
        }),
        error: (n % 3 == 2).then(|| TurnFailure {
            code: "tts_failed".into(),
        }),
        model: "gemini-3.5-flash-lite".into(),
        usage: TokenUsage {
            prompt_tokens: tokens / 2,
            output_tokens: tokens - tokens / 2,
            total_tokens: tokens,
        },
        timings_ms: TurnTimings {
            first_token: Some(120),
            first_sentence: Some(300),
            first_tts_request: first_tts,
            first_tts_done: first_tts.map(|f| f + 90),
            last_tts_done: first_tts.map(|f| f + 900),
            end: 1500,
        },
    }
}

/// Turn records: stored (a second store of one turn replaces it), listed newest first in
/// pages, resumed oldest first after a number, read one by one, summed (count, nearest-rank
/// p50/p95 of the first TTS request, tokens); other sessions' turns never show; a record of
/// an unknown session is NotFound.
pub async fn turn_records_are_kept_paged_resumed_and_summed(db: &Stores) {
    let s = session("tara", &format!("room-turns-{}", Uuid::new_v4().simple()));
    let other = session("otto", &format!("room-turns-{}", Uuid::new_v4().simple()));
    db.sessions.insert(&s).await.unwrap();
    db.sessions.insert(&other).await.unwrap();
    assert_eq!(
        db.turns.summary(s.id).await.unwrap(),
        TurnSummary::default()
    );
    assert_eq!(db.turns.list_turns(s.id, None, 10).await.unwrap(), []);

    // Turns 1..=5; turn 3 sent nothing to TTS. First TTS: 100, 400, -, 200, 300.
    let firsts = [Some(100), Some(400), None, Some(200), Some(300)];
    for (i, first) in firsts.iter().enumerate() {
        let n = i as u64 + 1;
        // A first version, replaced by the real one.
        db.turns
            .record_turn(&turn_record(s.id, n, Some(9999), 1))
            .await
            .unwrap();
        db.turns
            .record_turn(&turn_record(s.id, n, *first, 10 * n))
            .await
            .unwrap();
    }
    db.turns
        .record_turn(&turn_record(other.id, 1, Some(5), 1000))
        .await
        .unwrap();
    assert!(matches!(
        db.turns
            .record_turn(&turn_record(Uuid::new_v4(), 1, None, 1))
            .await,
        Err(StoreError::NotFound)
    ));

    let numbers = |v: Vec<TurnRecord>| v.into_iter().map(|r| r.turn).collect::<Vec<_>>();
    let page1 = db.turns.list_turns(s.id, None, 2).await.unwrap();
    assert_eq!(page1[0], turn_record(s.id, 5, Some(300), 50));
    assert_eq!(numbers(page1), [5, 4]);
    assert_eq!(
        numbers(db.turns.list_turns(s.id, Some(4), 2).await.unwrap()),
        [3, 2]
    );
    assert_eq!(
        numbers(db.turns.list_turns(s.id, Some(2), 2).await.unwrap()),
        [1]
    );
    assert_eq!(
        numbers(db.turns.turns_after(s.id, 0, 2).await.unwrap()),
        [1, 2]
    );
    assert_eq!(
        numbers(db.turns.turns_after(s.id, 3, 10).await.unwrap()),
        [4, 5]
    );
    assert_eq!(
        numbers(db.turns.turns_after(s.id, 5, 10).await.unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(
        db.turns.get_turn(s.id, 3).await.unwrap(),
        Some(turn_record(s.id, 3, None, 30))
    );
    assert_eq!(db.turns.get_turn(s.id, 6).await.unwrap(), None);
    assert_eq!(
        db.turns
            .get_turn(other.id, 1)
            .await
            .unwrap()
            .map(|r| r.session_id),
        Some(other.id)
    );

    // Sorted firsts 100, 200, 300, 400: p50 rank ceil(2) = 200, p95 rank ceil(3.8) = 400.
    assert_eq!(
        db.turns.summary(s.id).await.unwrap(),
        TurnSummary {
            turns: 5,
            first_tts_p50_ms: Some(200),
            first_tts_p95_ms: Some(400),
            total_tokens: 150,
        }
    );
    assert_eq!(
        db.turns.summary(other.id).await.unwrap(),
        TurnSummary {
            turns: 1,
            first_tts_p50_ms: Some(5),
            first_tts_p95_ms: Some(5),
            total_tokens: 1000,
        }
    );
}
