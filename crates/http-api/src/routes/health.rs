//! `/`, `/healthz` (liveness: no dependency calls) and `/readyz` (store and LiveKit).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;
use crate::dto::StatusResponse;

/// `GET /`: what this service is. Never a key or secret.
#[utoipa::path(get, path = "/", tag = "operations", responses((status = 200, description = "Service name, version, LiveKit URL", body = Object)))]
pub async fn service_info(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": "june-orchestrator",
        "version": state.config.version,
        "livekit_url": state.config.livekit_url,
        "endpoints": {
            "sessions": "/api/sessions",
            "health": "/healthz",
            "ready": "/readyz",
        },
    }))
}

/// `GET /healthz`
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = StatusResponse)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// An optional dependency: reported, never failing readiness ("degraded" when down).
fn optional<E: std::fmt::Display>(
    r: Result<Option<Result<(), E>>, tokio::time::error::Elapsed>,
) -> serde_json::Value {
    match r {
        Ok(None) => json!({ "status": "not_configured" }),
        Ok(Some(Ok(()))) => json!({ "status": "ok" }),
        Ok(Some(Err(e))) => json!({ "status": "degraded", "detail": e.to_string() }),
        Err(_) => json!({ "status": "degraded", "detail": "no answer in time" }),
    }
}

/// `GET /readyz`: 200 when the store and LiveKit both answer within the readiness timeout.
/// The language model is reported as configured or not (no call is made); TTS and STT are
/// checked but only ever "degraded" a ready service. `stt_auth` says how transcripts are
/// authenticated (`none`: anyone may post them; never a reason to be unready).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready, with per-dependency checks", body = Object), (status = 503, description = "Not ready", body = Object)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let timeout = state.config.readiness_timeout;
    // The rate limits never make a replica unready: Redis away only means each replica
    // counts its own budget (the call is bounded by the limiter's own deadline).
    let (store, livekit, tts, stt, rate_limit) = tokio::join!(
        tokio::time::timeout(timeout, state.sessions.check_store()),
        tokio::time::timeout(timeout, state.sessions.rooms()),
        tokio::time::timeout(timeout, state.conversation.tts_health()),
        tokio::time::timeout(timeout, state.conversation.stt_health()),
        state.rate_limits.health(),
    );
    let verdict = |r: Result<Result<(), String>, _>| match r {
        Ok(Ok(())) => json!({ "status": "ok" }),
        Ok(Err(detail)) => json!({ "status": "error", "detail": detail }),
        Err(_) => json!({ "status": "error", "detail": format!("no answer within {timeout:?}") }),
    };
    let store = verdict(store.map(|r| r.map_err(|e| e.to_string())));
    let livekit = verdict(livekit.map(|r| r.map(|_| ()).map_err(|e| e.to_string())));
    crate::metrics::dependency_up("store", store["status"] == "ok");
    crate::metrics::dependency_up("livekit", livekit["status"] == "ok");
    let ready = store["status"] == "ok" && livekit["status"] == "ok";
    // A draining replica (SIGTERM) still serves, but asks to be taken out of rotation.
    let draining = state.drain.is_draining();
    let llm = if state.conversation.llm_configured() {
        json!({ "status": "configured" })
    } else {
        json!({ "status": "not_configured" })
    };
    let body = json!({
        "status": if draining { "draining" } else if ready { "ready" } else { "not_ready" },
        "stt_auth": state.config.stt_auth.as_str(),
        "checks": {
            "store": store,
            "livekit": livekit,
            "llm": llm,
            "tts": optional(tts),
            "stt": optional(stt),
            "rate_limit": rate_limit,
        },
    });
    if ready && !draining {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
