// mockall re-emits `&'s mut (dyn DeltaSink + 's)` and then warns about the parentheses it needs.
#![allow(unused_parens)]

use async_trait::async_trait;

use crate::turns::TokenUsage;

/// Who said a message sent to the model. The system instruction travels apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    /// The human.
    User,
    /// The model's earlier replies.
    Model,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who said it.
    pub role: ChatRole,
    /// What was said.
    pub text: String,
}

/// A request to the language model. The last message is always the user's.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// How the assistant should behave.
    pub system_instruction: String,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// Why generation stopped, as the model reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// The output token limit was reached.
    MaxTokens,
    /// Anything else the model reported (never mistaken for a natural stop).
    Other(String),
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReply {
    /// The text.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// The model that answered (as it named itself, else as configured).
    pub model: String,
    /// Tokens, as the model reported them (0 when it did not).
    pub usage: TokenUsage,
}

/// What the language model can fail with. Adapters retry what is worth retrying first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// No API key is configured.
    #[error("no language model is configured")]
    NotConfigured,
    /// The model name does not exist (a configuration error, never retried).
    #[error("model not found: {0}")]
    ModelNotFound(String),
    /// Still rate limited after the retries.
    #[error("the language model is rate limiting us")]
    RateLimited {
        /// Seconds the provider asked us to wait, if it said.
        retry_after_secs: Option<u64>,
    },
    /// The provider failed (5xx, a broken stream) after the retries.
    #[error("the language model failed: {0}")]
    Upstream(String),
    /// The provider refused the request (400/403…).
    #[error("the language model refused the request: {0}")]
    Rejected(String),
    /// No answer in time.
    #[error("the language model did not answer in time")]
    Timeout,
    /// The reply was withheld by safety filters.
    #[error("the reply was blocked: {0}")]
    Blocked(String),
    /// The model returned no text.
    #[error("the language model returned an empty reply")]
    Empty,
    /// The caller stopped the stream (barge-in, or TTS failed mid-turn).
    #[error("the reply was cancelled")]
    Cancelled,
}

/// What a sink wants after a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep streaming.
    Continue,
    /// Drop the stream now: the model call ends with [`LlmError::Cancelled`].
    Stop,
}

/// Receives the reply as it is generated, delta by delta.
#[async_trait]
pub trait DeltaSink: Send {
    /// A new piece of text (appended to what came before). Returning [`Flow::Stop`] drops
    /// the stream: nothing more is read from the model.
    async fn push(&mut self, delta: &str) -> Flow;

    /// Token usage reported so far (Gemini's `usageMetadata`; a later report replaces an
    /// earlier one), so a stream stopped early still tells what it cost.
    fn usage(&mut self, _usage: TokenUsage) {}
}

/// The language model (Gemini).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// The configured model's name, for the records of turns that got no reply.
    fn model_name(&self) -> String;

    /// The whole reply at once.
    async fn generate(&self, request: &ChatRequest) -> Result<ChatReply, LlmError>;

    /// The reply streamed into `sink`, then returned whole. Retries happen only before the
    /// first delta, so the sink never sees text twice.
    async fn stream<'s>(
        &self,
        request: &ChatRequest,
        sink: &'s mut (dyn DeltaSink + 's),
    ) -> Result<ChatReply, LlmError>;
}
