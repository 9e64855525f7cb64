//! # june-client
//!
//! A typed client of the June Orchestrator's HTTP API for downstream services that call it
//! rather than embed the domain: the session flow (create, get, list, delete), guest tokens,
//! participants, history and chat, with a typed [`Error`] carrying the status and the API's
//! error body (`code`, `detail`, `field`).
//!
//! May depend on an HTTP client and serde only; never on the server's crates (the domain,
//! the web framework, the store). Its wire types are its own, checked against
//! openapi/openapi.json by `tests/spec.rs` (docs/clients.md says why).
//!
//! ```no_run
//! # async fn demo() -> Result<(), june_client::Error> {
//! use june_client::{Client, CreateSession};
//!
//! let june = Client::builder("https://june.example.com")
//!     .credential("my-service-api-key")
//!     .build()?;
//! let session = june
//!     .create_session(&CreateSession {
//!         user_id: Some("alice".into()),
//!         ..CreateSession::default()
//!     })
//!     .await?;
//! match june.get_session("no-such-id").await {
//!     Err(e) if e.code() == Some("session_not_found") => {}
//!     other => println!("{other:?}"),
//! }
//! june.delete_session(&session.session_id).await?;
//! # Ok(())
//! # }
//! ```

mod types;

pub use types::*;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Url, header};
use serde::de::DeserializeOwned;

/// Thirty seconds per request: a chat turn waits for the model, and the server's own upstream
/// timeouts are shorter, so its 502/504 arrive before this fires.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Five seconds to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (4 MiB): a page of 200 sessions is far below it, and a runaway
/// body from a misbehaving proxy cannot fill memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How much of a body that is not the API's error body an [`Error::UnexpectedStatus`] keeps.
const SNIPPET_CHARS: usize = 512;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status and its error body.
    #[error("{status} {}: {}", body.code, body.detail)]
    Api { status: u16, body: ErrorBody },
    /// An error status whose body is not the API's (a proxy's page, for example).
    #[error("{status} without the API's error body: {body}")]
    UnexpectedStatus { status: u16, body: String },
    /// A success whose body does not match this client's types.
    #[error("the {status} answer does not match the client's types")]
    Decode {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// The answer was larger than [`MAX_BODY_BYTES`].
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// No answer: connection refused, timeout, TLS, a reset.
    #[error("the request failed")]
    Transport(#[source] reqwest::Error),
    /// The base URL given to the builder is not an absolute http(s) URL.
    #[error("invalid base URL {0:?}")]
    BaseUrl(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl Error {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. }
            | Error::UnexpectedStatus { status, .. }
            | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error body's stable code (`session_not_found`, `validation_error`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { body, .. } => Some(&body.code),
            _ => None,
        }
    }

    /// The error body, when the server sent one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Error::Api { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    base_url: String,
    credential: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    /// An API key (`AUTH_MODE=api_key`) or an OIDC access token, sent as `Authorization:
    /// Bearer`. Leave it out for `AUTH_MODE=none`.
    pub fn credential(mut self, credential: impl Into<String>) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// The whole-request timeout ([`DEFAULT_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout of the client this builder makes ([`DEFAULT_CONNECT_TIMEOUT`]);
    /// not used with [`ClientBuilder::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Share an existing `reqwest::Client` (its pool and TLS set-up). The request timeout is
    /// still applied to every call.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client, or why not: a base URL that is not absolute http(s), or TLS set-up.
    pub fn build(self) -> Result<Client, Error> {
        let base = Url::parse(&self.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| Error::BaseUrl(self.base_url.clone()))?;
        let http = match self.http {
            Some(http) => http,
            None => http_client(self.connect_timeout)?,
        };
        Ok(Client {
            http,
            base,
            credential: self.credential.map(Arc::from),
            timeout: self.timeout,
        })
    }
}

/// An HTTPS-capable client on rustls with the ring provider and bundled Mozilla roots: the
/// TLS stack the workspace already builds (reqwest's default would add aws-lc).
fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Build(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| Error::Build(e.to_string()))
}

/// A client of one orchestrator. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credential: Option<Arc<str>>,
    timeout: Duration,
}

