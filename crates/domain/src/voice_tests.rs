//! VoiceService tests: turns and their cancellation by generation number, the transcript
//! checks (partials, empties, low confidence, resends), and the bots' dispatch claim. The
//! in-memory store stands for the shared database (a second `VoiceService` on it plays
//! another replica); the model, TTS, dispatcher and observer are mockall mocks. Time is a
//! fake clock: nothing here sleeps, and no duration is asserted.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Duration, TimeZone, Utc};
use mockall::Sequence;

use crate::fake_clock::FakeClock;
use crate::memory::InMemoryStore;
use crate::ports::*;
use crate::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
}

const ROOM: &str = "room-vic-0001";

/// Runs a future that never waits (the in-memory store, mocks) to its end, without a
/// runtime. mockall's `returning` closures are not async: the model mock drives the sink,
/// and interrupts a turn from "another replica", through this.
fn at_once<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the future waited: only in-memory ports may be driven here"),
    }
}

/// A live voice session in the store, a fake clock, and what TTS was asked to say.
struct Fixture {
    store: Arc<InMemoryStore>,
    clock: Arc<FakeClock>,
    session: Session,
    spoken: Arc<Mutex<Vec<String>>>,
    live: Arc<Recorded>,
}

/// Live events as published, in order.
#[derive(Default)]
struct Recorded(Mutex<Vec<LiveEvent>>);

impl LiveEvents for Recorded {
    fn publish(&self, event: SessionEvent) {
        self.0.lock().unwrap().push(event.event);
    }
}

async fn fixture() -> Fixture {
    let store = Arc::new(InMemoryStore::default());
    let session = Session {
        id: uuid::Uuid::new_v4(),
        user_id: "vic".into(),
        room_name: ROOM.into(),
        livekit_room_sid: "RM_vic".into(),
        status: SessionStatus::Active,
        language: "en".into(),
        metadata: Default::default(),
        voice: true,
        kind: crate::SessionKind::Owned,
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
        updated_at: t0(),
        ended_at: None,
        participant_count: 1,
        last_activity_at: None,
    };
    store.insert(&session).await.unwrap();
    Fixture {
        store,
        clock: Arc::new(FakeClock(Mutex::new(t0()))),
        session,
        spoken: Arc::default(),
        live: Arc::default(),
    }
}

/// The ports a test gives the service; anything left out is not configured.
#[derive(Default)]
struct Ports {
    llm: Option<MockChatModel>,
    tts: Option<MockTextToSpeech>,
    dispatcher: Option<MockAgentDispatcher>,
    observer: Option<MockTurnObserver>,
}

impl Fixture {
    fn service(&self, ports: Ports) -> VoiceService {
        let observer: Arc<dyn TurnObserver> = match ports.observer {
            Some(o) => Arc::new(o),
            None => Arc::new(NoObserver),
        };
        VoiceService::new(
            VoicePorts {
                sessions: self.store.clone(),
                voice_state: self.store.clone(),
                history: self.store.clone(),
                llm: ports.llm.map(|m| Arc::new(m) as Arc<dyn ChatModel>),
                tts: ports.tts.map(|m| Arc::new(m) as Arc<dyn TextToSpeech>),
                dispatcher: ports
                    .dispatcher
                    .map(|m| Arc::new(m) as Arc<dyn AgentDispatcher>),
                clock: self.clock.clone(),
                observer,
                turns: self.store.clone(),
                live: self.live.clone(),
            },
            ConversationPolicy::default(),
            VoiceConfig {
                min_confidence: 0.5,
                ..Default::default()
            },
        )
    }

    /// Another replica on the same store: it takes transcripts and onsets, runs no turn.
    fn replica(&self) -> VoiceService {
        self.service(Ports::default())
    }

    /// TTS that accepts every sentence and records it.
    fn tts(&self) -> MockTextToSpeech {
        let spoken = self.spoken.clone();
        let mut tts = MockTextToSpeech::new();
        tts.expect_synthesize()
            .withf(|r| r.room_name == ROOM && r.language == "en")
            .returning(move |r| {
                spoken.lock().unwrap().push(r.text.clone());
                Ok(serde_json::json!({"status": "ok"}))
            });
        tts
    }

    fn spoken(&self) -> Vec<String> {
        self.spoken.lock().unwrap().clone()
    }

    async fn history(&self) -> Vec<(Role, String)> {
        self.store
            .recent(self.session.id, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.role, e.content))
            .collect()
    }

    async fn generation(&self) -> u64 {
        self.store
            .current_turn(self.session.id)
            .await
            .unwrap()
            .generation
    }
}

