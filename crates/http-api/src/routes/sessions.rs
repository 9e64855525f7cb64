//! `/api/sessions`: create, read (fresh token), list, delete, guest tokens, history.

use actix_web::{HttpRequest, HttpResponse, web};
use june_domain::{NewSession, SessionStatus};

use super::session_id;
use crate::AppState;
use crate::auth::Caller;
use crate::dto::{
    CreateSessionRequest, GuestTokenRequest, GuestTokenResponse, HistoryCleared, HistoryResponse,
    ListSessionsQuery, SessionDeleted, SessionIdPath, SessionList, SessionResponse, decode_cursor,
    encode_cursor,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{RawBody, ValidJson, parse};
use crate::idempotency;
use june_domain::Principal;

/// `POST /api/sessions`, honouring `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "sessions",
    request_body = CreateSessionRequest,
    params((
        "Idempotency-Key" = Option<String>,
        Header,
        description = "1–255 visible ASCII characters. The same key and body within 24 h return the first response; the same key with another body is 422; a retry while the first is still running waits for it, then is 409",
        min_length = 1,
        max_length = 255,
        pattern = r"^[!-~]{1,255}$"
    )),
    responses(
        (status = 200, body = SessionResponse),
        (status = 409, description = "Room name used by a live session or by LiveKit (`room_name_taken`), or a request with the same Idempotency-Key still running (`idempotency_in_progress`)", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, description = "LiveKit unavailable or refusing", body = ErrorBody),
    ),
)]
pub async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    Caller(caller): Caller,
    RawBody(raw): RawBody,
) -> Result<HttpResponse, ApiError> {
    let mut body: CreateSessionRequest = parse(&raw)?;
    body.user_id = Some(owner(&caller, body.user_id.take())?);
    let key = req
        .headers()
        .get(idempotency::HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let answer = match key {
        None => create(&state, body).await?,
        Some(key) => {
            // Keys are per caller: two callers' "1" are not the same request.
            let key = state.idempotency.key(&caller, &key, &raw)?;
            idempotency::once(&state.idempotency, &key, || create(&state, body)).await?
        }
    };
    Ok(HttpResponse::Ok().json(answer))
}

/// The session owner: the caller when authenticated (a named `user_id` must be theirs,
/// unless they are an admin or a service); the body's `user_id` when auth is off.
fn owner(caller: &Principal, asked: Option<String>) -> Result<String, ApiError> {
    match asked {
        Some(user) if caller.may_act_as(&user) => Ok(user),
        Some(_) => Err(ApiError::invalid(
            "user_id",
            "must equal the caller's identity",
        )),
        None if caller.is_authenticated() => Ok(caller.id.clone()),
        None => Err(ApiError::invalid("user_id", "is required")),
    }
}

async fn create(
    state: &AppState,
    body: CreateSessionRequest,
) -> Result<serde_json::Value, ApiError> {
    let created = state
        .sessions
        .create(NewSession {
            user_id: body.user_id.unwrap_or_default(),
            room_name: body.room_name,
            metadata: body.metadata.unwrap_or_default(),
            language: body.language,
            voice: body.voice.unwrap_or(false),
            ttl_seconds: body.ttl_seconds,
        })
        .await?;
    tracing::info!(session_id = %created.session.id, room = %created.session.room_name, "session created");
    serde_json::to_value(SessionResponse::new(created, &state.config.livekit_url))
        .map_err(|e| ApiError::Internal(format!("session response could not be encoded: {e}")))
}

/// `GET /api/sessions/{id}`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}",
    tag = "sessions",
    params(SessionIdPath),
    responses(
        (status = 200, description = "The session with a freshly minted token and its turns in figures (`summary`)", body = SessionResponse),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
    ),
)]
pub async fn get_session(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let (found, summary) = state.sessions.get_with_summary_for(&caller, id).await?;
    let mut response = SessionResponse::new(found, &state.config.livekit_url);
    response.summary = Some(summary.into());
    Ok(HttpResponse::Ok().json(response))
}

/// `GET /api/sessions?user_id=&status=&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "sessions",
    params(ListSessionsQuery),
    responses(
        (status = 200, body = SessionList),
        (status = 422, body = ErrorBody),
    ),
)]
pub async fn list_sessions(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    query: web::Query<ListSessionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(SessionStatus::parse(s).ok_or_else(|| {
            ApiError::invalid("status", "must be one of created, active, ended, expired")
        })?),
    };
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?,
        ),
    };
    if q.limit == Some(0) {
        return Err(ApiError::invalid("limit", "must be at least 1"));
    }
    // Users see their own sessions only, whatever they ask for.
    let user_id = if caller.is_admin() {
        q.user_id.filter(|u| !u.is_empty())
    } else {
        Some(caller.id.clone())
    };
    let page = state.sessions.list(user_id, status, q.limit, after).await?;
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: page.sessions.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor.map(encode_cursor),
    }))
}

/// `DELETE /api/sessions/{id}`
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}",
    tag = "sessions",
    params(SessionIdPath),
    responses(
        (status = 200, body = SessionDeleted),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
        (status = 502, body = ErrorBody),
    ),
)]
pub async fn delete_session(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    state.sessions.end_for(&caller, id).await?;
    tracing::info!(session_id = %id, "session deleted");
    Ok(HttpResponse::Ok().json(SessionDeleted {
        status: "deleted",
        session_id: id.to_string(),
    }))
}

/// `POST /api/sessions/{id}/guest-token`
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/guest-token",
    tag = "sessions",
    params(SessionIdPath),
    request_body = GuestTokenRequest,
    responses(
        (status = 200, body = GuestTokenResponse),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
        (status = 409, description = "Session over", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
pub async fn create_guest_token(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
    ValidJson(body): ValidJson<GuestTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = state
        .sessions
        .authorize(&caller, session_id(&path)?)
        .await?;
    if let Some(body_id) = body.session_id.as_deref()
        && body_id != path.as_str()
    {
        return Err(ApiError::invalid(
            "session_id",
            "must equal the session id in the path",
        ));
    }
    let guest = state.sessions.guest_token_in(
        session,
        &body.guest_name,
        body.ttl_seconds,
        body.can_publish.unwrap_or(true),
    )?;
    Ok(HttpResponse::Ok().json(GuestTokenResponse::new(guest, &state.config.livekit_url)))
}

/// `GET /api/sessions/{id}/history`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/history",
    tag = "sessions",
    params(SessionIdPath),
    responses(
        (status = 200, body = HistoryResponse),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
    ),
)]
pub async fn get_history(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let history = state.sessions.history_for(&caller, id).await?;
    Ok(HttpResponse::Ok().json(HistoryResponse {
        session_id: id.to_string(),
        history: history.into_iter().map(Into::into).collect(),
    }))
}

/// `DELETE /api/sessions/{id}/history`
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}/history",
    tag = "sessions",
    params(SessionIdPath),
    responses(
        (status = 200, body = HistoryCleared),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
    ),
)]
pub async fn clear_history(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    state.sessions.clear_history_for(&caller, id).await?;
    Ok(HttpResponse::Ok().json(HistoryCleared {
        status: "cleared",
        session_id: id.to_string(),
    }))
}
