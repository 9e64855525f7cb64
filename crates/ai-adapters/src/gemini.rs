//! Google Gemini (`v1beta` REST): `generateContent` and `streamGenerateContent?alt=sse`.
//!
//! Streaming traps handled here (design.md §5): events end with CRLF CRLF (the SSE parser
//! follows the spec, so any line ending works); an error mid-stream arrives after HTTP 200 as
//! raw JSON without `data:` (kept from the stream's tail and reported); a stream that ends
//! without a `finishReason` is an error, not a short answer; `STOP` with no text is retried;
//! an unknown `finishReason` is "other", never "stop".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use june_domain::TokenUsage;
use june_domain::ports::{
    ChatModel, ChatReply, ChatRequest, ChatRole, DeltaSink, FinishReason, Flow, LlmError,
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

/// Bytes of the raw stream kept to find an error that came without `data:`.
const TAIL: usize = 4096;
/// Longest wait between retries, whatever `Retry-After` says (keeps requests bounded).
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// How to reach Gemini.
#[derive(Clone)]
pub struct GeminiConfig {
    /// `https://generativelanguage.googleapis.com` (a fake in tests).
    pub base_url: String,
    /// Sent as `x-goog-api-key`.
    pub api_key: SecretString,
    /// e.g. `gemini-3.5-flash-lite`.
    pub model: String,
    /// Sampling temperature, if set (some models ignore it).
    pub temperature: Option<f32>,
    /// Output token cap, if set.
    pub max_output_tokens: Option<u32>,
    /// Time to the response headers (and between stream chunks).
    pub timeout: Duration,
    /// Retries after the first attempt, for 429/500/502/503/504 and connection failures.
    pub max_retries: u32,
    /// First backoff step; doubles each retry, plus jitter.
    pub backoff: Duration,
}

impl std::fmt::Debug for GeminiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// [`ChatModel`] on Gemini.
#[derive(Debug)]
pub struct GeminiChat {
    client: reqwest::Client,
    config: GeminiConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<ApiError>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
}

/// Gemini's token counts (absent counts are 0).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    total_token_count: u64,
}

