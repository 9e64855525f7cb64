//! # june-ai-adapters
//!
//! The AI ports of the domain on `reqwest`: [`GeminiChat`] (Google Gemini `generateContent`
//! and `streamGenerateContent?alt=sse`), [`HttpTtsClient`] (the June TTS service) and
//! [`HttpSttClient`] (the June STT service's health). Provider errors become the domain's
//! `LlmError`/`SpeechError` here, at the boundary.
//!
//! May depend on the domain and an HTTP client; never on the web framework, the store or
//! LiveKit.

mod gemini;
mod speech;

pub use gemini::{GeminiChat, GeminiConfig};
pub use speech::{HttpSttClient, HttpTtsClient};

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

/// An HTTPS-capable client on rustls with the ring provider and bundled Mozilla roots: the
/// TLS stack `livekit-api` already builds (reqwest's default would add aws-lc, a second one).
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| ClientError(e.to_string()))
}

/// Sends `req` in a client span named `name` and puts that span's W3C trace context on it
/// (`traceparent`, `tracestate`), so the service called continues our trace (design §8.4).
/// The span covers the call up to the response head; a streamed body is read in the caller's
/// span. Without tracing on, no header is added.
pub(crate) async fn send_traced(
    name: &'static str,
    mut req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    let span = tracing::info_span!(
        "http_client",
        otel.name = name,
        otel.kind = "client",
        http.response.status_code = tracing::field::Empty,
    );
    for (header, value) in june_trace_context::outgoing_headers(&span) {
        req = req.header(header, value);
    }
    let sent = req.send().instrument(span.clone()).await;
    if let Ok(resp) = &sent {
        span.record("http.response.status_code", resp.status().as_u16());
    }
    sent
}
