//! `/api/sessions/{id}/participants`: who is in the room, and removing someone.

use actix_web::{HttpResponse, web};

use super::session_id;
use crate::AppState;
use crate::auth::Caller;
use crate::dto::{ParticipantDto, ParticipantRemoved, SessionIdPath};
use crate::error::{ApiError, ErrorBody};

/// `GET /api/sessions/{id}/participants`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/participants",
    tag = "sessions",
    params(SessionIdPath),
    responses(
        (status = 200, body = [ParticipantDto]),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
        (status = 502, body = ErrorBody),
    ),
)]
pub async fn list_participants(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let people = state.sessions.participants_for(&caller, id).await?;
    let body: Vec<ParticipantDto> = people.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// `DELETE /api/sessions/{id}/participants/{identity}`
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}/participants/{identity}",
    tag = "sessions",
    params(SessionIdPath, ("identity" = String, Path, description = "The participant's identity in the room")),
    responses(
        (status = 200, body = ParticipantRemoved),
        (status = 404, description = "No such session or participant", body = ErrorBody),
        (status = 502, body = ErrorBody),
    ),
)]
pub async fn remove_participant(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, identity) = path.into_inner();
    let id = session_id(&raw_id)?;
    state
        .sessions
        .remove_participant_for(&caller, id, &identity)
        .await?;
    tracing::info!(session_id = %id, participant = %identity, "participant removed");
    Ok(HttpResponse::Ok().json(ParticipantRemoved {
        status: "removed",
        session_id: id.to_string(),
        participant: identity,
    }))
}
