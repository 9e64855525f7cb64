//! `/`, `/healthz` (liveness: no dependency calls) and `/readyz` (store and LiveKit).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;

/// `GET /`: what this service is. Never a key or secret.
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
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the store and LiveKit both answer within the readiness timeout.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let timeout = state.config.readiness_timeout;
    let (store, livekit) = tokio::join!(
        tokio::time::timeout(timeout, state.sessions.check_store()),
        tokio::time::timeout(timeout, state.sessions.rooms()),
    );
    let verdict = |r: Result<Result<(), String>, _>| match r {
        Ok(Ok(())) => json!({ "status": "ok" }),
        Ok(Err(detail)) => json!({ "status": "error", "detail": detail }),
        Err(_) => json!({ "status": "error", "detail": format!("no answer within {timeout:?}") }),
    };
    let store = verdict(store.map(|r| r.map_err(|e| e.to_string())));
    let livekit = verdict(livekit.map(|r| r.map(|_| ()).map_err(|e| e.to_string())));
    let ready = store["status"] == "ok" && livekit["status"] == "ok";
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "store": store, "livekit": livekit },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
