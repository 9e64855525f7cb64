//! # june-http-api
//!
//! The public HTTP API of June Orchestrator on actix-web: routes, JSON shapes (`dto`), and
//! the one mapping of errors to statuses (`error`). It sees the domain's services and ports
//! only; it never names a database, an HTTP client or LiveKit's SDK. [`app`] builds the
//! whole application for the binary and for in-process tests alike; it does not run a server.

pub mod auth;
pub mod dto;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;

use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{NormalizePath, from_fn};
use actix_web::{App, HttpResponse, web};
use june_domain::{ConversationService, LifecycleService, SessionService, VoiceService};

use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::routes::{ai, health, participants, sessions, tokens, voice, webhooks};

/// Settings the HTTP layer needs besides the services.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The LiveKit URL handed to clients verbatim (`LIVEKIT_WS_URL`).
    pub livekit_url: String,
    /// Room for `POST /api/livekit/token` when the body names none.
    pub default_bot_room: Option<String>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest time to receive a whole request body (408 and the connection closed after).
    pub body_timeout: Duration,
    /// How long `/readyz` waits for each dependency.
    pub readiness_timeout: Duration,
    /// Origins allowed by CORS; `*` allows any.
    pub cors_allow_origins: Vec<String>,
    /// Reported by `GET /`.
    pub version: &'static str,
    /// Bearer token the STT bot must send (`STT_SERVICE_TOKEN`); `None` refuses transcripts.
    pub stt_token: Option<secrecy::SecretString>,
}

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The session use cases.
    pub sessions: SessionService,
    /// Webhooks, the event log, the reaper.
    pub lifecycle: LifecycleService,
    /// Chat turns and speech.
    pub conversation: ConversationService,
    /// `Idempotency-Key` records.
    pub idempotency: std::sync::Arc<dyn june_domain::ports::IdempotencyStore>,
    /// Transcripts, turns, barge-in.
    pub voice: VoiceService,
    /// Verifies bearer credentials; `None` when `auth.mode = none`.
    pub auth: Option<std::sync::Arc<dyn june_domain::Authenticator>>,
    /// Request budgets per principal and per client address.
    pub rate_limits: std::sync::Arc<crate::auth::RateLimits>,
    /// HTTP-level settings.
    pub config: ApiConfig,
}

/// Body limit of the webhook route.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

fn cors(origins: &[String]) -> Cors {
    let base = Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_headers([middleware::REQUEST_ID])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        base.allow_any_origin()
    } else {
        origins
            .iter()
            .fold(base, |cors, origin| cors.allowed_origin(origin))
    }
}

async fn docs_home() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("location", "/docs/index.html"))
        .finish()
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::json())
}

async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// A resource whose other methods answer 405 in our JSON shape.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route. Trailing-slash forms are handled by `NormalizePath` in [`app`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").route(web::get().to(health::service_info)))
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(
            resource("/api/sessions")
                .route(web::post().to(sessions::create_session))
                .route(web::get().to(sessions::list_sessions)),
        )
        .service(
            resource("/api/sessions/{id}")
                .route(web::get().to(sessions::get_session))
                .route(web::delete().to(sessions::delete_session)),
        )
        .service(
            resource("/api/sessions/{id}/participants")
                .route(web::get().to(participants::list_participants)),
        )
        .service(
            resource("/api/sessions/{id}/participants/{identity}")
                .route(web::delete().to(participants::remove_participant)),
        )
        .service(
            resource("/api/sessions/{id}/guest-token")
                .route(web::post().to(sessions::create_guest_token)),
        )
        .service(
            resource("/api/sessions/{id}/history")
                .route(web::get().to(sessions::get_history))
                .route(web::delete().to(sessions::clear_history)),
        )
        .service(resource("/api/sessions/{id}/events").route(web::get().to(webhooks::list_events)))
        .service(
            resource("/api/livekit-webhooks")
                // A signed event is never refused for its size under 1 MiB (full-room events).
                .app_data(web::PayloadConfig::new(WEBHOOK_BODY_LIMIT))
                .app_data(BodyLimit(WEBHOOK_BODY_LIMIT))
                .route(web::post().to(webhooks::livekit_webhook)),
        )
        .service(resource("/api/webhooks/stt").route(web::post().to(voice::stt_transcript)))
        .service(resource("/api/webhooks/voice_onset").route(web::post().to(voice::voice_onset)))
        .service(resource("/metrics").route(web::get().to(crate::metrics::render)))
        .service(resource("/openapi.json").route(web::get().to(openapi_json)))
        // `/docs/` is trimmed to `/docs` by NormalizePath: send both to the UI's page.
        .service(resource("/docs").route(web::get().to(docs_home)))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", {
                use utoipa::OpenApi;
                crate::openapi::ApiDoc::openapi()
            }),
        )
        .service(resource("/api/ai/chat").route(web::post().to(ai::chat)))
        .service(resource("/api/ai/process").route(web::post().to(ai::chat)))
        .service(resource("/api/tts/publish").route(web::post().to(ai::tts_publish)))
        .service(resource("/token").route(web::post().to(tokens::participant_token)))
        .service(resource("/livekit/token").route(web::post().to(tokens::participant_token)))
        .service(resource("/api/livekit/token").route(web::post().to(tokens::service_token)))
        .service(resource("/api/livekit/token-source").route(web::post().to(tokens::token_source)))
        .service(resource("/rooms/list").route(web::post().to(tokens::list_rooms)));
}

/// The whole application: state, routes, JSON errors for bad queries and unknown routes,
/// CORS, trailing-slash normalisation and the request context.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.config.body_limit;
    let cors = cors(&state.config.cors_allow_origins);
    App::new()
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(BodyLimit(limit))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            ApiError::invalid(
                "query",
                e.to_string().replace("Query deserialize error: ", ""),
            )
            .into()
        }))
        .configure(routes)
        .default_service(web::to(route_not_found))
        .wrap(cors)
        .wrap(NormalizePath::trim())
        .wrap(from_fn(middleware::request_context))
}