/// A model that streams `deltas` into the sink and calls `after(i)` once delta `i` is
/// through (and every sentence it completed has been sent); it stops when the sink says so.
fn model(
    deltas: &'static [&'static str],
    mut after: impl FnMut(usize) + Send + 'static,
) -> MockChatModel {
    let mut llm = MockChatModel::new();
    llm.expect_model_name()
        .return_const("gemini-test".to_owned());
    llm.expect_stream().times(1).returning(move |_, sink| {
        for (i, delta) in deltas.iter().enumerate() {
            if at_once(sink.push(delta)) == Flow::Stop {
                return Err(LlmError::Cancelled);
            }
            after(i);
        }
        Ok(ChatReply {
            text: deltas.concat(),
            finish_reason: FinishReason::Stop,
            model: "gemini-test-001".into(),
            usage: USAGE,
        })
    });
    llm
}

/// What [`model`] reports.
const USAGE: TokenUsage = TokenUsage {
    prompt_tokens: 11,
    output_tokens: 7,
    total_tokens: 18,
};

fn heard(text: &str) -> Transcript {
    Transcript {
        room_name: ROOM.into(),
        participant: Some("vic".into()),
        text: text.into(),
        is_final: true,
        language: None,
        confidence: Some(0.9),
        transcript_id: None,
    }
}

fn partial(text: &str) -> Transcript {
    Transcript {
        is_final: false,
        ..heard(text)
    }
}

async fn start(svc: &VoiceService, t: Transcript) -> PendingTurn {
    match svc.transcript(t).await.unwrap() {
        TranscriptOutcome::Turn(turn) => *turn,
        other => panic!("expected a turn, got {other:?}"),
    }
}

async fn skipped(svc: &VoiceService, t: Transcript) -> &'static str {
    match svc.transcript(t).await.unwrap() {
        TranscriptOutcome::Skipped(why) => why,
        other => panic!("expected a skip, got {other:?}"),
    }
}

fn said(role: Role, text: &str) -> (Role, String) {
    (role, text.to_owned())
}

#[tokio::test]
async fn a_final_starts_a_turn_whose_sentences_reach_tts_in_order_and_are_kept_as_spoken() {
    // Arrange
    let fx = fixture().await;
    let mut observer = MockTurnObserver::new();
    observer.expect_started().times(1).return_const(());
    observer.expect_recorded().times(1).return_const(());
    observer
        .expect_finished()
        .withf(|r| r.outcome == TurnOutcome::Completed && r.sentences == 3 && r.generation == 1)
        .times(1)
        .return_const(());
    let svc = fx.service(Ports {
        llm: Some(model(&["Hi there. How", " are you? Fine", "."], |_| {})),
        tts: Some(fx.tts()),
        observer: Some(observer),
        ..Default::default()
    });

    // Act
    let turn = start(&svc, heard("  Hello  ")).await;
    let report = svc.run_turn(turn).await;

    // Assert
    assert_eq!(report.outcome, TurnOutcome::Completed);
    assert_eq!(report.generation, 1);
    assert!(report.to_first_token.is_some() && report.to_first_tts.is_some());
    assert_eq!(fx.spoken(), ["Hi there.", "How are you?", "Fine."]);
    assert_eq!(
        fx.history().await,
        [
            said(Role::User, "Hello"),
            said(Role::Assistant, "Hi there. How are you? Fine."),
        ]
    );
}

#[tokio::test]
async fn a_newer_final_cancels_the_running_turn_before_its_next_tts_send() {
    // Arrange: after the first sentence is spoken, another replica hears the user again.
    let fx = fixture().await;
    let replica = fx.replica();
    let newer = Arc::new(Mutex::new(None));
    let llm = {
        let newer = newer.clone();
        model(&["One. ", "Two. ", "Three."], move |i| {
            if i == 0 {
                let turn = at_once(start(&replica, heard("Wait, stop.")));
                *newer.lock().unwrap() = Some(turn.generation);
            }
        })
    };
    let mut observer = MockTurnObserver::new();
    observer.expect_started().times(1).return_const(());
    observer.expect_recorded().times(1).return_const(());
    observer
        .expect_finished()
        .withf(|r| r.outcome == TurnOutcome::Cancelled && r.sentences == 1)
        .times(1)
        .return_const(());
    let svc = fx.service(Ports {
        llm: Some(llm),
        tts: Some(fx.tts()),
        observer: Some(observer),
        ..Default::default()
    });

    // Act
    let turn = start(&svc, heard("Count to three.")).await;
    let report = svc.run_turn(turn).await;

    // Assert: "Two." never reached TTS, and history says only what was spoken, no failure.
    assert_eq!(report.outcome, TurnOutcome::Cancelled);
    assert_eq!(report.generation, 1);
    assert_eq!(*newer.lock().unwrap(), Some(2));
    assert_eq!(fx.generation().await, 2);
    assert_eq!(fx.spoken(), ["One."]);
    assert_eq!(
        fx.history().await,
        [
            said(Role::User, "Count to three."),
            said(Role::Assistant, "One."),
        ]
    );
}

