//! Conversation tests: the history window, turn ordering, failure notes, speaking.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};

use crate::memory::InMemoryStore;
use crate::ports::*;
use crate::*;

fn entry(role: Role, content: &str) -> HistoryEntry {
    HistoryEntry {
        role,
        content: content.into(),
        timestamp: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

/// A model that streams a fixed script. Hand-written because mockall's `returning` closures
/// cannot await the sink.
struct ScriptedModel(Vec<&'static str>);

#[async_trait]
impl ChatModel for ScriptedModel {
    fn model_name(&self) -> String {
        "scripted".into()
    }

    async fn generate(&self, _: &ChatRequest) -> Result<ChatReply, LlmError> {
        Ok(ChatReply {
            text: self.0.concat(),
            finish_reason: FinishReason::Stop,
            model: "scripted-001".into(),
            usage: TokenUsage {
                prompt_tokens: 7,
                output_tokens: 5,
                total_tokens: 12,
            },
        })
    }

    async fn stream<'s>(
        &self,
        _: &ChatRequest,
        sink: &'s mut (dyn DeltaSink + 's),
    ) -> Result<ChatReply, LlmError> {
        for d in &self.0 {
            if sink.push(d).await == Flow::Stop {
                return Err(LlmError::Cancelled);
            }
        }
        self.generate(&ChatRequest {
            system_instruction: String::new(),
            messages: vec![],
        })
        .await
    }
}

#[derive(Default)]
struct Collect(String);

#[async_trait]
impl DeltaSink for Collect {
    async fn push(&mut self, delta: &str) -> Flow {
        self.0.push_str(delta);
        Flow::Continue
    }
}

async fn setup(
    llm: Option<Arc<dyn ChatModel>>,
    tts: Option<Arc<dyn TextToSpeech>>,
) -> (ConversationService, Arc<InMemoryStore>, Session) {
    let store = Arc::new(InMemoryStore::default());
    let now = Utc::now();
    let session = Session {
        id: uuid::Uuid::new_v4(),
        user_id: "alice".into(),
        room_name: "room-alice".into(),
        livekit_room_sid: "RM_1".into(),
        status: SessionStatus::Active,
        language: "de".into(),
        metadata: Default::default(),
        voice: true,
        kind: crate::SessionKind::Owned,
        created_at: now,
        expires_at: now + Duration::hours(1),
        updated_at: now,
        ended_at: None,
        participant_count: 0,
        last_activity_at: None,
    };
    store.insert(&session).await.unwrap();
    let svc = ConversationService::new(
        ConversationPorts {
            sessions: store.clone(),
            history: store.clone(),
            llm,
            tts,
            stt: None,
            clock: Arc::new(SystemClock),
            turns: store.clone(),
            live: Arc::new(NoLiveEvents),
            observer: Arc::new(NoObserver),
        },
        ConversationPolicy {
            max_turns: 4,
            ..Default::default()
        },
    );
    (svc, store, session)
}

fn turn(session: &Session, text: &str, speak: bool) -> ChatTurn {
    ChatTurn {
        session_id: session.id,
        text: text.into(),
        language: None,
        speak,
    }
}

async fn history(store: &InMemoryStore, s: &Session) -> Vec<(Role, String)> {
    store
        .recent(s.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.role, e.content))
        .collect()
}

#[test]
fn the_window_keeps_the_newest_turns_within_the_character_budget() {
    let entries = vec![
        entry(Role::User, "first question"),
        entry(Role::Assistant, "first answer"),
        entry(Role::System, "a note the model never sees"),
        entry(Role::User, "second"),
        entry(Role::User, "and more"),
    ];
    let all = window(&entries, 10_000);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].text, "first question");
    assert_eq!(all[1].role, ChatRole::Model);
    assert_eq!(
        all[2].text, "second\nand more",
        "same-role neighbours merge"
    );

    // 20 characters: only the newest fit; the window never starts with the model.
    let small = window(&entries, 20);
    assert_eq!(small.len(), 1);
    assert_eq!(small[0].role, ChatRole::User);
    assert_eq!(small[0].text, "second\nand more");

    // A single turn over the budget is still sent: the user must get an answer.
    let huge = vec![entry(Role::User, &"x".repeat(50))];
    assert_eq!(window(&huge, 10).len(), 1);
}

