//! `/api/sessions/{id}/turns`: the session's turn records (design.md §8.3), with the same
//! ownership rule as the other session routes (someone else's session is 404).

use actix_web::{HttpResponse, web};

use super::session_id;
use crate::AppState;
use crate::auth::Caller;
use crate::dto::{ListTurnsQuery, SessionIdPath, TurnList, TurnPath, TurnResponse};
use crate::error::{ApiError, ErrorBody};

/// Turns per page when the query does not say.
const DEFAULT_TURNS_PAGE: u32 = 20;

/// `GET /api/sessions/{id}/turns?limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/turns",
    tag = "sessions",
    params(SessionIdPath, ListTurnsQuery),
    responses(
        (status = 200, description = "The session's turn records, newest first", body = TurnList),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
pub async fn list_turns(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
    query: web::Query<ListTurnsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let q = query.into_inner();
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<u64>()
                .ok()
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let limit = q.limit.unwrap_or(DEFAULT_TURNS_PAGE);
    let page = state.sessions.turns_for(&caller, id, before, limit).await?;
    Ok(HttpResponse::Ok().json(TurnList {
        turns: page.turns.into_iter().map(TurnResponse::from).collect(),
        next_cursor: page.next_cursor.map(|n| n.to_string()),
    }))
}

/// `GET /api/sessions/{id}/turns/{n}`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/turns/{n}",
    tag = "sessions",
    params(TurnPath),
    responses(
        (status = 200, body = TurnResponse),
        (status = 404, description = "No such session (or not yours), or no such turn (`turn_not_found`)", body = ErrorBody),
    ),
)]
pub async fn get_turn(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, raw_n) = path.into_inner();
    let id = session_id(&raw_id)?;
    // Not a number: no such turn, as a number never stored is.
    let n = raw_n
        .parse::<u64>()
        .map_err(|_| ApiError::Session(june_domain::SessionError::TurnNotFound(0)))?;
    let record = state.sessions.turn_for(&caller, id, n).await?;
    Ok(HttpResponse::Ok().json(TurnResponse::from(record)))
}