#[tokio::test]
async fn voice_onset_cancels_the_running_turn_even_before_its_last_piece() {
    // Arrange: the model has finished streaming; the onset comes before the tail is sent.
    let fx = fixture().await;
    let replica = fx.replica();
    let llm = model(&["One. ", "and two"], move |i| {
        if i == 1 {
            assert_eq!(at_once(replica.voice_onset(ROOM)).unwrap(), 2);
        }
    });
    let svc = fx.service(Ports {
        llm: Some(llm),
        tts: Some(fx.tts()),
        ..Default::default()
    });

    // Act
    let turn = start(&svc, heard("Count.")).await;
    let report = svc.run_turn(turn).await;

    // Assert
    assert_eq!(report.outcome, TurnOutcome::Cancelled);
    assert_eq!(report.sentences, 1);
    assert_eq!(fx.spoken(), ["One."]);
    assert_eq!(
        fx.history().await,
        [said(Role::User, "Count."), said(Role::Assistant, "One.")]
    );
}

#[tokio::test]
async fn an_onset_with_no_turn_running_only_moves_the_generation_on() {
    let fx = fixture().await;
    let svc = fx.replica();
    assert_eq!(svc.voice_onset(ROOM).await.unwrap(), 1);
    // The next final runs under a newer generation, so it is not born cancelled.
    assert_eq!(start(&svc, heard("Hello")).await.generation, 2);
    let err = svc.voice_onset("room-nobody").await.unwrap_err();
    assert_eq!(err.code(), "session_not_found");
    let err = svc.voice_onset("room\u{0}").await.unwrap_err();
    assert_eq!(err.code(), "validation_error");
}

#[tokio::test]
async fn a_resent_final_within_the_window_is_skipped_and_starts_no_turn() {
    let fx = fixture().await;
    let svc = fx.replica();

    assert_eq!(start(&svc, heard("Hello")).await.generation, 1);
    fx.clock.advance(Duration::seconds(2));
    assert_eq!(skipped(&svc, heard("Hello")).await, "duplicate");
    assert_eq!(fx.generation().await, 1, "a skipped final cancels nothing");

    // The window (3 s) counts from the last final kept, not from the resend.
    fx.clock.advance(Duration::seconds(2));
    assert_eq!(start(&svc, heard("Hello")).await.generation, 2);
    assert_eq!(start(&svc, heard("Something else")).await.generation, 3);
}

#[tokio::test]
async fn a_final_with_a_transcript_id_is_a_resend_however_late_it_comes() {
    let fx = fixture().await;
    let svc = fx.replica();
    let with_id = |text: &str| Transcript {
        transcript_id: Some("utt-7".into()),
        ..heard(text)
    };

    assert_eq!(start(&svc, with_id("Hello")).await.generation, 1);
    fx.clock.advance(Duration::hours(1));
    assert_eq!(
        skipped(&svc, with_id("Hello, corrected")).await,
        "duplicate"
    );
    assert_eq!(fx.generation().await, 1);
}

#[tokio::test]
async fn empty_and_low_confidence_finals_are_skipped() {
    let fx = fixture().await;
    let svc = fx.replica();

    assert_eq!(skipped(&svc, heard("   ")).await, "empty");
    assert_eq!(skipped(&svc, heard("\u{0}\n")).await, "empty");
    let unsure = Transcript {
        confidence: Some(0.2),
        ..heard("Hello")
    };
    assert_eq!(skipped(&svc, unsure).await, "low_confidence");
    assert_eq!(fx.generation().await, 0, "no skipped final starts a turn");

    // The threshold itself passes, and so does a final that states no confidence; the
    // low-confidence one was not remembered as a final, so the same text is not a resend.
    let at_threshold = Transcript {
        confidence: Some(0.5),
        ..heard("Hello")
    };
    assert_eq!(start(&svc, at_threshold).await.generation, 1);
    let unstated = Transcript {
        confidence: None,
        ..heard("Goodbye")
    };
    assert_eq!(start(&svc, unstated).await.generation, 2);
}

