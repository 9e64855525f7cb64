//! §2.4 LiveKit webhooks end to end: signed like LiveKit's Go server, posted over HTTP.

use std::time::Duration;

use june_testkit::webhook::{authorization, participant_event, protojson, room_event, track_event};
use livekit_protocol as proto;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A session and the room LiveKit holds for it.
async fn session_with_room(app: &TestApp, user: &str) -> (String, proto::Room) {
    let s = app.create_session(user).await;
    let room = app.lk.room(s["room_name"].as_str().unwrap()).unwrap();
    (s["session_id"].as_str().unwrap().to_owned(), room)
}

async fn session(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    body
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/sessions/{id}/events")).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn room_started_then_room_finished_drive_the_session_and_fill_its_event_log() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "alice").await;

    let (status, body) = app.send_event(&room_event("room_started", &room)).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "received", "event": "room_started"}));
    assert_eq!(session(&app, &id).await["status"], "active");

    let mut finished = room_event("room_finished", &room);
    finished.created_at += 5;
    app.send_event(&finished).await;
    let ended = session(&app, &id).await;
    assert_eq!(ended["status"], "ended");

    let log = events(&app, &id).await;
    let names: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["room_finished", "room_started"], "newest first");
    assert_eq!(log[0]["payload"]["room"]["name"], room.name);
}

#[tokio::test]
async fn both_slash_forms_and_plain_json_are_accepted() {
    let app = spawn_app().await;
    let (_, room) = session_with_room(&app, "bob").await;
    for (path, content_type) in [
        ("/api/livekit-webhooks", "application/webhook+json"),
        ("/api/livekit-webhooks/", "application/json; charset=utf-8"),
    ] {
        let body = protojson(&room_event("room_started", &room));
        let auth = authorization(body.as_bytes(), app.lk.api_key(), app.lk.api_secret(), 300);
        let resp = app
            .client
            .post(app.url(path))
            .header("content-type", content_type)
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_duplicate_delivery_answers_duplicate_and_changes_nothing() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "carol").await;
    let joined = participant_event(
        "participant_joined",
        &room,
        &app.lk.join(&room.name, "dan", true),
    );
    let mut left = participant_event(
        "participant_left",
        &room,
        &app.lk.join(&room.name, "dan", true),
    );
    left.created_at = joined.created_at + 3;

    app.send_event(&joined).await;
    app.send_event(&left).await;
    // LiveKit retries the join (our 2xx was lost): it must not bring dan back.
    let (status, body) = app.send_event(&joined).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "duplicate"}));
    assert_eq!(session(&app, &id).await["participant_count"], 0);
    assert_eq!(events(&app, &id).await.len(), 2);
}

#[tokio::test]
async fn events_out_of_order_never_step_a_session_back() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "erin").await;
    let started = room_event("room_started", &room);
    let mut finished = room_event("room_finished", &room);
    finished.created_at = started.created_at + 60;
    let mut joined = participant_event(
        "participant_joined",
        &room,
        &app.lk.join(&room.name, "late", false),
    );
    joined.created_at = started.created_at + 1;

    app.send_event(&finished).await;
    app.send_event(&started).await;
    app.send_event(&joined).await;
    let s = session(&app, &id).await;
    assert_eq!(s["status"], "ended");
    assert!(s["access_token"].is_null());
}

#[tokio::test]
async fn participants_are_counted_by_livekits_clock_and_bots_are_not() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "fay").await;
    let guest = app.lk.join(&room.name, "guest-1", true);
    let mut agent = app.lk.join(&room.name, "june-stt", true);
    agent.kind = proto::participant_info::Kind::Agent as i32;

    let joined = participant_event("participant_joined", &room, &guest);
    let mut left = participant_event("participant_left", &room, &guest);
    left.created_at = joined.created_at + 10;
    // Delivered in the wrong order.
    app.send_event(&left).await;
    app.send_event(&joined).await;
    app.send_event(&participant_event(
        "participant_joined",
        &room,
        &app.lk.join(&room.name, "fay", true),
    ))
    .await;
    app.send_event(&participant_event("participant_joined", &room, &agent))
        .await;

    let s = session(&app, &id).await;
    assert_eq!(
        s["participant_count"], 1,
        "fay only: guest-1 left, the agent does not count"
    );
    assert_eq!(s["status"], "active");
    assert!(s["last_activity_at"].as_str().is_some());
}

#[tokio::test]
async fn track_events_and_unknown_event_names_are_recorded() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "gus").await;
    let p = app.lk.join(&room.name, "gus", true);
    let track = p.tracks[0].clone();
    let (status, _) = app
        .send_event(&track_event("track_published", &room, &p, &track))
        .await;
    assert_eq!(status, 200);
    let mut future = room_event("room_hibernated", &room);
    future.room = Some(proto::Room {
        sid: room.sid.clone(),
        name: room.name.clone(),
        ..Default::default()
    });
    let (status, body) = app.send_event(&future).await;
    assert_eq!(status, 200);
    assert_eq!(body["event"], "room_hibernated");

    let log = events(&app, &id).await;
    assert_eq!(log.len(), 2);
    let published = log
        .iter()
        .find(|e| e["event"] == "track_published")
        .unwrap();
    assert_eq!(published["track_sid"], track.sid);
    assert_eq!(published["participant"], "gus");
    // protojson omits the AUDIO type (zero value); the payload is kept as LiveKit sent it.
    assert!(published["payload"]["track"].get("type").is_none());
}

