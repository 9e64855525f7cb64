//! The voice loop (design §4): the STT and TTS bots are dispatched into a voice session's
//! room when someone starts talking; each final transcript starts a turn whose reply goes to
//! TTS sentence by sentence as the model streams it; a voice onset or a newer transcript
//! cancels the running turn on whichever replica runs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::Instrument;
use uuid::Uuid;

use crate::adoption::RoomAdopter;
use crate::conversation::{ConversationPolicy, NoDeltas, note};
use crate::events::LiveKitEvent;
use crate::model::{Role, Session, SessionKind, TrackKind, without_nul};
use crate::ports::{
    AgentDispatcher, ChatModel, Clock, HistoryStore, LiveEvent, LiveEvents, LlmError, SessionEvent,
    SessionStore, SpeechError, TextToSpeech, TurnObserver, TurnStore, VoiceStateStore,
};
use crate::service::SessionError;
use crate::speaker::{Halt, ReplyEvents, SendGuard, Speaker, SpeakingSink};
use crate::turns::{
    Heard, Interruption, Partials, RecordOutcome, Reply, TokenUsage, TurnFailure, TurnRecord,
    TurnSource, TurnTimings,
};

/// Sessions whose partial transcripts are counted at once, per process: past it the
/// oldest count is dropped (a final then reports no partials).
const MAX_PARTIAL_SESSIONS: usize = 4096;
/// Partials older than this at the final belong to an utterance that never ended.
const PARTIALS_MAX_AGE: Duration = Duration::from_secs(120);

/// Partial transcripts seen since each session's last final, on this replica (a partial
/// costs no store write; a final handled by another replica reports none).
#[derive(Debug, Default)]
struct PartialCounts(HashMap<Uuid, (u32, Instant)>);

impl PartialCounts {
    /// Counts one partial of `session` at `at`.
    fn note(&mut self, session: Uuid, at: Instant) {
        if !self.0.contains_key(&session) && self.0.len() >= MAX_PARTIAL_SESSIONS {
            let oldest = self.0.iter().min_by_key(|(_, (_, first))| *first);
            if let Some(oldest) = oldest.map(|(id, _)| *id) {
                self.0.remove(&oldest);
            }
        }
        self.0.entry(session).or_insert((0, at)).0 += 1;
    }

    /// The partials before the final at `at`, forgotten once taken.
    fn take(&mut self, session: Uuid, at: Instant) -> Option<Partials> {
        let (count, first) = self.0.remove(&session)?;
        let before = at.saturating_duration_since(first);
        (before <= PARTIALS_MAX_AGE).then(|| Partials {
            count,
            first_ms_before_final: millis(before),
        })
    }
}

/// Whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How the voice loop behaves; filled from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    /// LiveKit agent name of the STT bot.
    pub stt_agent: String,
    /// LiveKit agent name of the TTS bot.
    pub tts_agent: String,
    /// What the bots call back (`ORCHESTRATOR_PUBLIC_URL`).
    pub orchestrator_url: String,
    /// Finals below this confidence are skipped.
    pub min_confidence: f32,
    /// The same final text within this window is a resend, skipped.
    pub duplicate_window: chrono::Duration,
    /// Longest piece sent to TTS at once.
    pub max_sentence_chars: usize,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            stt_agent: "june-stt".into(),
            tts_agent: "june-tts".into(),
            orchestrator_url: "http://localhost:8080".into(),
            min_confidence: 0.0,
            duplicate_window: chrono::Duration::seconds(3),
            max_sentence_chars: crate::conversation::MAX_SENTENCE_CHARS,
        }
    }
}

/// A transcript from the STT bot.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The room it was heard in.
    pub room_name: String,
    /// Who spoke, if the bot says.
    pub participant: Option<String>,
    /// What was heard.
    pub text: String,
    /// A final transcript (a partial only signals speech).
    pub is_final: bool,
    /// Its language, if known.
    pub language: Option<String>,
    /// Recognition confidence, 0–1, if known.
    pub confidence: Option<f32>,
    /// The bot's id of this transcript, if it sends one: a resend carries the same id.
    pub transcript_id: Option<String>,
}

/// The voice bots to send into a session's room: claimed by [`VoiceService::claim_bots`]
/// while a webhook is applied, run by [`VoiceService::dispatch_bots`] after it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotDispatch {
    /// The session whose dispatch was claimed.
    pub session_id: Uuid,
    /// Its room.
    pub room_name: String,
    /// Its language, passed to the bots.
    pub language: String,
}