#[tokio::test]
async fn partials_are_counted_and_never_start_or_cancel_a_turn() {
    let fx = fixture().await;
    let mut observer = MockTurnObserver::new();
    observer.expect_partial().times(2).return_const(());
    observer.expect_started().never();
    observer.expect_finished().never();
    let svc = fx.service(Ports {
        observer: Some(observer),
        ..Default::default()
    });
    let running = fx.replica();
    assert_eq!(start(&running, heard("Hello")).await.generation, 1);

    for text in ["Hel", "Hello th"] {
        let out = svc.transcript(partial(text)).await.unwrap();
        assert!(matches!(out, TranscriptOutcome::Partial), "{out:?}");
    }
    assert_eq!(fx.generation().await, 1);
    // A partial for a room with no live session is refused, and not counted.
    let stray = Transcript {
        room_name: "room-nobody".into(),
        ..partial("x")
    };
    assert_eq!(
        svc.transcript(stray).await.unwrap_err().code(),
        "session_not_found"
    );
}

#[tokio::test]
async fn a_failing_model_notes_the_failure_in_history_and_reports_failed() {
    // Arrange
    let fx = fixture().await;
    let mut llm = MockChatModel::new();
    llm.expect_model_name()
        .return_const("gemini-test".to_owned());
    llm.expect_stream()
        .times(1)
        .returning(|_, _| Err(LlmError::Upstream("503 after 3 tries".into())));
    let mut tts = MockTextToSpeech::new();
    tts.expect_synthesize().never();
    let mut observer = MockTurnObserver::new();
    observer.expect_started().times(1).return_const(());
    observer.expect_recorded().times(1).return_const(());
    observer
        .expect_finished()
        .withf(|r| r.outcome == TurnOutcome::Failed && r.sentences == 0)
        .times(1)
        .return_const(());
    let svc = fx.service(Ports {
        llm: Some(llm),
        tts: Some(tts),
        observer: Some(observer),
        ..Default::default()
    });

    // Act
    let turn = start(&svc, heard("Hello")).await;
    let report = svc.run_turn(turn).await;

    // Assert
    assert_eq!(report.outcome, TurnOutcome::Failed);
    assert_eq!(report.to_first_tts, None);
    assert_eq!(
        fx.history().await,
        [
            said(Role::User, "Hello"),
            said(
                Role::System,
                "The voice turn failed: the language model failed: 503 after 3 tries."
            ),
        ]
    );
}

#[tokio::test]
async fn a_tts_failure_mid_reply_keeps_what_was_spoken_and_notes_the_failure() {
    let fx = fixture().await;
    let mut tts = MockTextToSpeech::new();
    let mut order = Sequence::new();
    tts.expect_synthesize()
        .withf(|r| r.text == "One.")
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(serde_json::json!({})));
    tts.expect_synthesize()
        .withf(|r| r.text == "Two.")
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| {
            Err(SpeechError::Failed {
                status: 503,
                detail: "busy".into(),
            })
        });
    let svc = fx.service(Ports {
        llm: Some(model(&["One. ", "Two. ", "Three. "], |_| {})),
        tts: Some(tts),
        ..Default::default()
    });

    let report = svc.run_turn(start(&svc, heard("Count.")).await).await;

    assert_eq!(report.outcome, TurnOutcome::Failed);
    assert_eq!(report.sentences, 1);
    assert_eq!(
        fx.history().await,
        [
            said(Role::User, "Count."),
            said(Role::Assistant, "One."),
            said(
                Role::System,
                "The voice turn failed: the speech service failed with 503: busy."
            ),
        ]
    );
}

#[tokio::test]
async fn without_a_model_a_turn_fails_with_a_note_and_no_canned_reply() {
    let fx = fixture().await;
    let svc = fx.service(Ports {
        tts: Some(fx.tts()),
        ..Default::default()
    });
    let report = svc.run_turn(start(&svc, heard("Hello")).await).await;
    assert_eq!(report.outcome, TurnOutcome::Failed);
    assert!(fx.spoken().is_empty());
    let history = fx.history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1],
        said(
            Role::System,
            "The voice turn failed: no language model is configured."
        )
    );
}

// --- The bots' dispatch claim ---

fn microphone(identity: &str, kind: &str) -> LiveKitEvent {
    LiveKitEvent {
        id: format!("EV_{identity}"),
        kind: EventKind::TrackPublished,
        created_at: Some(t0()),
        room_name: Some(ROOM.into()),
        room_sid: Some("RM_vic".into()),
        participant: Some(EventParticipant {
            identity: identity.into(),
            sid: format!("PA_{identity}"),
            kind: kind.into(),
        }),
        track: Some(EventTrack {
            sid: format!("TR_{identity}"),
            kind: TrackKind::Audio,
            source: "microphone".into(),
        }),
        payload: serde_json::json!({"event": "track_published"}),
    }
}

