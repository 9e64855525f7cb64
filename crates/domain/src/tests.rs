//! Unit tests of the session use cases, with mocked ports.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use mockall::predicate::eq;

use crate::ports::*;
use crate::*;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn clock_at(at: chrono::DateTime<Utc>) -> Arc<MockClock> {
    let mut c = MockClock::new();
    c.expect_now().return_const(at);
    Arc::new(c)
}

fn tokens() -> Arc<MockTokenIssuer> {
    let mut t = MockTokenIssuer::new();
    t.expect_issue().returning(|r| {
        Ok(IssuedToken {
            jwt: format!("jwt-for-{}", r.identity),
            expires_at: t0() + r.ttl,
        })
    });
    Arc::new(t)
}

fn service(
    store: MockSessionStore,
    rooms: MockRoomService,
    tokens: Arc<MockTokenIssuer>,
) -> SessionService {
    SessionService::new(
        crate::service::SessionPorts {
            store: Arc::new(store),
            history: Arc::new(MockHistoryStore::new()),
            health: Arc::new(MockStoreHealth::new()),
            rooms: Arc::new(rooms),
            tokens,
            clock: clock_at(t0()),
            turns: Arc::new(MockTurnStore::new()),
        },
        SessionPolicy::default(),
    )
}

/// A session in `status`; also the lifecycle tests' stock session.
pub(crate) fn session(status: SessionStatus) -> Session {
    Session {
        id: uuid::Uuid::new_v4(),
        user_id: "alice".into(),
        room_name: "room-alice-00000000".into(),
        livekit_room_sid: "RM_x".into(),
        status,
        language: "en".into(),
        metadata: Default::default(),
        voice: false,
        kind: crate::SessionKind::Owned,
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
        updated_at: t0(),
        ended_at: None,
        participant_count: 0,
        last_activity_at: None,
    }
}

#[test]
fn the_state_machine_never_steps_backwards() {
    use SessionStatus::*;
    for from in SessionStatus::ALL {
        for to in SessionStatus::ALL {
            let forward = matches!(
                (from, to),
                (Created, Active | Ended | Expired) | (Active, Ended | Expired)
            );
            assert_eq!(from.can_become(to), forward, "{from} -> {to}");
        }
    }
    assert!(
        !Ended.can_become(Active),
        "a late room_started must not reopen"
    );
    assert!(!Expired.can_become(Ended));
}

