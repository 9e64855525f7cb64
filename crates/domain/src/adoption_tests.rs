//! Room adoption (`voice.adopt_rooms`): finals and signed `room_started` for rooms LiveKit
//! has and no session owns, on the in-memory adapters and a fake clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::adoption::{ROOM_CACHE_MAX, ROOM_CACHE_TTL};
use crate::fake_clock::FakeClock;
use crate::memory::{InMemoryRooms, InMemoryStore};
use crate::ports::*;
use crate::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
}

/// LiveKit in memory, counting what it is asked.
#[derive(Default)]
struct CountingRooms {
    inner: InMemoryRooms,
    listed: AtomicUsize,
    deleted: AtomicUsize,
}

impl CountingRooms {
    fn listed(&self) -> usize {
        self.listed.load(Ordering::SeqCst)
    }
    fn deleted(&self) -> usize {
        self.deleted.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl RoomService for CountingRooms {
    async fn create_room(&self, spec: &RoomSpec) -> Result<Room, RoomError> {
        self.inner.create_room(spec).await
    }
    async fn delete_room(&self, name: &str) -> Result<(), RoomError> {
        self.deleted.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_room(name).await
    }
    async fn list_rooms(&self, names: &[String]) -> Result<Vec<Room>, RoomError> {
        self.listed.fetch_add(1, Ordering::SeqCst);
        self.inner.list_rooms(names).await
    }
    async fn list_participants(&self, room: &str) -> Result<Vec<Participant>, RoomError> {
        self.inner.list_participants(room).await
    }
    async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), RoomError> {
        self.inner.remove_participant(room, identity).await
    }
    async fn send_data(
        &self,
        room: &str,
        payload: Vec<u8>,
        topic: &str,
        reliable: bool,
    ) -> Result<(), RoomError> {
        self.inner.send_data(room, payload, topic, reliable).await
    }
}

struct Tokens;
impl TokenIssuer for Tokens {
    fn issue(&self, r: &TokenRequest) -> Result<IssuedToken, TokenError> {
        Ok(IssuedToken {
            jwt: r.identity.clone(),
            expires_at: t0() + r.ttl,
        })
    }
}

struct World {
    store: Arc<InMemoryStore>,
    rooms: Arc<CountingRooms>,
    clock: Arc<FakeClock>,
    sessions: SessionService,
    voice: VoiceService,
    lifecycle: LifecycleService,
    events: Arc<Mutex<Option<LiveKitEvent>>>,
}

/// "Verifies" any delivery as the event the test put in the slot.
struct Slot(Arc<Mutex<Option<LiveKitEvent>>>);
impl WebhookVerifier for Slot {
    fn verify(&self, _: &[u8], _: Option<&str>) -> Result<LiveKitEvent, WebhookError> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| WebhookError::Unauthorized("no event".into()))
    }
}

/// Services over one in-memory store and LiveKit; adoption on or off.
fn world(adopt: bool) -> World {
    let store = Arc::new(InMemoryStore::default());
    let rooms = Arc::new(CountingRooms::default());
    let clock = Arc::new(FakeClock(Mutex::new(t0())));
    let policy = SessionPolicy::default();
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
        policy.clone(),
    );
    let mut voice = VoiceService::new(
        VoicePorts {
            sessions: store.clone(),
            voice_state: store.clone(),
            history: store.clone(),
            llm: None,
            tts: None,
            dispatcher: None,
            clock: clock.clone(),
            observer: Arc::new(NoObserver),
            turns: store.clone(),
            live: Arc::new(NoLiveEvents),
        },
        ConversationPolicy::default(),
        VoiceConfig::default(),
    );
    let events = Arc::new(Mutex::new(None));
    let mut lifecycle = LifecycleService::new(LifecyclePorts {
        sessions: store.clone(),
        presence: store.clone(),
        leases: store.clone(),
        events: store.clone(),
        rooms: rooms.clone(),
        verifier: Arc::new(Slot(events.clone())),
        clock: clock.clone(),
    });
    if adopt {
        let adopter = RoomAdopter::new(store.clone(), rooms.clone(), clock.clone(), &policy);
        voice = voice.with_adoption(adopter.clone());
        lifecycle = lifecycle.with_adoption(adopter);
    }
    World {
        store,
        rooms,
        clock,
        sessions,
        voice,
        lifecycle,
        events,
    }
}

