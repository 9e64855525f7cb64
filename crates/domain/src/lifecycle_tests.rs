//! Lifecycle tests: webhooks in any order, duplicates, presence, the reaper on a fake clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::fake_clock::FakeClock;
use crate::memory::{InMemoryRooms, InMemoryStore};
use crate::ports::*;
use crate::*;

/// Verifies nothing: for services whose tests send no webhooks.
struct NoVerifier;
impl WebhookVerifier for NoVerifier {
    fn verify(&self, _: &[u8], _: Option<&str>) -> Result<LiveKitEvent, WebhookError> {
        Err(WebhookError::Unauthorized("not used".into()))
    }
}

/// "Verifies" a delivery whose body is the id of an event handed to it before, so tests
/// send webhooks through [`LifecycleService::receive`], the path production takes.
#[derive(Default)]
struct Deliveries(Mutex<std::collections::HashMap<String, LiveKitEvent>>);

impl Deliveries {
    /// The body to deliver for `event`.
    fn body(&self, event: LiveKitEvent) -> Vec<u8> {
        let id = event.id.clone();
        self.0.lock().unwrap().insert(id.clone(), event);
        id.into_bytes()
    }
}

impl WebhookVerifier for Deliveries {
    fn verify(&self, body: &[u8], _: Option<&str>) -> Result<LiveKitEvent, WebhookError> {
        let id = String::from_utf8_lossy(body);
        self.0
            .lock()
            .unwrap()
            .get(id.as_ref())
            .cloned()
            .ok_or_else(|| WebhookError::Unauthorized("not handed to the test verifier".into()))
    }
}

/// A verifier that accepts every delivery as `event`.
fn always(event: LiveKitEvent) -> Arc<dyn WebhookVerifier> {
    let mut verifier = MockWebhookVerifier::new();
    verifier
        .expect_verify()
        .returning(move |_, _| Ok(event.clone()));
    Arc::new(verifier)
}

/// A lifecycle service on the in-memory store.
fn on_memory(
    store: &Arc<InMemoryStore>,
    rooms: Arc<dyn RoomService>,
    verifier: Arc<dyn WebhookVerifier>,
    clock: Arc<dyn Clock>,
) -> LifecycleService {
    LifecycleService::new(LifecyclePorts {
        sessions: store.clone(),
        presence: store.clone(),
        leases: store.clone(),
        events: store.clone(),
        rooms,
        verifier,
        clock,
    })
}

/// A lifecycle service on mocked stores.
fn on_mocks(
    sessions: MockSessionStore,
    presence: MockPresenceStore,
    events: MockEventStore,
    verifier: Arc<dyn WebhookVerifier>,
) -> LifecycleService {
    LifecycleService::new(LifecyclePorts {
        sessions: Arc::new(sessions),
        presence: Arc::new(presence),
        leases: Arc::new(MockLeaseStore::new()),
        events: Arc::new(events),
        rooms: Arc::new(MockRoomService::new()),
        verifier,
        clock: Arc::new(SystemClock),
    })
}

struct Fixture {
    deliveries: Arc<Deliveries>,
    store: Arc<InMemoryStore>,
    rooms: Arc<InMemoryRooms>,
    clock: Arc<FakeClock>,
    sessions: SessionService,
    lifecycle: LifecycleService,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap()
}

fn fixture() -> Fixture {
    let store = Arc::new(InMemoryStore::default());
    let rooms = Arc::new(InMemoryRooms::default());
    let clock = Arc::new(FakeClock(Mutex::new(t0())));
    struct Tokens;
    impl TokenIssuer for Tokens {
        fn issue(&self, r: &TokenRequest) -> Result<IssuedToken, TokenError> {
            Ok(IssuedToken {
                jwt: r.identity.clone(),
                expires_at: t0() + r.ttl,
            })
        }
    }
    let sessions = SessionService::new(
        crate::service::SessionPorts {
            store: store.clone(),
            history: store.clone(),
            health: store.clone(),
            rooms: rooms.clone(),
            tokens: Arc::new(Tokens),
            clock: clock.clone(),
            turns: store.clone(),
        },
        SessionPolicy::default(),
    );
    let deliveries = Arc::new(Deliveries::default());
    let lifecycle = on_memory(&store, rooms.clone(), deliveries.clone(), clock.clone());
    Fixture {
        deliveries,
        store,
        rooms,
        clock,
        sessions,
        lifecycle,
    }
}