/// A dispatcher that accepts the STT bot, then the TTS bot, once each.
fn dispatcher_once(session: &Session) -> MockAgentDispatcher {
    let mut dispatcher = MockAgentDispatcher::new();
    let mut order = Sequence::new();
    let id = session.id.to_string();
    for agent in ["june-stt", "june-tts"] {
        let id = id.clone();
        dispatcher
            .expect_dispatch()
            .withf(move |room, name, metadata| {
                let m: serde_json::Value = serde_json::from_str(metadata).unwrap();
                room == ROOM
                    && name == agent
                    && m["session_id"] == id.as_str()
                    && m["language"] == "en"
                    && m["orchestrator_url"] == "http://localhost:8080"
            })
            .times(1)
            .in_sequence(&mut order)
            .returning(move |_, name, _| Ok(format!("AD_{name}")));
    }
    dispatcher
}

#[tokio::test]
async fn the_bots_are_claimed_once_per_session_and_a_release_frees_the_claim() {
    // Arrange
    let fx = fixture().await;
    let svc = fx.service(Ports {
        dispatcher: Some(dispatcher_once(&fx.session)),
        ..Default::default()
    });

    // Act: two people publish a microphone in the same session.
    let first = svc
        .claim_bots(&fx.session, &microphone("vic", "STANDARD"))
        .await
        .unwrap();
    let second = svc
        .claim_bots(&fx.session, &microphone("guest", "STANDARD"))
        .await
        .unwrap();

    // Assert: one order, run once (the dispatcher allows one call per bot).
    let order = first.expect("the first microphone claims the bots");
    assert_eq!(
        order,
        BotDispatch {
            session_id: fx.session.id,
            room_name: ROOM.into(),
            language: "en".into(),
        }
    );
    assert_eq!(second, None);
    svc.dispatch_bots(order.clone()).await.unwrap();

    // A claim given back (its webhook batch failed) lets the next event claim again.
    svc.unclaim_bots(&order).await;
    let again = svc
        .claim_bots(&fx.session, &microphone("vic", "STANDARD"))
        .await
        .unwrap();
    assert_eq!(again, Some(order));
}

#[tokio::test]
async fn a_failed_dispatch_gives_the_claim_back() {
    // Arrange: LiveKit takes the STT bot, then fails on the TTS bot.
    let fx = fixture().await;
    let mut dispatcher = MockAgentDispatcher::new();
    dispatcher
        .expect_dispatch()
        .withf(|_, name, _| name == "june-stt")
        .returning(|_, _, _| Ok("AD_stt".into()));
    dispatcher
        .expect_dispatch()
        .withf(|_, name, _| name == "june-tts")
        .returning(|_, _, _| {
            Err(RoomError::Unavailable {
                message: "connection refused".into(),
                source: None,
            })
        });
    let svc = fx.service(Ports {
        dispatcher: Some(dispatcher),
        ..Default::default()
    });
    let mic = microphone("vic", "STANDARD");
    let order = svc.claim_bots(&fx.session, &mic).await.unwrap().unwrap();

    // Act
    let err = svc.dispatch_bots(order.clone()).await.unwrap_err();

    // Assert
    assert_eq!(err.code(), "livekit_unavailable");
    assert_eq!(
        svc.claim_bots(&fx.session, &mic).await.unwrap(),
        Some(order),
        "the next track_published tries again"
    );
}

#[tokio::test]
async fn a_retried_dispatch_sends_only_the_agents_still_owed_and_keeps_the_claim() {
    // Arrange: LiveKit takes the STT bot, fails on the TTS bot, then takes it.
    let fx = fixture().await;
    let mut dispatcher = MockAgentDispatcher::new();
    let mut order_of_calls = Sequence::new();
    dispatcher
        .expect_dispatch()
        .withf(|_, name, _| name == "june-stt")
        .times(1)
        .in_sequence(&mut order_of_calls)
        .returning(|_, _, _| Ok("AD_stt".into()));
    dispatcher
        .expect_dispatch()
        .withf(|_, name, _| name == "june-tts")
        .times(1)
        .in_sequence(&mut order_of_calls)
        .returning(|_, _, _| {
            Err(RoomError::Unavailable {
                message: "connection refused".into(),
                source: None,
            })
        });
    dispatcher
        .expect_dispatch()
        .withf(|_, name, _| name == "june-tts")
        .times(1)
        .in_sequence(&mut order_of_calls)
        .returning(|_, _, _| Ok("AD_tts".into()));
    let svc = fx.service(Ports {
        dispatcher: Some(dispatcher),
        ..Default::default()
    });
    let mic = microphone("vic", "STANDARD");
    let order = svc.claim_bots(&fx.session, &mic).await.unwrap().unwrap();
    let mut dispatched = Vec::new();

    // Act: two attempts.
    let first = svc.dispatch_missing(&order, &mut dispatched).await;
    let second = svc.dispatch_missing(&order, &mut dispatched).await;

    // Assert: the STT bot once (the dispatcher allows one call each), and the claim held
    // throughout: no other event claims the bots.
    assert_eq!(first.unwrap_err().code(), "livekit_unavailable");
    second.unwrap();
    assert_eq!(dispatched, ["june-stt", "june-tts"]);
    assert_eq!(svc.claim_bots(&fx.session, &mic).await.unwrap(), None);
}

