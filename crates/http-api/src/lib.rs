//! # june-http-api
//!
//! The public HTTP API of June Orchestrator on actix-web: routes, JSON shapes (`dto`), and
//! the one mapping of errors to statuses (`error`). It sees the domain's services and ports
//! only; it never names a database, an HTTP client or LiveKit's SDK. [`app`] builds the
//! whole application for the binary and for in-process tests alike; it does not run a server.

pub mod auth;
pub mod background;
pub mod client_addr;
pub mod clock;
pub mod dto;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;

pub use routes::tokens::BotIdentities;
pub use routes::voice::SttAuth;

use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{NormalizePath, from_fn};
use actix_web::{App, HttpResponse, web};
use june_domain::{ConversationService, LifecycleService, SessionService, VoiceService};

use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::routes::{
    ai, health, meta, participants, sessions, stream, tokens, turns, voice, webhooks,
};

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
    /// How the STT routes authenticate (`stt.auth`): the bearer token, or nothing at all.
    pub stt_auth: routes::voice::SttAuth,
    /// The identities the token routes give bot grants (`agent`, and `hidden` for the STT
    /// bot); every other identity gets a participant's.
    pub bots: routes::tokens::BotIdentities,
    /// Trusted reverse proxies and the header they write: who the client is
    /// (`server.trusted_proxies`; none by default, and then the TCP peer is).
    pub proxies: client_addr::ProxyRules,
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
    /// The `Idempotency-Key` protocol.
    pub idempotency: june_domain::IdempotencyService,
    /// Transcripts, turns, barge-in.
    pub voice: VoiceService,
    /// Verifies bearer credentials; `None` when `auth.mode = none`.
    pub auth: Option<std::sync::Arc<dyn june_domain::Authenticator>>,
    /// Request budgets per principal and per client address.
    pub rate_limits: std::sync::Arc<crate::auth::RateLimits>,
    /// HTTP-level settings.
    pub config: ApiConfig,
    /// Voice turns, chat producers and bot dispatch, tracked for the shutdown.
    pub background: background::Background,
    /// Set when the replica starts draining (SIGTERM): `/readyz` 503, `Connection: close`.
    pub drain: background::Drain,
    /// The live event stream's feed, resume source and bounds.
    pub live: live::LiveStreams,
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

async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

/// A resource whose other methods answer 405 in our JSON shape, with the `Allow` header
/// RFC 9110 requires: the methods `methods` (the route table's, lower case) names.
fn resource(path: &str, methods: &[&str]) -> actix_web::Resource {
    let allow = methods
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
    }))
}

/// Who may call a route: what the spec's `security` says of its operations, and which
/// shared answers (401, 429, 503) they document ([`openapi`] reads it from [`ROUTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials; under the per-address budget (429).
    Public,
    /// No credentials and no budget: probes and scrapes.
    Probe,
    /// `Authorization: Bearer` with an API key or an OIDC token, as `AUTH_MODE` says; nothing
    /// is checked with `AUTH_MODE=none`.
    Bearer,
    /// The STT bot's bearer token (`STT_SERVICE_TOKEN`), unless `stt.auth` is `none`.
    Stt,
    /// LiveKit's signature in `Authorization`; no budget (one LiveKit server sends every
    /// room's events from one address).
    Signed,
}

/// One line of the route table: a path, its methods (lower case) and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The path as the spec writes it (`/api/sessions/{id}`).
    pub path: &'static str,
    /// The methods served on it, lower case (`get`, `post`): the spec's, and the 405's `Allow`.
    pub methods: &'static [&'static str],
    /// Who may call it.
    pub access: Access,
}