impl Fixture {
    /// Delivers `event` as LiveKit would, through the production path.
    async fn deliver(&self, event: LiveKitEvent) -> Result<WebhookOutcome, SessionError> {
        let body = self.deliveries.body(event);
        let receipt = self.lifecycle.receive(&body, Some("signed")).await?;
        Ok(receipt.outcome)
    }
}

fn event(
    id: &str,
    kind: &str,
    s: &Session,
    at_secs: i64,
    who: Option<(&str, &str)>,
) -> LiveKitEvent {
    LiveKitEvent {
        id: id.into(),
        kind: EventKind::parse(kind),
        created_at: Some(t0() + Duration::seconds(at_secs)),
        room_name: Some(s.room_name.clone()),
        room_sid: Some(s.livekit_room_sid.clone()),
        participant: who.map(|(identity, kind)| EventParticipant {
            identity: identity.into(),
            sid: String::new(),
            kind: kind.into(),
        }),
        track: None,
        payload: serde_json::json!({"event": kind}),
    }
}

async fn new_session(f: &Fixture, ttl: Option<i64>) -> Session {
    f.sessions
        .create(NewSession {
            user_id: "alice".into(),
            ttl_seconds: ttl,
            ..Default::default()
        })
        .await
        .unwrap()
        .session
}

#[tokio::test]
async fn room_started_makes_a_session_active_and_room_finished_ends_it() {
    let f = fixture();
    let s = new_session(&f, None).await;
    let out = f
        .deliver(event("EV_1", "room_started", &s, 1, None))
        .await
        .unwrap();
    assert_eq!(
        out,
        WebhookOutcome::Received {
            event: "room_started".into(),
            session_id: Some(s.id)
        }
    );
    assert_eq!(
        f.store.get(s.id).await.unwrap().status,
        SessionStatus::Active
    );
    f.deliver(event("EV_2", "room_finished", &s, 9, None))
        .await
        .unwrap();
    let ended = f.store.get(s.id).await.unwrap();
    assert_eq!(ended.status, SessionStatus::Ended);
    assert_eq!(ended.ended_at, Some(t0() + Duration::seconds(9)));
}

#[tokio::test]
async fn a_late_room_started_never_reopens_a_finished_session() {
    let f = fixture();
    let s = new_session(&f, None).await;
    f.deliver(event("EV_f", "room_finished", &s, 10, None))
        .await
        .unwrap();
    f.deliver(event("EV_s", "room_started", &s, 1, None))
        .await
        .unwrap();
    f.deliver(event(
        "EV_j",
        "participant_joined",
        &s,
        2,
        Some(("bob", "STANDARD")),
    ))
    .await
    .unwrap();
    assert_eq!(
        f.store.get(s.id).await.unwrap().status,
        SessionStatus::Ended
    );
}

#[tokio::test]
async fn a_duplicate_event_id_changes_nothing() {
    let f = fixture();
    let s = new_session(&f, None).await;
    let joined = event(
        "EV_dup",
        "participant_joined",
        &s,
        1,
        Some(("bob", "STANDARD")),
    );
    f.deliver(joined.clone()).await.unwrap();
    f.deliver(event(
        "EV_left",
        "participant_left",
        &s,
        2,
        Some(("bob", "STANDARD")),
    ))
    .await
    .unwrap();
    // The replayed join must not put bob back.
    assert_eq!(f.deliver(joined).await.unwrap(), WebhookOutcome::Duplicate);
    assert_eq!(f.store.get(s.id).await.unwrap().participant_count, 0);
    let log = f.lifecycle.events(s.id, None, None).await.unwrap();
    assert_eq!(log.events.len(), 2);
}