#[test]
fn sentences_are_cut_as_soon_as_they_are_complete_across_deltas() {
    let mut s = SentenceSplitter::default();
    assert!(s.push("Hello the").is_empty());
    assert_eq!(s.push("re. How are"), vec!["Hello there."]);
    assert_eq!(s.push(" you? Pi is 3."), vec!["How are you?"]);
    assert_eq!(s.push("14 exactly! Done"), vec!["Pi is 3.14 exactly!"]);
    assert_eq!(s.finish(), vec!["Done"]);
    assert!(s.finish().is_empty());

    let mut cjk = SentenceSplitter::default();
    assert_eq!(cjk.push("你好。今天"), vec!["你好。"]);
    assert_eq!(cjk.push("\n"), vec!["今天"]);
}

#[test]
fn abbreviations_initials_and_runs_of_stops_are_handled() {
    let mut s = SentenceSplitter::default();
    let got = s.push("Dr. Smith met J. Doe, e.g. at noon. Really?! Yes... \"Fine.\" Next ");
    assert_eq!(
        got,
        vec![
            "Dr. Smith met J. Doe, e.g. at noon.",
            "Really?!",
            "Yes...",
            "\"Fine.\""
        ]
    );
    assert_eq!(s.finish(), vec!["Next"]);
}

#[test]
fn a_long_run_on_is_cut_at_a_space_before_the_limit() {
    let mut s = SentenceSplitter::new(20);
    let got = s.push("one two three four five six seven eight nine");
    assert_eq!(got, vec!["one two three four", "five six seven eight"]);
    assert_eq!(s.finish(), vec!["nine"]);
    let mut s = SentenceSplitter::new(5);
    assert_eq!(s.push("abcdefghij "), vec!["abcde", "fghij"]);
}

proptest::proptest! {
    #[test]
    fn pieces_rebuild_the_text_and_respect_the_limit(
        text in "[a-zA-Z0-9 .,!?…。\n\"']{0,400}",
        cuts in proptest::collection::vec(0usize..400, 0..8),
        max in 5usize..60,
    ) {
        let mut s = SentenceSplitter::new(max);
        let chars: Vec<char> = text.chars().collect();
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(chars.len())).collect();
        points.push(chars.len());
        points.sort();
        let mut pieces = Vec::new();
        let mut from = 0;
        for to in points {
            let delta: String = chars[from..to].iter().collect();
            pieces.extend(s.push(&delta));
            from = to;
        }
        pieces.extend(s.finish());
        let squash = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        proptest::prop_assert_eq!(squash(&pieces.concat()), squash(&text));
        for p in &pieces {
            proptest::prop_assert!(p.chars().count() <= max, "{:?} is longer than {}", p, max);
            proptest::prop_assert!(!p.trim().is_empty());
        }
    }
}