/// Declares the API's routes once. Each line names who may call the path ([`Access`]),
/// registers its handlers on it and on its legacy aliases (`"/token" | "/livekit/token"`),
/// and puts the handlers' `#[utoipa::path]` operations into the spec ([`Operations`], merged
/// by [`openapi::ApiDoc`]): a handler cannot be served undocumented or documented unserved.
/// Other methods answer 405 with `Allow` naming the line's methods. Aliases are served and
/// left out of the spec on purpose (docs/compat.md lists them). A path may name a function
/// that adjusts its resources (`, webhook_limits`). The annotations' own `path` and method
/// must match the line: a test compares the spec with [`OPERATIONS`].
macro_rules! api {
    ($(
        $access:ident $path:literal $(| $alias:literal)* $(, $adjust:ident)?
            => [$($method:ident: $($handler:ident)::+),+ $(,)?];
    )*) => {
        fn api_routes(cfg: &mut web::ServiceConfig) {
            $(
                for path in [$path $(, $alias)*] {
                    let r = resource(path, &[$(stringify!($method)),+])
                        $(.route(web::$method().to($($handler)::+)))+;
                    $(let r = $adjust(r);)?
                    cfg.service(r);
                }
            )*
        }

        /// Every `(method, path)` the API serves and the spec documents.
        pub const OPERATIONS: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)*];

        /// The route table: each documented path with its methods and who may call it.
        pub const ROUTES: &[Route] = &[$(Route {
            path: $path,
            methods: &[$(stringify!($method)),+],
            access: Access::$access,
        },)*];

        /// The legacy aliases as `(alias, path)`: served like `path`, not in the spec.
        pub const ALIASES: &[(&str, &str)] = &[$($(($alias, $path),)*)*];

        /// The operations of the handlers the route table registers: the paths of the spec.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($($($handler)::+,)+)*))]
        pub struct Operations;
    };
}

api! {
    Public "/" => [get: health::service_info];
    Probe "/healthz" => [get: health::healthz];
    Probe "/readyz" => [get: health::readyz];
    Probe "/metrics" => [get: meta::metrics];
    Public "/openapi.json" => [get: meta::openapi_json];
    Bearer "/api/sessions" => [post: sessions::create_session, get: sessions::list_sessions];
    Bearer "/api/sessions/{id}" => [get: sessions::get_session, delete: sessions::delete_session];
    Bearer "/api/sessions/{id}/participants" => [get: participants::list_participants];
    Bearer "/api/sessions/{id}/participants/{identity}" => [delete: participants::remove_participant];
    Bearer "/api/sessions/{id}/guest-token" => [post: sessions::create_guest_token];
    Bearer "/api/sessions/{id}/history" => [get: sessions::get_history, delete: sessions::clear_history];
    Bearer "/api/sessions/{id}/events" => [get: webhooks::list_events];
    Bearer "/api/sessions/{id}/stream" => [get: stream::stream_session];
    Bearer "/api/sessions/{id}/turns" => [get: turns::list_turns];
    Bearer "/api/sessions/{id}/turns/{n}" => [get: turns::get_turn];
    Signed "/api/livekit-webhooks", webhook_limits => [post: webhooks::livekit_webhook];
    Stt "/api/webhooks/stt" => [post: voice::stt_transcript];
    Stt "/api/webhooks/voice_onset" => [post: voice::voice_onset];
    Bearer "/api/ai/chat" | "/api/ai/process" => [post: ai::chat];
    Bearer "/api/tts/publish" => [post: ai::tts_publish];
    Bearer "/token" | "/livekit/token" => [post: tokens::participant_token];
    Bearer "/api/livekit/token" => [post: tokens::service_token];
    Bearer "/api/livekit/token-source" => [post: tokens::token_source];
    Bearer "/rooms/list" => [post: tokens::list_rooms];
}

/// Whether `path` is outside the per-address budget: the route table's `Probe` and `Signed`
/// routes (with or without a trailing slash, as the slash normaliser serves them).
pub(crate) fn unbudgeted(path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    ROUTES
        .iter()
        .any(|r| matches!(r.access, Access::Probe | Access::Signed) && r.path == path)
}

/// A signed event is never refused for its size under 1 MiB (full-room events).
fn webhook_limits(r: actix_web::Resource) -> actix_web::Resource {
    r.app_data(web::PayloadConfig::new(WEBHOOK_BODY_LIMIT))
        .app_data(BodyLimit(WEBHOOK_BODY_LIMIT))
}

/// Registers every route: the API's (the `api!` table, with the metrics and the spec), then
/// the spec's UI. Trailing-slash forms are handled by `NormalizePath` in [`app`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    api_routes(cfg);
    // `/docs/` is trimmed to `/docs` by NormalizePath: send both to the UI's page.
    cfg.service(resource("/docs", &["get"]).route(web::get().to(docs_home)))
        .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url(
            "/api-docs/openapi.json",
            {
                use utoipa::OpenApi;
                crate::openapi::ApiDoc::openapi()
            },
        ));
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
        .wrap(from_fn(background::close_while_draining))
}
