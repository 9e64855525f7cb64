//! Webhook verification: exactly what LiveKit sends is accepted, nothing else.

use june_domain::EventKind;
use june_domain::ports::{WebhookError, WebhookVerifier};
use june_livekit_adapter::{LiveKitWebhookVerifier, parse_event};
use june_testkit::webhook::{authorization, hs256, protojson, room_event};
use livekit_protocol as proto;
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::json;

const KEY: &str = "APIwebhookkey";
const SECRET: &str = "webhook-secret-0123456789abcdef012345";

fn verifier() -> LiveKitWebhookVerifier {
    LiveKitWebhookVerifier::new(KEY, &SecretString::from(SECRET))
}

fn body() -> String {
    protojson(&room_event(
        "room_started",
        &proto::Room {
            sid: "RM_abc".into(),
            name: "room-a".into(),
            empty_timeout: 300,
            ..Default::default()
        },
    ))
}

fn refused(result: Result<june_domain::LiveKitEvent, WebhookError>) -> String {
    match result {
        Err(WebhookError::Unauthorized(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_webhook_signed_like_livekit_is_accepted() {
    let body = body();
    let auth = authorization(body.as_bytes(), KEY, SECRET, 300);
    let ev = verifier().verify(body.as_bytes(), Some(&auth)).unwrap();
    assert_eq!(ev.kind, EventKind::RoomStarted);
    assert_eq!(ev.room_sid.as_deref(), Some("RM_abc"));
    assert!(ev.id.starts_with("EV_"));
}

#[test]
fn a_forged_secret_is_refused() {
    let body = body();
    let auth = authorization(
        body.as_bytes(),
        KEY,
        "forged-secret-0123456789abcdef0123456",
        300,
    );
    let why = refused(verifier().verify(body.as_bytes(), Some(&auth)));
    // LiveKit's own text for any JWT failure is "failed to encode jwt": say what happened.
    assert!(why.contains("signature"), "{why}");
    assert!(!why.contains("encode"), "{why}");
}

#[test]
fn another_api_key_is_refused() {
    let body = body();
    let auth = authorization(body.as_bytes(), "APIother", SECRET, 300);
    let why = refused(verifier().verify(body.as_bytes(), Some(&auth)));
    assert!(!why.contains("encode"), "{why}");
}

#[test]
fn an_expired_token_is_refused() {
    let body = body();
    // Past the verifier's one-minute leeway.
    let auth = authorization(body.as_bytes(), KEY, SECRET, -120);
    let why = refused(verifier().verify(body.as_bytes(), Some(&auth)));
    assert!(why.contains("expired"), "{why}");
}

#[test]
fn a_token_that_is_no_jwt_says_so() {
    let body = body();
    let why = refused(verifier().verify(body.as_bytes(), Some("not-a-jwt")));
    assert!(why.contains("well-formed"), "{why}");
}

#[test]
fn a_body_changed_after_signing_is_refused() {
    let body = body();
    let auth = authorization(body.as_bytes(), KEY, SECRET, 300);
    let tampered = body.replace("room-a", "room-b");
    let why = refused(verifier().verify(tampered.as_bytes(), Some(&auth)));
    assert!(why.contains("sha256"), "{why}");
    // Even whitespace counts: verification is over the raw bytes.
    let spaced = format!("{body} ");
    refused(verifier().verify(spaced.as_bytes(), Some(&auth)));
}

#[test]
fn a_missing_or_bearer_prefixed_header_is_refused() {
    let body = body();
    refused(verifier().verify(body.as_bytes(), None));
    refused(verifier().verify(body.as_bytes(), Some("")));
    let auth = authorization(body.as_bytes(), KEY, SECRET, 300);
    // LiveKit never sends "Bearer"; every official SDK refuses it, and so do we.
    refused(verifier().verify(body.as_bytes(), Some(&format!("Bearer {auth}"))));
}

#[test]
fn a_token_without_a_body_digest_is_refused() {
    let now = chrono::Utc::now().timestamp();
    let auth = hs256(&json!({"iss": KEY, "nbf": now, "exp": now + 300}), SECRET);
    let why = refused(verifier().verify(body().as_bytes(), Some(&auth)));
    assert!(why.contains("sha256"), "{why}");
}

#[test]
fn a_signed_body_that_is_not_an_event_is_malformed_not_unauthorized() {
    let body = br#"{"hello":"world"}"#;
    let auth = authorization(body, KEY, SECRET, 300);
    assert!(matches!(
        verifier().verify(body, Some(&auth)),
        Err(WebhookError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes);
    }

    #[test]
    fn the_parser_never_panics_on_event_shaped_json(
        event in "[a-z_]{0,24}",
        id in proptest::option::of("[A-Za-z0-9_]{0,16}"),
        created in proptest::option::of(prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n.to_string())),
            ".{0,12}".prop_map(|s| json!(s)),
        ]),
        kind in prop_oneof![Just(json!("AGENT")), Just(json!(7)), Just(json!(null)), ".{0,8}".prop_map(|s| json!(s))],
        track_type in prop_oneof![Just(json!("VIDEO")), Just(json!(-3)), Just(json!({"x": 1})), ".{0,8}".prop_map(|s| json!(s))],
        room in prop_oneof![Just(json!(null)), Just(json!([])), Just(json!({"name": 5, "sid": true})), Just(json!({"name": "r", "sid": "RM_1"}))],
    ) {
        let mut body = json!({
            "event": event,
            "room": room,
            "participant": {"identity": "p", "kind": kind},
            "track": {"sid": "TR_1", "type": track_type},
        });
        if let Some(id) = id { body["id"] = json!(id); }
        if let Some(c) = created { body["createdAt"] = c; }
        let _ = parse_event(body.to_string().as_bytes());
    }

    #[test]
    fn verification_never_panics_on_arbitrary_headers(auth in ".{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = verifier().verify(&bytes, Some(&auth));
    }
}
