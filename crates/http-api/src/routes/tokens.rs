//! The token routes real v3.0 clients call (§2.2), and `POST /rooms/list`.

use actix_web::{HttpResponse, web};
use june_domain::Grants;

use crate::AppState;
use crate::auth::Caller;
use crate::dto::{
    LegacyTokenRequest, LegacyTokenResponse, Lenient, RoomDto, RoomList, ServiceTokenRequest,
    TokenSourceRequest, TokenSourceResponse,
};
use crate::error::{ApiError, AuthResponses, ErrorBody};
use crate::extract::ValidJson;

fn legacy_response(
    state: &AppState,
    token: String,
    room: String,
    identity: String,
) -> HttpResponse {
    HttpResponse::Ok().json(LegacyTokenResponse {
        token,
        roomName: room,
        participantName: identity,
        livekitUrl: state.config.livekit_url.clone(),
        ws_url: state.config.livekit_url.clone(),
    })
}

/// `POST /token` and `POST /livekit/token`: `{roomName, participantName, metadata?}`.
#[utoipa::path(
    post,
    path = "/token",
    tag = "tokens",
    request_body = LegacyTokenRequest,
    responses(
        (status = 200, body = LegacyTokenResponse),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not a live session of the caller's (users only)", body = ErrorBody),
        (status = 422, body = ErrorBody),
        AuthResponses,
    ),
)]
pub async fn participant_token(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    ValidJson(Lenient(body)): ValidJson<Lenient<LegacyTokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (Some(room), Some(identity)) = (body.room_name, body.participant_name) else {
        return Err(ApiError::BadRequest {
            detail: "roomName and participantName are required".into(),
            code: "missing_fields",
        });
    };
    if !caller.may_act_as(&identity) {
        return Err(ApiError::Forbidden {
            detail: "tokens can only be minted for your own identity".into(),
        });
    }
    if !caller.is_admin() {
        // A user joins only the room of a live session they may act for. Someone else's
        // session and a room that is no session get the same 404, so names do not leak.
        state.sessions.live_by_room(&caller, &room).await?;
    }
    let token =
        state
            .sessions
            .participant_token(&room, &identity, &body.metadata, Grants::owner(&room))?;
    Ok(legacy_response(&state, token.jwt, room, identity))
}

/// `POST /api/livekit/token`: `{service_identity, room?}` for the STT/TTS bots: hidden agents.
#[utoipa::path(
    post,
    path = "/api/livekit/token",
    tag = "tokens",
    request_body = ServiceTokenRequest,
    responses(
        (status = 200, body = LegacyTokenResponse),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        AuthResponses,
    ),
)]
pub async fn service_token(
    state: web::Data<AppState>,
    caller: Caller,
    ValidJson(Lenient(body)): ValidJson<Lenient<ServiceTokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let Some(identity) = body.service_identity.clone() else {
        return Err(ApiError::BadRequest {
            detail: "service_identity is required".into(),
            code: "missing_fields",
        });
    };
    let Some(room) = body
        .room()
        .or_else(|| state.config.default_bot_room.clone())
    else {
        return Err(ApiError::BadRequest {
            detail: "room is required (no default bot room is configured)".into(),
            code: "missing_fields",
        });
    };
    let token = state
        .sessions
        .participant_token(&room, &identity, "", Grants::bot(&room))?;
    Ok(legacy_response(&state, token.jwt, room, identity))
}

/// `POST /rooms/list`: LiveKit's live rooms.
#[utoipa::path(
    post,
    path = "/rooms/list",
    tag = "tokens",
    request_body(content = Object, description = "{}"),
    responses(
        (status = 200, body = RoomList),
        (status = 502, body = ErrorBody),
        AuthResponses,
    ),
)]
pub async fn list_rooms(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    // Any JSON is accepted and nothing of it is read.
    ValidJson(_): ValidJson<serde::de::IgnoredAny>,
) -> Result<HttpResponse, ApiError> {
    let mut rooms = state.sessions.rooms().await?;
    if !caller.is_admin() {
        // A user sees the rooms of their own sessions only.
        let mine = state
            .sessions
            .list(
                Some(caller.id.clone()),
                None,
                Some(june_domain::MAX_PAGE),
                None,
            )
            .await?;
        rooms.retain(|r| mine.sessions.iter().any(|s| s.room_name == r.name));
    }
    Ok(HttpResponse::Ok().json(RoomList {
        rooms: rooms
            .into_iter()
            .map(|r| RoomDto {
                sid: r.sid,
                name: r.name,
                num_participants: r.num_participants,
                max_participants: r.max_participants,
                creation_time: r.creation_time,
                metadata: r.metadata,
            })
            .collect(),
    }))
}

/// Settings of `room_config` that are the server's to choose, never the client's.
const SERVER_SIDE: &[&str] = &[
    "agents",
    "empty_timeout",
    "emptyTimeout",
    "departure_timeout",
    "departureTimeout",
    "max_participants",
    "maxParticipants",
    "egress",
];

/// `POST /api/livekit/token-source`: LiveKit's standard token endpoint, so a client SDK's
/// `TokenSource.endpoint(url)` works unchanged. No room: a new session is created for the
/// caller. A room: it must be a live session the caller may act for.
#[utoipa::path(
    post,
    path = "/api/livekit/token-source",
    tag = "tokens",
    request_body = TokenSourceRequest,
    responses(
        (status = 201, body = TokenSourceResponse),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        AuthResponses,
    ),
)]
pub async fn token_source(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    ValidJson(Lenient(body)): ValidJson<Lenient<TokenSourceRequest>>,
) -> Result<HttpResponse, ApiError> {
    if let Some(config) = &body.room_config {
        let Some(config) = config.as_object() else {
            return Err(ApiError::invalid("room_config", "must be an object"));
        };
        if let Some(key) = SERVER_SIDE
            .iter()
            .find(|k| config.get(**k).is_some_and(|v| !v.is_null()))
        {
            return Err(ApiError::invalid(
                "room_config",
                format!("{key} is chosen by the server, not the client"),
            ));
        }
    }
    let identity = match body.participant_identity {
        Some(id) if caller.may_act_as(&id) => id,
        Some(_) => {
            return Err(ApiError::Forbidden {
                detail: "tokens can only be minted for your own identity".into(),
            });
        }
        None if caller.is_authenticated() => caller.id.clone(),
        None => return Err(ApiError::invalid("participant_identity", "is required")),
    };
    let room = match body.room_name {
        Some(room) => state.sessions.live_by_room(&caller, &room).await?.room_name,
        None => {
            state
                .sessions
                .create(june_domain::NewSession {
                    user_id: identity.clone(),
                    ..Default::default()
                })
                .await?
                .session
                .room_name
        }
    };
    let token = state.sessions.participant_token(
        &room,
        &identity,
        &body.participant_metadata,
        Grants::owner(&room),
    )?;
    Ok(HttpResponse::Created().json(TokenSourceResponse {
        server_url: state.config.livekit_url.clone(),
        participant_token: token.jwt,
    }))
}
