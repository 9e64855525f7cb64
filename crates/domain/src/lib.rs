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

mod auth;
pub mod batch;
mod conversation;
mod domain;
mod events;
mod lifecycle;
pub mod memory;
mod model;
mod policy;
pub mod ports;
mod service;
mod voice;

pub use auth::*;
pub use conversation::*;
pub use domain::{Domain, DomainPolicies, DomainPorts};
pub use events::*;
pub use lifecycle::*;
pub use model::*;
pub use policy::*;
pub use service::*;
pub use voice::*;

// Ports that used to live at the crate root, where downstream code still names them.
pub use ports::{AuthError, Authenticator, NoObserver, TurnObserver};

#[cfg(test)]
mod conversation_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;
