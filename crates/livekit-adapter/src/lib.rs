//! # june-livekit-adapter
//!
//! The domain's [`RoomService`](june_domain::ports::RoomService) and
//! [`TokenIssuer`](june_domain::ports::TokenIssuer) ports on LiveKit's official
//! `livekit-api` crate (Twirp RoomService over rustls, HS256 access tokens).
//!
//! May depend on the domain and LiveKit's crates; never on the web framework, the store or
//! the AI adapters. LiveKit's errors are turned into [`RoomError`](june_domain::ports::RoomError)
//! here, at the boundary, so nothing above this crate knows Twirp.

mod dispatch;
mod rooms;
mod tokens;
mod webhooks;

pub use dispatch::LiveKitAgentDispatcher;
pub use rooms::{LiveKitRoomService, api_url_from_ws};
pub use tokens::LiveKitTokenIssuer;
pub use webhooks::{LiveKitWebhookVerifier, parse_event};