#[tokio::test]
async fn a_signed_event_with_an_unknown_enum_value_is_not_lost() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "hal").await;
    let body = json!({
        "id": "EV_future_1",
        "event": "participant_joined",
        "createdAt": chrono::Utc::now().timestamp().to_string(),
        "room": {"sid": room.sid, "name": room.name},
        "participant": {"sid": "PA_x", "identity": "hal", "kind": "QUANTUM", "state": "ACTIVE"},
    })
    .to_string();
    let auth = authorization(body.as_bytes(), app.lk.api_key(), app.lk.api_secret(), 300);
    let (status, _) = app.post_webhook(&body, Some(&auth)).await;
    assert_eq!(status, 200);
    assert_eq!(session(&app, &id).await["participant_count"], 1);
}

#[tokio::test]
async fn forged_wrong_key_expired_tampered_and_unsigned_webhooks_are_401_and_leave_no_trace() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "ivy").await;
    let body = protojson(&room_event("room_finished", &room));
    let key = app.lk.api_key();
    let secret = app.lk.api_secret();
    let cases: Vec<(&str, String, Option<String>)> = vec![
        (
            "forged secret",
            body.clone(),
            Some(authorization(
                body.as_bytes(),
                key,
                "forged-0123456789abcdef0123456789ab",
                300,
            )),
        ),
        (
            "wrong key",
            body.clone(),
            Some(authorization(
                body.as_bytes(),
                "APIsomeoneelse",
                secret,
                300,
            )),
        ),
        (
            "expired",
            body.clone(),
            Some(authorization(body.as_bytes(), key, secret, -120)),
        ),
        (
            "tampered",
            body.replace("room_finished", "room_started"),
            Some(authorization(body.as_bytes(), key, secret, 300)),
        ),
        ("missing header", body.clone(), None),
        (
            "Bearer prefix",
            body.clone(),
            Some(format!(
                "Bearer {}",
                authorization(body.as_bytes(), key, secret, 300)
            )),
        ),
    ];
    for (case, body, auth) in cases {
        let (status, reply) = app.post_webhook(&body, auth.as_deref()).await;
        assert_eq!(status, 401, "{case}: {reply}");
        assert_eq!(reply["code"], "invalid_signature", "{case}");
    }
    assert_eq!(session(&app, &id).await["status"], "created");
    assert!(events(&app, &id).await.is_empty());
}

#[tokio::test]
async fn a_signed_but_unparsable_body_is_400() {
    let app = spawn_app().await;
    for body in ["not json at all", r#"{"room":{"name":"x"}}"#] {
        let auth = authorization(body.as_bytes(), app.lk.api_key(), app.lk.api_secret(), 300);
        let (status, reply) = app.post_webhook(body, Some(&auth)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["code"], "malformed_webhook");
    }
}

#[tokio::test]
async fn the_event_log_pages_with_a_cursor_and_unknown_sessions_are_404() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "jan").await;
    for i in 0..3 {
        let mut ev = room_event("room_started", &room);
        ev.created_at += i;
        app.send_event(&ev).await;
    }
    let (_, page) = app.get(&format!("/api/sessions/{id}/events?limit=2")).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!(
            "/api/sessions/{id}/events?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    let (status, _) = app
        .get(&format!("/api/sessions/{}/events", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(&format!("/api/sessions/{id}/events?cursor=nonsense"))
        .await;
    assert_eq!(status, 422);
}

/// The reaper reconciles with LiveKit: a room that vanished without a `room_finished`
/// (we were down, or the webhook was dropped) ends its session.
#[tokio::test]
async fn the_reaper_ends_a_session_whose_room_livekit_no_longer_lists() {
    let app = spawn_app_with(&[
        ("JUNE__REAPER__INTERVAL_MS", "100"),
        ("JUNE__REAPER__GRACE_SECS", "0"),
    ])
    .await;
    let (id, room) = session_with_room(&app, "kim").await;
    let (_, keep) = session_with_room(&app, "lee").await;
    app.lk.join(&keep.name, "lee", true);

    // LiveKit closes kim's room and the room_finished webhook never arrives.
    let admin = livekit_api::services::room::RoomClient::with_api_key(
        &app.lk.url(),
        app.lk.api_key(),
        app.lk.api_secret(),
    );
    admin.delete_room(&room.name).await.unwrap();

    let mut status = Value::Null;
    for _ in 0..50 {
        status = session(&app, &id).await["status"].clone();
        if status == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "ended");
    let (_, all) = app.get("/api/sessions?status=created").await;
    assert_eq!(
        all["sessions"].as_array().unwrap().len(),
        1,
        "lee's session is untouched"
    );
}

#[tokio::test]
async fn concurrent_deliveries_are_applied_together_and_each_gets_its_own_answer() {
    let app = spawn_app().await;
    let (id, room) = session_with_room(&app, "alice").await;
    // 30 people join at once, each join delivered twice (LiveKit retries), all in flight
    // together, so the domain applies them in batches.
    let joins: Vec<proto::WebhookEvent> = (0..30)
        .map(|i| {
            let who = proto::ParticipantInfo {
                identity: format!("guest-{i}"),
                ..Default::default()
            };
            participant_event("participant_joined", &room, &who)
        })
        .collect();
    let deliveries = joins.iter().chain(joins.iter()).map(|e| app.send_event(e));
    let answers = futures_util::future::join_all(deliveries).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let received = answers
        .iter()
        .filter(|(_, body)| body["status"] == "received")
        .count();
    let duplicates = answers
        .iter()
        .filter(|(_, body)| body["status"] == "duplicate")
        .count();
    assert_eq!((received, duplicates), (30, 30));
    let now = session(&app, &id).await;
    assert_eq!(now["participant_count"], 30);
    assert_eq!(now["status"], "active");
    assert_eq!(events(&app, &id).await.len(), 30);
}
