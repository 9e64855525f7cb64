//! `Idempotency-Key` on `POST /api/sessions` (design §2.1). The protocol (key validation,
//! the body's fingerprint, per-caller keys, the 24 h window, replay and mismatch) is the
//! domain's [`IdempotencyService`]; what needs a runtime is here: a retry waits for a first
//! request still in progress, and a panicking handler releases its key.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use june_domain::{Claim, IdempotencyKey, IdempotencyService};
use serde_json::Value;

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// How long a retry waits for the first request to finish before answering 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` once per key and body; replays its JSON answer to every repeat.
pub async fn once<F, Fut>(
    service: &IdempotencyService,
    key: &IdempotencyKey,
    work: F,
) -> Result<Value, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        match service.begin(key).await? {
            Claim::Started => break,
            Claim::Completed(answer) => return Ok(answer),
            Claim::InProgress => {
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
    match std::panic::AssertUnwindSafe(service.finish(key, work()))
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(panic) => {
            service.release(key).await;
            std::panic::resume_unwind(panic);
        }
    }
}
