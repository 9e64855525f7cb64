//! The conversation: a session's turns with the language model, and speaking replies into
//! the room through TTS, sentence by sentence.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{HistoryEntry, Role};
use crate::ports::{
    ChatMessage, ChatModel, ChatRequest, ChatRole, Clock, DeltaSink, Flow, HistoryStore,
    LiveEvents, LlmError, SessionStore, SpeechError, SpeechRequest, SpeechToText, StoreError,
    TextToSpeech, TurnObserver, TurnStore,
};
use crate::service::SessionError;
use crate::speaker::{ReplyEvents, SentenceLog, Speaker, SpeakingSink};
use crate::turns::{
    Heard, RecordOutcome, Reply, TokenUsage, TurnFailure, TurnRecord, TurnSource, TurnTimings,
};

/// Longest user message accepted, in characters.
pub const MAX_USER_TEXT: usize = 8000;

/// How conversations are shaped; filled from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationPolicy {
    /// How the assistant behaves.
    pub system_instruction: String,
    /// At most this many recent turns are sent to the model.
    pub max_turns: u32,
    /// …and at most this many characters of them (oldest dropped first).
    pub max_chars: usize,
    /// TTS voice.
    pub voice_id: String,
    /// TTS speaking rate.
    pub speed: f32,
}

impl ConversationPolicy {
    /// The model's view of the conversation: the recent user and assistant turns, bounded by
    /// turns and characters, oldest first, starting and ending with the user. Chat turns and
    /// voice turns both ask here.
    pub(crate) async fn request(
        &self,
        history: &dyn HistoryStore,
        session_id: Uuid,
    ) -> Result<ChatRequest, crate::ports::StoreError> {
        let recent = history.recent(session_id, self.max_turns).await?;
        Ok(ChatRequest {
            system_instruction: self.system_instruction.clone(),
            messages: window(&recent, self.max_chars),
        })
    }

    /// A speech request into `room_name` in `language`, with the policy's voice and speed
    /// (and no text yet): what each spoken sentence of a turn is sent with.
    pub(crate) fn speech(&self, room_name: String, language: String) -> SpeechRequest {
        SpeechRequest {
            text: String::new(),
            room_name,
            voice_id: self.voice_id.clone(),
            language,
            speed: self.speed,
        }
    }
}

/// Appends a turn (or a system note) to a session's history at `now`. Chat turns and voice
/// turns both write here.
pub(crate) async fn note(
    history: &dyn HistoryStore,
    session_id: Uuid,
    role: Role,
    content: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    history
        .append(session_id, &HistoryEntry::new(role, content, now))
        .await
}

impl Default for ConversationPolicy {
    fn default() -> Self {
        ConversationPolicy {
            system_instruction: "You are June, a friendly voice assistant. Answer briefly, in \
                plain spoken sentences, without lists, markdown or emoji."
                .into(),
            max_turns: 20,
            max_chars: 8000,
            voice_id: "default".into(),
            speed: 1.0,
        }
    }
}

/// A user message to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    /// The session.
    pub session_id: Uuid,
    /// What the user said.
    pub text: String,
    /// Language of the reply; the session's when absent.
    pub language: Option<String>,
    /// Also speak the reply into the session's room.
    pub speak: bool,
}

/// What a chat turn produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOutcome {
    /// The assistant's reply.
    pub text: String,
    /// Sentences TTS accepted (with `speak`).
    pub sentences_spoken: u32,
    /// Sentences TTS refused (with `speak`); the reply still stands.
    pub sentences_failed: u32,
}

/// Longest piece sent to TTS when no sentence end comes (a run-on reply still flows).
pub const MAX_SENTENCE_CHARS: usize = 240;

/// Words whose trailing period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "no", "approx",
    "fig", "ca", "mt", "ft",
];

/// Cuts streamed text into sentences as soon as each one is complete: at `.`, `!`, `?`, `…`
/// (and runs like `?!`) followed by whitespace, at CJK full stops, at line breaks; never inside
/// `3.14`, after `Dr.` or an initial; and at the last space before `max_chars` when no end
/// comes, so no piece is ever longer than that.
#[derive(Debug, Clone)]
pub struct SentenceSplitter {
    buf: String,
    max_chars: usize,
}

impl Default for SentenceSplitter {
    fn default() -> Self {
        SentenceSplitter::new(MAX_SENTENCE_CHARS)
    }
}

fn is_stop(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_wide_stop(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | '”' | '’' | '」' | '』')
}