/// A turn ready to run (started by a final transcript).
#[derive(Debug, Clone)]
pub struct PendingTurn {
    /// The session.
    pub session: Session,
    /// The user's words.
    pub text: String,
    /// The turn generation this turn runs under.
    pub generation: u64,
    /// The turn's number in the session (its record's `turn`).
    pub turn: u64,
    /// Reply language.
    pub language: String,
    /// The STT's confidence, if it sent one.
    pub confidence: Option<f32>,
    /// The partial transcripts before this final, if this replica saw any.
    pub partials: Option<Partials>,
    /// When the final transcript arrived (the record's `started_at`).
    pub started_at: DateTime<Utc>,
    /// …on the clock's monotonic time (the start of every latency).
    pub received: Instant,
}

/// What a transcript led to.
#[derive(Debug, Clone)]
pub enum TranscriptOutcome {
    /// A partial: counted, nothing else.
    Partial,
    /// A final that starts no turn, and why.
    Skipped(&'static str),
    /// A final that starts this turn (the caller runs it).
    Turn(Box<PendingTurn>),
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnOutcome {
    /// Everything the model said was sent to TTS.
    Completed,
    /// A voice onset or a newer transcript stopped it.
    Cancelled,
    /// The model or TTS failed.
    Failed,
}

impl TurnOutcome {
    /// Lower-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnOutcome::Completed => "completed",
            TurnOutcome::Cancelled => "cancelled",
            TurnOutcome::Failed => "failed",
        }
    }
}

/// The timings and outcome of one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnReport {
    /// The session.
    pub session_id: Uuid,
    /// The turn generation.
    pub generation: u64,
    /// How it ended.
    pub outcome: TurnOutcome,
    /// Final transcript → first model token.
    pub to_first_token: Option<Duration>,
    /// Final transcript → first TTS request.
    pub to_first_tts: Option<Duration>,
    /// Final transcript → turn end.
    pub total: Duration,
    /// Sentences TTS accepted.
    pub sentences: u32,
}

/// What a turn's body leaves for its record.
struct Spoken {
    sent: Vec<String>,
    first_token: Option<Instant>,
    first_sentence: Option<Instant>,
    first_tts: Option<Instant>,
    first_tts_done: Option<Instant>,
    last_tts_done: Option<Instant>,
    usage: Option<TokenUsage>,
    model: Option<String>,
    outcome: TurnOutcome,
    interruption: Option<crate::turns::InterruptedBy>,
}

impl Default for Spoken {
    fn default() -> Self {
        Spoken {
            sent: Vec::new(),
            first_token: None,
            first_sentence: None,
            first_tts: None,
            first_tts_done: None,
            last_tts_done: None,
            usage: None,
            model: None,
            outcome: TurnOutcome::Failed,
            interruption: None,
        }
    }
}

/// A turn may speak while it is still the session's current one (checked in the shared
/// store before every send, so a newer turn on any replica stops it).
struct CurrentTurn<'a> {
    voice_state: &'a dyn VoiceStateStore,
    session_id: Uuid,
    generation: u64,
}

#[async_trait]
impl SendGuard for CurrentTurn<'_> {
    async fn check(&self) -> Result<(), Halt> {
        match self.voice_state.current_turn(self.session_id).await {
            Ok(g) if g.generation == self.generation => Ok(()),
            Ok(g) => Err(Halt::Cancelled(g.bumped_by)),
            Err(e) => Err(Halt::failed(e)),
        }
    }
}

/// The voice loop over the ports.
#[derive(Clone)]
pub struct VoiceService {
    sessions: Arc<dyn SessionStore>,
    voice_state: Arc<dyn VoiceStateStore>,
    history: Arc<dyn HistoryStore>,
    llm: Option<Arc<dyn ChatModel>>,
    tts: Option<Arc<dyn TextToSpeech>>,
    dispatcher: Option<Arc<dyn AgentDispatcher>>,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn TurnObserver>,
    turns: Arc<dyn TurnStore>,
    live: Arc<dyn LiveEvents>,
    partials: Arc<Mutex<PartialCounts>>,
    policy: ConversationPolicy,
    config: VoiceConfig,
    /// Room adoption (`voice.adopt_rooms`), when on.
    adopter: Option<RoomAdopter>,
}

