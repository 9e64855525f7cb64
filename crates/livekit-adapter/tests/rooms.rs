//! The LiveKit room adapter against the LiveKit double (real Twirp over HTTP).

use std::time::Duration;

use june_domain::ports::{RoomError, RoomService};
use june_domain::{ParticipantState, RoomSpec, TrackKind};
use june_livekit_adapter::{LiveKitRoomService, api_url_from_ws};
use june_testkit::{Failure, LiveKitDouble};
use secrecy::SecretString;

fn service(lk: &LiveKitDouble) -> LiveKitRoomService {
    LiveKitRoomService::new(
        &lk.url(),
        lk.api_key(),
        &SecretString::from(lk.api_secret()),
        Duration::from_secs(2),
    )
}

fn spec(name: &str) -> RoomSpec {
    RoomSpec {
        name: name.into(),
        empty_timeout_secs: 120,
        departure_timeout_secs: 15,
        max_participants: 4,
        metadata: r#"{"session_id":"s1"}"#.into(),
    }
}

#[tokio::test]
async fn create_room_sends_protobuf_with_our_settings_and_returns_the_sid() {
    let lk = LiveKitDouble::start();
    let room = service(&lk).create_room(&spec("r1")).await.unwrap();

    assert!(room.sid.starts_with("RM_"));
    assert_eq!(room.name, "r1");
    let held = lk.room("r1").unwrap();
    assert_eq!(
        (
            held.empty_timeout,
            held.departure_timeout,
            held.max_participants
        ),
        (120, 15, 4)
    );
    assert_eq!(held.metadata, r#"{"session_id":"s1"}"#);
    let call = &lk.calls()[0];
    assert_eq!(call.method, "CreateRoom");
    assert_eq!(call.content_type, "application/protobuf");
}

#[tokio::test]
async fn creating_a_live_room_again_returns_it_unchanged() {
    let lk = LiveKitDouble::start();
    let svc = service(&lk);
    let first = svc.create_room(&spec("same")).await.unwrap();
    let mut other = spec("same");
    other.metadata = "changed".into();
    let second = svc.create_room(&other).await.unwrap();
    assert_eq!(first.sid, second.sid);
    assert_eq!(second.metadata, first.metadata);
}

#[tokio::test]
async fn deleting_a_missing_room_is_success() {
    let lk = LiveKitDouble::start();
    let svc = service(&lk);
    svc.create_room(&spec("gone")).await.unwrap();
    svc.delete_room("gone").await.unwrap();
    assert!(lk.room_names().is_empty());
    // The double answers 404 not_found now; the adapter treats it as done.
    svc.delete_room("gone").await.unwrap();
}

#[tokio::test]
async fn participants_are_listed_with_their_tracks_and_an_unknown_room_has_none() {
    let lk = LiveKitDouble::start();
    lk.join("r2", "alice", true);
    lk.join("r2", "bob", false);
    let svc = service(&lk);

    let people = svc.list_participants("r2").await.unwrap();
    assert_eq!(people.len(), 2);
    let alice = people.iter().find(|p| p.identity == "alice").unwrap();
    assert_eq!(alice.state, ParticipantState::Active);
    assert!(alice.is_publisher);
    assert_eq!(alice.tracks[0].kind, TrackKind::Audio);
    assert_eq!(alice.tracks[0].source, "microphone");

    assert!(svc.list_participants("nowhere").await.unwrap().is_empty());
}

#[tokio::test]
async fn removing_a_participant_who_is_not_there_is_not_found() {
    let lk = LiveKitDouble::start();
    lk.join("r3", "alice", false);
    let svc = service(&lk);
    svc.remove_participant("r3", "alice").await.unwrap();
    assert!(matches!(
        svc.remove_participant("r3", "alice").await,
        Err(RoomError::NotFound(_))
    ));
}

#[tokio::test]
async fn list_rooms_filters_by_name() {
    let lk = LiveKitDouble::start();
    lk.create_room("a");
    lk.create_room("b");
    let svc = service(&lk);
    assert_eq!(svc.list_rooms(&[]).await.unwrap().len(), 2);
    let only_b = svc.list_rooms(&["b".into()]).await.unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].name, "b");
}

#[tokio::test]
async fn a_wrong_secret_is_reported_as_rejected_credentials() {
    let lk = LiveKitDouble::start();
    let svc = LiveKitRoomService::new(
        &lk.url(),
        lk.api_key(),
        &SecretString::from("not-the-secret-0123456789abcdef01234"),
        Duration::from_secs(2),
    );
    let err = svc.create_room(&spec("x")).await.unwrap_err();
    assert!(matches!(err, RoomError::Unauthorized(_)), "{err:?}");
    assert!(err.to_string().contains("API key/secret"));
    assert!(lk.room_names().is_empty());
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let lk = LiveKitDouble::start();
    let svc = service(&lk);
    for status in [500, 503] {
        lk.fail(Failure::Status(status));
        let err = svc.create_room(&spec("x")).await.unwrap_err();
        assert!(
            matches!(err, RoomError::Unavailable { .. }),
            "{status}: {err:?}"
        );
    }
    lk.recover();
    svc.create_room(&spec("x")).await.unwrap();
}