#[tokio::test]
async fn only_a_persons_audio_in_a_live_voice_session_claims_the_bots() {
    let fx = fixture().await;
    let svc = fx.service(Ports {
        dispatcher: Some(MockAgentDispatcher::new()),
        ..Default::default()
    });
    let mut camera = microphone("vic", "STANDARD");
    camera.track.as_mut().unwrap().kind = TrackKind::Video;
    let not_voice = Session {
        voice: false,
        ..fx.session.clone()
    };
    let ended = Session {
        status: SessionStatus::Ended,
        ..fx.session.clone()
    };
    for (why, session, event) in [
        ("an agent", &fx.session, microphone("helper", "AGENT")),
        (
            "the STT bot",
            &fx.session,
            microphone("june-stt", "STANDARD"),
        ),
        (
            "the TTS bot",
            &fx.session,
            microphone("june-tts", "STANDARD"),
        ),
        ("a camera", &fx.session, camera),
        (
            "a text-only session",
            &not_voice,
            microphone("vic", "STANDARD"),
        ),
        ("an ended session", &ended, microphone("vic", "STANDARD")),
    ] {
        assert_eq!(
            svc.claim_bots(session, &event).await.unwrap(),
            None,
            "{why}"
        );
    }
    // None of them took the claim; without a dispatcher nothing is ever claimed.
    let unconfigured = fx.replica();
    let mic = microphone("vic", "STANDARD");
    assert_eq!(
        unconfigured.claim_bots(&fx.session, &mic).await.unwrap(),
        None
    );
    assert!(svc.claim_bots(&fx.session, &mic).await.unwrap().is_some());
}

// ---- turn records ------------------------------------------------------------------------

/// What a timed model reports before its first delta (a stream cut short still has it).
const EARLY_USAGE: TokenUsage = TokenUsage {
    prompt_tokens: 11,
    output_tokens: 0,
    total_tokens: 11,
};

/// A model on the fake clock: before delta `i` it waits `steps[i].0` ms (the clock moves),
/// then pushes `steps[i].1`; `after(i)` runs once the delta is through. It reports
/// [`EARLY_USAGE`] at once and [`USAGE`] in its reply.
fn timed_model(
    clock: Arc<FakeClock>,
    steps: &'static [(i64, &'static str)],
    mut after: impl FnMut(usize) + Send + 'static,
) -> MockChatModel {
    let mut llm = MockChatModel::new();
    llm.expect_model_name()
        .return_const("gemini-test".to_owned());
    llm.expect_stream().times(1).returning(move |_, sink| {
        sink.usage(EARLY_USAGE);
        for (i, (wait, delta)) in steps.iter().enumerate() {
            clock.advance(Duration::milliseconds(*wait));
            if at_once(sink.push(delta)) == Flow::Stop {
                return Err(LlmError::Cancelled);
            }
            after(i);
        }
        Ok(ChatReply {
            text: steps.iter().map(|(_, d)| *d).collect(),
            finish_reason: FinishReason::Stop,
            model: "gemini-test-001".into(),
            usage: USAGE,
        })
    });
    llm
}

impl Fixture {
    /// TTS that takes `ms` of fake time per sentence and accepts it (or refuses `refuse`).
    fn timed_tts(&self, ms: i64, refuse: Option<&'static str>) -> MockTextToSpeech {
        let (clock, spoken) = (self.clock.clone(), self.spoken.clone());
        let mut tts = MockTextToSpeech::new();
        tts.expect_synthesize().returning(move |r| {
            clock.advance(Duration::milliseconds(ms));
            if refuse == Some(r.text.as_str()) {
                return Err(SpeechError::Failed {
                    status: 503,
                    detail: "busy".into(),
                });
            }
            spoken.lock().unwrap().push(r.text.clone());
            Ok(serde_json::json!({"status": "ok"}))
        });
        tts
    }

