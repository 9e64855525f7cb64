//! The one engine of spoken replies, shared by chat turns ([`ConversationService`]) and voice
//! turns ([`VoiceService`]): the model's streamed deltas go to the caller's sink and through
//! the [`SentenceSplitter`], and each complete sentence goes to TTS, one at a time and in
//! order. A voice turn adds a [`SendGuard`] asked before every send (is this still the
//! session's current turn?) and stops at the first refusal; a chat turn skips a refused
//! sentence and goes on.
//!
//! [`ConversationService`]: crate::ConversationService
//! [`VoiceService`]: crate::VoiceService

use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument;
use uuid::Uuid;

use crate::conversation::SentenceSplitter;
use crate::error::DomainError;
use crate::ports::{
    Clock, DeltaSink, Flow, LiveEvent, LiveEvents, SessionEvent, SpeechRequest, TextToSpeech,
};
use crate::turns::{InterruptedBy, TokenUsage};

/// Why a speaker stopped before the end of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Halt {
    /// The reply is no longer wanted (a newer turn took over), and what took over.
    Cancelled(InterruptedBy),
    /// Something failed: the error code of the turn record, and why (the history note).
    Failed {
        /// A [`DomainError`] code.
        code: &'static str,
        /// Why.
        reason: String,
    },
}

impl Halt {
    /// A failure described by a domain error.
    pub(crate) fn failed(e: impl Into<DomainError>) -> Self {
        let e = e.into();
        Halt::Failed {
            code: e.code(),
            reason: e.to_string(),
        }
    }
}

/// Where a turn's reply sentences are announced as they are spoken (voice) or completed
/// (chat): `LiveEvent::Reply` on the live events port.
#[derive(Clone, Copy)]
pub(crate) struct ReplyEvents<'a> {
    /// The port.
    pub(crate) live: &'a dyn LiveEvents,
    /// The session.
    pub(crate) session_id: Uuid,
    /// Its room.
    pub(crate) room_name: &'a str,
    /// The turn number.
    pub(crate) turn: u64,
}

impl ReplyEvents<'_> {
    /// Announces sentence `index` (from 0).
    pub(crate) fn sentence(&self, index: usize, text: &str) {
        self.live.publish(SessionEvent {
            session_id: self.session_id,
            room_name: self.room_name.to_owned(),
            event: LiveEvent::Reply {
                turn: self.turn,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                text: text.to_owned(),
            },
        });
    }
}

/// The reply's sentences as the model completes them, whether or not they are spoken (a
/// chat turn's record and its live `Reply` events).
pub(crate) struct SentenceLog<'a> {
    splitter: SentenceSplitter,
    clock: &'a dyn Clock,
    events: ReplyEvents<'a>,
    /// The sentences, in order.
    pub(crate) sentences: Vec<String>,
    /// When the first was complete.
    pub(crate) first_sentence: Option<Instant>,
}

impl<'a> SentenceLog<'a> {
    /// A log cutting like the speaker does (pieces of at most `max_chars`).
    pub(crate) fn new(clock: &'a dyn Clock, events: ReplyEvents<'a>, max_chars: usize) -> Self {
        SentenceLog {
            splitter: SentenceSplitter::new(max_chars),
            clock,
            events,
            sentences: Vec::new(),
            first_sentence: None,
        }
    }

    fn add(&mut self, sentences: Vec<String>) {
        for sentence in sentences {
            self.first_sentence
                .get_or_insert_with(|| self.clock.instant());
            self.events.sentence(self.sentences.len(), &sentence);
            self.sentences.push(sentence);
        }
    }

    /// Logs the sentences `delta` completes.
    pub(crate) fn push(&mut self, delta: &str) {
        let done = self.splitter.push(delta);
        self.add(done);
    }

    /// Logs what is left once the stream is over.
    pub(crate) fn finish(&mut self) {
        let rest = self.splitter.finish();
        self.add(rest);
    }
}

/// Asked before every send whether the reply may still be spoken.
#[async_trait]
pub(crate) trait SendGuard: Send + Sync {
    /// `Ok` to send the next sentence; otherwise why the reply stops.
    async fn check(&self) -> Result<(), Halt>;
}

/// Sends complete sentences to TTS in order, recording what was sent.
pub(crate) struct Speaker<'a> {
    tts: &'a dyn TextToSpeech,
    clock: &'a dyn Clock,
    /// Announces each sentence TTS accepted (voice turns).
    events: Option<ReplyEvents<'a>>,
    /// Every request but its text.
    template: SpeechRequest,
    splitter: SentenceSplitter,
    guard: Option<&'a dyn SendGuard>,
    stop_on_refusal: bool,
    /// The sentences TTS accepted, in order.
    pub(crate) sent: Vec<String>,
    /// How many sentences TTS refused.
    pub(crate) refused: u32,
    /// When the first sentence was complete.
    pub(crate) first_sentence: Option<Instant>,
    /// When the first sentence was sent.
    pub(crate) first_send: Option<Instant>,
    /// When TTS first answered.
    pub(crate) first_done: Option<Instant>,
    /// When TTS last answered.
    pub(crate) last_done: Option<Instant>,
    /// Why it stopped, if it did.
    pub(crate) halted: Option<Halt>,
}