/// Builder arguments of [`VoiceService`].
pub(crate) struct VoicePorts {
    /// Sessions (found by room name).
    pub sessions: Arc<dyn SessionStore>,
    /// Turn generations, dispatch claims, transcript dedupe.
    pub voice_state: Arc<dyn VoiceStateStore>,
    /// History.
    pub history: Arc<dyn HistoryStore>,
    /// The language model, if configured.
    pub llm: Option<Arc<dyn ChatModel>>,
    /// TTS, if configured.
    pub tts: Option<Arc<dyn TextToSpeech>>,
    /// LiveKit agent dispatch, if configured.
    pub dispatcher: Option<Arc<dyn AgentDispatcher>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub observer: Arc<dyn TurnObserver>,
    /// Turn records.
    pub turns: Arc<dyn TurnStore>,
    /// Live captions and the event stream.
    pub live: Arc<dyn LiveEvents>,
}

impl VoiceService {
    /// Wires the service ([`Domain::new`](crate::Domain::new) is the public way).
    pub(crate) fn new(ports: VoicePorts, policy: ConversationPolicy, config: VoiceConfig) -> Self {
        VoiceService {
            sessions: ports.sessions,
            voice_state: ports.voice_state,
            history: ports.history,
            llm: ports.llm,
            tts: ports.tts,
            dispatcher: ports.dispatcher,
            clock: ports.clock,
            observer: ports.observer,
            turns: ports.turns,
            live: ports.live,
            partials: Arc::default(),
            policy,
            config,
            adopter: None,
        }
    }

    /// Turns room adoption on (`voice.adopt_rooms`): a final transcript for a room LiveKit
    /// has and no live session owns creates a room session for it (see [`RoomAdopter`]).
    pub fn with_adoption(mut self, adopter: RoomAdopter) -> Self {
        self.adopter = Some(adopter);
        self
    }

    /// On `track_published`: the first audio track of a non-bot participant in a voice
    /// session claims the dispatch of the STT and TTS agents, once per session whichever
    /// replica sees it, and returns the order for [`VoiceService::dispatch_bots`]. Only the
    /// claim is made here (one store write), so a webhook batch never waits on LiveKit's
    /// agent dispatch; the caller runs the order after answering.
    pub async fn claim_bots(
        &self,
        s: &Session,
        event: &LiveKitEvent,
    ) -> Result<Option<BotDispatch>, SessionError> {
        let is_audio = event
            .track
            .as_ref()
            .is_some_and(|t| t.kind == TrackKind::Audio);
        let from_person = event.participant.as_ref().is_some_and(|p| {
            !p.is_dependent()
                && p.identity != self.config.stt_agent
                && p.identity != self.config.tts_agent
        });
        if !s.voice || !s.status.is_live() || !is_audio || !from_person || self.dispatcher.is_none()
        {
            return Ok(None);
        }
        if !self
            .voice_state
            .claim_dispatch(s.id, self.clock.now())
            .await?
        {
            return Ok(None);
        }
        Ok(Some(BotDispatch {
            session_id: s.id,
            room_name: s.room_name.clone(),
            language: s.language.clone(),
        }))
    }

    /// Gives back a claim whose order will not run (the batch that made it failed, or the
    /// runner gave up on it), so a later `track_published` claims and tries again. A failed
    /// release is logged: the claim then stays.
    pub async fn unclaim_bots(&self, order: &BotDispatch) {
        if let Err(e) = self.voice_state.release_dispatch(order.session_id).await {
            tracing::warn!(session_id = %order.session_id, error = %e, "could not give a bot dispatch claim back");
        }
    }

    /// One attempt at a claimed order (see [`VoiceService::claim_bots`]): dispatches the STT
    /// then the TTS agent, skipping those already in `dispatched` and adding each one LiveKit
    /// accepts. LiveKit's CreateDispatch is not idempotent, so a retry after a partial
    /// failure only sends the agents still owed. The claim is kept either way: the caller
    /// retries, or gives up and calls [`VoiceService::unclaim_bots`].
    #[tracing::instrument(skip_all, fields(session_id = %order.session_id))]
    pub async fn dispatch_missing(
        &self,
        order: &BotDispatch,
        dispatched: &mut Vec<String>,
    ) -> Result<(), SessionError> {
        let Some(dispatcher) = &self.dispatcher else {
            return Ok(());
        };
        let metadata = serde_json::json!({
            "session_id": order.session_id,
            "language": order.language,
            "orchestrator_url": self.config.orchestrator_url,
        })
        .to_string();
        for agent in [&self.config.stt_agent, &self.config.tts_agent] {
            if dispatched.contains(agent) {
                continue;
            }
            dispatcher
                .dispatch(&order.room_name, agent, &metadata)
                .await?;
            dispatched.push(agent.clone());
        }
        tracing::info!(room = %order.room_name, "voice bots dispatched");
        Ok(())
    }

