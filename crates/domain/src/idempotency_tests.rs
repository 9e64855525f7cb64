//! The `Idempotency-Key` protocol on the in-memory store and a fake clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::fake_clock::FakeClock;
use crate::idempotency::{KEEP_FOR, fingerprint};
use crate::memory::InMemoryStore;
use crate::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap()
}

fn service() -> (IdempotencyService, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock(Mutex::new(t0())));
    let svc = IdempotencyService::new(Arc::new(InMemoryStore::default()), clock.clone());
    (svc, clock)
}

fn alice() -> Principal {
    Principal {
        id: "alice".into(),
        roles: vec![],
        kind: PrincipalKind::User,
    }
}

fn key(svc: &IdempotencyService, body: &str) -> IdempotencyKey {
    svc.key(&alice(), "k-1", body.as_bytes()).unwrap()
}

fn is_key_error(e: &DomainError) -> bool {
    matches!(
        e,
        DomainError::Validation {
            field: "Idempotency-Key",
            ..
        }
    )
}

#[tokio::test]
async fn the_first_request_starts_and_a_repeat_replays_its_answer() {
    let (svc, _) = service();
    let k = key(&svc, r#"{"user_id":"alice"}"#);

    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
    let answer = svc
        .finish(&k, async {
            Ok::<_, DomainError>(json!({"session_id": "s-1"}))
        })
        .await
        .unwrap();
    assert_eq!(answer, json!({"session_id": "s-1"}));

    // The same body, written otherwise, is the same request.
    let again = key(&svc, r#"{ "user_id" : "alice" }"#);
    assert_eq!(
        svc.begin(&again).await.unwrap(),
        Claim::Completed(json!({"session_id": "s-1"}))
    );
}

#[tokio::test]
async fn a_request_in_progress_is_reported_as_such() {
    let (svc, _) = service();
    let k = key(&svc, "{}");
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::InProgress);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_mismatch() {
    let (svc, _) = service();
    let k = key(&svc, r#"{"user_id":"alice"}"#);
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
    svc.complete(&k, &json!({"ok": true})).await.unwrap();

    let other = key(&svc, r#"{"user_id":"bob"}"#);
    let err = svc.begin(&other).await.unwrap_err();
    assert!(is_key_error(&err), "{err:?}");
    assert_eq!(err.code(), "validation_error");
    assert_eq!(
        err.to_string(),
        "Idempotency-Key: was already used with a different request body"
    );
}

#[tokio::test]
async fn a_record_past_the_window_starts_afresh() {
    let (svc, clock) = service();
    let k = key(&svc, "{}");
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
    svc.complete(&k, &json!(1)).await.unwrap();

    clock.advance(KEEP_FOR - Duration::seconds(1));
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Completed(json!(1)));

    clock.advance(Duration::seconds(2));
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
    // Even with another body: the old record is gone.
    let other = key(&svc, r#"{"a":1}"#);
    clock.advance(KEEP_FOR + Duration::seconds(1));
    assert_eq!(svc.begin(&other).await.unwrap(), Claim::Started);
}

#[tokio::test]
async fn abandon_frees_the_key_and_a_failed_work_abandons_it() {
    let (svc, _) = service();
    let k = key(&svc, "{}");
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
    svc.abandon(&k).await.unwrap();
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);

    let failed = svc
        .finish(&k, async {
            Err::<serde_json::Value, _>(DomainError::NotFound)
        })
        .await;
    assert!(matches!(failed, Err(DomainError::NotFound)));
    // A retry does the work again.
    assert_eq!(svc.begin(&k).await.unwrap(), Claim::Started);
}

#[tokio::test]
async fn a_completed_key_is_kept_by_abandon() {
    let (svc, _) = service();
    let k = key(&svc, "{}");
    svc.begin(&k).await.unwrap();
    svc.complete(&k, &json!("done")).await.unwrap();
    svc.abandon(&k).await.unwrap();
    assert_eq!(
        svc.begin(&k).await.unwrap(),
        Claim::Completed(json!("done"))
    );
}

#[tokio::test]
async fn keys_are_per_caller() {
    let (svc, _) = service();
    let bob = Principal {
        id: "bob".into(),
        roles: vec![],
        kind: PrincipalKind::User,
    };
    let a = svc.key(&alice(), "1", b"{}").unwrap();
    let b = svc.key(&bob, "1", b"{}").unwrap();
    assert_eq!(a.scoped(), "alice:1");
    assert_ne!(a, b);
    assert_eq!(svc.begin(&a).await.unwrap(), Claim::Started);
    assert_eq!(svc.begin(&b).await.unwrap(), Claim::Started);
}

#[test]
fn a_key_is_one_to_255_visible_ascii_characters() {
    let (svc, _) = service();
    for bad in ["", "has space", "tab\t", "é", &"x".repeat(256)] {
        let err = svc.key(&alice(), bad, b"{}").unwrap_err();
        assert!(is_key_error(&err), "{bad:?}: {err:?}");
    }
    assert!(svc.key(&alice(), &"x".repeat(255), b"{}").is_ok());
    assert!(svc.key(&alice(), "a-Z_0~!", b"{}").is_ok());
}

#[test]
fn the_fingerprint_ignores_whitespace_and_keeps_non_json_bodies() {
    assert_eq!(fingerprint(br#"{"a": 1}"#), fingerprint(br#"{ "a":1 }"#));
    assert_ne!(fingerprint(br#"{"a":1}"#), fingerprint(br#"{"a":2}"#));
    assert_eq!(fingerprint(b"not json"), "not json");
}
