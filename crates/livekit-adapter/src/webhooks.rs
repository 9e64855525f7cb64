//! LiveKit's signed webhooks (design §3.3): verify with LiveKit's `TokenVerifier` and the
//! `sha256` claim over the raw body, then read the protojson leniently.

use base64::Engine as _;
use chrono::DateTime;
use june_domain::ports::{WebhookError, WebhookVerifier};
use june_domain::{EventKind, EventParticipant, EventTrack, LiveKitEvent, TrackKind};
use livekit_api::access_token::{AccessTokenError, TokenVerifier};
use livekit_protocol as proto;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Verifies webhooks signed with our API key pair (`webhook.api_key` in LiveKit's config).
pub struct LiveKitWebhookVerifier {
    verifier: TokenVerifier,
}

impl std::fmt::Debug for LiveKitWebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // TokenVerifier's own Debug shows the key only.
        f.debug_struct("LiveKitWebhookVerifier")
            .field("verifier", &self.verifier)
            .finish()
    }
}

impl LiveKitWebhookVerifier {
    /// A verifier for webhooks signed with this key pair.
    pub fn new(api_key: &str, api_secret: &SecretString) -> Self {
        LiveKitWebhookVerifier {
            verifier: TokenVerifier::with_api_key(api_key, api_secret.expose_secret()),
        }
    }
}

impl WebhookVerifier for LiveKitWebhookVerifier {
    fn verify(
        &self,
        body: &[u8],
        authorization: Option<&str>,
    ) -> Result<LiveKitEvent, WebhookError> {
        let token = authorization
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WebhookError::Unauthorized("no Authorization header".into()))?;
        // HS256 with our secret, `iss` = our key, `exp` required and not past.
        let claims = self
            .verifier
            .verify(token)
            .map_err(|e| WebhookError::Unauthorized(rejection(&e)))?;
        if claims.sha256.is_empty() {
            return Err(WebhookError::Unauthorized(
                "token has no sha256 claim".into(),
            ));
        }
        let signed = base64::engine::general_purpose::STANDARD
            .decode(claims.sha256.as_bytes())
            .map_err(|_| WebhookError::Unauthorized("sha256 claim is not base64".into()))?;
        // Over the raw bytes: never re-serialise before hashing.
        if signed.as_slice() != Sha256::digest(body).as_slice() {
            return Err(WebhookError::Unauthorized(
                "body does not match the signed sha256".into(),
            ));
        }
        parse_event(body)
    }
}

/// Why LiveKit's verifier refused a webhook token, in words. Its own message for every
/// JWT failure is "failed to encode jwt", which says the wrong thing about a *verification*.
fn rejection(e: &AccessTokenError) -> String {
    use jsonwebtoken::errors::ErrorKind;
    let why = match e {
        AccessTokenError::Encoding(jwt) => match jwt.kind() {
            ErrorKind::InvalidSignature => "its signature does not match our API secret".into(),
            ErrorKind::ExpiredSignature => "it has expired".into(),
            ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
            ErrorKind::InvalidIssuer => "it was issued for another API key".into(),
            ErrorKind::InvalidAlgorithm => "it is not signed with HS256".into(),
            ErrorKind::MissingRequiredClaim(claim) => format!("it has no {claim} claim"),
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => "it is not a well-formed JWT".into(),
            other => format!("it did not verify ({other:?})"),
        },
        AccessTokenError::InvalidKeys => "the API key in it is not ours".into(),
        AccessTokenError::InvalidClaims(what) => format!("its claims are invalid: {what}"),
        other => format!("it did not verify: {other}"),
    };
    format!("webhook token rejected: {why}")
}

