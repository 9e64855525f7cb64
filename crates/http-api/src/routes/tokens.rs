//! The token routes real v3.0 clients call (§2.2), and `POST /rooms/list`.

use actix_web::{HttpResponse, web};
use june_domain::{Grants, Principal};

use crate::AppState;
use crate::auth::Caller;
use crate::dto::{
    LegacyTokenRequest, LegacyTokenResponse, Lenient, RoomDto, RoomList, SERVER_SIDE_ROOM_CONFIG,
    ServiceTokenRequest, TokenSourceRequest, TokenSourceResponse,
};
use crate::error::{ApiError, ErrorBody};
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

/// Who gets bot grants from the token routes (design §8.1): the STT and TTS agent names
/// (`voice.stt_agent_name`, `voice.tts_agent_name`) and `livekit.bot_identities`. Any other
/// identity is a participant.
///
/// Bots are agents. Only the STT bot, which only listens, is also hidden: LiveKit tells
/// nobody else about a hidden participant, so a hidden bot that speaks would go unseen by
/// the apps (ozzu-app finds June's voice by a participant whose identity contains `tts` or
/// `june`) and its track would belong to no participant they know. docs/compat.md.
#[derive(Debug, Clone, Default)]
pub struct BotIdentities {
    /// Hidden agents: the STT bot.
    listeners: Vec<String>,
    /// Visible agents: the TTS bot and `livekit.bot_identities`.
    speakers: Vec<String>,
}