#[tokio::test]
async fn presence_follows_livekits_clock_not_arrival_order_and_ignores_agents() {
    let f = fixture();
    let s = new_session(&f, None).await;
    // bob left at 20 s, but the join at 10 s arrives after it.
    f.deliver(event(
        "EV_a",
        "participant_left",
        &s,
        20,
        Some(("bob", "STANDARD")),
    ))
    .await
    .unwrap();
    f.deliver(event(
        "EV_b",
        "participant_joined",
        &s,
        10,
        Some(("bob", "STANDARD")),
    ))
    .await
    .unwrap();
    f.deliver(event(
        "EV_c",
        "participant_joined",
        &s,
        15,
        Some(("carol", "STANDARD")),
    ))
    .await
    .unwrap();
    f.deliver(event(
        "EV_d",
        "participant_joined",
        &s,
        16,
        Some(("june-stt", "AGENT")),
    ))
    .await
    .unwrap();
    let now = f.store.get(s.id).await.unwrap();
    assert_eq!(now.participant_count, 1, "only carol is here");
    assert_eq!(now.last_activity_at, Some(t0() + Duration::seconds(20)));
    assert_eq!(now.status, SessionStatus::Active);
}

#[tokio::test]
async fn events_for_unknown_rooms_and_unknown_names_are_recorded_not_refused() {
    let f = fixture();
    let s = new_session(&f, None).await;
    let mut stray = event("EV_x", "egress_started", &s, 1, None);
    stray.room_name = Some("someone-elses-room".into());
    stray.room_sid = Some("RM_other".into());
    let out = f.deliver(stray).await.unwrap();
    assert_eq!(
        out,
        WebhookOutcome::Received {
            event: "egress_started".into(),
            session_id: None
        }
    );
    let unknown = event("EV_y", "brand_new_event", &s, 2, None);
    assert!(matches!(
        f.deliver(unknown).await.unwrap(),
        WebhookOutcome::Received {
            session_id: Some(_),
            ..
        }
    ));
    assert_eq!(
        f.store.get(s.id).await.unwrap().status,
        SessionStatus::Created
    );
}

#[tokio::test]
async fn a_stale_event_for_an_earlier_room_of_the_same_name_does_not_touch_a_new_session() {
    let f = fixture();
    let s = new_session(&f, None).await;
    let mut stale = event("EV_old", "room_finished", &s, -3600, None);
    stale.room_sid = Some("RM_previous_incarnation".into());
    f.deliver(stale).await.unwrap();
    assert_eq!(
        f.store.get(s.id).await.unwrap().status,
        SessionStatus::Created
    );
}

#[tokio::test]
async fn the_event_log_pages_newest_first() {
    let f = fixture();
    let s = new_session(&f, None).await;
    for i in 0..5 {
        f.deliver(event(&format!("EV_{i}"), "track_published", &s, i, None))
            .await
            .unwrap();
    }
    let first = f.lifecycle.events(s.id, Some(3), None).await.unwrap();
    let ids: Vec<&str> = first.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["EV_4", "EV_3", "EV_2"]);
    let rest = f
        .lifecycle
        .events(s.id, Some(3), first.next_cursor)
        .await
        .unwrap();
    let ids: Vec<&str> = rest.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["EV_1", "EV_0"]);
    assert!(rest.next_cursor.is_none());
}

