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

use crate::conversation::SentenceSplitter;
use crate::ports::{DeltaSink, Flow, SpeechRequest, TextToSpeech};

/// Why a speaker stopped before the end of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Halt {
    /// The reply is no longer wanted (a newer turn took over).
    Cancelled,
    /// Something failed; why, for the history note.
    Failed(String),
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
    /// Every request but its text.
    template: SpeechRequest,
    splitter: SentenceSplitter,
    guard: Option<&'a dyn SendGuard>,
    stop_on_refusal: bool,
    /// The sentences TTS accepted, in order.
    pub(crate) sent: Vec<String>,
    /// How many sentences TTS refused.
    pub(crate) refused: u32,
    /// When the first sentence was sent.
    pub(crate) first_send: Option<Instant>,
    /// Why it stopped, if it did.
    pub(crate) halted: Option<Halt>,
}

impl<'a> Speaker<'a> {
    /// Speaks through `tts` with `template` (its text is replaced by each sentence), in
    /// pieces of at most `max_chars`; a refused sentence is logged and skipped.
    pub(crate) fn new(
        tts: &'a dyn TextToSpeech,
        template: SpeechRequest,
        max_chars: usize,
    ) -> Self {
        Speaker {
            tts,
            template,
            splitter: SentenceSplitter::new(max_chars),
            guard: None,
            stop_on_refusal: false,
            sent: Vec::new(),
            refused: 0,
            first_send: None,
            halted: None,
        }
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
        if let Some(guard) = self.guard
            && let Err(halt) = guard.check().await
        {
            self.halted = Some(halt);
            return false;
        }
        self.first_send.get_or_insert_with(Instant::now);
        let request = SpeechRequest {
            text: sentence,
            ..self.template.clone()
        };
        match self.tts.synthesize(&request).await {
            Ok(_) => {
                self.sent.push(request.text);
                true
            }
            Err(e) => {
                self.refused += 1;
                if self.stop_on_refusal {
                    self.halted = Some(Halt::Failed(e.to_string()));
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
    /// When the first delta came.
    pub(crate) first_delta: Option<Instant>,
}

impl<'s, 't> SpeakingSink<'s, 't> {
    /// Forwards to `outer`, speaking through `speaker` if any.
    pub(crate) fn new(
        outer: &'s mut (dyn DeltaSink + 's),
        speaker: Option<&'s mut Speaker<'t>>,
    ) -> Self {
        SpeakingSink {
            outer,
            speaker,
            first_delta: None,
        }
    }
}

#[async_trait]
impl DeltaSink for SpeakingSink<'_, '_> {
    async fn push(&mut self, delta: &str) -> Flow {
        self.first_delta.get_or_insert_with(Instant::now);
        let flow = self.outer.push(delta).await;
        if let Some(speaker) = &mut self.speaker
            && !speaker.push(delta).await
        {
            return Flow::Stop;
        }
        flow
    }
}