impl SentenceSplitter {
    /// A splitter whose pieces are at most `max_chars` characters (at least 1).
    pub fn new(max_chars: usize) -> Self {
        SentenceSplitter {
            buf: String::new(),
            max_chars: max_chars.max(1),
        }
    }

    /// Adds a delta; returns the sentences it completed.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = self.cut() {
            let sentence = self.buf[..end].trim().to_owned();
            self.buf.drain(..end);
            if !sentence.is_empty() {
                out.push(sentence);
            }
        }
        out
    }

    /// Whatever is left once the stream is over (cut to the length limit too).
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while self.buf.trim().chars().count() > self.max_chars {
            let end = self.forced_cut();
            let piece = self.buf[..end].trim().to_owned();
            self.buf.drain(..end);
            if !piece.is_empty() {
                out.push(piece);
            }
        }
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        if !rest.is_empty() {
            out.push(rest.to_owned());
        }
        out
    }

    /// The byte offset where the next piece ends: a sentence end, or a forced cut when the
    /// sentence would be longer than the limit.
    fn cut(&self) -> Option<usize> {
        let end = self.sentence_end()?;
        if self.buf[..end].trim().chars().count() > self.max_chars {
            return Some(self.forced_cut());
        }
        Some(end)
    }

    /// The byte offset where the next complete sentence ends, if one is complete.
    fn sentence_end(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buf.char_indices().collect();
        // Leading whitespace does not count towards the length.
        let start = chars.iter().position(|(_, c)| !c.is_whitespace())?;
        let mut i = start;
        while i < chars.len() {
            if i - start >= self.max_chars {
                return Some(self.forced_cut());
            }
            let (_, c) = chars[i];
            if c == '\n' || is_wide_stop(c) {
                return Some(chars[i].0 + c.len_utf8());
            }
            if is_stop(c) {
                // The whole run of stops and closing quotes: "?!", "...", ".\"".
                let mut j = i + 1;
                while j < chars.len() && (is_stop(chars[j].1) || is_closer(chars[j].1)) {
                    j += 1;
                }
                match chars.get(j) {
                    // Wait: "3." may become "3.14".
                    None => return None,
                    Some((at, next))
                        if next.is_whitespace()
                            && !(c == '.'
                                && j == i + 1
                                && self.abbreviation_before(chars[i].0)) =>
                    {
                        return Some(*at);
                    }
                    _ => {}
                }
                i = j;
                continue;
            }
            i += 1;
        }
        None
    }

    /// Whether the word ending at byte `dot` is an abbreviation or an initial.
    fn abbreviation_before(&self, dot: usize) -> bool {
        let word = self.buf[..dot]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default()
            .trim_start_matches(|c: char| !c.is_alphanumeric());
        let lower = word.to_lowercase();
        (word.chars().count() == 1 && word.chars().all(char::is_uppercase))
            || ABBREVIATIONS.contains(&lower.as_str())
    }

    /// Where to cut a piece with no sentence end: the last whitespace within the limit, or
    /// the limit itself.
    fn forced_cut(&self) -> usize {
        let lead = self.buf.len() - self.buf.trim_start().len();
        let body = &self.buf[lead..];
        let limit = body
            .char_indices()
            .nth(self.max_chars)
            .map_or(body.len(), |(i, _)| i);
        let window = &body[..limit];
        // A window that ends at a word boundary is a whole piece; otherwise back off to the
        // last space in it, or cut the over-long word itself.
        let at = if body[limit..].chars().next().is_none_or(char::is_whitespace) {
            limit
        } else {
            match window.rfind(char::is_whitespace) {
                Some(ws) if ws > 0 => ws,
                _ => limit,
            }
        };
        lead + at
    }
}

/// A sink that drops deltas (for callers that only want the whole reply).
pub struct NoDeltas;

#[async_trait]
impl DeltaSink for NoDeltas {
    async fn push(&mut self, _: &str) -> Flow {
        Flow::Continue
    }
}

/// Conversation turns over the LLM and TTS ports. Either may be absent (not configured):
/// the service then fails honestly instead of inventing a reply.
#[derive(Clone)]
pub struct ConversationService {
    sessions: Arc<dyn SessionStore>,
    history: Arc<dyn HistoryStore>,
    llm: Option<Arc<dyn ChatModel>>,
    tts: Option<Arc<dyn TextToSpeech>>,
    stt: Option<Arc<dyn SpeechToText>>,
    clock: Arc<dyn Clock>,
    turns: Arc<dyn TurnStore>,
    live: Arc<dyn LiveEvents>,
    observer: Arc<dyn TurnObserver>,
    policy: ConversationPolicy,
}