#[tokio::test]
async fn the_reaper_expires_overdue_sessions_and_deletes_their_rooms() {
    let f = fixture();
    let short = new_session(&f, Some(120)).await;
    let long = new_session(&f, Some(3600)).await;
    f.clock.advance(Duration::seconds(121));

    let report = f
        .lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(report.ended, 0);
    assert_eq!(
        f.store.get(short.id).await.unwrap().status,
        SessionStatus::Expired
    );
    assert_eq!(
        f.store.get(long.id).await.unwrap().status,
        SessionStatus::Created
    );
    let left: Vec<String> = f
        .rooms
        .list_rooms(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(left, vec![long.room_name.clone()]);

    // A second pass (or a second replica) finds nothing more to do.
    let again = f
        .lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!((again.expired, again.ended), (0, 0));
}

#[tokio::test]
async fn the_reaper_ends_sessions_whose_room_livekit_no_longer_has_after_the_grace() {
    let f = fixture();
    let s = new_session(&f, None).await;
    f.rooms.delete_room(&s.room_name).await.unwrap();

    // Within the grace period: left alone.
    let report = f
        .lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(report.ended, 0);
    f.clock.advance(Duration::seconds(31));
    let report = f
        .lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(report.ended, 1);
    assert_eq!(
        f.store.get(s.id).await.unwrap().status,
        SessionStatus::Ended
    );
}

#[tokio::test]
async fn the_reaper_ends_nothing_when_livekit_cannot_be_asked() {
    let store = Arc::new(InMemoryStore::default());
    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| {
        Err(RoomError::Unavailable {
            message: "down".into(),
            source: None,
        })
    });
    let clock = Arc::new(FakeClock(Mutex::new(t0())));
    let mut s = Session {
        id: uuid::Uuid::new_v4(),
        user_id: "a".into(),
        room_name: "r".into(),
        livekit_room_sid: "RM_1".into(),
        status: SessionStatus::Active,
        language: "en".into(),
        metadata: Default::default(),
        voice: false,
        kind: crate::SessionKind::Owned,
        created_at: t0() - Duration::hours(1),
        expires_at: t0() + Duration::hours(1),
        updated_at: t0(),
        ended_at: None,
        participant_count: 0,
        last_activity_at: None,
    };
    store.insert(&s).await.unwrap();
    let lifecycle = on_memory(&store, Arc::new(rooms), Arc::new(NoVerifier), clock);
    let report = lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(report.ended, 0);
    assert!(report.skipped.unwrap().contains("down"));
    s = store.get(s.id).await.unwrap();
    assert_eq!(s.status, SessionStatus::Active);
}

#[tokio::test]
async fn receive_refuses_what_the_verifier_refuses_before_touching_the_store() {
    let mut verifier = MockWebhookVerifier::new();
    verifier
        .expect_verify()
        .returning(|_, _| Err(WebhookError::Unauthorized("bad signature".into())));
    let mut events = MockEventStore::new();
    events.expect_seen().never();
    events.expect_record().never();
    let lifecycle = on_mocks(
        MockSessionStore::new(),
        MockPresenceStore::new(),
        events,
        Arc::new(verifier),
    );
    let err = lifecycle.receive(b"{}", Some("x")).await.unwrap_err();
    assert_eq!(err.code(), "invalid_signature");
}

#[tokio::test]
async fn only_the_lease_holder_reaps() {
    let f = fixture();
    let s = new_session(&f, Some(120)).await;
    let other = on_memory(
        &f.store,
        f.rooms.clone(),
        Arc::new(NoVerifier),
        f.clock.clone(),
    );
    f.clock.advance(Duration::seconds(121));
    let first = f
        .lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(first.expired, 1);
    let second = other
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert!(second.skipped.unwrap().contains("lease"));
    // Once the lease lapses, the other replica takes over.
    f.clock.advance(Duration::seconds(61));
    let later = other
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert!(later.skipped.is_none());
    assert_eq!(
        f.store.get(s.id).await.unwrap().status,
        SessionStatus::Expired
    );
}

