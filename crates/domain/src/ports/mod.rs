//! The ports: what the domain needs from the outside world, one trait per capability, each
//! small enough to mock and to implement alone. Adapters (LiveKit, SQLite/PostgreSQL,
//! Gemini…) implement them; the domain never names a technology.
//!
//! The store is several ports, split by what each service needs: [`SessionStore`] (the
//! sessions), [`PresenceStore`], [`VoiceStateStore`], [`LeaseStore`], [`StoreHealth`],
//! [`HistoryStore`], [`TurnStore`], [`EventStore`] and [`IdempotencyStore`]; they share [`StoreError`].

mod authenticator;
mod chat_model;
mod clock;
mod event_store;
mod history_store;
mod idempotency;
mod lease_store;
mod live_events;
mod live_feed;
mod presence_store;
mod room_service;
mod session_store;
mod speech;
mod store_error;
mod store_health;
mod token_issuer;
mod turn_observer;
mod turn_store;
mod voice_state_store;
mod webhook_verifier;

pub use authenticator::*;
pub use chat_model::*;
pub use clock::*;
pub use event_store::*;
pub use history_store::*;
pub use idempotency::*;
pub use lease_store::*;
pub use live_events::*;
pub use live_feed::*;
pub use presence_store::*;
pub use room_service::*;
pub use session_store::*;
pub use speech::*;
pub use store_error::*;
pub use store_health::*;
pub use token_issuer::*;
pub use turn_observer::*;
pub use turn_store::*;
pub use voice_state_store::*;
pub use webhook_verifier::*;

/// An opaque cause carried inside a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
