//! Webhooks as LiveKit's Go server sends them (`protocol/webhook/resource_url_notifier.go`):
//! the body is protojson of `WebhookEvent` (camelCase, int64 as strings, zero values
//! omitted), `Content-Type: application/webhook+json`, and `Authorization` carries a raw JWT
//! (no `Bearer`) signed HS256 with the API secret: `iss` = API key, `iat`/`nbf` = now,
//! `exp` = now + 5 min, `sha256` = base64(SHA-256(body)).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use livekit_protocol as proto;
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long LiveKit's webhook tokens live.
pub const VALID_FOR_SECS: i64 = 300;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Signs arbitrary claims as an HS256 JWT (header `{"alg":"HS256","typ":"JWT"}`), for tests
/// that need tokens no SDK would mint (expired, missing claims…).
pub fn hs256(claims: &serde_json::Value, secret: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        b64.encode(mac.finalize().into_bytes())
    )
}

/// base64(SHA-256(body)), the `sha256` claim.
pub fn body_digest(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
}

/// The `Authorization` value LiveKit sends for `body`, valid `valid_for` seconds from now
/// (negative for an already expired token).
pub fn authorization(body: &[u8], api_key: &str, api_secret: &str, valid_for: i64) -> String {
    let t = now();
    hs256(
        &json!({
            "iss": api_key,
            "iat": t,
            "nbf": t,
            "exp": t + valid_for,
            "sha256": body_digest(body),
        }),
        api_secret,
    )
}

/// The body LiveKit sends for `event`: protojson, camelCase, zero values omitted.
pub fn protojson(event: &proto::WebhookEvent) -> String {
    serde_json::to_string(event).expect("WebhookEvent serialises")
}

/// A fresh event id in LiveKit's style.
pub fn event_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("EV_{}_{}", now(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An event about a room (`room_started`, `room_finished`): carries the full room.
pub fn room_event(event: &str, room: &proto::Room) -> proto::WebhookEvent {
    proto::WebhookEvent {
        event: event.to_owned(),
        room: Some(room.clone()),
        id: event_id(),
        created_at: now(),
        ..Default::default()
    }
}

/// An event about a participant: the room trimmed to `{sid, name}`, as the OSS server does.
pub fn participant_event(
    event: &str,
    room: &proto::Room,
    participant: &proto::ParticipantInfo,
) -> proto::WebhookEvent {
    proto::WebhookEvent {
        event: event.to_owned(),
        room: Some(proto::Room {
            sid: room.sid.clone(),
            name: room.name.clone(),
            ..Default::default()
        }),
        participant: Some(participant.clone()),
        id: event_id(),
        created_at: now(),
        ..Default::default()
    }
}

/// An event about a track: room `{sid, name}`, participant `{sid, identity}`.
pub fn track_event(
    event: &str,
    room: &proto::Room,
    participant: &proto::ParticipantInfo,
    track: &proto::TrackInfo,
) -> proto::WebhookEvent {
    proto::WebhookEvent {
        event: event.to_owned(),
        room: Some(proto::Room {
            sid: room.sid.clone(),
            name: room.name.clone(),
            ..Default::default()
        }),
        participant: Some(proto::ParticipantInfo {
            sid: participant.sid.clone(),
            identity: participant.identity.clone(),
            ..Default::default()
        }),
        track: Some(track.clone()),
        id: event_id(),
        created_at: now(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::TokenVerifier;
    use livekit_api::webhooks::WebhookReceiver;

    #[test]
    fn livekits_own_receiver_accepts_what_we_sign() {
        let room = proto::Room {
            sid: "RM_1".into(),
            name: "r".into(),
            ..Default::default()
        };
        let body = protojson(&room_event("room_started", &room));
        let auth = authorization(
            body.as_bytes(),
            "k",
            "s-0123456789abcdef0123456789abcdef",
            300,
        );
        let ev = WebhookReceiver::new(TokenVerifier::with_api_key(
            "k",
            "s-0123456789abcdef0123456789abcdef",
        ))
        .receive(&body, &auth)
        .unwrap();
        assert_eq!(ev.event, "room_started");
        // protojson: camelCase keys, int64 as strings, zero values left out.
        assert!(body.contains(r#""createdAt":""#), "{body}");
        assert!(!body.contains("emptyTimeout"), "{body}");
    }
}