#[tokio::test]
async fn a_join_to_an_active_session_writes_presence_but_no_status_step() {
    let active = crate::tests::session(SessionStatus::Active);
    let mut sessions = MockSessionStore::new();
    let found = active.clone();
    sessions
        .expect_find_by_room_sids()
        .returning(move |_| Ok(vec![found.clone()]));
    let mut presence = MockPresenceStore::new();
    presence
        .expect_record_presence()
        .times(1)
        .returning(|_| Ok(()));
    // Active cannot become Active: the guarded UPDATE would change nothing, so none is sent.
    sessions.expect_advance_status().never();
    let mut events = MockEventStore::new();
    events.expect_seen().returning(|_| Ok(Default::default()));
    events
        .expect_record()
        .returning(|e| Ok(vec![true; e.len()]));
    let joined = event(
        "EV_J",
        "participant_joined",
        &active,
        5,
        Some(("bob", "STANDARD")),
    );
    let lifecycle = on_mocks(sessions, presence, events, always(joined));
    let out = lifecycle.receive(b"{}", Some("signed")).await.unwrap();
    assert!(matches!(out.outcome, WebhookOutcome::Received { .. }));
}

#[tokio::test]
async fn a_batch_asks_the_store_once_per_step_and_answers_each_event_in_order() {
    let s1 = Session {
        livekit_room_sid: "RM_1".into(),
        ..crate::tests::session(SessionStatus::Active)
    };
    let mut sessions = MockSessionStore::new();
    let found = s1.clone();
    sessions
        .expect_find_by_room_sids()
        .times(1)
        .withf(|sids| sids == ["RM_1".to_owned()])
        .returning(move |_| Ok(vec![found.clone()]));
    let mut presence = MockPresenceStore::new();
    presence
        .expect_record_presence()
        .times(1)
        .withf(|news| {
            news.iter()
                .map(|n| (n.identity.as_str(), n.present))
                .collect::<Vec<_>>()
                == [("bob", true), ("carol", true), ("bob", false)]
        })
        .returning(|_| Ok(()));
    let mut events = MockEventStore::new();
    // EV_OLD was recorded earlier; EV_B2 arrives twice in this batch.
    events
        .expect_seen()
        .times(1)
        .returning(|_| Ok(["EV_OLD".to_owned()].into_iter().collect()));
    // EV_C lost a race with another replica at the record.
    events
        .expect_record()
        .times(1)
        .withf(|e| {
            e.iter().map(|r| r.id.as_str()).collect::<Vec<_>>() == ["EV_B1", "EV_C", "EV_B2"]
        })
        .returning(|_| Ok(vec![true, false, true]));
    let lifecycle = on_mocks(sessions, presence, events, Arc::new(NoVerifier));
    let person = |id: &str, kind: &str, secs: i64, who: &str| {
        event(id, kind, &s1, secs, Some((who, "STANDARD")))
    };
    let batch = vec![
        person("EV_B1", "participant_joined", 5, "bob"),
        person("EV_OLD", "participant_joined", 4, "dan"),
        person("EV_C", "participant_joined", 6, "carol"),
        person("EV_B2", "participant_left", 7, "bob"),
        person("EV_B2", "participant_left", 7, "bob"),
    ];
    let received = |event: &str| WebhookOutcome::Received {
        event: event.into(),
        session_id: Some(s1.id),
    };
    assert_eq!(
        outcomes(lifecycle.apply_batch(batch).await.unwrap()),
        vec![
            received("participant_joined"),
            WebhookOutcome::Duplicate,
            WebhookOutcome::Duplicate,
            received("participant_left"),
            WebhookOutcome::Duplicate,
        ]
    );
}

#[tokio::test]
async fn a_batch_on_the_in_memory_store_counts_people_like_single_events() {
    let f = fixture();
    let s = new_session(&f, None).await;
    let batch = vec![
        event("EV_1", "room_started", &s, 1, None),
        event(
            "EV_2",
            "participant_joined",
            &s,
            2,
            Some(("bob", "STANDARD")),
        ),
        event(
            "EV_3",
            "participant_joined",
            &s,
            3,
            Some(("carol", "STANDARD")),
        ),
        event(
            "EV_4",
            "participant_joined",
            &s,
            3,
            Some(("agent", "AGENT")),
        ),
        event("EV_5", "participant_left", &s, 4, Some(("bob", "STANDARD"))),
    ];
    let outcomes = outcomes(f.lifecycle.apply_batch(batch).await.unwrap());
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, WebhookOutcome::Received { .. }))
    );
    let now = f.store.get(s.id).await.unwrap();
    assert_eq!(now.status, SessionStatus::Active);
    assert_eq!(now.participant_count, 1);
    // The same deliveries again change nothing.
    let again = f
        .deliver(event(
            "EV_5",
            "participant_left",
            &s,
            4,
            Some(("bob", "STANDARD")),
        ))
        .await
        .unwrap();
    assert_eq!(again, WebhookOutcome::Duplicate);
}