#[tokio::test]
async fn a_hanging_server_times_out_as_unavailable() {
    let lk = LiveKitDouble::start();
    lk.fail(Failure::Hang);
    let svc = LiveKitRoomService::new(
        &lk.url(),
        lk.api_key(),
        &SecretString::from(lk.api_secret()),
        Duration::from_millis(300),
    );
    let err = svc.list_rooms(&[]).await.unwrap_err();
    assert!(err.to_string().contains("did not answer"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let svc = LiveKitRoomService::new(
        &format!("http://127.0.0.1:{port}"),
        "k",
        &SecretString::from("s"),
        Duration::from_secs(1),
    );
    let err = svc.list_rooms(&[]).await.unwrap_err();
    assert!(matches!(err, RoomError::Unavailable { .. }));
}

#[test]
fn websocket_urls_become_http_api_urls() {
    assert_eq!(
        api_url_from_ws("ws://localhost:7880"),
        "http://localhost:7880"
    );
    assert_eq!(
        api_url_from_ws("wss://lk.example.com"),
        "https://lk.example.com"
    );
    assert_eq!(
        api_url_from_ws("https://lk.example.com"),
        "https://lk.example.com"
    );
}

#[tokio::test]
async fn send_data_delivers_a_reliable_message_on_its_topic_over_protobuf() {
    let lk = LiveKitDouble::start();
    lk.create_room("talk");
    let svc = service(&lk);

    svc.send_data(
        "talk",
        br#"{"type":"user"}"#.to_vec(),
        "june.transcript",
        true,
    )
    .await
    .unwrap();
    svc.send_data("talk", b"second".to_vec(), "june.transcript", false)
        .await
        .unwrap();

    let sent = lk.data_messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].room, "talk");
    assert_eq!(sent[0].topic.as_deref(), Some("june.transcript"));
    assert_eq!(sent[0].json(), serde_json::json!({"type": "user"}));
    assert!(sent[0].reliable);
    assert_eq!(sent[1].payload, b"second");
    assert!(!sent[1].reliable);
    let call = lk
        .calls()
        .into_iter()
        .find(|c| c.method == "SendData")
        .unwrap();
    assert_eq!(call.content_type, "application/protobuf");
}

#[tokio::test]
async fn send_data_to_a_room_that_is_not_live_is_not_found() {
    let lk = LiveKitDouble::start();
    let err = service(&lk)
        .send_data("nowhere", b"x".to_vec(), "june.transcript", true)
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::NotFound(_)), "{err:?}");
    assert!(lk.data_messages().is_empty());
}

#[tokio::test]
async fn send_data_with_a_wrong_secret_is_unauthorized_and_delivers_nothing() {
    let lk = LiveKitDouble::start();
    lk.create_room("talk");
    let svc = LiveKitRoomService::new(
        &lk.url(),
        lk.api_key(),
        &SecretString::from("not-the-secret-0123456789abcdef01234"),
        Duration::from_secs(2),
    );
    let err = svc
        .send_data("talk", b"x".to_vec(), "june.transcript", true)
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::Unauthorized(_)), "{err:?}");
    assert!(lk.data_messages().is_empty());
}

/// What other LiveKit SDKs send: Twirp JSON, base64 data, the kind by name. The double takes
/// it only with `roomAdmin` for that very room.
#[tokio::test]
async fn the_double_takes_json_send_data_only_with_room_admin_for_that_room() {
    use base64::Engine as _;
    use livekit_api::access_token::{AccessToken, VideoGrants};

    let lk = LiveKitDouble::start();
    lk.create_room("talk");
    let token = |room: &str| {
        AccessToken::with_api_key(lk.api_key(), lk.api_secret())
            .with_grants(VideoGrants {
                room_admin: true,
                room: room.to_owned(),
                ..Default::default()
            })
            .to_jwt()
            .unwrap()
    };
    let body = serde_json::json!({
        "room": "talk",
        "data": base64::engine::general_purpose::STANDARD.encode(br#"{"text":"hi"}"#),
        "kind": "RELIABLE",
        "topic": "june.transcript",
    });
    let send = |jwt: String| {
        june_testkit::http_client()
            .post(format!("{}/twirp/livekit.RoomService/SendData", lk.url()))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {jwt}"))
            .body(body.to_string())
            .send()
    };

    // Arrange/Act: admin of another room.
    let resp = send(token("other")).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(lk.data_messages().is_empty());

    // Admin of this room.
    let resp = send(token("talk")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent = lk.data_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json(), serde_json::json!({"text": "hi"}));
    assert_eq!(sent[0].topic.as_deref(), Some("june.transcript"));
    assert!(sent[0].reliable);
}