impl<'a> Speaker<'a> {
    /// Speaks through `tts` with `template` (its text is replaced by each sentence), in
    /// pieces of at most `max_chars`; a refused sentence is logged and skipped.
    pub(crate) fn new(
        tts: &'a dyn TextToSpeech,
        clock: &'a dyn Clock,
        template: SpeechRequest,
        max_chars: usize,
    ) -> Self {
        Speaker {
            tts,
            clock,
            events: None,
            template,
            splitter: SentenceSplitter::new(max_chars),
            guard: None,
            stop_on_refusal: false,
            sent: Vec::new(),
            refused: 0,
            first_sentence: None,
            first_send: None,
            first_done: None,
            last_done: None,
            halted: None,
        }
    }

    /// Announces each sentence TTS accepts through `events`.
    pub(crate) fn announcing(mut self, events: ReplyEvents<'a>) -> Self {
        self.events = Some(events);
        self
    }

    /// Asks `guard` before every send, and stops at the first refusal.
    pub(crate) fn guarded(mut self, guard: &'a dyn SendGuard) -> Self {
        self.guard = Some(guard);
        self.stop_on_refusal = true;
        self
    }

    /// Speaks the sentences `delta` completes; false once the speaker has stopped.
    pub(crate) async fn push(&mut self, delta: &str) -> bool {
        for sentence in self.splitter.push(delta) {
            if !self.say(sentence).await {
                return false;
            }
        }
        self.halted.is_none()
    }

    /// Speaks what is left once the stream is over.
    pub(crate) async fn finish(&mut self) {
        for rest in self.splitter.finish() {
            if !self.say(rest).await {
                break;
            }
        }
    }

    /// Sends one sentence; false once the speaker has stopped.
    async fn say(&mut self, sentence: String) -> bool {
        if self.halted.is_some() {
            return false;
        }
        self.first_sentence
            .get_or_insert_with(|| self.clock.instant());
        if let Some(guard) = self.guard
            && let Err(halt) = guard.check().await
        {
            self.halted = Some(halt);
            return false;
        }
        self.first_send.get_or_insert_with(|| self.clock.instant());
        let request = SpeechRequest {
            text: sentence,
            ..self.template.clone()
        };
        let span = tracing::info_span!("tts", sentence = self.sent.len());
        let answer = self.tts.synthesize(&request).instrument(span).await;
        match answer {
            Ok(_) => {
                let done = self.clock.instant();
                self.first_done.get_or_insert(done);
                self.last_done = Some(done);
                if let Some(events) = &self.events {
                    events.sentence(self.sent.len(), &request.text);
                }
                self.sent.push(request.text);
                true
            }
            Err(e) => {
                self.refused += 1;
                if self.stop_on_refusal {
                    self.halted = Some(Halt::failed(e));
                    return false;
                }
                tracing::warn!(error = %e, room = %request.room_name, "TTS refused a sentence");
                true
            }
        }
    }
}

/// The model's sink for a turn: forwards each delta to the caller's sink and, when there is
/// a speaker, speaks it; stops the stream once the speaker has stopped. The caller keeps the
/// speaker, and [`finish`](Speaker::finish)es it once the stream is over.
pub(crate) struct SpeakingSink<'s, 't> {
    outer: &'s mut (dyn DeltaSink + 's),
    speaker: Option<&'s mut Speaker<'t>>,
    log: Option<&'s mut SentenceLog<'t>>,
    clock: &'t dyn Clock,
    /// When the first delta came.
    pub(crate) first_delta: Option<Instant>,
    /// The model's last usage report.
    pub(crate) usage: Option<TokenUsage>,
}

impl<'s, 't> SpeakingSink<'s, 't> {
    /// Forwards to `outer`, speaking through `speaker` if any.
    pub(crate) fn new(
        outer: &'s mut (dyn DeltaSink + 's),
        speaker: Option<&'s mut Speaker<'t>>,
        clock: &'t dyn Clock,
    ) -> Self {
        SpeakingSink {
            outer,
            speaker,
            log: None,
            clock,
            first_delta: None,
            usage: None,
        }
    }

    /// Also logs the reply's sentences in `log`.
    pub(crate) fn logging(mut self, log: &'s mut SentenceLog<'t>) -> Self {
        self.log = Some(log);
        self
    }
}

#[async_trait]
impl DeltaSink for SpeakingSink<'_, '_> {
    fn usage(&mut self, usage: TokenUsage) {
        self.usage = Some(usage);
        self.outer.usage(usage);
    }

    async fn push(&mut self, delta: &str) -> Flow {
        self.first_delta.get_or_insert_with(|| self.clock.instant());
        if let Some(log) = &mut self.log {
            log.push(delta);
        }
        let flow = self.outer.push(delta).await;
        if let Some(speaker) = &mut self.speaker
            && !speaker.push(delta).await
        {
            return Flow::Stop;
        }
        flow
    }
}