fn outcomes(receipts: Vec<WebhookReceipt>) -> Vec<WebhookOutcome> {
    receipts.into_iter().map(|r| r.outcome).collect()
}

/// Counts agent dispatches (the bots' dispatch is LiveKit's AgentDispatchService).
#[derive(Default)]
struct CountingDispatcher(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl AgentDispatcher for CountingDispatcher {
    async fn dispatch(&self, _: &str, agent: &str, _: &str) -> Result<String, RoomError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(format!("AD_{agent}"))
    }
}

fn voice_on(store: &Arc<InMemoryStore>, dispatcher: Arc<dyn AgentDispatcher>) -> VoiceService {
    VoiceService::new(
        VoicePorts {
            sessions: store.clone(),
            voice_state: store.clone(),
            history: store.clone(),
            llm: None,
            tts: None,
            dispatcher: Some(dispatcher),
            clock: Arc::new(SystemClock),
            observer: Arc::new(NoObserver),
            turns: store.clone(),
            live: Arc::new(NoLiveEvents),
        },
        ConversationPolicy::default(),
        VoiceConfig::default(),
    )
}

fn microphone(id: &str, s: &Session, who: &str) -> LiveKitEvent {
    LiveKitEvent {
        track: Some(EventTrack {
            sid: "TR_mic".into(),
            kind: TrackKind::Audio,
            source: "microphone".into(),
        }),
        ..event(id, "track_published", s, 3, Some((who, "STANDARD")))
    }
}