#[tokio::test]
async fn a_chat_turn_stores_user_then_assistant_and_sends_the_history() {
    let mut llm = MockChatModel::new();
    llm.expect_model_name()
        .return_const("gemini-test".to_owned());
    llm.expect_stream()
        .withf(|req, _| {
            req.messages.len() == 3
                && req.messages[0].text == "earlier"
                && req.messages[2].text == "what now?"
                && req.system_instruction.contains("June")
        })
        .times(1)
        .returning(|_, _| {
            Ok(ChatReply {
                text: "Now we talk.".into(),
                finish_reason: FinishReason::Stop,
                model: "gemini-test-001".into(),
                usage: TokenUsage::default(),
            })
        });
    let (svc, store, s) = setup(Some(Arc::new(llm)), None).await;
    store
        .append(s.id, &entry(Role::User, "earlier"))
        .await
        .unwrap();
    store
        .append(s.id, &entry(Role::Assistant, "reply"))
        .await
        .unwrap();

    let out = svc
        .chat(turn(&s, "  what now?  ", false), &mut NoDeltas)
        .await
        .unwrap();
    assert_eq!(out.text, "Now we talk.");
    let h = history(&store, &s).await;
    assert_eq!(
        h[2..],
        [
            (Role::User, "what now?".to_owned()),
            (Role::Assistant, "Now we talk.".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_failed_reply_keeps_the_user_turn_and_notes_the_failure() {
    let mut llm = MockChatModel::new();
    llm.expect_model_name()
        .return_const("gemini-test".to_owned());
    llm.expect_stream()
        .returning(|_, _| Err(LlmError::Upstream("503 after 3 tries".into())));
    let (svc, store, s) = setup(Some(Arc::new(llm)), None).await;

    let err = svc
        .chat(turn(&s, "hello", false), &mut NoDeltas)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "llm_upstream_error");
    let h = history(&store, &s).await;
    assert_eq!(h.len(), 2);
    assert_eq!(h[0], (Role::User, "hello".to_owned()));
    assert_eq!(h[1].0, Role::System);
    assert!(h[1].1.contains("503 after 3 tries"));
}

#[tokio::test]
async fn without_a_model_the_answer_is_not_configured_never_a_canned_reply() {
    let (svc, store, s) = setup(None, None).await;
    let err = svc
        .chat(turn(&s, "hello", false), &mut NoDeltas)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "llm_not_configured");
    let h = history(&store, &s).await;
    assert_eq!(h[0], (Role::User, "hello".to_owned()));
    assert_eq!(h[1].0, Role::System);
    assert_eq!(h.len(), 2);
}

#[tokio::test]
async fn speaking_sends_each_sentence_to_tts_in_order_while_deltas_flow() {
    let spoken = Arc::new(Mutex::new(Vec::<SpeechRequest>::new()));
    let mut tts = MockTextToSpeech::new();
    let log = spoken.clone();
    tts.expect_synthesize().returning(move |r| {
        log.lock().unwrap().push(r.clone());
        Ok(serde_json::json!({"status": "ok"}))
    });
    let llm = ScriptedModel(vec!["Hallo! Wie ", "geht es", "? Gut.", " Tschüss"]);
    let (svc, store, s) = setup(Some(Arc::new(llm)), Some(Arc::new(tts))).await;

    let mut deltas = Collect::default();
    let out = svc.chat(turn(&s, "Hi", true), &mut deltas).await.unwrap();
    assert_eq!(deltas.0, "Hallo! Wie geht es? Gut. Tschüss");
    assert_eq!(out.sentences_spoken, 4);
    assert_eq!(history(&store, &s).await.len(), 2);
    let spoken = spoken.lock().unwrap().clone();
    let texts: Vec<&str> = spoken.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["Hallo!", "Wie geht es?", "Gut.", "Tschüss"]);
    assert!(
        spoken
            .iter()
            .all(|r| r.room_name == "room-alice" && r.language == "de")
    );
    assert_eq!(history(&store, &s).await.len(), 2);
}

#[tokio::test]
async fn speaking_without_tts_is_refused_before_anything_is_stored() {
    let (svc, store, s) = setup(Some(Arc::new(ScriptedModel(vec!["x"]))), None).await;
    let err = svc
        .chat(turn(&s, "Hi", true), &mut NoDeltas)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tts_not_configured");
    assert!(history(&store, &s).await.is_empty());
}

#[tokio::test]
async fn empty_text_and_unknown_sessions_are_refused() {
    let (svc, _, s) = setup(Some(Arc::new(ScriptedModel(vec!["x"]))), None).await;
    let err = svc
        .chat(turn(&s, "   ", false), &mut NoDeltas)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SessionError::Validation { field: "text", .. }
    ));
    let mut other = s.clone();
    other.id = uuid::Uuid::new_v4();
    let err = svc
        .chat(turn(&other, "hi", false), &mut NoDeltas)
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::NotFound));
}

/// A model on a fake clock: waits `steps[i].0` ms, then pushes `steps[i].1`; reports usage.
struct TimedModel {
    clock: Arc<crate::fake_clock::FakeClock>,
    steps: Vec<(i64, &'static str)>,
}

#[async_trait]
impl ChatModel for TimedModel {
    fn model_name(&self) -> String {
        "timed".into()
    }

    async fn generate(&self, _: &ChatRequest) -> Result<ChatReply, LlmError> {
        Err(LlmError::Empty)
    }

    async fn stream<'s>(
        &self,
        _: &ChatRequest,
        sink: &'s mut (dyn DeltaSink + 's),
    ) -> Result<ChatReply, LlmError> {
        for (wait, d) in &self.steps {
            self.clock.advance(Duration::milliseconds(*wait));
            if sink.push(d).await == Flow::Stop {
                return Err(LlmError::Cancelled);
            }
        }
        Ok(ChatReply {
            text: self.steps.iter().map(|(_, d)| *d).collect(),
            finish_reason: FinishReason::Stop,
            model: "timed-001".into(),
            usage: TokenUsage {
                prompt_tokens: 30,
                output_tokens: 9,
                total_tokens: 39,
            },
        })
    }
}

