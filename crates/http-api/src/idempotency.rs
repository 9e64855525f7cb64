//! `Idempotency-Key` on `POST /api/sessions` (design §2.1): the same key and body within
//! 24 h get the first response; the same key with another body is a 422. The claim on a key
//! is taken by the database, so concurrent retries — on any replica — make one session.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use june_domain::ports::{IdempotencyState, IdempotencyStore};
use june_domain::{SessionError, ports::StoreError};
use serde_json::Value;

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const KEEP_FOR: chrono::Duration = chrono::Duration::hours(24);
/// How long a retry waits for the first request to finish before answering 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// A key is 1–255 visible ASCII characters.
pub fn valid_key(key: &str) -> Result<&str, ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key)
}

/// The body's identity for comparing retries: its JSON with keys sorted, so whitespace and
/// key order do not make "another body".
pub fn fingerprint(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
}

fn store(e: StoreError) -> ApiError {
    ApiError::Session(SessionError::from(e))
}

/// Runs `work` once per key and body; replays its JSON answer to every repeat.
pub async fn once<F, Fut>(
    store_port: &dyn IdempotencyStore,
    key: &str,
    fingerprint: &str,
    work: F,
) -> Result<Value, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let now = Utc::now();
        match store_port
            .begin(key, fingerprint, now, now - KEEP_FOR)
            .await
            .map_err(store)?
        {
            IdempotencyState::Started => break,
            IdempotencyState::Completed(answer) => return Ok(answer),
            IdempotencyState::Mismatch => {
                return Err(ApiError::invalid(
                    "Idempotency-Key",
                    "was already used with a different request body",
                ));
            }
            IdempotencyState::InProgress => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(ApiError::Conflict {
                        detail: "A request with this Idempotency-Key is still in progress".into(),
                        code: "idempotency_in_progress",
                    });
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
    // A panic inside the work must not leave the key "in progress" for a day: release it,
    // then let the panic go on to the layer that answers 500.
    let outcome = match std::panic::AssertUnwindSafe(work()).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            if let Err(release) = store_port.abandon(key).await {
                tracing::warn!(error = %release, "could not release an idempotency key");
            }
            std::panic::resume_unwind(panic);
        }
    };
    match outcome {
        Ok(answer) => {
            store_port.complete(key, &answer).await.map_err(store)?;
            Ok(answer)
        }
        Err(e) => {
            // Let a retry do the work again.
            if let Err(release) = store_port.abandon(key).await {
                tracing::warn!(error = %release, "could not release an idempotency key");
            }
            Err(e)
        }
    }
}
