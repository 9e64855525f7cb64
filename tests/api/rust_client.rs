//! The Rust client (crates/client, `june-client`) drives the session flow against the real
//! server under API keys, with the LiveKit double and a wiremock Gemini, and reads its
//! errors typed.

use june_client::{
    ChatRequest, Client, CreateSession, Error, GuestTokenRequest, ListSessions, SessionKind,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::spawn_app_with;

/// A service key: it may name the owner of the sessions it creates.
const API_KEY: &str = "rust-client-service-key-0123456789";
/// What the fake Gemini answers (the TypeScript flow uses it too).
pub(crate) const REPLY: &str = "Hello from the fake model.";

/// A Gemini that streams [`REPLY`] to every request.
pub(crate) async fn gemini() -> MockServer {
    let server = MockServer::start().await;
    let sse = format!(
        "data: {}\r\n\r\n",
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": REPLY}]},
                               "finishReason": "STOP"}]})
    );
    Mock::given(method("POST"))
        .and(path("/v1beta/models/test-model:streamGenerateContent"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_rust_client_drives_the_session_flow_and_reads_errors_typed() {
    // Arrange
    let gemini = gemini().await;
    let gemini_url = gemini.uri();
    let keys = format!("{API_KEY}:service");
    let app = spawn_app_with(&[
        ("AUTH_MODE", "api_key"),
        ("API_KEYS", keys.as_str()),
        ("GEMINI_API_KEY", "test-gemini-key"),
        ("GEMINI_BASE_URL", gemini_url.as_str()),
        ("AI_MODEL", "test-model"),
    ])
    .await;
    let (owner, room) = ("rs-owner", "rs-client-room");
    app.lk.join_when_created(room, owner, true);
    let june = Client::builder(&app.address)
        .credential(API_KEY)
        .build()
        .unwrap();

    // Act + Assert, step by step.
    let session = june
        .create_session(&CreateSession {
            user_id: Some(owner.into()),
            room_name: Some(room.into()),
            language: Some("en".into()),
            ..CreateSession::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (session.user_id.as_str(), session.room_name.as_str()),
        (owner, room)
    );
    assert_eq!(session.kind, SessionKind::Owned);
    let token = session.access_token.as_deref().expect("an owner token");
    assert_eq!(app.verify(token).sub, owner, "a token LiveKit accepts");
    let id = session.session_id.clone();

    let read = june.get_session(&id).await.unwrap();
    assert_eq!(read.room_name, room);

    let page = june
        .list_sessions(&ListSessions {
            user_id: Some(owner.into()),
            ..ListSessions::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = page
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);

    let people = june.participants(&id).await.unwrap();
    let identities: Vec<&str> = people.iter().map(|p| p.identity.as_str()).collect();
    assert_eq!(identities, [owner]);

    let guest = june
        .guest_token(&id, &GuestTokenRequest::named("Rs Guest"))
        .await
        .unwrap();
    assert!(guest.identity.starts_with("guest-rs_guest-"), "{guest:?}");
    assert_eq!(app.verify(&guest.access_token).sub, guest.identity);

    let reply = june
        .chat(&ChatRequest::new(&id, "Hello from Rust"))
        .await
        .unwrap();
    assert_eq!(
        (reply.session_id.as_str(), reply.text.as_str()),
        (id.as_str(), REPLY)
    );
    let history = june.history(&id).await.unwrap();
    let lines: Vec<(&str, &str)> = history
        .history
        .iter()
        .map(|h| (h.role.as_str(), h.content.as_str()))
        .collect();
    assert_eq!(lines, [("user", "Hello from Rust"), ("assistant", REPLY)]);

    // A 422 names its field.
    let bad = june
        .create_session(&CreateSession {
            user_id: Some(owner.into()),
            room_name: Some("not a room name!".into()),
            ..CreateSession::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(422), "{bad:?}");
    assert_eq!(bad.code(), Some("validation_error"));
    assert_eq!(bad.body().unwrap().field.as_deref(), Some("room_name"));

    // Without the key: 401.
    let anonymous = Client::new(&app.address).unwrap();
    let denied = anonymous.get_session(&id).await.unwrap_err();
    assert_eq!(
        (denied.status(), denied.code()),
        (Some(401), Some("unauthenticated"))
    );

    let deleted = june.delete_session(&id).await.unwrap();
    assert_eq!(
        (deleted.status.as_str(), deleted.session_id.as_str()),
        ("deleted", id.as_str())
    );
    // Ended: still readable, with nothing left to join.
    let ended = june.get_session(&id).await.unwrap();
    assert_eq!((ended.status.as_str(), ended.access_token), ("ended", None));
    // A typed 404 for an id that was never a session (even one that tries to reach another
    // route), and for deleting again.
    for missing in ["00000000-0000-4000-8000-000000000000", "../../healthz"] {
        let err = june.get_session(missing).await.unwrap_err();
        assert!(
            matches!(&err, Error::Api { status: 404, body } if body.code == "session_not_found"),
            "{missing}: {err:?}"
        );
    }
    let again = june.delete_session(&id).await.unwrap_err();
    assert_eq!(
        (again.status(), again.code()),
        (Some(404), Some("session_not_found"))
    );
}