/// Never prints the credential.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A builder for the orchestrator at `base_url` (e.g. `https://june.example.com`; a path
    /// prefix such as `https://gw.example.com/june` is kept).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            credential: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            http: None,
        }
    }

    /// A client with no credential and the default timeouts.
    pub fn new(base_url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url).build()
    }

    /// `POST /api/sessions`: a session, its room and the owner's token.
    pub async fn create_session(&self, body: &CreateSession) -> Result<Session, Error> {
        self.send(self.request(Method::POST, &["api", "sessions"]).json(body))
            .await
    }

    /// `GET /api/sessions/{id}`: the session with a freshly minted token.
    pub async fn get_session(&self, id: &str) -> Result<Session, Error> {
        self.send(self.request(Method::GET, &["api", "sessions", id]))
            .await
    }

    /// `GET /api/sessions`: one page, newest first.
    pub async fn list_sessions(&self, query: &ListSessions) -> Result<SessionList, Error> {
        let mut url = self.url(&["api", "sessions"]);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(user) = &query.user_id {
                pairs.append_pair("user_id", user);
            }
            if let Some(status) = query.status {
                pairs.append_pair("status", status.as_str());
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(cursor) = &query.cursor {
                pairs.append_pair("cursor", cursor);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.send(self.request_to(Method::GET, url)).await
    }

    /// `DELETE /api/sessions/{id}`: ends the session and deletes its room.
    pub async fn delete_session(&self, id: &str) -> Result<SessionDeleted, Error> {
        self.send(self.request(Method::DELETE, &["api", "sessions", id]))
            .await
    }

    /// `POST /api/sessions/{id}/guest-token`: a token for a guest to join the session's room.
    pub async fn guest_token(
        &self,
        id: &str,
        body: &GuestTokenRequest,
    ) -> Result<GuestToken, Error> {
        self.send(
            self.request(Method::POST, &["api", "sessions", id, "guest-token"])
                .json(body),
        )
        .await
    }

    /// `GET /api/sessions/{id}/participants`: who is in the room now, by LiveKit.
    pub async fn participants(&self, id: &str) -> Result<Vec<Participant>, Error> {
        self.send(self.request(Method::GET, &["api", "sessions", id, "participants"]))
            .await
    }

    /// `GET /api/sessions/{id}/history`: the conversation so far, oldest first.
    pub async fn history(&self, id: &str) -> Result<History, Error> {
        self.send(self.request(Method::GET, &["api", "sessions", id, "history"]))
            .await
    }

    /// `POST /api/ai/chat`: one text turn, answered as a whole (not streamed).
    pub async fn chat(&self, body: &ChatRequest) -> Result<ChatReply, Error> {
        self.send(
            self.request(Method::POST, &["api", "ai", "chat"])
                .json(body),
        )
        .await
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment (so
    /// an id can never reach another route).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked by the builder: the base URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.request_to(method, self.url(segments))
    }

    fn request_to(&self, method: Method, url: Url) -> RequestBuilder {
        let req = self
            .http
            .request(method, url)
            .timeout(self.timeout)
            // JSON, not the chat route's event stream.
            .header(header::ACCEPT, "application/json");
        match &self.credential {
            Some(credential) => req.bearer_auth(credential),
            None => req,
        }
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, Error> {
        let mut resp = req.send().await.map_err(Error::Transport)?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(Error::Transport)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Error::TooLarge {
                    limit: MAX_BODY_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|source| Error::Decode { status, source });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(body) => Err(Error::Api { status, body }),
            Err(_) => Err(Error::UnexpectedStatus {
                status,
                body: String::from_utf8_lossy(&body)
                    .chars()
                    .take(SNIPPET_CHARS)
                    .collect(),
            }),
        }
    }
}

impl SessionState {
    /// The query value, as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Created => "created",
            SessionState::Active => "active",
            SessionState::Ended => "ended",
            SessionState::Expired => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(base).unwrap()
    }

    #[test]
    fn ids_are_one_encoded_path_segment_under_the_base_path() {
        let c = client("https://gw.example.com/june/");
        let url = c.url(&["api", "sessions", "../../admin?x=1", "history"]);
        assert_eq!(
            url.as_str(),
            "https://gw.example.com/june/api/sessions/..%2F..%2Fadmin%3Fx=1/history"
        );
        let plain = client("http://127.0.0.1:8080");
        assert_eq!(
            plain.url(&["api", "sessions"]).as_str(),
            "http://127.0.0.1:8080/api/sessions"
        );
    }

    #[test]
    fn a_base_url_that_cannot_take_paths_is_refused() {
        for bad in [
            "",
            "june.example.com",
            "mailto:ops@example.com",
            "ftp://x.example",
        ] {
            assert!(
                matches!(Client::new(bad), Err(Error::BaseUrl(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn the_credential_never_appears_in_debug_output() {
        let c = Client::builder("http://127.0.0.1:1")
            .credential("very-secret-key-0123456789")
            .build()
            .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn the_state_filter_is_spelled_as_its_serde_form() {
        for state in [
            SessionState::Created,
            SessionState::Active,
            SessionState::Ended,
            SessionState::Expired,
        ] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
    }
}