    /// Dispatches the STT and TTS agents of a claimed session in one attempt (see
    /// [`VoiceService::claim_bots`]). A failed dispatch gives the claim back, so a later
    /// `track_published` tries again, and fails. The HTTP server retries instead, through
    /// [`VoiceService::dispatch_missing`].
    pub async fn dispatch_bots(&self, order: BotDispatch) -> Result<(), SessionError> {
        let result = self.dispatch_missing(&order, &mut Vec::new()).await;
        if result.is_err() || self.dispatcher.is_none() {
            self.unclaim_bots(&order).await;
        }
        result
    }

    /// A transcript from the STT bot. A final that passes the checks starts a new turn
    /// generation at once (which cancels a running turn) and is returned for the caller to run.
    ///
    /// With room adoption on, a final for a room no live session owns adopts the room if
    /// LiveKit has it (a room session, see [`RoomAdopter`]), and a final for a room session
    /// past its expiry retires it and adopts the room afresh. `NotFound` otherwise, and for
    /// every partial of a room no live session owns (partials never adopt).
    pub async fn transcript(&self, t: Transcript) -> Result<TranscriptOutcome, SessionError> {
        check_room_name(&t.room_name)?;
        let live = self.sessions.find_live_by_room(&t.room_name).await?;
        let session = match (live, &self.adopter) {
            // A room session past its expiry is retired and the room adopted afresh.
            (Some(s), Some(adopter))
                if t.is_final
                    && s.kind == SessionKind::Room
                    && self.clock.now() >= s.expires_at =>
            {
                adopter.retire(&s).await?;
                adopter.adopt(&t.room_name).await?
            }
            (Some(s), _) => Some(s),
            // Only a final adopts: a partial starts nothing (and stays cheap).
            (None, Some(adopter)) if t.is_final => adopter.adopt(&t.room_name).await?,
            (None, _) => None,
        }
        .ok_or(SessionError::NotFound)?;
        if !t.is_final {
            self.observer.partial();
            if let Ok(mut counts) = self.partials.lock() {
                counts.note(session.id, self.clock.instant());
            }
            return Ok(TranscriptOutcome::Partial);
        }
        let text = without_nul(&t.text);
        let text = text.trim();
        if text.is_empty() {
            return Ok(TranscriptOutcome::Skipped("empty"));
        }
        if t.confidence.is_some_and(|c| c < self.config.min_confidence) {
            return Ok(TranscriptOutcome::Skipped("low_confidence"));
        }
        let now = self.clock.now();
        // A resend is known by its transcript id when the bot sends one (an id names one
        // utterance, so it is a resend however late it comes: a day is the bound), else by
        // its text within the window. The store keeps either as the last final's text.
        let (key, window) = match &t.transcript_id {
            Some(id) => (
                format!("transcript_id:{}", without_nul(id)),
                self.config.duplicate_window.max(chrono::Duration::days(1)),
            ),
            None => (text.to_owned(), self.config.duplicate_window),
        };
        if !self
            .voice_state
            .note_final(session.id, &key, now, window)
            .await?
        {
            return Ok(TranscriptOutcome::Skipped("duplicate"));
        }
        let start = self.voice_state.start_turn(session.id).await?;
        let received = self.clock.instant();
        let partials = self
            .partials
            .lock()
            .ok()
            .and_then(|mut counts| counts.take(session.id, received));
        self.live.publish(SessionEvent {
            session_id: session.id,
            room_name: session.room_name.clone(),
            event: LiveEvent::Transcript {
                turn: start.turn,
                text: text.to_owned(),
            },
        });
        Ok(TranscriptOutcome::Turn(Box::new(PendingTurn {
            language: t
                .language
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| session.language.clone()),
            session,
            text: text.to_owned(),
            generation: start.generation,
            turn: start.turn,
            confidence: t.confidence,
            partials,
            started_at: now,
            received,
        })))
    }

    /// The user started speaking: cancel the session's running turn (if any), on any replica.
    pub async fn voice_onset(&self, room_name: &str) -> Result<u64, SessionError> {
        check_room_name(room_name)?;
        let session = self
            .sessions
            .find_live_by_room(room_name)
            .await?
            .ok_or(SessionError::NotFound)?;
        Ok(self.voice_state.next_turn(session.id).await?)
    }

    /// Runs a turn to its end and reports it. Never panics, never leaves a task behind: every
    /// outcome is stored (what was spoken, or a system note) and returned.
    #[tracing::instrument(skip_all, fields(session_id = %turn.session.id, generation = turn.generation, turn = turn.turn))]
    pub async fn run_turn(&self, turn: PendingTurn) -> TurnReport {
        self.observer.started();
        let mut spoken = Spoken::default();
        let failure = self.speak_reply(&turn, &mut spoken).await.err();
        let sent = &spoken.sent;
        if !sent.is_empty() {
            self.note(turn.session.id, Role::Assistant, &sent.join(" "))
                .await;
        }
        if let Some((_, reason)) = &failure {
            self.note(
                turn.session.id,
                Role::System,
                &format!("The voice turn failed: {reason}."),
            )
            .await;
        }
        let since = |at: Instant| at.saturating_duration_since(turn.received);
        let total = since(self.clock.instant());
        let outcome = spoken.outcome;
        let first_token = spoken.first_token.map(since);
        let first_tts = spoken.first_tts.map(since);
        let record = TurnRecord {
            session_id: turn.session.id,
            turn: turn.turn,
            source: TurnSource::Voice,
            started_at: turn.started_at,
            heard: Heard {
                text: turn.text.clone(),
                confidence: turn.confidence.map(f64::from),
                language: Some(turn.language.clone()),
                partials: turn.partials,
            },
            reply: Reply {
                text: sent.join(" "),
                sentences: sent.clone(),
            },
            outcome: match outcome {
                TurnOutcome::Completed => RecordOutcome::Completed,
                TurnOutcome::Cancelled => RecordOutcome::Interrupted,
                TurnOutcome::Failed => RecordOutcome::Failed,
            },
            interrupted: spoken.interruption.map(|by| Interruption {
                after_sentence: sent.len() as u32,
                by,
            }),
            error: failure.as_ref().map(|(code, _)| TurnFailure {
                code: (*code).to_owned(),
            }),
            model: spoken
                .model
                .clone()
                .or_else(|| self.llm.as_ref().map(|m| m.model_name()))
                .unwrap_or_default(),
            usage: spoken.usage.unwrap_or_default(),
            timings_ms: TurnTimings {
                first_token: first_token.map(millis),
                first_sentence: spoken.first_sentence.map(since).map(millis),
                first_tts_request: first_tts.map(millis),
                first_tts_done: spoken.first_tts_done.map(since).map(millis),
                last_tts_done: spoken.last_tts_done.map(since).map(millis),
                end: millis(total),
            },
        };
        record_turn(
            self.turns.as_ref(),
            self.live.as_ref(),
            self.observer.as_ref(),
            &turn.session,
            record,
        )
        .await;
        let report = TurnReport {
            session_id: turn.session.id,
            generation: turn.generation,
            outcome,
            to_first_token: first_token,
            to_first_tts: first_tts,
            total,
            sentences: sent.len() as u32,
        };
        tracing::info!(
            outcome = outcome.as_str(),
            first_token_ms = first_token.map(|d| d.as_millis() as u64),
            first_tts_ms = first_tts.map(|d| d.as_millis() as u64),
            total_ms = report.total.as_millis() as u64,
            sentences = report.sentences,
            "voice turn"
        );
        self.observer.finished(&report);
        report
    }

    /// The body of a turn; fills `out` with what its record needs. A failure is its error
    /// code and why.
    async fn speak_reply(
        &self,
        turn: &PendingTurn,
        out: &mut Spoken,
    ) -> Result<(), (&'static str, String)> {
        let failed = |e: SessionError| (e.code(), e.to_string());
        let now = self.clock.now();
        note(
            self.history.as_ref(),
            turn.session.id,
            Role::User,
            &turn.text,
            now,
        )
        .await
        .map_err(|e| failed(SessionError::Store(e)))?;
        let llm = self
            .llm
            .as_ref()
            .ok_or_else(|| failed(LlmError::NotConfigured.into()))?;
        let tts = self
            .tts
            .as_ref()
            .ok_or_else(|| failed(SpeechError::NotConfigured.into()))?;
        let request = self
            .policy
            .request(self.history.as_ref(), turn.session.id)
            .await
            .map_err(|e| failed(SessionError::Store(e)))?;
        let current = CurrentTurn {
            voice_state: self.voice_state.as_ref(),
            session_id: turn.session.id,
            generation: turn.generation,
        };
        let speech = self
            .policy
            .speech(turn.session.room_name.clone(), turn.language.clone());
        let events = ReplyEvents {
            live: self.live.as_ref(),
            session_id: turn.session.id,
            room_name: &turn.session.room_name,
            turn: turn.turn,
        };
        let mut speaker = Speaker::new(
            tts.as_ref(),
            self.clock.as_ref(),
            speech,
            self.config.max_sentence_chars,
        )
        .guarded(&current)
        .announcing(events);
        let mut silent = NoDeltas;
        let mut sink = SpeakingSink::new(&mut silent, Some(&mut speaker), self.clock.as_ref());
        let streamed = llm
            .stream(&request, &mut sink)
            .instrument(tracing::info_span!("llm"))
            .await;
        out.first_token = sink.first_delta;
        out.usage = sink.usage;
        if streamed.is_ok() {
            speaker.finish().await;
        }
        let result = match (&streamed, &speaker.halted) {
            (_, Some(Halt::Failed { code, reason })) => Err((*code, reason.clone())),
            (_, Some(Halt::Cancelled(by))) => {
                out.interruption = Some(*by);
                Ok(TurnOutcome::Cancelled)
            }
            (Ok(_), None) => Ok(TurnOutcome::Completed),
            (Err(e), None) => Err(failed(e.clone().into())),
        };
        if let Ok(reply) = &streamed {
            out.usage = Some(reply.usage);
            out.model = Some(reply.model.clone());
        }
        out.sent = std::mem::take(&mut speaker.sent);
        out.first_sentence = speaker.first_sentence;
        out.first_tts = speaker.first_send;
        out.first_tts_done = speaker.first_done;
        out.last_tts_done = speaker.last_done;
        out.outcome = *result.as_ref().unwrap_or(&TurnOutcome::Failed);
        result.map(|_| ())
    }

    async fn note(&self, session_id: Uuid, role: Role, content: &str) {
        let now = self.clock.now();
        if let Err(e) = note(self.history.as_ref(), session_id, role, content, now).await {
            tracing::warn!(error = %e, "could not store a voice turn in history");
        }
    }
}