/// Builder arguments of [`ConversationService`].
pub(crate) struct ConversationPorts {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// History.
    pub history: Arc<dyn HistoryStore>,
    /// The language model, if configured.
    pub llm: Option<Arc<dyn ChatModel>>,
    /// TTS, if configured.
    pub tts: Option<Arc<dyn TextToSpeech>>,
    /// STT, if configured (health only).
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Turn records.
    pub turns: Arc<dyn TurnStore>,
    /// Live events (reply sentences, turn ends).
    pub live: Arc<dyn LiveEvents>,
    /// Metrics of turn records.
    pub observer: Arc<dyn TurnObserver>,
}

impl ConversationService {
    /// Wires the service ([`Domain::new`](crate::Domain::new) is the public way).
    pub(crate) fn new(ports: ConversationPorts, policy: ConversationPolicy) -> Self {
        ConversationService {
            sessions: ports.sessions,
            history: ports.history,
            llm: ports.llm,
            tts: ports.tts,
            stt: ports.stt,
            clock: ports.clock,
            turns: ports.turns,
            live: ports.live,
            observer: ports.observer,
            policy,
        }
    }

    /// Whether a language model is configured (readiness reports it; no call is made).
    pub fn llm_configured(&self) -> bool {
        self.llm.is_some()
    }

    /// TTS health: `None` when TTS is not configured.
    pub async fn tts_health(&self) -> Option<Result<(), SpeechError>> {
        Some(self.tts.as_ref()?.health().await)
    }

    /// STT health: `None` when STT is not configured.
    pub async fn stt_health(&self) -> Option<Result<(), SpeechError>> {
        Some(self.stt.as_ref()?.health().await)
    }

    /// Answers a user message: stores the user turn, asks the model with the recent history,
    /// streams the reply into `sink` (and, with `speak`, each sentence to TTS as soon as it is
    /// complete), stores the assistant turn. If the model fails, the user turn stays and a
    /// system note records the failure.
    #[tracing::instrument(skip_all, fields(session_id = %turn.session_id))]
    pub async fn chat(
        &self,
        turn: ChatTurn,
        sink: &mut (dyn DeltaSink + '_),
    ) -> Result<ChatOutcome, SessionError> {
        let text = turn.text.trim();
        if text.is_empty() {
            return Err(SessionError::Validation {
                field: "text",
                message: "must not be empty".into(),
            });
        }
        if text.chars().count() > MAX_USER_TEXT {
            return Err(SessionError::Validation {
                field: "text",
                message: format!("is longer than {MAX_USER_TEXT} characters"),
            });
        }
        let session = self.sessions.get(turn.session_id).await?;
        let tts = match (turn.speak, &self.tts) {
            (false, _) => None,
            (true, Some(tts)) => Some(tts.as_ref()),
            (true, None) => return Err(SessionError::Speech(SpeechError::NotConfigured)),
        };
        let language = turn
            .language
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| session.language.clone());
        let (started_at, received) = (self.clock.now(), self.clock.instant());
        let number = self.turns.allocate_turn(session.id).await?;
        let since = |at: Instant| millis(at.saturating_duration_since(received));
        let mut record = TurnRecord {
            session_id: session.id,
            turn: number,
            source: TurnSource::Chat,
            started_at,
            heard: Heard {
                text: text.to_owned(),
                confidence: None,
                language: Some(language.clone()),
                partials: None,
            },
            reply: Reply::default(),
            outcome: RecordOutcome::Failed,
            interrupted: None,
            error: None,
            model: String::new(),
            usage: TokenUsage::default(),
            timings_ms: TurnTimings::default(),
        };

        self.note(session.id, Role::User, text).await?;
        let Some(llm) = &self.llm else {
            self.note(
                session.id,
                Role::System,
                "The assistant could not answer: no language model is configured.",
            )
            .await?;
            let e = SessionError::Llm(LlmError::NotConfigured);
            record.error = Some(TurnFailure {
                code: e.code().to_owned(),
            });
            record.timings_ms.end = since(self.clock.instant());
            self.record(&session, record).await;
            return Err(e);
        };
        record.model = llm.model_name();
        let request = self.request(session.id).await?;
        let speech = self.policy.speech(session.room_name.clone(), language);
        let events = ReplyEvents {
            live: self.live.as_ref(),
            session_id: session.id,
            room_name: &session.room_name,
            turn: number,
        };
        let clock = self.clock.as_ref();
        let mut log = SentenceLog::new(clock, events, MAX_SENTENCE_CHARS);
        let mut speaker = tts.map(|tts| Speaker::new(tts, clock, speech, MAX_SENTENCE_CHARS));
        let mut speaking = SpeakingSink::new(sink, speaker.as_mut(), clock).logging(&mut log);
        let streamed = llm.stream(&request, &mut speaking).await;
        let (first_token, usage) = (speaking.first_delta, speaking.usage);
        record.usage = usage.unwrap_or_default();
        record.timings_ms.first_token = first_token.map(since);
        let result = match streamed {
            Ok(reply) => {
                log.finish();
                let (mut spoken, mut failed) = (0, 0);
                if let Some(speaker) = &mut speaker {
                    speaker.finish().await;
                    (spoken, failed) = (speaker.sent.len() as u32, speaker.refused);
                    let t = &mut record.timings_ms;
                    t.first_tts_request = speaker.first_send.map(since);
                    t.first_tts_done = speaker.first_done.map(since);
                    t.last_tts_done = speaker.last_done.map(since);
                }
                record.outcome = RecordOutcome::Completed;
                record.model = reply.model.clone();
                record.usage = reply.usage;
                self.note(session.id, Role::Assistant, &reply.text).await?;
                Ok(ChatOutcome {
                    text: reply.text,
                    sentences_spoken: spoken,
                    sentences_failed: failed,
                })
            }
            Err(e) => {
                self.note(
                    session.id,
                    Role::System,
                    &format!("The assistant could not answer: {e}."),
                )
                .await?;
                let e = SessionError::Llm(e);
                record.error = Some(TurnFailure {
                    code: e.code().to_owned(),
                });
                Err(e)
            }
        };
        record.timings_ms.first_sentence = log.first_sentence.map(since);
        record.reply = Reply {
            text: log.sentences.join(" "),
            sentences: std::mem::take(&mut log.sentences),
        };
        record.timings_ms.end = since(self.clock.instant());
        self.record(&session, record).await;
        result
    }