    async fn record(&self, turn: u64) -> TurnRecord {
        self.store
            .get_turn(self.session.id, turn)
            .await
            .unwrap()
            .expect("the turn is recorded")
    }

    fn events(&self) -> Vec<LiveEvent> {
        self.live.0.lock().unwrap().clone()
    }
}

/// The record every test below starts from: turn 1, heard "Hello" at t0, nothing else yet.
fn record_of(fx: &Fixture, turn: u64, text: &str) -> TurnRecord {
    TurnRecord {
        session_id: fx.session.id,
        turn,
        source: TurnSource::Voice,
        started_at: t0(),
        heard: Heard {
            text: text.into(),
            confidence: Some(f64::from(0.9f32)),
            language: Some("en".into()),
            partials: None,
        },
        reply: Reply::default(),
        outcome: RecordOutcome::Completed,
        interrupted: None,
        error: None,
        model: "gemini-test-001".into(),
        usage: USAGE,
        timings_ms: TurnTimings::default(),
    }
}

fn reply(sentences: &[&str]) -> Reply {
    Reply {
        sentences: sentences.iter().map(|s| s.to_string()).collect(),
        text: sentences.join(" "),
    }
}

#[tokio::test]
async fn a_completed_turn_is_recorded_exactly_with_partials_timings_usage_and_events() {
    // Arrange: two partials 1 s and 0.4 s before the final; the model's first delta after
    // 200 ms, the second 100 ms later; TTS takes 50 ms a sentence.
    let fx = fixture().await;
    let mut observer = MockTurnObserver::new();
    observer.expect_partial().times(2).return_const(());
    observer.expect_started().return_const(());
    observer.expect_finished().return_const(());
    observer
        .expect_recorded()
        .withf(|r| r.turn == 1 && r.usage == USAGE)
        .times(1)
        .return_const(());
    let svc = fx.service(Ports {
        llm: Some(timed_model(
            fx.clock.clone(),
            &[(200, "Hi there. How"), (100, " are you?")],
            |_| {},
        )),
        tts: Some(fx.timed_tts(50, None)),
        observer: Some(observer),
        ..Default::default()
    });
    fx.clock.advance(-Duration::milliseconds(1000));
    svc.transcript(partial("Hel")).await.unwrap();
    fx.clock.advance(Duration::milliseconds(600));
    svc.transcript(partial("Hello th")).await.unwrap();
    fx.clock.advance(Duration::milliseconds(400));

    // Act
    let turn = start(&svc, heard("Hello")).await;
    svc.run_turn(turn).await;

    // Assert: the second delta comes 100 ms after TTS answered the first sentence (250 ms);
    // "How are you?" waits for the stream's end (a "?" at the end of the buffer may go on),
    // so it is sent at 350 ms and answered at 400.
    let expected = TurnRecord {
        heard: Heard {
            partials: Some(Partials {
                count: 2,
                first_ms_before_final: 1000,
            }),
            ..record_of(&fx, 1, "Hello").heard
        },
        reply: reply(&["Hi there.", "How are you?"]),
        timings_ms: TurnTimings {
            first_token: Some(200),
            first_sentence: Some(200),
            first_tts_request: Some(200),
            first_tts_done: Some(250),
            last_tts_done: Some(400),
            end: 400,
        },
        ..record_of(&fx, 1, "Hello")
    };
    assert_eq!(fx.record(1).await, expected);
    let reply_event = |index, text: &str| LiveEvent::Reply {
        turn: 1,
        index,
        text: text.into(),
    };
    assert_eq!(
        fx.events(),
        [
            LiveEvent::Transcript {
                turn: 1,
                text: "Hello".into()
            },
            reply_event(0, "Hi there."),
            reply_event(1, "How are you?"),
            LiveEvent::TurnEnded(Box::new(expected)),
        ]
    );
}