impl World {
    /// LiveKit has `name` (a room some app or bot made, no session's).
    async fn livekit_has(&self, name: &str) -> Room {
        self.rooms
            .inner
            .create_room(&RoomSpec {
                name: name.into(),
                empty_timeout_secs: 300,
                departure_timeout_secs: 20,
                max_participants: 0,
                metadata: String::new(),
            })
            .await
            .unwrap()
    }

    async fn webhook(&self, event: LiveKitEvent) -> WebhookReceipt {
        *self.events.lock().unwrap() = Some(event);
        self.lifecycle.receive(b"{}", Some("signed")).await.unwrap()
    }
}

fn final_for(room: &str, text: &str) -> Transcript {
    Transcript {
        room_name: room.into(),
        participant: Some("ozzu-app".into()),
        text: text.into(),
        is_final: true,
        language: Some("en".into()),
        confidence: Some(1.0),
        transcript_id: None,
    }
}

fn turn(outcome: TranscriptOutcome) -> PendingTurn {
    match outcome {
        TranscriptOutcome::Turn(t) => *t,
        other => panic!("expected a turn, got {other:?}"),
    }
}

#[tokio::test]
async fn a_final_for_a_livekit_room_no_session_owns_creates_a_room_session_and_starts_a_turn() {
    let w = world(true);
    let room = w.livekit_has("ozzu-main").await;

    let first = turn(
        w.voice
            .transcript(final_for("ozzu-main", "hello"))
            .await
            .unwrap(),
    );

    let s = &first.session;
    assert_eq!(s.kind, SessionKind::Room);
    assert_eq!(s.user_id, ROOM_SESSION_OWNER);
    assert_eq!(s.room_name, "ozzu-main");
    assert_eq!(s.livekit_room_sid, room.sid);
    assert_eq!(s.status, SessionStatus::Created);
    assert!(
        !s.voice,
        "the bots are in the room already: nothing to dispatch"
    );
    assert_eq!(
        s.expires_at - s.created_at,
        SessionPolicy::default().default_session_ttl
    );
    assert_eq!((first.generation, first.text.as_str()), (1, "hello"));
    assert_eq!(
        w.store.find_live_by_room("ozzu-main").await.unwrap(),
        Some(s.clone())
    );

    // The next final continues the same session: no second adoption, no LiveKit call.
    let second = turn(
        w.voice
            .transcript(final_for("ozzu-main", "again"))
            .await
            .unwrap(),
    );
    assert_eq!(second.session.id, s.id);
    assert_eq!(second.generation, 2);
    assert_eq!(w.rooms.listed(), 1);
    // Barge-in reaches it like any session.
    assert_eq!(w.voice.voice_onset("ozzu-main").await.unwrap(), 3);

    // Its reader gets no owner token: nobody owns the room.
    let read = w.sessions.get(s.id).await.unwrap();
    assert_eq!(read.token, None);
    assert_eq!(read.session.kind, SessionKind::Room);
}

#[tokio::test]
async fn with_adoption_off_a_final_for_a_room_no_session_owns_is_not_found() {
    let w = world(false);
    w.livekit_has("ozzu-main").await;

    let err = w
        .voice
        .transcript(final_for("ozzu-main", "hello"))
        .await
        .unwrap_err();

    assert!(matches!(err, SessionError::NotFound), "{err:?}");
    assert_eq!(w.rooms.listed(), 0);
    assert_eq!(w.store.find_live_by_room("ozzu-main").await.unwrap(), None);
}

