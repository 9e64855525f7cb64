//! The OpenAPI document: the operations of the handlers the route table registers
//! ([`crate::Operations`]) and the schemas they use, with the API's info and security. The committed
//! copy (`openapi/openapi.json`) is compared with it by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "June Orchestrator",
        description = "Control plane of the June voice-AI platform on LiveKit: sessions, tokens, \
            LiveKit webhooks, AI chat and the voice loop. Legacy aliases of v3.0 (`/livekit/token`, \
            `/api/ai/process`, trailing-slash forms) are listed in docs/compat.md.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Routes, &BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "sessions", description = "Sessions: rooms, tokens, participants, history, events"),
        (name = "tokens", description = "Token routes v3.0 clients call"),
        (name = "ai", description = "Chat on Gemini, speech through TTS"),
        (name = "webhooks", description = "LiveKit's signed webhooks and the STT bot's transcripts"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// The paths and the schemas they use: every operation of the route table
/// ([`crate::Operations`]), none other.
struct Routes;

impl Modify for Routes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.merge(crate::Operations::openapi());
    }
}

/// Bearer credentials: an API key or an OIDC access token (when `AUTH_MODE` is not `none`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON, as committed in `openapi/openapi.json`.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
