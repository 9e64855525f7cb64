//! The ports: what the domain needs from the outside world, one trait per capability.
//! Adapters (LiveKit, SQLite/PostgreSQL, Gemini…) implement them; the domain never names
//! a technology.

mod chat_model;
mod clock;
mod event_store;
mod idempotency;
mod room_service;
mod session_store;
mod speech;
mod token_issuer;
mod webhook_verifier;

pub use chat_model::*;
pub use clock::*;
pub use event_store::*;
pub use idempotency::*;
pub use room_service::*;
pub use session_store::*;
pub use speech::*;
pub use token_issuer::*;
pub use webhook_verifier::*;

/// An opaque cause carried inside a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