impl From<UsageMetadata> for TokenUsage {
    fn from(u: UsageMetadata) -> Self {
        TokenUsage {
            prompt_tokens: u.prompt_token_count,
            output_tokens: u.candidates_token_count,
            total_tokens: u.total_token_count,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
    /// Thinking models mark their reasoning; it is not part of the reply.
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<u16>,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ApiError,
}

/// One attempt's failure: retry it, or give up with this error.
enum Failure {
    Retry(LlmError, Option<Duration>),
    Fatal(LlmError),
}

impl GenerateResponse {
    /// The reply text of the first candidate (thoughts skipped).
    fn text(&self) -> String {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map(|c| {
                c.parts
                    .iter()
                    .filter(|p| !p.thought)
                    .filter_map(|p| p.text.as_deref())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn finish_reason(&self) -> Option<&str> {
        self.candidates.first()?.finish_reason.as_deref()
    }

    fn blocked(&self) -> Option<String> {
        if let Some(reason) = self
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
        {
            return Some(reason);
        }
        match self.finish_reason() {
            Some(r @ ("SAFETY" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "RECITATION")) => {
                Some(r.to_owned())
            }
            _ => None,
        }
    }
}

fn finish(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::MaxTokens,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Maps an error status (and its body) to retry-or-fail.
fn classify(status: StatusCode, body: &str, retry_after: Option<Duration>, model: &str) -> Failure {
    let message = serde_json::from_str::<ErrorEnvelope>(body)
        .map(|e| e.error.message)
        .unwrap_or_else(|_| body.chars().take(300).collect());
    match status.as_u16() {
        404 => Failure::Fatal(LlmError::ModelNotFound(model.to_owned())),
        429 => Failure::Retry(
            LlmError::RateLimited {
                retry_after_secs: retry_after.map(|d| d.as_secs()),
            },
            retry_after,
        ),
        500 | 502 | 503 | 504 => Failure::Retry(
            LlmError::Upstream(format!("Gemini answered {status}: {message}")),
            retry_after,
        ),
        _ => Failure::Fatal(LlmError::Rejected(format!("{status}: {message}"))),
    }
}

fn from_api_error(e: &ApiError, model: &str) -> Failure {
    let status = e
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    classify(
        status,
        &json!({ "error": { "message": e.message } }).to_string(),
        None,
        model,
    )
}

fn send_error(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Fatal(LlmError::Timeout)
    } else {
        Failure::Retry(
            LlmError::Upstream(format!("cannot reach Gemini: {}", e.without_url())),
            None,
        )
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Finds a raw `{"error": …}` object at the end of a stream (sent without `data:`).
fn trailing_error(tail: &[u8]) -> Option<ApiError> {
    let text = String::from_utf8_lossy(tail);
    let start = text
        .rfind("{\"error\"")
        .or_else(|| text.rfind("{ \"error\""))?;
    let mut de = serde_json::Deserializer::from_str(&text[start..]).into_iter::<ErrorEnvelope>();
    de.next()?.ok().map(|e| e.error)
}

impl GeminiChat {
    /// A client with this configuration.
    pub fn new(client: reqwest::Client, config: GeminiConfig) -> Self {
        GeminiChat { client, config }
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let contents: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                json!({
                    "role": match m.role { ChatRole::User => "user", ChatRole::Model => "model" },
                    "parts": [{ "text": m.text }],
                })
            })
            .collect();
        let mut generation = serde_json::Map::new();
        if let Some(t) = self.config.temperature {
            generation.insert("temperature".into(), json!(t));
        }
        if let Some(n) = self.config.max_output_tokens {
            generation.insert("maxOutputTokens".into(), json!(n));
        }
        let mut body = json!({ "contents": contents, "generationConfig": generation });
        if !request.system_instruction.is_empty() {
            body["systemInstruction"] =
                json!({ "parts": [{ "text": request.system_instruction }] });
        }
        body
    }

    fn url(&self, method: &str) -> String {
        format!(
            "{}/v1beta/models/{}:{method}",
            self.config.base_url.trim_end_matches('/'),
            self.config.model
        )
    }

    /// Sends the request; a non-200 answer is read and classified.
    async fn post(&self, url: &str, body: &Value) -> Result<reqwest::Response, Failure> {
        let send = crate::send_traced(
            "POST gemini",
            self.client
                .post(url)
                .header("x-goog-api-key", self.config.api_key.expose_secret())
                .json(body),
        );
        let resp = match tokio::time::timeout(self.config.timeout, send).await {
            Err(_) => return Err(Failure::Fatal(LlmError::Timeout)),
            Ok(Err(e)) => return Err(send_error(e)),
            Ok(Ok(resp)) => resp,
        };
        if resp.status() == StatusCode::OK {
            return Ok(resp);
        }
        let status = resp.status();
        let wait = retry_after(&resp);
        let text = resp.text().await.unwrap_or_default();
        Err(classify(status, &text, wait, &self.config.model))
    }

    /// Exponential backoff with jitter, or the provider's `Retry-After`; bounded.
    fn backoff(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let base = self.config.backoff.saturating_mul(1 << attempt.min(16));
        let jitter_ms =
            (uuid::Uuid::new_v4().as_u128() % (self.config.backoff.as_millis().max(1))) as u64;
        asked
            .unwrap_or(base + Duration::from_millis(jitter_ms))
            .min(MAX_BACKOFF)
    }

    /// After a failed attempt: sleeps before the next one, or gives up with the error
    /// (a fatal failure, retries spent, or `retryable` false because text already went out).
    async fn pause_or_give_up(
        &self,
        tries: &mut u32,
        failure: Failure,
        retryable: bool,
    ) -> Result<(), LlmError> {
        let (e, wait) = match failure {
            Failure::Fatal(e) => return Err(e),
            Failure::Retry(e, wait) => (e, wait),
        };
        if !retryable || *tries >= self.config.max_retries {
            return Err(e);
        }
        let pause = self.backoff(*tries, wait);
        tracing::warn!(error = %e, attempt = *tries + 1, pause_ms = pause.as_millis() as u64, "retrying Gemini");
        tokio::time::sleep(pause).await;
        *tries += 1;
        Ok(())
    }

    async fn generate_once(&self, body: &Value) -> Result<ChatReply, Failure> {
        let resp = self.post(&self.url("generateContent"), body).await?;
        let parsed: GenerateResponse = resp.json().await.map_err(|e| {
            Failure::Retry(LlmError::Upstream(format!("unreadable reply: {e}")), None)
        })?;
        if let Some(e) = &parsed.error {
            return Err(from_api_error(e, &self.config.model));
        }
        if let Some(reason) = parsed.blocked() {
            return Err(Failure::Fatal(LlmError::Blocked(reason)));
        }
        let text = parsed.text();
        let Some(reason) = parsed.finish_reason().map(finish) else {
            return Err(Failure::Fatal(LlmError::Empty));
        };
        if text.trim().is_empty() {
            // "STOP with no text" happens and passes on retry.
            return Err(Failure::Retry(LlmError::Empty, None));
        }
        Ok(ChatReply {
            text,
            finish_reason: reason,
            model: parsed
                .model_version
                .unwrap_or_else(|| self.config.model.clone()),
            usage: parsed.usage_metadata.map(Into::into).unwrap_or_default(),
        })
    }

    async fn stream_once(
        &self,
        body: &Value,
        sink: &mut (dyn DeltaSink + '_),
        emitted: &mut bool,
    ) -> Result<ChatReply, Failure> {
        let resp = self
            .post(
                &format!("{}?alt=sse", self.url("streamGenerateContent")),
                body,
            )
            .await?;
        let tail = Arc::new(Mutex::new(Vec::<u8>::with_capacity(TAIL)));
        let keep = tail.clone();
        let mut events = resp
            .bytes_stream()
            .inspect(move |chunk| {
                if let (Ok(bytes), Ok(mut t)) = (chunk, keep.lock()) {
                    t.extend_from_slice(bytes);
                    let excess = t.len().saturating_sub(TAIL);
                    t.drain(..excess);
                }
            })
            .eventsource();
        let mut text = String::new();
        let mut reason: Option<String> = None;
        // The last chunk that carries them wins.
        let mut usage = TokenUsage::default();
        let mut model: Option<String> = None;
        loop {
            let next = match tokio::time::timeout(self.config.timeout, events.next()).await {
                Err(_) => return Err(Failure::Fatal(LlmError::Timeout)),
                Ok(None) => break,
                Ok(Some(next)) => next,
            };
            let event = next.map_err(|e| {
                Failure::Retry(LlmError::Upstream(format!("the stream broke: {e}")), None)
            })?;
            if event.data.trim().is_empty() {
                continue;
            }
            let chunk: GenerateResponse = serde_json::from_str(&event.data).map_err(|e| {
                Failure::Retry(
                    LlmError::Upstream(format!("unreadable stream event: {e}")),
                    None,
                )
            })?;
            if let Some(e) = &chunk.error {
                return Err(from_api_error(e, &self.config.model));
            }
            if let Some(blocked) = chunk.blocked() {
                return Err(Failure::Fatal(LlmError::Blocked(blocked)));
            }
            if let Some(u) = chunk.usage_metadata {
                usage = u.into();
                sink.usage(usage);
            }
            if let Some(m) = &chunk.model_version {
                model = Some(m.clone());
            }
            let delta = chunk.text();
            if !delta.is_empty() {
                *emitted = true;
                text.push_str(&delta);
                if sink.push(&delta).await == Flow::Stop {
                    // Dropping `events` closes the connection: nothing more is generated for us.
                    return Err(Failure::Fatal(LlmError::Cancelled));
                }
            }
            if let Some(r) = chunk.finish_reason() {
                reason = Some(r.to_owned());
            }
        }
        let Some(reason) = reason else {
            let raw = tail.lock().map(|t| t.clone()).unwrap_or_default();
            return Err(match trailing_error(&raw) {
                Some(e) => from_api_error(&e, &self.config.model),
                None => Failure::Retry(
                    LlmError::Upstream("the stream ended without a finishReason".into()),
                    None,
                ),
            });
        };
        if text.trim().is_empty() {
            return Err(Failure::Retry(LlmError::Empty, None));
        }
        Ok(ChatReply {
            text,
            finish_reason: finish(&reason),
            model: model.unwrap_or_else(|| self.config.model.clone()),
            usage,
        })
    }
}

#[async_trait]
impl ChatModel for GeminiChat {
    fn model_name(&self) -> String {
        self.config.model.clone()
    }

    #[tracing::instrument(skip_all, fields(model = %self.config.model))]
    async fn generate(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        let body = self.body(request);
        let mut tries = 0;
        loop {
            match self.generate_once(&body).await {
                Ok(reply) => return Ok(reply),
                Err(f) => self.pause_or_give_up(&mut tries, f, true).await?,
            }
        }
    }

    #[tracing::instrument(skip_all, fields(model = %self.config.model))]
    async fn stream<'s>(
        &self,
        request: &ChatRequest,
        sink: &'s mut (dyn DeltaSink + 's),
    ) -> Result<ChatReply, LlmError> {
        let body = self.body(request);
        let mut emitted = false;
        let mut tries = 0;
        loop {
            match self.stream_once(&body, &mut *sink, &mut emitted).await {
                Ok(reply) => return Ok(reply),
                // Once text went out, a retry would repeat it: any failure is final then.
                Err(f) => self.pause_or_give_up(&mut tries, f, !emitted).await?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_error_at_the_end_of_a_stream_is_found() {
        let tail = b"data: {\"candidates\":[]}\r\n\r\n{\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\n";
        let e = trailing_error(tail).unwrap();
        assert_eq!((e.code, e.message.as_str()), (Some(503), "overloaded"));
        assert!(trailing_error(b"data: {}\n\n").is_none());
    }

    #[test]
    fn unknown_finish_reasons_are_other_never_stop() {
        assert_eq!(finish("STOP"), FinishReason::Stop);
        assert_eq!(
            finish("MALFORMED_FUNCTION_CALL"),
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into())
        );
    }
}
