use serde::Serialize;

/// The superset answer of the legacy token routes (§2.2): every v3.0 client finds its keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(non_snake_case)]
pub struct LegacyTokenResponse {
    pub token: String,
    pub roomName: String,
    pub participantName: String,
    pub livekitUrl: String,
    pub ws_url: String,
}

/// A room in `POST /rooms/list`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomDto {
    pub sid: String,
    pub name: String,
    pub num_participants: u32,
    pub max_participants: u32,
    pub creation_time: i64,
    pub metadata: String,
}

/// `POST /rooms/list` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomDto>,
}

/// `POST /token`, `/livekit/token` body (documentation; read leniently: a numeric
/// `participantName` is accepted, `metadata` may be a string or an object).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(non_snake_case, dead_code)]
pub struct LegacyTokenRequest {
    #[schema(example = "lobby")]
    pub roomName: String,
    #[schema(example = "zoe")]
    pub participantName: String,
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /api/livekit/token` body (documentation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ServiceTokenRequest {
    pub service_identity: String,
    /// Room; the configured default bot room when absent.
    pub room: Option<String>,
}

/// `POST /api/webhooks/stt` body (documentation; aliases `roomName`, `transcript`,
/// `session_id` are accepted as the STT bots send them).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SttTranscriptRequest {
    /// `partial` or `final`.
    pub event: String,
    pub room_name: String,
    pub participant: Option<String>,
    pub text: String,
    pub language: Option<String>,
    pub confidence: Option<f32>,
}

/// `POST /api/webhooks/voice_onset` body (documentation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct VoiceOnsetRequest {
    pub room_name: String,
    pub participant: Option<String>,
}

/// A status answer (`{"status": …}` plus route-specific fields).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatusResponse {
    pub status: String,
}

/// `POST /api/livekit/token-source` body (LiveKit's standard token endpoint).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenSourceRequest {
    /// A live session's room; absent: a new session is created for the caller.
    pub room_name: Option<String>,
    pub participant_identity: Option<String>,
    pub participant_name: Option<String>,
    pub participant_metadata: Option<String>,
    /// Client-side room settings; agents and limits are refused (422).
    #[schema(value_type = Object)]
    pub room_config: Option<serde_json::Value>,
}

/// `POST /api/livekit/token-source` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenSourceResponse {
    pub server_url: String,
    pub participant_token: String,
}
