//! `POST /api/livekit-webhooks`: LiveKit's signed webhooks; `GET /api/sessions/{id}/events`:
//! what LiveKit told us about a session.

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use june_domain::WebhookOutcome;
use serde_json::json;

use super::owned_session;
use crate::AppState;
use crate::auth::Caller;
use crate::dto::{
    EventList, EventsQuery, SessionIdPath, StatusResponse, decode_event_cursor, encode_event_cursor,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::RawBody;

/// LiveKit sends `application/webhook+json`; some proxies and SDK test tools send JSON.
const WEBHOOK_TYPES: &str = "application/webhook+json, application/json";

/// `POST /api/livekit-webhooks`
#[utoipa::path(post, path = "/api/livekit-webhooks", tag = "webhooks", request_body(content = Object, content_type = "application/webhook+json", description = "LiveKit WebhookEvent (protojson), signed: Authorization carries LiveKit's JWT with the body's sha256"), responses((status = 200, body = StatusResponse), (status = 400, description = "A signed body that is not a LiveKit event, or one that could not be read", body = ErrorBody), (status = 401, description = "Signature missing, refused, or not over this body", body = ErrorBody), (status = 415, description = "Not `application/webhook+json` or `application/json`", body = ErrorBody)))]
pub async fn livekit_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    RawBody(body): RawBody,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "application/webhook+json" | "application/json"
    ) {
        return Err(ApiError::UnsupportedMediaType {
            expected: WEBHOOK_TYPES,
        });
    }
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Verified (before anything is read or stored), then applied with the deliveries in
    // flight (the domain batches them).
    let receipt = state.lifecycle.receive(&body, authorization).await;
    if let Err(e) = &receipt {
        crate::metrics::webhook("unknown", e.code());
    }
    let receipt = receipt?;
    if let Some(order) = receipt.dispatch {
        // LiveKit's agent dispatch is slow (two calls, each with a timeout): it is queued for
        // the background jobs and runs after the answer, so no delivery waits for it.
        state.background.dispatch(order).await;
    }
    match receipt.outcome {
        WebhookOutcome::Received { event, session_id } => {
            crate::metrics::webhook(&event, "received");
            tracing::info!(%event, session_id = ?session_id, "LiveKit webhook received");
            Ok(HttpResponse::Ok().json(json!({ "status": "received", "event": event })))
        }
        WebhookOutcome::Duplicate => {
            crate::metrics::webhook("unknown", "duplicate");
            tracing::info!("duplicate LiveKit webhook ignored");
            Ok(HttpResponse::Ok().json(json!({ "status": "duplicate" })))
        }
    }
}

/// `GET /api/sessions/{id}/events?limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/events",
    tag = "sessions",
    params(SessionIdPath, EventsQuery),
    responses(
        (status = 200, body = EventList),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
pub async fn list_events(
    state: web::Data<AppState>,
    Caller(caller): Caller,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = owned_session(&state, &caller, &path).await?;
    let q = query.into_inner();
    if q.limit == Some(0) {
        return Err(ApiError::invalid("limit", "must be at least 1"));
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            decode_event_cursor(c)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let page = state.lifecycle.events(id, q.limit, after).await?;
    Ok(HttpResponse::Ok().json(EventList {
        session_id: id.to_string(),
        events: page.events.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor.map(|c| encode_event_cursor(&c)),
    }))
}
