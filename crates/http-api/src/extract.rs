//! `ValidJson<T>`: a JSON body extractor whose errors are the API's JSON errors.
//!
//! actix's own `Json` answers a bad body with a plain-text 400; we want malformed JSON → 400
//! `malformed_json`, a well-formed body with a wrong or missing field → 422 naming the field
//! (its JSON path), and an oversized body → 413, all in the `{detail, code}` shape.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body of type `T`. Any `Content-Type` is accepted (older clients omit it);
/// an empty body reads as `{}`.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = RawBody::from_request(req, payload);
        Box::pin(async move { parse(&body.await?.0).map(ValidJson) })
    }
}

/// The raw request body, for handlers that must see the exact bytes (signed webhooks).
/// Read errors are the API's JSON errors (413 over the limit).
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        let timeout = req
            .app_data::<web::Data<crate::AppState>>()
            .map_or(DEFAULT_BODY_TIMEOUT, |s| s.config.body_timeout);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            // A client that sends headers and then trickles (or stops) would otherwise hold
            // the connection and a worker's attention for as long as it likes.
            let Ok(read) = tokio::time::timeout(timeout, bytes).await else {
                return Err(ApiError::BodyTimeout {
                    secs: timeout.as_secs().max(1),
                });
            };
            read.map(RawBody).map_err(|e| {
                if e.as_response_error().status_code() == 413 {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::BadRequest {
                        detail: format!("the request body could not be read: {e}"),
                        code: "bad_body",
                    }
                }
            })
        })
    }
}

/// Body size limit in bytes, shared by the JSON extractor and actix's payload reader.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Limit when none is configured.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Time to read a whole body when none is configured.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Parses a JSON body into `T` with the API's error rules.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // serde reports a missing field at its parent; name the field itself.
                let field = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next())
                    .map(|f| {
                        if path == "." {
                            f.to_owned()
                        } else {
                            format!("{path}.{f}")
                        }
                    })
                    .unwrap_or(path);
                let message = strip_position(&message);
                ApiError::Validation {
                    message: format!("{field}: {message}"),
                    field,
                }
            }
            _ => ApiError::BadRequest {
                detail: format!("malformed JSON: {inner}"),
                code: "malformed_json",
            },
        }
    })
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        user_id: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn a_missing_field_is_named() {
        match parse::<Body>(b"{}") {
            Err(ApiError::Validation { field, .. }) => assert_eq!(field, "user_id"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_nested_type_is_named_by_its_path() {
        match parse::<Body>(br#"{"user_id":"a","inner":{"n":"x"}}"#) {
            Err(ApiError::Validation { field, message }) => {
                assert_eq!(field, "inner.n");
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Body>(b"{\"user_id\": "),
            Err(ApiError::BadRequest {
                code: "malformed_json",
                ..
            })
        ));
    }

    #[test]
    fn an_empty_body_reads_as_an_empty_object() {
        assert!(parse::<serde_json::Value>(b"  ").unwrap().is_object());
    }
}