#[derive(Default)]
struct Published(Mutex<Vec<LiveEvent>>);

impl LiveEvents for Published {
    fn publish(&self, event: SessionEvent) {
        self.0.lock().unwrap().push(event.event);
    }
}

#[tokio::test]
async fn a_chat_turn_is_recorded_with_its_sentences_usage_timings_and_number() {
    // Arrange: a session whose turn 1 was a voice turn; the model streams two sentences,
    // the first delta 150 ms after the request; TTS takes 40 ms a sentence.
    let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap();
    let clock = Arc::new(crate::fake_clock::FakeClock(Mutex::new(t0)));
    let store = Arc::new(InMemoryStore::default());
    let session = june_session(t0);
    store.insert(&session).await.unwrap();
    assert_eq!(store.start_turn(session.id).await.unwrap().turn, 1);
    let live = Arc::new(Published::default());
    let mut tts = MockTextToSpeech::new();
    let tts_clock = clock.clone();
    tts.expect_synthesize().returning(move |_| {
        tts_clock.advance(Duration::milliseconds(40));
        Ok(serde_json::json!({}))
    });
    let svc = ConversationService::new(
        ConversationPorts {
            sessions: store.clone(),
            history: store.clone(),
            llm: Some(Arc::new(TimedModel {
                clock: clock.clone(),
                steps: vec![(150, "Sure. It is"), (50, " noon.")],
            })),
            tts: Some(Arc::new(tts)),
            stt: None,
            clock: clock.clone(),
            turns: store.clone(),
            live: live.clone(),
            observer: Arc::new(NoObserver),
        },
        ConversationPolicy::default(),
    );

    // Act
    svc.chat(turn(&session, "Time?", true), &mut NoDeltas)
        .await
        .unwrap();

    // Assert: "Sure." at 150 ms (sent, answered at 190); " noon." at 240 ends the stream,
    // "It is noon." is sent then and answered at 280.
    let expected = TurnRecord {
        session_id: session.id,
        turn: 2,
        source: TurnSource::Chat,
        started_at: t0,
        heard: Heard {
            text: "Time?".into(),
            confidence: None,
            language: Some("de".into()),
            partials: None,
        },
        reply: Reply {
            sentences: vec!["Sure.".into(), "It is noon.".into()],
            text: "Sure. It is noon.".into(),
        },
        outcome: RecordOutcome::Completed,
        interrupted: None,
        error: None,
        model: "timed-001".into(),
        usage: TokenUsage {
            prompt_tokens: 30,
            output_tokens: 9,
            total_tokens: 39,
        },
        timings_ms: TurnTimings {
            first_token: Some(150),
            first_sentence: Some(150),
            first_tts_request: Some(150),
            first_tts_done: Some(190),
            last_tts_done: Some(280),
            end: 280,
        },
    };
    assert_eq!(
        store.get_turn(session.id, 2).await.unwrap(),
        Some(expected.clone())
    );
    let reply = |index, text: &str| LiveEvent::Reply {
        turn: 2,
        index,
        text: text.into(),
    };
    assert_eq!(
        *live.0.lock().unwrap(),
        [
            reply(0, "Sure."),
            reply(1, "It is noon."),
            LiveEvent::TurnEnded(Box::new(expected))
        ]
    );
}

#[tokio::test]
async fn a_chat_turn_without_a_model_is_recorded_as_failed() {
    let (svc, store, s) = setup(None, None).await;
    svc.chat(turn(&s, "hello", false), &mut NoDeltas)
        .await
        .unwrap_err();
    let record = store.get_turn(s.id, 1).await.unwrap().unwrap();
    assert_eq!(record.outcome, RecordOutcome::Failed);
    assert_eq!(
        record.error,
        Some(TurnFailure {
            code: "llm_not_configured".into()
        })
    );
    assert_eq!(record.reply, Reply::default());
}

fn june_session(t0: chrono::DateTime<Utc>) -> Session {
    Session {
        id: uuid::Uuid::new_v4(),
        user_id: "june".into(),
        room_name: "room-june".into(),
        livekit_room_sid: "RM_2".into(),
        status: SessionStatus::Active,
        language: "de".into(),
        metadata: Default::default(),
        voice: true,
        kind: crate::SessionKind::Owned,
        created_at: t0,
        expires_at: t0 + Duration::hours(1),
        updated_at: t0,
        ended_at: None,
        participant_count: 0,
        last_activity_at: None,
    }
}
