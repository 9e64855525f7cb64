//! # june-testkit
//!
//! Test doubles shared by every crate's tests and the end-to-end tests. Never a dependency
//! of production code.
//!
//! [`LiveKitDouble`] is a LiveKit server as far as the orchestrator can tell: it speaks the
//! real Twirp `livekit.RoomService` over HTTP with protobuf and JSON bodies
//! (`livekit-protocol` types), checks the bearer JWT and the grant each method needs, keeps
//! rooms and participants in memory, and can be told to fail (5xx) or hang. It follows the
//! real server's habits (see `shared/livekit-notes.md` §1 and §7):
//! - a bad, expired or unknown-key token gets a **plain-text** 401; a missing grant gets
//!   Twirp `unauthenticated` (401 JSON), never 403;
//! - CreateRoom on a live room returns it unchanged; DeleteRoom on a missing room is 404
//!   `not_found`; ListParticipants of an unknown room is an empty list;
//! - JSON replies use snake_case keys, as the OSS server's Twirp handlers do (unlike the
//!   real server, default values are omitted).
//! - `SendData` (admin of that room) is delivered only to a live room (else `not_found`)
//!   and kept, in order, for [`LiveKitDouble::data_messages`]: the captions a test asserts.
//!
//! [`FakeIdp`] is an OIDC identity provider (discovery + JWKS) that signs test tokens.
//!
//! [`Balancer`] puts several server processes behind one port, round-robin over the ready
//! ones, as a Kubernetes Service does (the OS-process replica suite, `tests/replicas`).
//!
//! [`session()`] builds a domain `Session` with sensible defaults; `pg::PgSchema` (feature
//! `postgres`) gives a test its own schema on the real PostgreSQL.

pub mod balancer;
pub mod drip;
pub mod idp;
mod livekit;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod proxy;
pub mod recorder;
mod session;
pub mod webhook;

pub use balancer::{BackendId, Balancer};
pub use idp::FakeIdp;
pub use livekit::{Call, DataMessage, Failure, LiveKitDouble};
pub use session::{SessionBuilder, session};

/// A plain HTTP client for tests. reqwest as built in this workspace (through `livekit-api`)
/// has rustls without a chosen crypto provider; this installs ring, the one LiveKit's client
/// uses, as the process default first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .expect("a reqwest client with the ring provider")
}
