//! A tiny service embedding june-domain with its in-memory adapters: create a session, read
//! it back with a fresh token, apply a (shared-secret "signed") webhook through the
//! lifecycle, list the event log, end the session.
//!
//! A real embedder swaps the in-memory parts for june-store, june-livekit-adapter and
//! june-ai-adapters; the services and their contracts stay the same.
//!
//! Run it with `cargo run -q -p june-domain --example embed` (`make test` does).

use std::sync::Arc;

use june_domain::memory::{InMemoryRooms, InMemoryStore};
use june_domain::ports::{TokenError, TokenIssuer, WebhookError, WebhookVerifier};
use june_domain::{
    Domain, DomainPolicies, DomainPorts, EventKind, IssuedToken, LiveKitEvent, NewSession,
    SessionError, SessionStatus, TokenRequest, WebhookOutcome,
};

/// A real issuer signs a LiveKit JWT (june-livekit-adapter's `LiveKitTokenIssuer`); this one
/// only names the grant, which is enough to show who gets which token.
struct PlainTokens;

impl TokenIssuer for PlainTokens {
    fn issue(&self, r: &TokenRequest) -> Result<IssuedToken, TokenError> {
        Ok(IssuedToken {
            jwt: format!("token-for:{}@{}", r.identity, r.grants.room),
            expires_at: chrono::Utc::now() + r.ttl,
        })
    }
}

/// A real verifier checks LiveKit's JWT and the body's sha256
/// (june-livekit-adapter's `LiveKitWebhookVerifier`). This one accepts a shared secret as the
/// `Authorization` value and reads a minimal JSON body, in the same order: the signature
/// first, the body after.
struct SharedSecretVerifier {
    secret: String,
}

impl WebhookVerifier for SharedSecretVerifier {
    fn verify(
        &self,
        body: &[u8],
        authorization: Option<&str>,
    ) -> Result<LiveKitEvent, WebhookError> {
        if authorization != Some(self.secret.as_str()) {
            return Err(WebhookError::Unauthorized("wrong shared secret".into()));
        }
        let payload: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        Ok(LiveKitEvent {
            id: text(&payload["id"]).unwrap_or_default(),
            kind: EventKind::parse(payload["event"].as_str().unwrap_or_default()),
            created_at: None,
            room_name: text(&payload["room"]["name"]),
            room_sid: text(&payload["room"]["sid"]),
            participant: None,
            track: None,
            payload,
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), SessionError> {
    // One in-memory store plays every store port; the rooms play LiveKit. No language
    // model, speech or agent dispatch: those services answer "not configured".
    let ports = DomainPorts::with_store(
        Arc::new(InMemoryStore::default()),
        Arc::new(InMemoryRooms::default()),
        Arc::new(PlainTokens),
        Arc::new(SharedSecretVerifier {
            secret: "s3cret".into(),
        }),
    );
    let Domain {
        sessions,
        lifecycle,
        ..
    } = Domain::new(ports, DomainPolicies::default());

    // Create: the room exists, the session is stored, the owner has a token.
    let created = sessions
        .create(NewSession {
            user_id: "alice".into(),
            ..Default::default()
        })
        .await?;
    let session = created.session;
    println!("created {} in room {}", session.id, session.room_name);
    assert_eq!(session.status, SessionStatus::Created);

    // Read: every read mints a fresh owner token (tokens are never stored).
    let read = sessions.get(session.id).await?;
    let token = read.token.ok_or(SessionError::NotFound)?; // a live session has one
    println!("read it back; owner token {}", token.jwt);

    // A webhook: LiveKit says the room started. A wrong secret is refused before the body
    // is read; the right one moves the session to `active`.
    let body = serde_json::json!({
        "id": "EV_1",
        "event": "room_started",
        "room": { "name": session.room_name, "sid": session.livekit_room_sid },
    })
    .to_string();
    let refused = lifecycle.receive(body.as_bytes(), Some("guess")).await;
    assert!(matches!(refused, Err(SessionError::Webhook(_))));
    let receipt = lifecycle.receive(body.as_bytes(), Some("s3cret")).await?;
    assert!(matches!(receipt.outcome, WebhookOutcome::Received { .. }));
    // LiveKit retries: the same id again changes nothing.
    let again = lifecycle.receive(body.as_bytes(), Some("s3cret")).await?;
    assert_eq!(again.outcome, WebhookOutcome::Duplicate);
    assert_eq!(
        sessions.get(session.id).await?.session.status,
        SessionStatus::Active
    );
    let log = lifecycle.events(session.id, None, None).await?;
    println!("webhook applied; event log: {} event(s)", log.events.len());

    // End: the room is deleted and the session is over; a second end is "not found".
    let ended = sessions.end(session.id).await?;
    assert_eq!(ended.status, SessionStatus::Ended);
    assert!(matches!(
        sessions.end(session.id).await,
        Err(SessionError::NotFound)
    ));
    println!("ended {}", ended.id);
    Ok(())
}