impl BotIdentities {
    /// The STT agent, the TTS agent, and a comma-separated list of other bot identities.
    pub fn new(stt_agent: &str, tts_agent: &str, others: &str) -> Self {
        let names = |list: &str| -> Vec<String> {
            list.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let listeners = names(stt_agent);
        let mut speakers = names(tts_agent);
        speakers.extend(names(others));
        speakers.retain(|n| !listeners.contains(n));
        BotIdentities {
            listeners,
            speakers,
        }
    }

    /// The bot grants of `identity` in `room`, or `None` when it is no configured bot.
    pub fn grants(&self, identity: &str, room: &str) -> Option<Grants> {
        if self.listeners.iter().any(|n| n == identity) {
            Some(Grants::bot(room))
        } else if self.speakers.iter().any(|n| n == identity) {
            Some(Grants {
                hidden: false,
                ..Grants::bot(room)
            })
        } else {
            None
        }
    }
}

/// A participant's token for `room` as `identity`: what `POST /token` mints. A user (not an
/// admin or a service) gets one only for themselves, and only in the room of a live session
/// they may act for.
async fn participant(
    state: &AppState,
    caller: &Principal,
    room: String,
    identity: String,
    metadata: &str,
) -> Result<HttpResponse, ApiError> {
    if !caller.may_act_as(&identity) {
        return Err(ApiError::Forbidden {
            detail: "tokens can only be minted for your own identity".into(),
        });
    }
    if !caller.is_admin() {
        // A user joins only the room of a live session they may act for. Someone else's
        // session and a room that is no session get the same 404, so names do not leak.
        state.sessions.live_by_room(caller, &room).await?;
    }
    let token =
        state
            .sessions
            .participant_token(&room, &identity, metadata, Grants::owner(&room))?;
    Ok(legacy_response(state, token.jwt, room, identity))
}

/// A token for `identity` in `room`, or in `livekit.default_bot_room` when the body names
/// none: what `POST /api/livekit/token` mints. A configured bot gets bot grants (for admins
/// and services only); any other identity is a participant, minted as `POST /token` would.
async fn service(
    state: &AppState,
    caller: &Principal,
    identity: String,
    room: Option<String>,
    metadata: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(room) = room.or_else(|| state.config.default_bot_room.clone()) else {
        return Err(ApiError::BadRequest {
            detail: "room is required: name it in the body (room or roomName), or set \
                     livekit.default_bot_room (JUNE__LIVEKIT__DEFAULT_BOT_ROOM; JUNE_COMPAT=v3 \
                     sets ozzu-main)"
                .into(),
            code: "missing_fields",
        });
    };
    let Some(grants) = state.config.bots.grants(&identity, &room) else {
        return participant(state, caller, room, identity, metadata).await;
    };
    if !caller.is_admin() {
        return Err(ApiError::Forbidden {
            detail: "bot tokens are for admins and services".into(),
        });
    }
    let token = state
        .sessions
        .participant_token(&room, &identity, "", grants)?;
    Ok(legacy_response(state, token.jwt, room, identity))
}

/// `POST /token` and `POST /livekit/token`: `{roomName, participantName, metadata?}` or
/// `{room, identity}`. A body with `service_identity` and no participant is minted as by
/// `POST /api/livekit/token` (june-tts sends that to `/livekit/token`).
#[utoipa::path(
    post,
    path = "/token",
    tag = "tokens",
    request_body = LegacyTokenRequest,
    responses(
        (status = 200, body = LegacyTokenResponse),
        (status = 400, description = "No usable room and identity (`missing_fields`), or a body that is not JSON (`malformed_json`)", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not a live session of the caller's (users only)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
pub async fn participant_token(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    ValidJson(Lenient(body)): ValidJson<Lenient<LegacyTokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (room, identity) = (body.room(), body.identity());
    if let (None, Some(bot)) = (&identity, &body.service_identity) {
        return service(&state, &caller, bot.clone(), room, &body.metadata).await;
    }
    let (Some(room), Some(identity)) = (room, identity) else {
        return Err(ApiError::BadRequest {
            detail: "roomName and participantName are required".into(),
            code: "missing_fields",
        });
    };
    participant(&state, &caller, room, identity, &body.metadata).await
}

/// `POST /api/livekit/token`: `{service_identity, room?}` (the identity may come under
/// `participantName` or `identity`). The STT/TTS bots get bot grants; any other identity
/// gets a participant's token, as from `POST /token`.
#[utoipa::path(
    post,
    path = "/api/livekit/token",
    tag = "tokens",
    request_body = ServiceTokenRequest,
    responses(
        (status = 200, body = LegacyTokenResponse),
        (status = 400, description = "No identity, or no room and no `livekit.default_bot_room` (`missing_fields`), or a body that is not JSON (`malformed_json`)", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not a live session of the caller's (users asking for a participant token)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
pub async fn service_token(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    ValidJson(Lenient(body)): ValidJson<Lenient<ServiceTokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    let Some(identity) = body.identity() else {
        return Err(ApiError::BadRequest {
            detail: "service_identity is required".into(),
            code: "missing_fields",
        });
    };
    service(&state, &caller, identity, body.room(), "").await
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
        if let Some(key) = SERVER_SIDE_ROOM_CONFIG
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_bots_get_bot_grants_and_only_the_listener_is_hidden() {
        let bots = BotIdentities::new("june-stt", "june-tts", " cosyvoice2-tts, ,extra-bot ");
        let stt = bots.grants("june-stt", "r").unwrap();
        assert!(stt.hidden && stt.agent && stt.room_join);
        assert_eq!(stt.room, "r");
        for speaker in ["june-tts", "cosyvoice2-tts", "extra-bot"] {
            let g = bots.grants(speaker, "r").unwrap();
            assert!(g.agent && !g.hidden && g.can_publish, "{speaker}");
        }
        for person in ["frontend-user", "ozzu-app", "", "June-STT", "june"] {
            assert_eq!(bots.grants(person, "r"), None, "{person:?}");
        }
        // Nobody is a bot unless configured.
        assert_eq!(BotIdentities::default().grants("june-stt", "r"), None);
        // A name that is both stays a listener.
        let both = BotIdentities::new("bot", "bot", "bot");
        assert!(both.grants("bot", "r").unwrap().hidden);
    }
}
