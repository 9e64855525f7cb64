//! `POST /api/webhooks/stt` (transcripts from the STT bot) and `POST /api/webhooks/voice_onset`
//! (barge-in), both with `Authorization: Bearer <STT_SERVICE_TOKEN>`.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use june_domain::TranscriptOutcome;
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::dto::{Lenient, StatusResponse, SttTranscriptRequest, VoiceOnsetRequest};
use crate::error::{ApiError, AuthResponses, ErrorBody};
use crate::extract::ValidJson;

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
/// about what the route accepts.
pub struct SttBot;

impl FromRequest for SttBot {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("no application state".into()))
                .and_then(|state| authorize(state, req))
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
        AuthResponses,
    ),
)]
pub async fn stt_transcript(
    state: web::Data<AppState>,
    _bot: SttBot,
    ValidJson(Lenient(body)): ValidJson<Lenient<SttTranscriptRequest>>,
) -> Result<HttpResponse, ApiError> {
    let transcript = body.try_into_domain()?;
    match state.voice.transcript(transcript).await? {
        TranscriptOutcome::Partial => {
            Ok(HttpResponse::Ok().json(json!({ "status": "accepted", "event": "partial" })))
        }
        TranscriptOutcome::Skipped(reason) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "skipped", "reason": reason })))
        }
        TranscriptOutcome::Turn(turn) => {
            let generation = turn.generation;
            let voice = state.voice.clone();
            // The turn outlives this request: the STT bot must not wait for the reply.
            actix_web::rt::spawn(async move {
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

/// `POST /api/webhooks/voice_onset`
#[utoipa::path(
    post,
    path = "/api/webhooks/voice_onset",
    tag = "webhooks",
    request_body = VoiceOnsetRequest,
    responses(
        (status = 200, body = StatusResponse),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
        AuthResponses,
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