/// Stores a finished turn's record, then tells the live stream and the metrics. A failed
/// store is logged: the turn itself is over either way.
pub(crate) async fn record_turn(
    turns: &dyn TurnStore,
    live: &dyn LiveEvents,
    observer: &dyn TurnObserver,
    session: &Session,
    record: TurnRecord,
) {
    observer.recorded(&record);
    if let Err(e) = turns.record_turn(&record).await {
        tracing::warn!(error = %e, turn = record.turn, "could not store a turn record");
        return;
    }
    live.publish(SessionEvent {
        session_id: session.id,
        room_name: session.room_name.clone(),
        event: LiveEvent::TurnEnded(Box::new(record)),
    });
}

/// A room name as the STT bot sends it: no control characters (no room has them, and a
/// NUL would reach the store's lookup, which PostgreSQL and SQLite answer differently).
fn check_room_name(room_name: &str) -> Result<(), SessionError> {
    if room_name.chars().any(char::is_control) {
        return Err(SessionError::Validation {
            field: "room_name",
            message: "must not contain control characters".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod partial_tests {
    use super::*;

    #[test]
    fn partial_counts_stay_bounded_dropping_the_oldest_and_forget_what_is_taken() {
        let t = Instant::now();
        let mut counts = PartialCounts::default();
        let ids: Vec<Uuid> = (0..=MAX_PARTIAL_SESSIONS).map(|_| Uuid::new_v4()).collect();
        for (i, id) in ids.iter().enumerate() {
            counts.note(*id, t + Duration::from_millis(i as u64));
        }
        assert_eq!(counts.0.len(), MAX_PARTIAL_SESSIONS);
        assert_eq!(
            counts.take(ids[0], t + Duration::from_secs(1)),
            None,
            "the oldest went"
        );
        let last = *ids.last().unwrap();
        counts.note(last, t + Duration::from_secs(2));
        let at = t + Duration::from_secs(10);
        assert_eq!(
            counts.take(last, at),
            Some(Partials {
                count: 2,
                first_ms_before_final: 10_000 - MAX_PARTIAL_SESSIONS as u64,
            })
        );
        assert_eq!(counts.take(last, at), None, "taken once");
        // Partials older than the age bound belong to no final.
        counts.note(last, t);
        assert_eq!(
            counts.take(last, t + PARTIALS_MAX_AGE + Duration::from_millis(1)),
            None
        );
    }
}