/// Reads a webhook body (LiveKit's protojson `WebhookEvent`: camelCase, int64 as strings,
/// zero values omitted). Parsed with `livekit-protocol` first; if that refuses (a newer
/// LiveKit sends an enum value this crate does not know), the fields we use are read from the
/// JSON directly, so a signed event is never lost to a version gap. Never panics.
pub fn parse_event(body: &[u8]) -> Result<LiveKitEvent, WebhookError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(WebhookError::Malformed("not a JSON object".into()));
    };
    let name = obj
        .get("event")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WebhookError::Malformed("no event name".into()))?
        .to_owned();
    let mut event = match serde_json::from_value::<proto::WebhookEvent>(value.clone()) {
        Ok(ev) => from_proto(ev),
        Err(e) => {
            tracing::debug!(error = %e, "webhook not readable as livekit-protocol; reading it leniently");
            lenient(obj)
        }
    };
    event.kind = EventKind::parse(&name);
    if event.id.is_empty() {
        // Old servers sent no id: the body itself is the identity of the delivery.
        let digest = Sha256::digest(body);
        event.id = format!(
            "sha256:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
    }
    event.payload = value;
    Ok(event)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn seconds(secs: i64) -> Option<DateTime<chrono::Utc>> {
    (secs > 0)
        .then(|| DateTime::from_timestamp(secs, 0))
        .flatten()
}

fn track_kind(t: Option<proto::TrackType>) -> TrackKind {
    match t {
        Some(proto::TrackType::Video) => TrackKind::Video,
        Some(proto::TrackType::Data) => TrackKind::Data,
        _ => TrackKind::Audio,
    }
}

fn from_proto(ev: proto::WebhookEvent) -> LiveKitEvent {
    LiveKitEvent {
        id: ev.id,
        kind: EventKind::Other(String::new()),
        created_at: seconds(ev.created_at),
        room_name: ev.room.as_ref().and_then(|r| non_empty(r.name.clone())),
        room_sid: ev.room.as_ref().and_then(|r| non_empty(r.sid.clone())),
        participant: ev.participant.map(|p| EventParticipant {
            kind: proto::participant_info::Kind::try_from(p.kind)
                .map(|k| k.as_str_name().to_owned())
                .unwrap_or_else(|_| "UNKNOWN".into()),
            identity: p.identity,
            sid: p.sid,
        }),
        track: ev.track.map(|t| EventTrack {
            kind: track_kind(proto::TrackType::try_from(t.r#type).ok()),
            source: proto::TrackSource::try_from(t.source)
                .map(|s| s.as_str_name().to_ascii_lowercase())
                .unwrap_or_else(|_| "unknown".into()),
            sid: t.sid,
        }),
        payload: Value::Null,
    }
}

fn text(obj: Option<&Value>, key: &str) -> Option<String> {
    obj?.get(key)?
        .as_str()
        .map(str::to_owned)
        .and_then(non_empty)
}

/// The fields the lifecycle uses, read from raw protojson (either key case).
fn lenient(obj: &serde_json::Map<String, Value>) -> LiveKitEvent {
    let get = |camel: &str, snake: &str| obj.get(camel).or_else(|| obj.get(snake));
    let created = get("createdAt", "created_at").and_then(|v| match v {
        Value::String(s) => s.parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    });
    let room = obj.get("room");
    let participant = obj.get("participant");
    let track = obj.get("track");
    LiveKitEvent {
        id: text(Some(&Value::Object(obj.clone())), "id").unwrap_or_default(),
        kind: EventKind::Other(String::new()),
        created_at: created.and_then(seconds),
        room_name: text(room, "name"),
        room_sid: text(room, "sid"),
        participant: text(participant, "identity").map(|identity| EventParticipant {
            identity,
            sid: text(participant, "sid").unwrap_or_default(),
            kind: text(participant, "kind")
                .map(|k| k.to_ascii_uppercase())
                .unwrap_or_else(|| "STANDARD".into()),
        }),
        track: text(track, "sid").map(|sid| EventTrack {
            sid,
            kind: track_kind(text(track, "type").and_then(|t| proto::TrackType::from_str_name(&t))),
            source: text(track, "source")
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_else(|| "unknown".into()),
        }),
        payload: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_sdk_test_vector_parses() {
        // Body of node-sdks WebhookReceiver.test.ts (livekit-notes §2.2), byte for byte.
        let body = r#"{"event":"room_started", "room":{"sid":"RM_TkVjUvAqgzKz", "name":"mytestroom", "emptyTimeout":300, "creationTime":"1628545903", "turnPassword":"ICkSr2rEeslkN6e9bXL4Ji5zzMD5Z7zzr6ulOaxMj6N", "enabledCodecs":[{"mime":"audio/opus"}, {"mime":"video/VP8"}]}}"#;
        let digest =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()));
        assert_eq!(digest, "CoEQz1chqJ9bnZRcORddjplkvpjmPujmLTR42DbefYI=");
        let ev = parse_event(body.as_bytes()).unwrap();
        assert_eq!(ev.kind, EventKind::RoomStarted);
        assert_eq!(ev.room_name.as_deref(), Some("mytestroom"));
        assert_eq!(ev.room_sid.as_deref(), Some("RM_TkVjUvAqgzKz"));
        assert!(
            ev.id.starts_with("sha256:"),
            "no id in the vector: derived from the body"
        );
    }

    #[test]
    fn an_audio_track_without_a_type_field_is_audio() {
        let body = br#"{"id":"EV_1","event":"track_published","createdAt":"1771351907","room":{"sid":"RM_1","name":"r"},"participant":{"sid":"PA_1","identity":"alice"},"track":{"sid":"TR_1","source":"MICROPHONE"}}"#;
        let ev = parse_event(body).unwrap();
        let track = ev.track.unwrap();
        assert_eq!(track.kind, TrackKind::Audio);
        assert_eq!(track.source, "microphone");
        assert_eq!(ev.created_at.unwrap().timestamp(), 1_771_351_907);
        assert_eq!(ev.participant.unwrap().identity, "alice");
    }

    #[test]
    fn unknown_enum_values_and_fields_do_not_lose_the_event() {
        let body = br#"{"id":"EV_2","event":"participant_joined","createdAt":"1771351907","room":{"sid":"RM_1","name":"r"},"participant":{"sid":"PA_1","identity":"bot","kind":"SOME_FUTURE_KIND","state":"NEW_STATE"},"brandNewField":{"x":1}}"#;
        assert!(
            serde_json::from_slice::<proto::WebhookEvent>(body).is_err(),
            "the strict parser refuses it"
        );
        let ev = parse_event(body).unwrap();
        assert_eq!(ev.kind, EventKind::ParticipantJoined);
        assert_eq!(ev.id, "EV_2");
        let p = ev.participant.unwrap();
        assert_eq!(
            (p.identity.as_str(), p.kind.as_str()),
            ("bot", "SOME_FUTURE_KIND")
        );
        assert_eq!(ev.room_sid.as_deref(), Some("RM_1"));
    }

    #[test]
    fn agent_participants_are_marked_as_dependent() {
        let body = br#"{"id":"EV_3","event":"participant_joined","room":{"name":"r"},"participant":{"identity":"june-stt","kind":"AGENT"}}"#;
        assert!(
            parse_event(body)
                .unwrap()
                .participant
                .unwrap()
                .is_dependent()
        );
    }

    #[test]
    fn bodies_that_are_not_events_are_malformed() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"event":""}"#,
            br#"{"event":5}"#,
        ] {
            assert!(
                matches!(parse_event(body), Err(WebhookError::Malformed(_))),
                "{body:?}"
            );
        }
    }
}
