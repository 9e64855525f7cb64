//! The OpenAPI document, collected from the handlers' `#[utoipa::path]` annotations. The
//! committed copy (`openapi/openapi.json`) is compared with it by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::error::ErrorBody;
use crate::routes::{ai, health, participants, sessions, tokens, voice, webhooks};

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
    paths(
        sessions::create_session, sessions::list_sessions, sessions::get_session,
        sessions::delete_session, sessions::create_guest_token, sessions::get_history,
        sessions::clear_history, participants::list_participants,
        participants::remove_participant, webhooks::list_events, webhooks::livekit_webhook,
        tokens::participant_token, tokens::service_token, tokens::token_source,
        tokens::list_rooms, ai::chat,
        ai::tts_publish, voice::stt_transcript, voice::voice_onset, health::service_info,
        health::healthz, health::readyz,
    ),
    components(schemas(
        ErrorBody, CreateSessionRequest, SessionResponse, SessionSummary, SessionList,
        SessionDeleted, ParticipantDto, TrackDto, ParticipantRemoved, GuestTokenRequest,
        GuestTokenResponse, HistoryEntryDto, HistoryResponse, HistoryCleared, EventDto,
        EventList, LegacyTokenRequest, LegacyTokenResponse, ServiceTokenRequest, RoomDto,
        RoomList, TokenSourceRequest, TokenSourceResponse, ChatRequestDto, ChatResponse, TtsPublishRequest, SttTranscriptRequest,
        VoiceOnsetRequest, StatusResponse,
    )),
    modifiers(&BearerAuth),
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
