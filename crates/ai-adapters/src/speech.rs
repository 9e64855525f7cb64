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

async fn health(client: &reqwest::Client, base: &str) -> Result<(), SpeechError> {
    let resp = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_err(unreachable)?;
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
        let mut req = self
            .client
            .post(format!("{}/api/tts/synthesize", self.base))
            .timeout(self.timeout)
            .json(&json!({
                "text": r.text,
                "room_name": r.room_name,
                "voice_id": r.voice_id,
                "language": r.language,
                "speed": r.speed,
            }));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(SpeechError::Failed {
                status: status.as_u16(),
                detail: text.chars().take(DETAIL_LIMIT).collect(),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or_else(|_| json!({ "body": text })))
    }

    async fn health(&self) -> Result<(), SpeechError> {
        health(&self.client, &self.base).await
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
