//! §2.2 token routes real clients call, and /rooms/list.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn token_and_livekit_token_mint_participant_tokens_with_the_superset_shape() {
    let app = spawn_app().await;
    for path in ["/token", "/livekit/token", "/token/"] {
        let (status, body) = app
            .post(
                path,
                json!({"roomName": "lobby", "participantName": "zoe", "metadata": {"seat": 3}}),
            )
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["roomName"], "lobby");
        assert_eq!(body["participantName"], "zoe");
        assert_eq!(body["livekitUrl"], app.lk.ws_url());
        assert_eq!(body["ws_url"], app.lk.ws_url());
        let claims = app.verify(body["token"].as_str().unwrap());
        assert_eq!(claims.sub, "zoe");
        assert_eq!(claims.video.room, "lobby");
        assert!(claims.video.room_join);
        assert_eq!(claims.metadata, r#"{"seat":3}"#);
    }
}

#[tokio::test]
async fn a_numeric_participant_name_is_stringified_and_missing_fields_are_400() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/token", json!({"roomName": "r", "participantName": 7}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.verify(body["token"].as_str().unwrap()).sub, "7");

    for bad in [
        json!({}),
        json!({"roomName": "r"}),
        json!({"participantName": "p"}),
        json!({"roomName": "", "participantName": "p"}),
    ] {
        let (status, body) = app.post("/livekit/token", bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["detail"], "roomName and participantName are required");
    }
}

#[tokio::test]
async fn service_tokens_are_hidden_agents_for_the_named_room() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/livekit/token",
            json!({"service_identity": "june-stt", "room": "room-x"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = app.verify(body["token"].as_str().unwrap());
    assert_eq!(claims.sub, "june-stt");
    assert_eq!(claims.video.room, "room-x");
    assert!(claims.video.hidden && claims.video.agent);

    let (status, body) = app
        .post(
            "/api/livekit/token",
            json!({"service_identity": "june-tts"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("room"));
}

#[tokio::test]
async fn rooms_list_reports_livekits_rooms() {
    let app = spawn_app().await;
    let s = app.create_session("lister").await;
    app.lk
        .join(s["room_name"].as_str().unwrap(), "lister", true);

    let (status, body) = app.post("/rooms/list", json!({})).await;
    assert_eq!(status, 200);
    let rooms = body["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["name"], s["room_name"]);
    assert_eq!(rooms[0]["sid"], s["livekit_room_sid"]);
    assert_eq!(rooms[0]["num_participants"], 1);
    assert!(rooms[0]["creation_time"].as_i64().unwrap() > 0);
    assert!(
        rooms[0]["metadata"]
            .as_str()
            .unwrap()
            .contains("session_id")
    );
}

#[tokio::test]
async fn the_standard_token_endpoint_creates_a_session_or_joins_a_live_one() {
    let app = spawn_app().await;
    // No room: a session is created for the participant.
    let (status, body) = app
        .post(
            "/api/livekit/token-source",
            json!({"participant_identity": "tess", "participant_name": "Tess"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["server_url"], app.lk.ws_url());
    let claims = app.verify(body["participant_token"].as_str().unwrap());
    assert_eq!(claims.sub, "tess");
    assert!(
        app.lk.room(&claims.video.room).is_some(),
        "the room exists in LiveKit"
    );
    let (_, list) = app.get("/api/sessions?user_id=tess").await;
    assert_eq!(list["sessions"][0]["room_name"], claims.video.room.as_str());

    // A live session's room: a token for it.
    let (status, again) = app
        .post(
            "/api/livekit/token-source",
            json!({"participant_identity": "tess", "room_name": claims.video.room}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        app.verify(again["participant_token"].as_str().unwrap())
            .video
            .room,
        claims.video.room
    );

    let (status, _) = app
        .post(
            "/api/livekit/token-source",
            json!({"participant_identity": "tess", "room_name": "no-such-room"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, refused) = app
        .post(
            "/api/livekit/token-source",
            json!({"participant_identity": "tess", "room_config": {"agents": [{"agentName": "x"}]}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(refused["field"], "room_config");
}
