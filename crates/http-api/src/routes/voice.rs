//! `POST /api/webhooks/stt` (transcripts from the STT bot) and `POST /api/webhooks/voice_onset`
//! (barge-in), both with `Authorization: Bearer <STT_SERVICE_TOKEN>` unless `stt.auth` is
//! `none` (June's STT bots send no credentials; design §8.1).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use june_domain::{SessionError, Transcript, TranscriptOutcome};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::dto::{Lenient, StatusResponse, SttTranscriptRequest, VoiceOnsetRequest};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ValidJson;

/// How the STT routes authenticate their caller (`stt.auth`, `STT_WEBHOOK_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SttAuth {
    /// `Authorization: Bearer <STT_SERVICE_TOKEN>` (the default).
    #[default]
    Bearer,
    /// Nothing is checked: any caller, with any `Authorization` header or none, is the STT
    /// bot. For June's STT bots, which send no credentials (`JUNE_COMPAT=v3`).
    None,
}

impl SttAuth {
    /// `bearer` or `none`; anything else is `None`.
    pub fn parse(value: &str) -> Option<SttAuth> {
        match value {
            "bearer" => Some(SttAuth::Bearer),
            "none" => Some(SttAuth::None),
            _ => None,
        }
    }

    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SttAuth::Bearer => "bearer",
            SttAuth::None => "none",
        }
    }
}

/// The bearer token must equal `STT_SERVICE_TOKEN`, compared in constant time.
fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(expected) = &state.config.stt_token else {
        return Err(ApiError::Unavailable {
            detail: "STT_SERVICE_TOKEN is not configured; transcripts are refused".into(),
            code: "stt_auth_not_configured",
        });
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) && !given.is_empty()
    {
        Ok(())
    } else {
        Err(ApiError::Unauthorized {
            detail: "missing or wrong bearer token".into(),
            code: "invalid_token",
        })
    }
}

/// The STT bot, authenticated by its bearer token. As an extractor placed before the body it
/// answers 401 before a byte of the body is parsed: a caller without the token learns nothing
/// about what the route accepts. With `stt.auth = none` every caller passes, whatever
/// `Authorization` it sends: there is nothing to check it against.
pub struct SttBot;

impl FromRequest for SttBot {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("no application state".into()))
                .and_then(|state| match state.config.stt_auth {
                    SttAuth::Bearer => authorize(state, req),
                    SttAuth::None => Ok(()),
                })
                .map(|()| SttBot),
        )
    }
}

/// `POST /api/webhooks/stt`
#[utoipa::path(
    post,
    path = "/api/webhooks/stt",
    tag = "webhooks",
    request_body = SttTranscriptRequest,
    responses(
        (status = 200, body = StatusResponse),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub async fn stt_transcript(
    state: web::Data<AppState>,
    _bot: SttBot,
    ValidJson(Lenient(body)): ValidJson<Lenient<SttTranscriptRequest>>,
) -> Result<HttpResponse, ApiError> {
    let transcript = body.try_into_domain()?;
    // A final may start a turn, which cancels the running one: it takes a place first, so a
    // final refused for want of one changes nothing.
    let slot = if transcript.is_final {
        let Some(slot) = state.background.turn_slot() else {
            crate::metrics::turn_refused();
            return Err(ApiError::Unavailable {
                detail: "too many voice turns are running; send the transcript again".into(),
                code: "voice_busy",
            });
        };
        Some(slot)
    } else {
        None
    };
    let outcome = match state.voice.transcript(transcript.clone()).await {
        Err(SessionError::NotFound) => return unknown_room(&state, transcript).await,
        other => other?,
    };
    match outcome {
        TranscriptOutcome::Partial => {
            Ok(HttpResponse::Ok().json(json!({ "status": "accepted", "event": "partial" })))
        }
        TranscriptOutcome::Skipped(reason) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "skipped", "reason": reason })))
        }
        TranscriptOutcome::Turn(turn) => {
            let generation = turn.generation;
            let voice = state.voice.clone();
            // The turn outlives this request: the STT bot must not wait for the reply. It keeps
            // its place until it ends, and a shutdown waits for it.
            state.background.spawn("voice turn", async move {
                let _slot = slot;
                voice.run_turn(*turn).await;
            });
            Ok(HttpResponse::Ok().json(json!({
                "status": "accepted",
                "event": "final",
                "turn": generation,
            })))
        }
    }
}

/// A transcript for a room no live session owns: the one place that decides what happens
/// to it.
///
/// A partial answers `200 {"status":"skipped","reason":"unknown_room"}`: the newest june-stt
/// posts every partial and logs any other status as an error, and a partial starts nothing
/// anyway. A final is `404 session_not_found`.
///
/// Room adoption (`voice.adopt_rooms`, design §8.1) is the domain's: with it on,
/// `VoiceService::transcript` has already adopted a room LiveKit has, so a final only gets
/// here for a room LiveKit does not have (or with adoption off).
async fn unknown_room(_state: &AppState, transcript: Transcript) -> Result<HttpResponse, ApiError> {
    if !transcript.is_final {
        return Ok(
            HttpResponse::Ok().json(json!({ "status": "skipped", "reason": "unknown_room" }))
        );
    }
    Err(ApiError::Session(SessionError::NotFound))
}

/// `POST /api/webhooks/voice_onset`
#[utoipa::path(
    post,
    path = "/api/webhooks/voice_onset",
    tag = "webhooks",
    request_body = VoiceOnsetRequest,
    responses(
        (status = 200, body = StatusResponse),
        (status = 404, body = ErrorBody),
        (status = 422, description = "No room named, or one with control characters", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub async fn voice_onset(
    state: web::Data<AppState>,
    _bot: SttBot,
    ValidJson(Lenient(body)): ValidJson<Lenient<VoiceOnsetRequest>>,
) -> Result<HttpResponse, ApiError> {
    let generation = state.voice.voice_onset(&body.room()?).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "interrupted", "turn": generation })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stt_auth_reads_its_two_values_and_defaults_to_bearer() {
        assert_eq!(SttAuth::parse("bearer"), Some(SttAuth::Bearer));
        assert_eq!(SttAuth::parse("none"), Some(SttAuth::None));
        assert_eq!(SttAuth::parse("Bearer"), None);
        assert_eq!(SttAuth::default(), SttAuth::Bearer);
        for auth in [SttAuth::Bearer, SttAuth::None] {
            assert_eq!(SttAuth::parse(auth.as_str()), Some(auth));
        }
    }
}
