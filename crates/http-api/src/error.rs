//! The one place where errors become HTTP responses: `{"detail": …, "code": …}`.
//!
//! The domain owns the machine codes; this module owns the statuses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use june_domain::SessionError;
use june_domain::ports::{LlmError, RoomError, SpeechError, WebhookError};
use serde::Serialize;

/// Every error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A session use case failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A request field is missing or wrong (422).
    #[error("{message}")]
    Validation {
        /// The field at fault (`.` when the whole body is).
        field: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The request cannot be read at all (400), e.g. malformed JSON or a legacy route's
    /// missing fields, which v3.0 clients expect as 400.
    #[error("{detail}")]
    BadRequest {
        /// Human message.
        detail: String,
        /// Machine code.
        code: &'static str,
    },
    /// The body is over the size limit (413).
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No such route (404).
    #[error("Not Found")]
    RouteNotFound,
    /// The route exists but not for this method (405, with `Allow`).
    #[error("Method Not Allowed; this path allows {allow}")]
    MethodNotAllowed {
        /// The methods the path serves, as the `Allow` header lists them (`GET, POST`).
        allow: String,
    },
    /// The caller's credentials are missing or wrong (401).
    #[error("{detail}")]
    Unauthorized {
        /// Human message.
        detail: String,
        /// Machine code.
        code: &'static str,
    },
    /// A capability is not configured (503).
    #[error("{detail}")]
    Unavailable {
        /// Human message.
        detail: String,
        /// Machine code.
        code: &'static str,
    },
    /// Credentials missing or refused (401, with `WWW-Authenticate: Bearer`).
    #[error(transparent)]
    Auth(june_domain::AuthError),
    /// Authenticated, but not allowed here (403).
    #[error("{detail}")]
    Forbidden {
        /// Why.
        detail: String,
    },
    /// Too many requests (429 with `Retry-After`).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next request is allowed.
        retry_after_secs: u64,
    },
    /// A bug of ours, not of the request (500 with a generic detail; the cause is logged).
    #[error("internal error: {0}")]
    Internal(String),
    /// The request conflicts with another one in flight (409).
    #[error("{detail}")]
    Conflict {
        /// Human message.
        detail: String,
        /// Machine code.
        code: &'static str,
    },
    /// The request body did not arrive in time (408; the connection is closed).
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout {
        /// The limit in seconds.
        secs: u64,
    },
    /// The body's `Content-Type` is not one this route reads (415).
    #[error("Content-Type must be one of: {expected}")]
    UnsupportedMediaType {
        /// What the route accepts.
        expected: &'static str,
    },
}

/// The error body. `detail` is what v3.0 clients read; `code` is for programs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable message.
    #[schema(example = "Session not found")]
    pub detail: String,
    /// Stable machine code.
    #[schema(example = "session_not_found")]
    pub code: &'static str,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Session(e) => e.code(),
            ApiError::Validation { .. } => "validation_error",
            ApiError::BadRequest { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyTimeout { .. } => "request_timeout",
            ApiError::RouteNotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::Conflict { code, .. } => code,
            ApiError::Internal(_) => "internal_error",
            ApiError::Unauthorized { code, .. } | ApiError::Unavailable { code, .. } => code,
            ApiError::Auth(june_domain::AuthError::Unavailable(_)) => "auth_unavailable",
            ApiError::Auth(_) => "unauthenticated",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
        }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::Validation {
            message: format!("{field}: {}", message.into()),
            field,
        }
    }

    /// The JSON body of this error (also sent as an SSE `error` event).
    pub fn body(&self) -> ErrorBody {
        let field = match self {
            ApiError::Validation { field, .. } => Some(field.clone()),
            ApiError::Session(SessionError::Validation { field, .. }) => Some((*field).to_owned()),
            _ => None,
        };
        ErrorBody {
            detail: self.detail(),
            code: self.code(),
            field,
        }
    }

    fn detail(&self) -> String {
        match self {
            // 5xx: the cause goes to the log, not to the client.
            ApiError::Session(SessionError::Store(_)) => {
                "The session store is unavailable; try again shortly".into()
            }
            ApiError::Session(SessionError::Token(_)) => "Could not mint an access token".into(),
            ApiError::Internal(_) => {
                "Internal error; see the server log for this request id".into()
            }
            ApiError::Session(SessionError::Room(e)) => match e {
                RoomError::Unavailable { message, .. } => {
                    format!("LiveKit is unavailable: {message}")
                }
                other => other.to_string(),
            },
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Session(e) => match e {
                SessionError::NotFound
                | SessionError::ParticipantNotFound(_)
                | SessionError::TurnNotFound(_) => StatusCode::NOT_FOUND,
                SessionError::RoomNameTaken(_) | SessionError::NotLive(_) => StatusCode::CONFLICT,
                SessionError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                SessionError::Room(_) => StatusCode::BAD_GATEWAY,
                SessionError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                SessionError::Token(_) => StatusCode::INTERNAL_SERVER_ERROR,
                SessionError::Webhook(WebhookError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
                SessionError::Webhook(WebhookError::Malformed(_)) => StatusCode::BAD_REQUEST,
                SessionError::Llm(e) => match e {
                    LlmError::NotConfigured
                    | LlmError::ModelNotFound(_)
                    | LlmError::RateLimited { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    LlmError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                    LlmError::Blocked(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    LlmError::Upstream(_) | LlmError::Rejected(_) | LlmError::Empty => {
                        StatusCode::BAD_GATEWAY
                    }
                    LlmError::Cancelled => StatusCode::CONFLICT,
                },
                SessionError::Speech(SpeechError::NotConfigured) => StatusCode::SERVICE_UNAVAILABLE,
                SessionError::Speech(_) => StatusCode::BAD_GATEWAY,
            },
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Auth(june_domain::AuthError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, cause = ?ErrorChain(self), code = self.code(), "request failed");
        } else {
            tracing::info!(error = %self, code = self.code(), "request refused");
        }
        let mut resp = HttpResponse::build(status);
        match self {
            ApiError::Session(SessionError::Llm(LlmError::RateLimited {
                retry_after_secs: Some(secs),
            })) => {
                resp.insert_header(("retry-after", secs.to_string()));
            }
            ApiError::RateLimited { retry_after_secs } => {
                resp.insert_header(("retry-after", retry_after_secs.max(&1).to_string()));
            }
            ApiError::Auth(
                june_domain::AuthError::Missing | june_domain::AuthError::Invalid(_),
            ) => {
                resp.insert_header(("www-authenticate", "Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                resp.insert_header(("allow", allow.as_str()));
            }
            // The rest of a stalled body may still come: the connection cannot be reused.
            ApiError::BodyTimeout { .. } => {
                resp.force_close();
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                resp.insert_header(("retry-after", "5"));
            }
            _ => {}
        }
        resp.json(self.body())
    }
}

/// Prints an error and every `source()` below it, for the log line of a 5xx.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}
