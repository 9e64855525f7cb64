//! The OpenAPI document: the operations of the handlers the route table registers
//! ([`crate::Operations`]) and the schemas they use, with the API's info and security. What
//! the route table knows is written in here rather than on each handler: who may call an
//! operation (`security`, from [`crate::Access`]), the answers every operation of a kind can
//! give (400 for an unreadable body, 401, 408, 413, 429, 500, 503: declared once under
//! `components/responses`), and the links from a new session to the operations that take its
//! id or room. The committed copy (`openapi/openapi.json`) is compared with it by a test.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, HeaderBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::{Access, ROUTES};

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "June Orchestrator",
        description = "Control plane of the June voice-AI platform on LiveKit: sessions, tokens, \
            LiveKit webhooks, AI chat and the voice loop. Legacy aliases of v3.0 (`/livekit/token`, \
            `/api/ai/process`, trailing-slash forms) are listed in docs/compat.md.\n\n\
            **Authentication depends on `AUTH_MODE`.** With `api_key`, `oidc` or both \
            (`api_key,oidc`), operations under the `bearer` scheme need `Authorization: Bearer` \
            with an API key or an OIDC access token, and a caller acts for itself: `user_id` and \
            `participant_identity` default to the caller and must equal it unless the caller is \
            an admin or a service. With `none` (the default, and v3.0's only mode) nothing is \
            checked, every caller has all access, and bodies must name the owner or identity \
            instead (422 naming the field when they do not). The STT bot's routes use their own \
            token (`stt_bearer`, whatever `AUTH_MODE` is); LiveKit's webhooks carry LiveKit's \
            signature (`livekit_signature`); `/`, `/healthz`, `/readyz`, `/metrics` and \
            `/openapi.json` need nothing (`security: []`).\n\n\
            Every error is `{detail, code}` (`ErrorBody`). A method a path does not serve is \
            405 `method_not_allowed` with `Allow` listing the methods it does.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Routes, &Security, &SharedResponses, &SessionLinks),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "sessions", description = "Sessions: rooms, tokens, participants, history, events"),
        (name = "tokens", description = "Token routes v3.0 clients call"),
        (name = "ai", description = "Chat on Gemini, speech through TTS"),
        (name = "webhooks", description = "LiveKit's signed webhooks and the STT bot's transcripts"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The paths and the schemas they use: every operation of the route table
/// ([`crate::Operations`]), none other.
struct Routes;

impl Modify for Routes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.merge(crate::Operations::openapi());
    }
}

/// The operation `method` (lower case) of a path item.
fn operation<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

/// Calls `f` with every operation of the route table and the access of its route.
fn each_operation(
    openapi: &mut utoipa::openapi::OpenApi,
    mut f: impl FnMut(&str, &mut Operation, Access),
) {
    for route in ROUTES {
        let Some(item) = openapi.paths.paths.get_mut(route.path) else {
            continue;
        };
        for method in route.methods {
            if let Some(op) = operation(item, method) {
                f(route.path, op, route.access);
            }
        }
    }
}

/// The security schemes, and each operation's requirement from its route's [`Access`]: the
/// global `bearer` for API routes, `[]` for public ones, the STT bot's token and LiveKit's
/// signature for theirs.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`AUTH_MODE=api_key`; `API_KEYS`) or an OIDC access token \
                         (`AUTH_MODE=oidc`). With `AUTH_MODE=none` (the default) nothing is \
                         checked and any or no `Authorization` is accepted.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "stt_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The STT bot's token, `STT_SERVICE_TOKEN` (`stt.auth=bearer`, the \
                         default; 503 `stt_auth_not_configured` while no token is set). With \
                         `stt.auth=none` nothing is checked. Independent of `AUTH_MODE`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "livekit_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "LiveKit's webhook signature: a JWT (no `Bearer ` prefix) signed with the \
                 LiveKit API secret, whose `sha256` claim is the body's hash. Checked whatever \
                 `AUTH_MODE` is.",
            ))),
        );
        each_operation(openapi, |_, op, access| {
            op.security = match access {
                Access::Public | Access::Probe => Some(Vec::new()),
                Access::Bearer => None,
                Access::Stt => Some(vec![SecurityRequirement::new(
                    "stt_bearer",
                    Vec::<String>::new(),
                )]),
                Access::Signed => Some(vec![SecurityRequirement::new(
                    "livekit_signature",
                    Vec::<String>::new(),
                )]),
            };
        });
    }
}

/// An error answer in the API's one shape.
fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

fn seconds_header(minimum: u8, description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(minimum)),
        )
        .description(Some(description))
        .build()
}