#[test]
fn statuses_round_trip_through_their_names() {
    for s in SessionStatus::ALL {
        assert_eq!(SessionStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(SessionStatus::parse("deleted"), None);
}

#[test]
fn a_live_session_past_its_expiry_reads_as_expired() {
    let s = session(SessionStatus::Active);
    assert_eq!(s.effective_status(t0()), SessionStatus::Active);
    assert_eq!(
        s.effective_status(s.expires_at + Duration::seconds(1)),
        SessionStatus::Expired
    );
    let ended = session(SessionStatus::Ended);
    assert_eq!(
        ended.effective_status(ended.expires_at + Duration::days(1)),
        SessionStatus::Ended
    );
}

#[tokio::test]
async fn create_makes_the_room_stores_the_session_and_mints_an_owner_token() {
    // Arrange
    let mut rooms = MockRoomService::new();
    rooms
        .expect_create_room()
        .withf(|spec| {
            spec.name.starts_with("room-bob_b-")
                && spec.empty_timeout_secs == 300
                && spec.metadata.contains("session_id")
        })
        .times(1)
        .returning(|spec| {
            Ok(Room {
                sid: "RM_1".into(),
                name: spec.name.clone(),
                ..Default::default()
            })
        });
    let mut store = MockSessionStore::new();
    store
        .expect_insert()
        .withf(|s| s.status == SessionStatus::Created && s.livekit_room_sid == "RM_1")
        .times(1)
        .returning(|_| Ok(()));
    let svc = service(store, rooms, tokens());

    // Act
    let out = svc
        .create(NewSession {
            user_id: "bob b".into(),
            ttl_seconds: Some(1800),
            ..Default::default()
        })
        .await
        .unwrap();

    // Assert
    assert_eq!(out.session.expires_at, t0() + Duration::minutes(30));
    let token = out.token.unwrap();
    assert_eq!(token.jwt, "jwt-for-bob b");
    // The token is capped by the 30-minute session, not the 6-hour default.
    assert_eq!(token.expires_at, t0() + Duration::minutes(30));
}

#[tokio::test]
async fn create_stores_nothing_when_livekit_is_down() {
    let mut rooms = MockRoomService::new();
    rooms.expect_create_room().returning(|_| {
        Err(RoomError::Unavailable {
            message: "connection refused".into(),
            source: None,
        })
    });
    let mut store = MockSessionStore::new();
    store.expect_insert().times(0);
    let svc = service(store, rooms, tokens());

    let err = svc
        .create(NewSession {
            user_id: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "livekit_unavailable");
}

#[tokio::test]
async fn create_deletes_the_room_again_when_the_store_fails() {
    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| Ok(vec![]));
    rooms.expect_create_room().returning(|s| {
        Ok(Room {
            sid: "RM_2".into(),
            name: s.name.clone(),
            ..Default::default()
        })
    });
    rooms
        .expect_delete_room()
        .with(eq("chosen"))
        .times(1)
        .returning(|_| Ok(()));
    let mut store = MockSessionStore::new();
    store.expect_find_live_by_room().returning(|_| Ok(None));
    store
        .expect_insert()
        .returning(|_| Err(StoreError::Unavailable("disk full".into())));
    let svc = service(store, rooms, tokens());

    let err = svc
        .create(NewSession {
            user_id: "alice".into(),
            room_name: Some("chosen".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store_unavailable");
}

/// A LiveKit that creates the room asked for, exactly `times` times.
fn rooms_creating(times: usize) -> MockRoomService {
    let mut rooms = MockRoomService::new();
    rooms.expect_create_room().times(times).returning(|s| {
        Ok(Room {
            sid: "RM_x".into(),
            name: s.name.clone(),
            ..Default::default()
        })
    });
    rooms
}

#[tokio::test]
async fn a_generated_name_that_is_already_live_is_drawn_again_and_the_live_room_is_left_alone() {
    let mut rooms = rooms_creating(2);
    // The first name's room belongs to the live session that holds it: never deleted.
    rooms.expect_delete_room().never();
    let mut store = MockSessionStore::new();
    let mut first = true;
    store.expect_insert().times(2).returning(move |_| {
        if std::mem::take(&mut first) {
            Err(StoreError::Conflict("live room name".into()))
        } else {
            Ok(())
        }
    });
    let svc = service(store, rooms, tokens());
    let created = svc
        .create(NewSession {
            user_id: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(created.session.room_name.starts_with("room-alice-"));
}

#[tokio::test]
async fn a_chosen_name_lost_to_a_racing_create_is_taken_and_the_winners_room_survives() {
    let mut rooms = rooms_creating(1);
    rooms.expect_delete_room().never();
    rooms.expect_list_rooms().returning(|_| Ok(vec![]));
    let mut store = MockSessionStore::new();
    // Free when looked at; taken by the time we insert.
    store.expect_find_live_by_room().returning(|_| Ok(None));
    store
        .expect_insert()
        .times(1)
        .returning(|_| Err(StoreError::Conflict("live room name".into())));
    let svc = service(store, rooms, tokens());
    let err = svc
        .create(NewSession {
            user_id: "alice".into(),
            room_name: Some("chosen".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "room_name_taken");
}

#[tokio::test]
async fn a_room_name_used_by_a_live_session_is_taken_and_livekit_is_not_called() {
    let mut rooms = MockRoomService::new();
    rooms.expect_create_room().times(0);
    let mut store = MockSessionStore::new();
    store
        .expect_find_live_by_room()
        .returning(|_| Ok(Some(session(SessionStatus::Active))));
    let svc = service(store, rooms, tokens());

    let err = svc
        .create(NewSession {
            user_id: "alice".into(),
            room_name: Some("room-alice-00000000".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::RoomNameTaken(_)));
}

#[tokio::test]
async fn a_chosen_name_livekit_already_has_is_taken_and_that_room_is_left_alone() {
    // A room LiveKit has that no session owns (someone's lobby): CreateRoom would hand it
    // back and make the caller its owner.
    let mut rooms = MockRoomService::new();
    rooms
        .expect_list_rooms()
        .withf(|names| names == ["lobby".to_owned()])
        .times(1)
        .returning(|names| {
            Ok(vec![Room {
                sid: "RM_lobby".into(),
                name: names[0].clone(),
                ..Default::default()
            }])
        });
    rooms.expect_create_room().never();
    rooms.expect_delete_room().never();
    let mut store = MockSessionStore::new();
    store.expect_find_live_by_room().returning(|_| Ok(None));
    store.expect_insert().never();
    let svc = service(store, rooms, tokens());

    let err = svc
        .create(NewSession {
            user_id: "mallory".into(),
            room_name: Some("lobby".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "room_name_taken");
}

#[tokio::test]
async fn lifetimes_out_of_range_and_control_characters_are_refused_before_any_call() {
    // No expectations: any store, LiveKit or token call would fail the test.
    let svc = service(MockSessionStore::new(), MockRoomService::new(), tokens());
    for (new, field) in [
        (
            NewSession {
                user_id: "a".into(),
                ttl_seconds: Some(i64::MAX),
                ..Default::default()
            },
            "ttl_seconds",
        ),
        (
            NewSession {
                user_id: "a".into(),
                ttl_seconds: Some(MAX_TTL_SECONDS + 1),
                ..Default::default()
            },
            "ttl_seconds",
        ),
        (
            NewSession {
                user_id: "a".into(),
                language: Some("e\u{0}n".into()),
                ..Default::default()
            },
            "language",
        ),
        (
            NewSession {
                user_id: "a\u{0}b".into(),
                ..Default::default()
            },
            "user_id",
        ),
    ] {
        match svc.create(new).await {
            Err(SessionError::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
    for (name, ttl, field) in [
        ("g", Some(i64::MAX), "ttl_seconds"),
        ("g", Some(-1), "ttl_seconds"),
        ("g\u{0}", None, "guest_name"),
    ] {
        match svc.guest_token(uuid::Uuid::new_v4(), name, ttl, true).await {
            Err(SessionError::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_input_is_a_validation_error_naming_the_field() {
    let svc = service(MockSessionStore::new(), MockRoomService::new(), tokens());
    for (new, field) in [
        (
            NewSession {
                user_id: "  ".into(),
                ..Default::default()
            },
            "user_id",
        ),
        (
            NewSession {
                user_id: "a".into(),
                room_name: Some("a/b".into()),
                ..Default::default()
            },
            "room_name",
        ),
        (
            NewSession {
                user_id: "a".into(),
                ttl_seconds: Some(0),
                ..Default::default()
            },
            "ttl_seconds",
        ),
    ] {
        match svc.create(new).await {
            Err(SessionError::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a validation error on {field}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn ending_an_ended_session_is_not_found_and_leaves_livekit_alone() {
    let s = session(SessionStatus::Ended);
    let id = s.id;
    let mut store = MockSessionStore::new();
    store.expect_get().returning(move |_| Ok(s.clone()));
    let mut rooms = MockRoomService::new();
    rooms.expect_delete_room().times(0);
    let svc = service(store, rooms, tokens());

    assert!(matches!(svc.end(id).await, Err(SessionError::NotFound)));
}

/// Reads never write: the reaper deletes the room and stores the expiry.
#[tokio::test]
async fn reading_an_overdue_session_shows_it_expired_without_a_token_or_a_write() {
    let mut s = session(SessionStatus::Active);
    s.expires_at = t0() - Duration::seconds(1);
    let id = s.id;
    let mut store = MockSessionStore::new();
    store.expect_get().returning(move |_| Ok(s.clone()));
    store.expect_advance_status().never();
    let svc = service(store, MockRoomService::new(), tokens());

    let read = svc.get(id).await.unwrap();
    assert_eq!(read.session.status, SessionStatus::Expired);
    assert!(read.token.is_none());
    assert!(matches!(svc.end(id).await, Err(SessionError::NotFound)));
}

#[tokio::test]
async fn removing_someone_not_in_the_room_is_participant_not_found() {
    let s = session(SessionStatus::Active);
    let id = s.id;
    let mut store = MockSessionStore::new();
    store.expect_get().returning(move |_| Ok(s.clone()));
    let mut rooms = MockRoomService::new();
    rooms
        .expect_remove_participant()
        .returning(|_, who| Err(RoomError::NotFound(who.to_owned())));
    let svc = service(store, rooms, tokens());

    let err = svc.remove_participant(id, "ghost").await.unwrap_err();
    assert_eq!(err.code(), "participant_not_found");
}

#[tokio::test]
async fn two_guests_of_one_name_get_distinct_identities_without_data() {
    let s = session(SessionStatus::Created);
    let id = s.id;
    let mut store = MockSessionStore::new();
    store.expect_get().returning(move |_| Ok(s.clone()));
    let mut issuer = MockTokenIssuer::new();
    issuer
        .expect_issue()
        .withf(|r| !r.grants.can_publish_data && r.grants.can_publish)
        .times(2)
        .returning(|r| {
            Ok(IssuedToken {
                jwt: r.identity.clone(),
                expires_at: t0() + r.ttl,
            })
        });
    let svc = service(store, MockRoomService::new(), Arc::new(issuer));

    let a = svc.guest_token(id, "Sam", None, true).await.unwrap();
    let b = svc.guest_token(id, "Sam", None, true).await.unwrap();
    assert_ne!(a.identity, b.identity);
    assert!(a.identity.starts_with("guest-sam-"));
}

#[tokio::test]
async fn listing_asks_for_one_more_row_to_know_whether_a_next_page_exists() {
    let rows: Vec<Session> = (0..3).map(|_| session(SessionStatus::Created)).collect();
    let mut store = MockSessionStore::new();
    store
        .expect_list()
        .withf(|f| f.limit == 3)
        .returning(move |_| Ok(rows.clone()));
    let svc = service(store, MockRoomService::new(), tokens());

    let page = svc.list(None, None, Some(2), None).await.unwrap();
    assert_eq!(page.sessions.len(), 2);
    assert_eq!(page.next_cursor.unwrap().id, page.sessions[1].id);
}

#[test]
fn nul_characters_never_reach_the_store() {
    let entry = HistoryEntry::new(Role::User, "hi\0 there\0", t0());
    assert_eq!(entry.content, "hi there");
    let event = LiveKitEvent {
        id: "EV_\0x".into(),
        kind: EventKind::ParticipantJoined,
        created_at: None,
        room_name: Some("room\0".into()),
        room_sid: Some("RM_\0".into()),
        participant: Some(EventParticipant {
            identity: "ali\0ce".into(),
            sid: "PA_1".into(),
            kind: "STANDARD".into(),
        }),
        track: None,
        payload: serde_json::Value::Null,
    }
    .without_nul();
    assert_eq!(event.id, "EV_x");
    assert_eq!(event.room_name.as_deref(), Some("room"));
    assert_eq!(event.room_sid.as_deref(), Some("RM_"));
    assert_eq!(
        event.participant.map(|p| p.identity).as_deref(),
        Some("alice")
    );
}