    async fn record(&self, session: &crate::model::Session, record: TurnRecord) {
        crate::voice::record_turn(
            self.turns.as_ref(),
            self.live.as_ref(),
            self.observer.as_ref(),
            session,
            record,
        )
        .await;
    }

    /// Speaks `text` into a room through TTS and returns TTS's own answer.
    pub async fn speak(&self, request: SpeechRequest) -> Result<serde_json::Value, SessionError> {
        let tts = self
            .tts
            .as_ref()
            .ok_or(SessionError::Speech(SpeechError::NotConfigured))?;
        Ok(tts.synthesize(&request).await?)
    }

    /// The policy's defaults for a speech request into `room_name`.
    pub fn speech_request(
        &self,
        room_name: String,
        text: String,
        language: Option<String>,
        voice_id: Option<String>,
        speed: Option<f32>,
    ) -> SpeechRequest {
        SpeechRequest {
            text,
            room_name,
            voice_id: voice_id.unwrap_or_else(|| self.policy.voice_id.clone()),
            language: language.unwrap_or_else(|| "en".into()),
            speed: speed.unwrap_or(self.policy.speed),
        }
    }

    async fn note(&self, session_id: Uuid, role: Role, content: &str) -> Result<(), SessionError> {
        let now = self.clock.now();
        Ok(note(self.history.as_ref(), session_id, role, content, now).await?)
    }

    async fn request(&self, session_id: Uuid) -> Result<ChatRequest, SessionError> {
        Ok(self
            .policy
            .request(self.history.as_ref(), session_id)
            .await?)
    }
}

/// Whole milliseconds, saturating.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Keeps the newest turns within `max_chars` (always the last one), drops system notes, merges
/// neighbours of the same role, and starts at a user turn.
pub fn window(entries: &[HistoryEntry], max_chars: usize) -> Vec<ChatMessage> {
    let mut picked: Vec<&HistoryEntry> = Vec::new();
    let mut used = 0;
    for e in entries.iter().rev().filter(|e| e.role != Role::System) {
        let len = e.content.chars().count();
        if !picked.is_empty() && used + len > max_chars {
            break;
        }
        used += len;
        picked.push(e);
    }
    picked.reverse();
    let mut messages: Vec<ChatMessage> = Vec::new();
    for e in picked {
        let role = if e.role == Role::Assistant {
            ChatRole::Model
        } else {
            ChatRole::User
        };
        match messages.last_mut() {
            Some(last) if last.role == role => {
                last.text.push('\n');
                last.text.push_str(&e.content);
            }
            _ => messages.push(ChatMessage {
                role,
                text: e.content.clone(),
            }),
        }
    }
    while messages.first().is_some_and(|m| m.role == ChatRole::Model) {
        messages.remove(0);
    }
    messages
}