/// The answers operations share, by name under `components/responses`.
fn shared_responses() -> [(&'static str, Response); 7] {
    [
        (
            "BadBody",
            error("The body is not JSON (`malformed_json`) or could not be read (`bad_body`)")
                .build(),
        ),
        (
            "Unauthorized",
            error("Missing or invalid credentials (`unauthenticated`, `invalid_token`)")
                .header(
                    "www-authenticate",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .description(Some("`Bearer`, for the `bearer` scheme"))
                        .build(),
                )
                .build(),
        ),
        (
            "BodyTimeout",
            error(
                "The body did not arrive within `server.body_timeout_ms` (`request_timeout`); \
                 the connection is closed",
            )
            .build(),
        ),
        (
            "PayloadTooLarge",
            error("The body is over the size limit (`payload_too_large`)").build(),
        ),
        (
            "RateLimited",
            error("Over the caller's or the client address's budget (`rate_limited`)")
                .header(
                    "retry-after",
                    seconds_header(1, "Seconds until a request is allowed again"),
                )
                .build(),
        ),
        (
            "InternalError",
            error(
                "A bug of ours (`internal_error`); the cause is in the server's log under the \
                 request's `x-request-id`",
            )
            .build(),
        ),
        (
            "Unavailable",
            error(
                "A dependency is unavailable: the session store, the OIDC provider \
                 (`auth_unavailable`), or a capability that is not configured",
            )
            .header(
                "retry-after",
                seconds_header(0, "Seconds to wait before retrying"),
            )
            .build(),
        ),
    ]
}

/// Which shared answers an operation can give: from its route's access and whether it reads a
/// body. An operation that documents a status itself keeps its own, more precise, entry.
fn shared_statuses(access: Access, reads_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut statuses = vec![("500", "InternalError")];
    if reads_body {
        statuses.extend([
            ("400", "BadBody"),
            ("408", "BodyTimeout"),
            ("413", "PayloadTooLarge"),
        ]);
    }
    if matches!(access, Access::Bearer | Access::Stt | Access::Signed) {
        statuses.extend([("401", "Unauthorized"), ("503", "Unavailable")]);
    }
    if matches!(access, Access::Public | Access::Bearer | Access::Stt) {
        statuses.push(("429", "RateLimited"));
    }
    statuses
}

/// Declares the shared answers once and applies them to every operation that can give them.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, response) in shared_responses() {
            components
                .responses
                .insert(name.to_owned(), response.into());
        }
        each_operation(openapi, |_, op, access| {
            for (status, name) in shared_statuses(access, op.request_body.is_some()) {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        });
    }
}

/// Where a new session's answer feeds each path parameter of a session-scoped operation. Not
/// `{identity}`: nobody is in a new session's room until they join with a token, not even
/// its owner.
const PATH_LINKS: &[(&str, &str)] = &[("id", "session_id")];

/// The operations that name a session's room, owner or id in their body, and which field of
/// the new session feeds each of their fields.
const BODY_LINKS: &[(&str, &[(&str, &str)])] = &[
    ("chat", &[("session_id", "session_id")]),
    ("tts_publish", &[("room_name", "room_name")]),
    (
        "participant_token",
        &[("roomName", "room_name"), ("participantName", "user_id")],
    ),
    (
        "service_token",
        &[("room", "room_name"), ("service_identity", "user_id")],
    ),
    (
        "token_source",
        &[
            ("room_name", "room_name"),
            ("participant_identity", "user_id"),
        ],
    ),
    ("stt_transcript", &[("room_name", "room_name")]),
    ("voice_onset", &[("room_name", "room_name")]),
];

/// The operation that creates sessions, whose 200 answer the links leave from.
const CREATE_SESSION: (&str, &str) = ("/api/sessions", "post");

fn from_session(field: &str) -> String {
    format!("$response.body#/{field}")
}

/// OpenAPI links from `POST /api/sessions`: its `session_id` to every operation under
/// `/api/sessions/{id}` (found in the route table), and its room and owner to the operations
/// that name them in their bodies ([`BODY_LINKS`]). SDK generators and stateful testers
/// chain calls with them.
struct SessionLinks;

impl Modify for SessionLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut links = Vec::new();
        each_operation(openapi, |path, op, _| {
            let Some(id) = op.operation_id.clone() else {
                return;
            };
            let link = if path.starts_with("/api/sessions/{id}") {
                let params = path
                    .split('/')
                    .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'));
                params.fold(
                    LinkBuilder::new().operation_id(&id),
                    |link, name| match PATH_LINKS.iter().find(|(param, _)| *param == name) {
                        Some((_, field)) => link.parameter(name, from_session(field)),
                        None => link,
                    },
                )
            } else if let Some((_, fields)) = BODY_LINKS.iter().find(|(op_id, _)| *op_id == id) {
                let body: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(field, source)| ((*field).to_owned(), from_session(source).into()))
                    .collect();
                LinkBuilder::new()
                    .operation_id(&id)
                    .request_body(Some(serde_json::Value::Object(body)))
            } else {
                return;
            };
            links.push((id, link.build()));
        });
        let (path, method) = CREATE_SESSION;
        let Some(created) = openapi
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| operation(item, method))
            .and_then(|op| op.responses.responses.get_mut("200"))
        else {
            return;
        };
        if let RefOr::T(response) = created {
            response
                .links
                .extend(links.into_iter().map(|(name, link)| (name, RefOr::T(link))));
        }
    }
}

/// The document as pretty JSON, as committed in `openapi/openapi.json` and served at
/// `/openapi.json`.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .map(camel_case_links)
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// utoipa 5.5 writes a link's `operationId` and `requestBody` in snake case (its `Link` has
/// no camelCase rename), which no OpenAPI reader understands. Only links have such keys: an
/// operation's own `operationId` and `requestBody` are already camel case.
fn camel_case_links(json: String) -> String {
    json.replace("\"operation_id\": ", "\"operationId\": ")
        .replace("\"request_body\": ", "\"requestBody\": ")
}
