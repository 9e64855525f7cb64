//! # june-domain
//!
//! The heart of June Orchestrator: what a voice **session** is (one LiveKit room, one owner,
//! its guests, its conversation, its state), the rules it follows, and the **ports** (traits)
//! through which it reaches the outside world. Adapters for LiveKit, SQLite/PostgreSQL and the
//! AI services implement the ports in their own crates.
//!
//! This crate must never depend on a web framework, a database driver, an HTTP client or
//! LiveKit's SDK: Rust services embed it, and it must stay small and testable with mocks
//! (enable the `mocks` feature to get `Mock*` versions of every port).
//!
//! ## Example: a session's life with in-memory adapters
//!
//! ```
//! use std::sync::Arc;
//! use june_domain::memory::{InMemoryRooms, InMemoryStore};
//! use june_domain::ports::{TokenError, TokenIssuer, WebhookError, WebhookVerifier};
//! use june_domain::{Domain, DomainPorts, IssuedToken, LiveKitEvent, NewSession, SessionStatus, TokenRequest};
//!
//! /// A real issuer signs a JWT (see june-livekit-adapter); this one just names the grant.
//! struct PlainTokens;
//! impl TokenIssuer for PlainTokens {
//!     fn issue(&self, r: &TokenRequest) -> Result<IssuedToken, TokenError> {
//!         Ok(IssuedToken { jwt: format!("{}@{}", r.identity, r.grants.room), expires_at: chrono::Utc::now() + r.ttl })
//!     }
//! }
//!
//! /// This example takes no webhooks (examples/embed.rs does).
//! struct NoWebhooks;
//! impl WebhookVerifier for NoWebhooks {
//!     fn verify(&self, _: &[u8], _: Option<&str>) -> Result<LiveKitEvent, WebhookError> {
//!         Err(WebhookError::Unauthorized("no webhooks here".into()))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let ports = DomainPorts::with_store(
//!     Arc::new(InMemoryStore::default()),
//!     Arc::new(InMemoryRooms::default()),
//!     Arc::new(PlainTokens),
//!     Arc::new(NoWebhooks),
//! );
//! let sessions = Domain::new(ports, Default::default()).sessions;
//!
//! let created = sessions
//!     .create(NewSession { user_id: "alice".into(), ..Default::default() })
//!     .await?;
//! assert!(created.session.room_name.starts_with("room-alice-"));
//! assert_eq!(created.session.status, SessionStatus::Created);
//!
//! // Every read mints a fresh token for the owner.
//! let read = sessions.get(created.session.id).await?;
//! assert!(read.token.is_some());
//!
//! // Ending it deletes the room; a second end is "not found".
//! let ended = sessions.end(created.session.id).await?;
//! assert_eq!(ended.status, SessionStatus::Ended);
//! assert!(sessions.end(created.session.id).await.is_err());
//! # Ok::<(), june_domain::SessionError>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]

// The API at a glance: each module's main types are re-exported below, grouped by module;
// the modules are public for the rest (helpers, constants), e.g. `june_domain::policy::sanitise`.

pub mod adoption;
mod announce;
pub mod auth;
pub mod batch;
pub mod conversation;
pub mod domain;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lifecycle;
pub mod memory;
pub mod model;
pub mod policy;
pub mod ports;
pub mod service;
mod speaker;
pub mod turns;
pub mod voice;

// Building the services: every port, every policy, one constructor.
pub use domain::{Domain, DomainPolicies, DomainPorts};

// Sessions and what they are made of.
pub use model::{
    HistoryEntry, Participant, ParticipantState, Role, Room, RoomSpec, Session, SessionKind,
    SessionStatus, Track, TrackKind,
};

// Room sessions: rooms LiveKit has and no session owns, adopted (`voice.adopt_rooms`).
pub use adoption::RoomAdopter;

// The rules: grants, lifetimes, names.
pub use policy::{
    Grants, IssuedToken, MAX_IDENTITY_LEN, MAX_ROOM_NAME_LEN, MAX_TTL_SECONDS, SessionPolicy,
    TokenRequest, generated_room_name, guest_identity, room_name_problem,
};

// Who is calling.
pub use auth::{
    Principal, PrincipalKind, ROOM_SESSION_OWNER, api_key_identity, is_api_key_identity,
    is_reserved_identity, is_service_identity,
};

// The domain's one error (`SessionError` is its old name).
pub use error::{DomainError, SessionError};

// The session use cases.
pub use service::{
    DEFAULT_PAGE, GuestToken, HISTORY_READ_LIMIT, MAX_PAGE, MAX_TURNS_PAGE, NewSession,
    SessionPage, SessionService, SessionWithToken, TurnPage,
};

// What LiveKit tells us, and what the lifecycle keeps of it.
pub use events::{
    EventKind, EventParticipant, EventTrack, LiveKitEvent, ReapReport, RecordedEvent,
    WebhookOutcome,
};

// Webhooks, the event log, the reaper.
pub use lifecycle::{
    EventPage, LifecycleService, REAP_BATCH, REAPER_LEASE, WEBHOOK_BATCH, WebhookReceipt,
};

// Chat turns with the language model, and speech.
pub use conversation::{
    ChatOutcome, ChatTurn, ConversationPolicy, ConversationService, MAX_SENTENCE_CHARS,
    MAX_USER_TEXT, NoDeltas, SentenceSplitter,
};

// `Idempotency-Key`: one answer per key and body.
pub use idempotency::{Claim, IdempotencyKey, IdempotencyService};

// The voice loop.
pub use voice::{
    BotDispatch, PendingTurn, Transcript, TranscriptOutcome, TurnOutcome, TurnReport, VoiceConfig,
    VoiceService,
};

// Ports that used to live at the crate root, where downstream code still names them.
pub use ports::{
    AuthError, Authenticator, LiveEvent, LiveEvents, NoLiveEvents, NoObserver, SessionEvent,
    TurnObserver,
};
pub use turns::{
    Heard, InterruptedBy, Interruption, Partials, RecordOutcome, Reply, TokenUsage, TurnFailure,
    TurnRecord, TurnSource, TurnTimings,
};

// What the crate's own tests build single services from (`use crate::*`).
#[cfg(test)]
pub(crate) use {
    conversation::{ConversationPorts, window},
    lifecycle::LifecyclePorts,
    voice::VoicePorts,
};

#[cfg(test)]
mod adoption_tests;
#[cfg(test)]
mod conversation_tests;
#[cfg(test)]
mod fake_clock;
#[cfg(test)]
mod idempotency_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod voice_tests;
