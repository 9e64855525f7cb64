//! `Idempotency-Key` (design §2.1): the same key and body within 24 h get the first answer;
//! the same key with another body is refused. The claim on a key is taken by the store, so
//! concurrent retries — on any replica — do the work once.
//!
//! [`IdempotencyService`] holds the protocol (key validation, the body's fingerprint, keys
//! scoped per caller, the window on the [`Clock`]); waiting for a first request still in
//! progress, and releasing a key when the work panics, need a runtime and are the
//! embedder's (the HTTP layer polls [`IdempotencyService::begin`] and wraps
//! [`IdempotencyService::finish`] in `catch_unwind`).

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::auth::Principal;
use crate::error::DomainError;
use crate::ports::{Clock, IdempotencyState, IdempotencyStore};

/// How long a key is remembered.
pub const KEEP_FOR: chrono::Duration = chrono::Duration::hours(24);
/// The longest key a caller may send.
pub const MAX_KEY_LEN: usize = 255;
/// The field named by a refused key.
const FIELD: &str = "Idempotency-Key";

/// A request's idempotency identity: the caller's key, scoped to the caller, and the body's
/// fingerprint. Built by [`IdempotencyService::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// The key as stored: `{caller}:{key}`.
    pub fn scoped(&self) -> &str {
        &self.key
    }

    /// The body's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Where a request stands after [`IdempotencyService::begin`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is new (or its record expired): do the work, then [`finish`](IdempotencyService::finish).
    Started,
    /// The same key and body finished before: answer with this.
    Completed(Value),
    /// The same key and body are being handled right now; ask again later.
    InProgress,
}

/// The `Idempotency-Key` protocol over an [`IdempotencyStore`] and a [`Clock`].
#[derive(Clone)]
pub struct IdempotencyService {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
}

impl IdempotencyService {
    /// The protocol over `store`, timed by `clock`.
    pub fn new(store: Arc<dyn IdempotencyStore>, clock: Arc<dyn Clock>) -> Self {
        IdempotencyService { store, clock }
    }

    /// The identity of `caller`'s request with key `key` and body `body`. Keys are per
    /// caller: two callers' "1" are not the same request.
    ///
    /// Errors: `Validation` on `Idempotency-Key` unless the key is 1 to 255 visible ASCII
    /// characters.
    pub fn key(
        &self,
        caller: &Principal,
        key: &str,
        body: &[u8],
    ) -> Result<IdempotencyKey, DomainError> {
        Ok(IdempotencyKey {
            key: format!("{}:{}", caller.id, valid_key(key)?),
            fingerprint: fingerprint(body),
        })
    }

    /// Claims `key` unless a record of it younger than [`KEEP_FOR`] exists.
    ///
    /// Errors: `Validation` on `Idempotency-Key` when the key was used with another body;
    /// the store's errors.
    pub async fn begin(&self, key: &IdempotencyKey) -> Result<Claim, DomainError> {
        let now = self.clock.now();
        match self
            .store
            .begin(&key.key, &key.fingerprint, now, now - KEEP_FOR)
            .await?
        {
            IdempotencyState::Started => Ok(Claim::Started),
            IdempotencyState::Completed(answer) => Ok(Claim::Completed(answer)),
            IdempotencyState::InProgress => Ok(Claim::InProgress),
            IdempotencyState::Mismatch => Err(DomainError::invalid(
                FIELD,
                "was already used with a different request body",
            )),
        }
    }

    /// Runs the work of a [`Claim::Started`] key: stores its answer for the repeats, or
    /// releases the key when it fails, so a retry does the work again.
    ///
    /// Errors: the work's; the store's when the answer cannot be stored.
    pub async fn finish<E, Fut>(&self, key: &IdempotencyKey, work: Fut) -> Result<Value, E>
    where
        E: From<DomainError>,
        Fut: Future<Output = Result<Value, E>>,
    {
        match work.await {
            Ok(answer) => {
                self.complete(key, &answer).await?;
                Ok(answer)
            }
            Err(e) => {
                self.release(key).await;
                Err(e)
            }
        }
    }

    /// Stores the answer of a claimed key.
    ///
    /// Errors: the store's.
    pub async fn complete(&self, key: &IdempotencyKey, answer: &Value) -> Result<(), DomainError> {
        self.store
            .complete(&key.key, answer)
            .await
            .map_err(DomainError::from)
    }

    /// Releases a claimed key whose work did not finish (a completed key is kept).
    ///
    /// Errors: the store's.
    pub async fn abandon(&self, key: &IdempotencyKey) -> Result<(), DomainError> {
        self.store
            .abandon(&key.key)
            .await
            .map_err(DomainError::from)
    }

    /// [`abandon`](Self::abandon), logging a failure instead of returning it: for paths
    /// that already have an error (or a panic) to report.
    pub async fn release(&self, key: &IdempotencyKey) {
        if let Err(e) = self.abandon(key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    }
}

/// A key is 1–255 visible ASCII characters.
///
/// Errors: `Validation` on `Idempotency-Key`.
pub fn valid_key(key: &str) -> Result<&str, DomainError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DomainError::invalid(
            FIELD,
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