#[tokio::test]
async fn a_room_livekit_does_not_have_is_not_found_and_livekit_is_asked_once_per_cache_ttl() {
    let w = world(true);

    for _ in 0..5 {
        let err = w
            .voice
            .transcript(final_for("no-such-room", "hello"))
            .await
            .unwrap_err();
        assert!(matches!(err, SessionError::NotFound), "{err:?}");
    }
    assert_eq!(w.rooms.listed(), 1, "the answer is cached");

    w.clock.advance(ROOM_CACHE_TTL - Duration::milliseconds(1));
    assert!(
        w.voice
            .transcript(final_for("no-such-room", "x"))
            .await
            .is_err()
    );
    assert_eq!(w.rooms.listed(), 1);

    // Once the answer is stale, LiveKit is asked again (and now it has the room).
    w.clock.advance(Duration::milliseconds(1));
    w.livekit_has("no-such-room").await;
    turn(
        w.voice
            .transcript(final_for("no-such-room", "now"))
            .await
            .unwrap(),
    );
    assert_eq!(w.rooms.listed(), 2);
    assert_eq!(w.store.list_live(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn partials_and_names_outside_the_rules_never_adopt_nor_ask_livekit() {
    let w = world(true);
    w.livekit_has("ozzu-main").await;
    let partial = Transcript {
        is_final: false,
        ..final_for("ozzu-main", "hel")
    };

    let err = w.voice.transcript(partial).await.unwrap_err();
    assert!(matches!(err, SessionError::NotFound), "{err:?}");
    let err = w
        .voice
        .transcript(final_for("has space", "hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::NotFound), "{err:?}");

    assert_eq!(w.rooms.listed(), 0);
    assert_eq!(w.store.list_live(10).await.unwrap(), vec![]);
}

#[tokio::test]
async fn the_cache_of_livekit_answers_is_bounded() {
    let w = world(true);
    let adopter = RoomAdopter::new(
        w.store.clone(),
        w.rooms.clone(),
        w.clock.clone(),
        &SessionPolicy::default(),
    );
    for i in 0..ROOM_CACHE_MAX + 50 {
        assert_eq!(adopter.adopt(&format!("nope-{i}")).await.unwrap(), None);
    }
    assert_eq!(adopter.cached(), ROOM_CACHE_MAX);
}

#[tokio::test]
async fn ending_a_room_session_never_deletes_the_room_whoever_ends_it() {
    let w = world(true);
    w.livekit_has("ozzu-main").await;
    let s = turn(
        w.voice
            .transcript(final_for("ozzu-main", "hi"))
            .await
            .unwrap(),
    )
    .session;

    // DELETE /api/sessions/{id}
    let ended = w.sessions.end(s.id).await.unwrap();
    assert_eq!(ended.status, SessionStatus::Ended);
    assert_eq!(w.rooms.deleted(), 0);

    // The reaper's expiry: the next final adopts the room again.
    let again = turn(
        w.voice
            .transcript(final_for("ozzu-main", "back"))
            .await
            .unwrap(),
    )
    .session;
    assert_ne!(again.id, s.id);
    w.clock
        .advance(SessionPolicy::default().default_session_ttl);
    let report = w
        .lifecycle
        .reap(Duration::seconds(60), Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(w.rooms.deleted(), 0);
    assert_eq!(
        w.store.get(again.id).await.unwrap().status,
        SessionStatus::Expired
    );
    assert_eq!(w.rooms.inner.list_rooms(&[]).await.unwrap().len(), 1);

    // room_finished ends it too, and deletes nothing (LiveKit already has).
    let third = turn(
        w.voice
            .transcript(final_for("ozzu-main", "hi"))
            .await
            .unwrap(),
    )
    .session;
    w.webhook(lk_event("EV_fin", "room_finished", &third)).await;
    assert_eq!(
        w.store.get(third.id).await.unwrap().status,
        SessionStatus::Ended
    );
    assert_eq!(w.rooms.deleted(), 0);
}

#[tokio::test]
async fn a_room_session_past_its_expiry_is_retired_and_the_room_adopted_afresh_by_a_final() {
    let w = world(true);
    w.livekit_has("ozzu-main").await;
    let s = turn(
        w.voice
            .transcript(final_for("ozzu-main", "hi"))
            .await
            .unwrap(),
    )
    .session;

    // No reaper ran: the next final after the expiry still starts a fresh session.
    w.clock
        .advance(SessionPolicy::default().default_session_ttl);
    let next = turn(
        w.voice
            .transcript(final_for("ozzu-main", "later"))
            .await
            .unwrap(),
    );

    assert_ne!(next.session.id, s.id);
    assert_eq!(next.generation, 1);
    assert_eq!(
        w.store.get(s.id).await.unwrap().status,
        SessionStatus::Expired
    );
    assert_eq!(w.rooms.deleted(), 0);
}

fn lk_event(id: &str, kind: &str, s: &Session) -> LiveKitEvent {
    LiveKitEvent {
        id: id.into(),
        kind: EventKind::parse(kind),
        created_at: Some(t0()),
        room_name: Some(s.room_name.clone()),
        room_sid: Some(s.livekit_room_sid.clone()),
        participant: None,
        track: None,
        payload: serde_json::json!({ "event": kind }),
    }
}

fn room_started(id: &str, room: &Room) -> LiveKitEvent {
    LiveKitEvent {
        id: id.into(),
        kind: EventKind::RoomStarted,
        created_at: Some(t0()),
        room_name: Some(room.name.clone()),
        room_sid: Some(room.sid.clone()),
        participant: None,
        track: None,
        payload: serde_json::json!({ "event": "room_started" }),
    }
}

#[tokio::test]
async fn a_signed_room_started_for_a_room_no_session_owns_adopts_it_when_on() {
    let w = world(true);
    let room = w.livekit_has("ozzu-main").await;

    let receipt = w.webhook(room_started("EV_1", &room)).await;

    let s = w
        .store
        .find_live_by_room("ozzu-main")
        .await
        .unwrap()
        .expect("adopted");
    assert_eq!(s.kind, SessionKind::Room);
    assert_eq!(s.livekit_room_sid, room.sid);
    assert_eq!(s.status, SessionStatus::Active, "the room started");
    assert_eq!(
        receipt.outcome,
        WebhookOutcome::Received {
            event: "room_started".into(),
            session_id: Some(s.id),
        }
    );
    // The signature is LiveKit's word that the room exists: nobody asked LiveKit.
    assert_eq!(w.rooms.listed(), 0);
    // A final goes to that session.
    let t = turn(
        w.voice
            .transcript(final_for("ozzu-main", "hi"))
            .await
            .unwrap(),
    );
    assert_eq!(t.session.id, s.id);
}

#[tokio::test]
async fn with_adoption_off_a_room_started_for_no_session_adopts_nothing() {
    let w = world(false);
    let room = w.livekit_has("ozzu-main").await;

    let receipt = w.webhook(room_started("EV_1", &room)).await;

    assert_eq!(
        receipt.outcome,
        WebhookOutcome::Received {
            event: "room_started".into(),
            session_id: None,
        }
    );
    assert_eq!(w.store.find_live_by_room("ozzu-main").await.unwrap(), None);
}

#[tokio::test]
async fn only_room_started_adopts_other_events_for_unowned_rooms_do_not() {
    let w = world(true);
    let room = w.livekit_has("ozzu-main").await;
    let joined = LiveKitEvent {
        kind: EventKind::ParticipantJoined,
        ..room_started("EV_j", &room)
    };

    w.webhook(joined).await;

    assert_eq!(w.store.find_live_by_room("ozzu-main").await.unwrap(), None);
}

#[tokio::test]
async fn two_replicas_adopting_one_room_at_once_end_with_one_session() {
    let w = world(true);
    w.livekit_has("ozzu-main").await;
    // Separate caches, one store: as two replicas.
    let policy = SessionPolicy::default();
    let a = RoomAdopter::new(w.store.clone(), w.rooms.clone(), w.clock.clone(), &policy);
    let b = RoomAdopter::new(w.store.clone(), w.rooms.clone(), w.clock.clone(), &policy);

    let (x, y) = tokio::join!(a.adopt("ozzu-main"), b.adopt("ozzu-main"));

    let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
    assert_eq!(x.id, y.id);
    assert_eq!(w.store.list_live(10).await.unwrap().len(), 1);
}

/// Racing inserts: the store refuses the second live session of the room; the loser reads
/// the winner's session instead of failing.
#[tokio::test]
async fn an_adoption_that_loses_the_insert_race_reads_the_winners_session() {
    let winner = crate::tests::session(SessionStatus::Created);
    let mut sessions = MockSessionStore::new();
    let mut reads = 0;
    let found = winner.clone();
    sessions.expect_find_live_by_room().returning(move |_| {
        reads += 1;
        Ok((reads > 1).then(|| found.clone()))
    });
    sessions
        .expect_insert()
        .times(1)
        .returning(|_| Err(StoreError::Conflict("sessions_live_room".into())));
    let rooms = Arc::new(CountingRooms::default());
    let adopter = RoomAdopter::new(
        Arc::new(sessions),
        rooms.clone(),
        Arc::new(FakeClock(Mutex::new(t0()))),
        &SessionPolicy::default(),
    );
    rooms
        .inner
        .create_room(&RoomSpec {
            name: winner.room_name.clone(),
            empty_timeout_secs: 300,
            departure_timeout_secs: 20,
            max_participants: 0,
            metadata: String::new(),
        })
        .await
        .unwrap();

    let got = adopter.adopt(&winner.room_name).await.unwrap();

    assert_eq!(got, Some(winner));
}

#[tokio::test]
async fn nobody_may_create_a_session_for_a_service_principal() {
    let w = world(true);
    let err = w
        .sessions
        .create(NewSession {
            user_id: ROOM_SESSION_OWNER.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Validation {
                field: "user_id",
                ..
            }
        ),
        "{err:?}"
    );
}
