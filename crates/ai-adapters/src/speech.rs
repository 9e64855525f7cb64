//! The June TTS and STT services over HTTP.

use std::time::Duration;

use async_trait::async_trait;
use june_domain::ports::{SpeechError, SpeechRequest, SpeechToText, TextToSpeech};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// How much of an error body ends up in an error message.
const DETAIL_LIMIT: usize = 300;

fn unreachable(e: reqwest::Error) -> SpeechError {
    if e.is_timeout() {
        SpeechError::Unreachable("timed out".into())
    } else {
        SpeechError::Unreachable(e.without_url().to_string())
    }
}

/// Longest text one synthesize request carries: the June TTS revisions in the field refuse
/// more than 1000 characters (422), so longer text goes as several requests, in order.
pub const MAX_TTS_TEXT_CHARS: usize = 1000;

async fn health(client: &reqwest::Client, base: &str) -> Result<(), SpeechError> {
    let mut resp = crate::send_traced("GET /healthz", client.get(format!("{base}/healthz")))
        .await
        .map_err(unreachable)?;
    // Some June TTS/STT revisions serve only `/health`.
    if matches!(resp.status().as_u16(), 404 | 405) {
        resp = crate::send_traced("GET /health", client.get(format!("{base}/health")))
            .await
            .map_err(unreachable)?;
    }
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(SpeechError::Failed {
            status: resp.status().as_u16(),
            detail: "health check failed".into(),
        })
    }
}

/// The TTS service: `POST {url}/api/tts/synthesize` with a bearer service token.
pub struct HttpTtsClient {
    client: reqwest::Client,
    base: String,
    token: Option<SecretString>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpTtsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTtsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpTtsClient {
    /// A client of the TTS service at `base` (no trailing slash needed).
    pub fn new(
        client: reqwest::Client,
        base: &str,
        token: Option<SecretString>,
        timeout: Duration,
    ) -> Self {
        HttpTtsClient {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            timeout,
        }
    }
}

#[async_trait]
impl TextToSpeech for HttpTtsClient {
    #[tracing::instrument(skip_all, fields(room = %r.room_name))]
    async fn synthesize(&self, r: &SpeechRequest) -> Result<serde_json::Value, SpeechError> {
        let mut answer = serde_json::Value::Null;
        for piece in pieces(&r.text, MAX_TTS_TEXT_CHARS) {
            answer = self.synthesize_piece(r, piece).await?;
        }
        Ok(answer)
    }

    async fn health(&self) -> Result<(), SpeechError> {
        health(&self.client, &self.base).await
    }
}

/// `text` cut into pieces of at most `max` characters, at whitespace where there is some.
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let hard = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let cut = if rest[hard..].starts_with(char::is_whitespace) {
            hard
        } else {
            rest[..hard]
                .rfind(char::is_whitespace)
                .filter(|&i| i > 0)
                .unwrap_or(hard)
        };
        out.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

impl HttpTtsClient {
    async fn synthesize_piece(
        &self,
        r: &SpeechRequest,
        text: &str,
    ) -> Result<serde_json::Value, SpeechError> {
        let mut req = self
            .client
            .post(format!("{}/api/tts/synthesize", self.base))
            .timeout(self.timeout)
            .json(&json!({
                "text": text,
                "room_name": r.room_name,
                "voice_id": r.voice_id,
                "language": r.language,
                "speed": r.speed,
            }));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        let resp = crate::send_traced("POST /api/tts/synthesize", req)
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(SpeechError::Failed {
                status: status.as_u16(),
                detail: text.chars().take(DETAIL_LIMIT).collect(),
            });
        }
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "body": text }));
        // One June TTS revision answers a failed synthesis with 200 {"status":"error"}.
        if body.get("status").and_then(serde_json::Value::as_str) == Some("error") {
            let message = body
                .get("message")
                .or_else(|| body.get("detail"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("the TTS service reported an error");
            return Err(SpeechError::Failed {
                status: status.as_u16(),
                detail: message.chars().take(DETAIL_LIMIT).collect(),
            });
        }
        Ok(body)
    }
}

/// The STT service; the orchestrator only checks that it is up (it posts transcripts to us).
pub struct HttpSttClient {
    client: reqwest::Client,
    base: String,
}

impl HttpSttClient {
    /// A client of the STT service at `base`.
    pub fn new(client: reqwest::Client, base: &str) -> Self {
        HttpSttClient {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }
}

#[async_trait]
impl SpeechToText for HttpSttClient {
    async fn health(&self) -> Result<(), SpeechError> {
        health(&self.client, &self.base).await
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn long_text_is_cut_at_whitespace_into_pieces_of_at_most_max() {
        assert_eq!(pieces("short one", 1000), vec!["short one"]);
        assert_eq!(pieces("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(pieces("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        let long = "word ".repeat(500);
        let cut = pieces(&long, 1000);
        assert!(cut.iter().all(|p| p.chars().count() <= 1000));
        assert_eq!(cut.join(" "), long.trim());
        assert_eq!(pieces("é".repeat(5).as_str(), 2), vec!["éé", "éé", "é"]);
    }
}