async fn voice_session(f: &Fixture) -> Session {
    f.sessions
        .create(NewSession {
            user_id: "vic".into(),
            voice: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .session
}

/// The webhook only claims the bots; the dispatch (slow: LiveKit, two agents) is the
/// caller's to run after answering, once per session.
#[tokio::test]
async fn a_microphone_in_a_voice_session_claims_the_bots_and_leaves_the_dispatch_to_the_caller() {
    let mut f = fixture();
    let dispatcher = Arc::new(CountingDispatcher::default());
    let voice = voice_on(&f.store, dispatcher.clone());
    f.lifecycle = f.lifecycle.clone().with_voice(voice.clone());
    let s = voice_session(&f).await;

    let body = f.deliveries.body(microphone("EV_m1", &s, "vic"));
    let receipt = f.lifecycle.receive(&body, Some("signed")).await.unwrap();

    let order = receipt
        .dispatch
        .expect("the first microphone claims the bots");
    assert_eq!(order.session_id, s.id);
    assert_eq!(order.room_name, s.room_name);
    assert_eq!(dispatcher.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    let again = f.deliveries.body(microphone("EV_m2", &s, "vic"));
    let second = f.lifecycle.receive(&again, Some("signed")).await.unwrap();
    assert_eq!(second.dispatch, None, "claimed once per session");

    voice.dispatch_bots(order).await.unwrap();
    assert_eq!(dispatcher.0.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_batch_that_fails_gives_its_bot_claims_back() {
    let store = Arc::new(InMemoryStore::default());
    let f = fixture();
    let s = voice_session(&f).await;
    store.insert(&s).await.unwrap();
    let mut events = MockEventStore::new();
    events.expect_seen().returning(|_| Ok(Default::default()));
    events
        .expect_record()
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let lifecycle = LifecycleService::new(LifecyclePorts {
        sessions: store.clone(),
        presence: store.clone(),
        leases: store.clone(),
        events: Arc::new(events),
        rooms: Arc::new(MockRoomService::new()),
        verifier: always(microphone("EV_m", &s, "vic")),
        clock: Arc::new(SystemClock),
    })
    .with_voice(voice_on(&store, Arc::new(CountingDispatcher::default())));

    let err = lifecycle.receive(b"{}", Some("signed")).await.unwrap_err();

    assert_eq!(err.code(), "store_unavailable");
    assert!(
        store.claim_dispatch(s.id, Utc::now()).await.unwrap(),
        "LiveKit's retry can claim the bots again"
    );
}

/// Someone LiveKit lists in a room.
fn listed(identity: &str) -> Participant {
    Participant {
        identity: identity.into(),
        name: identity.into(),
        sid: format!("PA_{identity}"),
        state: ParticipantState::Active,
        joined_at: 0,
        metadata: String::new(),
        is_publisher: false,
        tracks: Vec::new(),
    }
}

#[tokio::test]
async fn the_reaper_repairs_presence_drift_from_livekits_participant_list() {
    let f = fixture();
    let s = new_session(&f, None).await;
    // Webhooks said bob and a ghost joined; the ghost's leave was lost.
    f.store
        .record_presence(&[
            Presence {
                session_id: s.id,
                identity: "bob".into(),
                present: true,
                at: t0(),
            },
            Presence {
                session_id: s.id,
                identity: "ghost".into(),
                present: true,
                at: t0(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(f.store.get(s.id).await.unwrap().participant_count, 2);
    // LiveKit lists bob and an agent (never counted), not the ghost.
    f.rooms.join(&s.room_name, listed("bob"));
    f.rooms.join(&s.room_name, listed("agent-stt"));
    f.clock.advance(Duration::seconds(5));

    let report = f
        .lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!((report.expired, report.ended), (0, 0));
    let now = f.store.get(s.id).await.unwrap();
    assert_eq!(now.participant_count, 1, "only bob");
    assert_eq!(now.last_activity_at, Some(t0() + Duration::seconds(5)));
    assert_eq!(now.status, s.status, "reconciling moves no status");
}

#[tokio::test]
async fn the_reaper_reconciles_mismatched_counts_first_and_survives_a_failure() {
    let store = Arc::new(InMemoryStore::default());
    let clock = Arc::new(FakeClock(Mutex::new(t0())));
    let session = |room: &str, count: u32| Session {
        id: uuid::Uuid::new_v4(),
        user_id: "a".into(),
        room_name: room.into(),
        livekit_room_sid: format!("RM_{room}"),
        status: SessionStatus::Active,
        language: "en".into(),
        metadata: Default::default(),
        voice: false,
        kind: crate::SessionKind::Owned,
        created_at: t0() - Duration::hours(1),
        expires_at: t0() + Duration::hours(1),
        updated_at: t0(),
        ended_at: None,
        participant_count: count,
        last_activity_at: None,
    };
    let (agrees, drifts) = (session("agrees", 2), session("drifts", 3));
    store.insert(&agrees).await.unwrap();
    store.insert(&drifts).await.unwrap();
    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| {
        Ok(["agrees", "drifts"]
            .map(|name| Room {
                name: name.into(),
                num_participants: 2,
                ..Default::default()
            })
            .to_vec())
    });
    // The mismatched room is asked first; the agreeing one gets its turn in the spare slots.
    let mut order = mockall::Sequence::new();
    rooms
        .expect_list_participants()
        .withf(|room| room == "drifts")
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| {
            Err(RoomError::Unavailable {
                message: "down".into(),
                source: None,
            })
        });
    rooms
        .expect_list_participants()
        .withf(|room| room == "agrees")
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(Vec::new()));
    let lifecycle = on_memory(&store, Arc::new(rooms), Arc::new(NoVerifier), clock);
    let report = lifecycle
        .reap(Duration::seconds(30), Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!((report.expired, report.ended), (0, 0));
    assert_eq!(store.get(drifts.id).await.unwrap().participant_count, 3);
    // Nobody stored for the agreeing one: reconciling it recounts from its (no) rows.
    assert_eq!(store.get(agrees.id).await.unwrap().participant_count, 0);
}