#[tokio::test]
async fn a_turn_stopped_by_a_voice_onset_is_recorded_as_interrupted_by_it() {
    // Arrange: after "One." is spoken, the user starts speaking (another replica hears it).
    let fx = fixture().await;
    let replica = fx.replica();
    let llm = timed_model(
        fx.clock.clone(),
        &[(100, "One. "), (100, "Two. "), (100, "Three.")],
        move |i| {
            if i == 0 {
                at_once(replica.voice_onset(ROOM)).unwrap();
            }
        },
    );
    let svc = fx.service(Ports {
        llm: Some(llm),
        tts: Some(fx.timed_tts(30, None)),
        ..Default::default()
    });

    // Act
    svc.run_turn(start(&svc, heard("Count.")).await).await;

    // Assert: stopped before "Two." at 230 ms; the usage is what the stream had reported,
    // the model its configured name (no reply came).
    assert_eq!(
        fx.record(1).await,
        TurnRecord {
            reply: reply(&["One."]),
            outcome: RecordOutcome::Interrupted,
            interrupted: Some(Interruption {
                after_sentence: 1,
                by: InterruptedBy::VoiceOnset,
            }),
            model: "gemini-test".into(),
            usage: EARLY_USAGE,
            timings_ms: TurnTimings {
                first_token: Some(100),
                first_sentence: Some(100),
                first_tts_request: Some(100),
                first_tts_done: Some(130),
                last_tts_done: Some(130),
                end: 230,
            },
            ..record_of(&fx, 1, "Count.")
        }
    );
}

#[tokio::test]
async fn a_turn_stopped_by_a_newer_final_is_recorded_as_interrupted_by_it() {
    // Arrange: after "One." the user says something new (turn 2, on another replica).
    let fx = fixture().await;
    let replica = fx.replica();
    let llm = timed_model(
        fx.clock.clone(),
        &[(100, "One. "), (100, "Two. ")],
        move |i| {
            if i == 0 {
                let newer = at_once(start(&replica, heard("Stop.")));
                assert_eq!((newer.turn, newer.generation), (2, 2));
            }
        },
    );
    let svc = fx.service(Ports {
        llm: Some(llm),
        tts: Some(fx.timed_tts(30, None)),
        ..Default::default()
    });

    // Act
    svc.run_turn(start(&svc, heard("Count.")).await).await;

    // Assert
    let record = fx.record(1).await;
    assert_eq!(
        (record.outcome, record.interrupted),
        (
            RecordOutcome::Interrupted,
            Some(Interruption {
                after_sentence: 1,
                by: InterruptedBy::NewerFinal,
            })
        )
    );
    assert_eq!(record.reply, reply(&["One."]));
    assert_eq!(record.timings_ms.end, 230);
    assert_eq!(fx.store.get_turn(fx.session.id, 2).await.unwrap(), None);
}

#[tokio::test]
async fn a_turn_whose_tts_fails_is_recorded_as_failed_with_the_code() {
    // Arrange: TTS refuses the second sentence.
    let fx = fixture().await;
    let svc = fx.service(Ports {
        llm: Some(timed_model(
            fx.clock.clone(),
            &[(100, "One. "), (100, "Two. "), (100, "Three. ")],
            |_| {},
        )),
        tts: Some(fx.timed_tts(30, Some("Two."))),
        ..Default::default()
    });

    // Act
    svc.run_turn(start(&svc, heard("Count.")).await).await;

    // Assert: "Two." was asked at 230 ms and refused at 260: not in the reply, nor a TTS
    // answer that counts.
    assert_eq!(
        fx.record(1).await,
        TurnRecord {
            reply: reply(&["One."]),
            outcome: RecordOutcome::Failed,
            error: Some(TurnFailure {
                code: "tts_failed".into()
            }),
            model: "gemini-test".into(),
            usage: EARLY_USAGE,
            timings_ms: TurnTimings {
                first_token: Some(100),
                first_sentence: Some(100),
                first_tts_request: Some(100),
                first_tts_done: Some(130),
                last_tts_done: Some(130),
                end: 260,
            },
            ..record_of(&fx, 1, "Count.")
        }
    );
}

#[tokio::test]
async fn a_turn_whose_model_fails_is_recorded_as_failed_with_the_llm_code() {
    let fx = fixture().await;
    let mut llm = MockChatModel::new();
    llm.expect_model_name()
        .return_const("gemini-test".to_owned());
    let clock = fx.clock.clone();
    llm.expect_stream().returning(move |_, _| {
        clock.advance(Duration::milliseconds(700));
        Err(LlmError::Upstream("503 after 3 tries".into()))
    });
    let svc = fx.service(Ports {
        llm: Some(llm),
        tts: Some(fx.timed_tts(30, None)),
        ..Default::default()
    });

    svc.run_turn(start(&svc, heard("Hello")).await).await;

    assert_eq!(
        fx.record(1).await,
        TurnRecord {
            outcome: RecordOutcome::Failed,
            error: Some(TurnFailure {
                code: "llm_upstream_error".into()
            }),
            model: "gemini-test".into(),
            usage: TokenUsage::default(),
            timings_ms: TurnTimings {
                end: 700,
                ..TurnTimings::default()
            },
            ..record_of(&fx, 1, "Hello")
        }
    );
}
