//! §2.1 sessions, end to end.

use june_testkit::Failure;
use serde_json::json;

use crate::helpers::{now, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_new_session_has_a_room_in_livekit_and_an_owner_token_livekit_accepts() {
    let app = spawn_app().await;

    let body = app.create_session("alice@example.com").await;

    let room = body["room_name"].as_str().unwrap();
    assert!(room.starts_with("room-alice_example_com-"), "{room}");
    assert_eq!(body["status"], "created");
    assert_eq!(body["livekit_url"], app.lk.ws_url());
    let held = app.lk.room(room).expect("the room exists in LiveKit");
    assert_eq!(body["livekit_room_sid"], held.sid);
    assert!(held.metadata.contains(body["session_id"].as_str().unwrap()));
    assert_eq!(held.empty_timeout, 300);

    let claims = app.verify(body["access_token"].as_str().unwrap());
    assert_eq!(claims.sub, "alice@example.com");
    assert_eq!(claims.iss, app.lk.api_key());
    assert!(claims.video.room_join);
    assert_eq!(claims.video.room, room);
    assert_eq!(claims.video.can_publish, Some(true));
    assert_eq!(claims.video.can_subscribe, Some(true));
    assert_eq!(claims.video.can_publish_data, Some(true));
    // Default token TTL: 6 h.
    assert!((claims.exp as i64 - (now() + 6 * 3600) as i64).abs() <= 2);
    let token_exp =
        chrono::DateTime::parse_from_rfc3339(body["token_expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(token_exp.timestamp() as usize, claims.exp);
}

#[tokio::test]
async fn both_slash_forms_answer_directly() {
    let app = spawn_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/api/sessions", "/api/sessions/"] {
        let resp = no_redirects
            .post(app.url(path))
            .json(&json!({"user_id": "bob"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "POST {path}");
        let resp = no_redirects.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
    }
    let (_, list) = app.get("/api/sessions").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_short_session_caps_its_token_and_reads_mint_a_fresh_token() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/sessions",
            json!({"user_id": "carol", "ttl_seconds": 600, "language": "fr", "metadata": {"k": 1}}),
        )
        .await;
    assert_eq!(status, 200);
    let claims = app.verify(body["access_token"].as_str().unwrap());
    assert!(
        claims.exp <= now() + 601,
        "token capped by the 10-minute session"
    );

    let id = body["session_id"].as_str().unwrap();
    let (status, read) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["language"], "fr");
    assert_eq!(read["metadata"], json!({"k": 1}));
    let fresh = app.verify(read["access_token"].as_str().unwrap());
    assert_eq!(fresh.sub, "carol");
    assert!(fresh.nbf >= claims.nbf);
}

#[tokio::test]
async fn unknown_sessions_are_404_session_not_found() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4();
    for path in [
        format!("/api/sessions/{missing}"),
        format!("/api/sessions/{missing}/participants"),
        format!("/api/sessions/{missing}/history"),
        "/api/sessions/garbage".to_owned(),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["detail"], "Session not found", "{path}");
    }
    let (status, _) = app.delete(&format!("/api/sessions/{missing}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn deleting_ends_the_session_and_removes_the_room_and_a_second_delete_is_404() {
    let app = spawn_app().await;
    let body = app.create_session("dave").await;
    let id = body["session_id"].as_str().unwrap();
    let room = body["room_name"].as_str().unwrap();

    let (status, deleted) = app.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(deleted, json!({"status": "deleted", "session_id": id}));
    assert!(app.lk.room(room).is_none());

    let (status, read) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["status"], "ended");
    assert!(read["access_token"].is_null());

    let (status, _) = app.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn deleting_a_session_whose_room_livekit_already_closed_still_works() {
    let app = spawn_app().await;
    let body = app.create_session("erin").await;
    let id = body["session_id"].as_str().unwrap();
    // LiveKit closed the room by itself (empty_timeout); we never heard of it.
    let lk_room = body["room_name"].as_str().unwrap();
    let admin = app.lk.room(lk_room).unwrap();
    assert!(!admin.sid.is_empty());
    app.client
        .post(format!(
            "{}/twirp/livekit.RoomService/DeleteRoom",
            app.lk.url()
        ))
        .header("content-type", "application/json")
        .header(
            "authorization",
            format!(
                "Bearer {}",
                livekit_api::access_token::AccessToken::with_api_key(
                    app.lk.api_key(),
                    app.lk.api_secret()
                )
                .with_grants(livekit_api::access_token::VideoGrants {
                    room_create: true,
                    ..Default::default()
                })
                .to_jwt()
                .unwrap()
            ),
        )
        .body(json!({"room": lk_room}).to_string())
        .send()
        .await
        .unwrap();
    let (status, _) = app.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_room_name_held_by_a_live_session_is_409_until_that_session_ends() {
    let app = spawn_app().await;
    let (status, first) = app
        .post(
            "/api/sessions",
            json!({"user_id": "a", "room_name": "standup"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            "/api/sessions/",
            json!({"user_id": "b", "room_name": "standup"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "room_name_taken");

    app.delete(&format!(
        "/api/sessions/{}",
        first["session_id"].as_str().unwrap()
    ))
    .await;
    let (status, second) = app
        .post(
            "/api/sessions",
            json!({"user_id": "b", "room_name": "standup"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(second["livekit_room_sid"], first["livekit_room_sid"]);
}

#[tokio::test]
async fn livekit_down_is_502_and_leaves_no_session_behind() {
    let app = spawn_app().await;
    for failure in [Failure::Status(503), Failure::Status(500), Failure::Hang] {
        app.lk.fail(failure);
        let (status, body) = app.post("/api/sessions", json!({"user_id": "frank"})).await;
        assert_eq!(status, 502, "{failure:?}: {body}");
        assert_eq!(body["code"], "livekit_unavailable", "{failure:?}");
    }
    app.lk.recover();
    let (_, list) = app.get("/api/sessions").await;
    assert_eq!(list["sessions"], json!([]));
}

#[tokio::test]
async fn a_wrong_livekit_secret_is_502_saying_the_credentials_were_rejected() {
    let app = spawn_app_with(&[(
        "LIVEKIT_API_SECRET",
        "not-the-right-secret-0123456789abcdef",
    )])
    .await;
    let (status, body) = app.post("/api/sessions", json!({"user_id": "gina"})).await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "livekit_unauthorized");
    assert!(body["detail"].as_str().unwrap().contains("API key/secret"));
    assert!(!body.to_string().contains("not-the-right-secret"));
}

#[tokio::test]
async fn bad_bodies_are_clear_json_errors() {
    let app = spawn_app().await;
    let (status, body) = app.post("/api/sessions", json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "user_id");
    let (status, body) = app
        .post(
            "/api/sessions",
            json!({"user_id": "x", "room_name": "no spaces please"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "room_name");
    let resp = app
        .client
        .post(app.url("/api/sessions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let big = "x".repeat(70 * 1024);
    let (status, body) = app
        .post(
            "/api/sessions",
            json!({"user_id": "x", "metadata": {"b": big}}),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
    let (_, list) = app.get("/api/sessions").await;
    assert_eq!(list["sessions"], json!([]));
}

#[tokio::test]
async fn listing_filters_by_owner_and_status_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    for user in ["u1", "u2", "u1", "u1"] {
        app.create_session(user).await;
    }
    let (_, mine) = app.get("/api/sessions?user_id=u1").await;
    let mine = mine["sessions"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 3);
    assert!(
        mine.iter()
            .all(|s| s["user_id"] == "u1" && s.get("access_token").is_none())
    );

    let (_, page1) = app.get("/api/sessions?limit=2").await;
    assert_eq!(page1["sessions"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(&format!("/api/sessions?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(page2["sessions"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let ids: std::collections::HashSet<_> = page1["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["sessions"].as_array().unwrap())
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);

    let first = &mine[0]["session_id"];
    app.delete(&format!("/api/sessions/{}", first.as_str().unwrap()))
        .await;
    let (_, ended) = app.get("/api/sessions?status=ended").await;
    assert_eq!(ended["sessions"].as_array().unwrap().len(), 1);
    let (status, _) = app.get("/api/sessions?status=bogus").await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn participants_are_listed_from_livekit_and_can_be_removed_once() {
    let app = spawn_app().await;
    let body = app.create_session("host").await;
    let id = body["session_id"].as_str().unwrap();
    let room = body["room_name"].as_str().unwrap();
    app.lk.join(room, "host", true);
    app.lk.join(room, "listener", false);

    let (status, people) = app.get(&format!("/api/sessions/{id}/participants/")).await;
    assert_eq!(status, 200);
    let people = people.as_array().unwrap();
    assert_eq!(people.len(), 2);
    let host = people.iter().find(|p| p["identity"] == "host").unwrap();
    assert_eq!(host["state"], "ACTIVE");
    assert_eq!(host["is_publisher"], true);
    assert_eq!(host["tracks"][0]["type"], "audio");
    assert_eq!(host["tracks"][0]["source"], "microphone");
    assert!(host["joined_at"].as_i64().unwrap() > 0);

    let (status, removed) = app
        .delete(&format!("/api/sessions/{id}/participants/listener"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        removed,
        json!({"status": "removed", "session_id": id, "participant": "listener"})
    );
    let (status, body) = app
        .delete(&format!("/api/sessions/{id}/participants/listener"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "participant_not_found");
}

#[tokio::test]
async fn guests_get_unique_identities_and_no_data_channel() {
    let app = spawn_app().await;
    let body = app.create_session("owner").await;
    let id = body["session_id"].as_str().unwrap();
    let room = body["room_name"].as_str().unwrap();

    let path = format!("/api/sessions/{id}/guest-token");
    let (status, a) = app.post(&path, json!({"guest_name": "Sam Smith"})).await;
    assert_eq!(status, 200, "{a}");
    let (_, b) = app
        .post(
            &path,
            json!({"guest_name": "Sam Smith", "session_id": id, "can_publish": false}),
        )
        .await;
    assert_ne!(a["identity"], b["identity"]);
    assert!(
        a["identity"]
            .as_str()
            .unwrap()
            .starts_with("guest-sam_smith-")
    );
    assert_eq!(a["room_name"], room);
    assert_eq!(a["livekit_ws_url"], app.lk.ws_url());
    assert_eq!(a["guest_name"], "Sam Smith");

    let ca = app.verify(a["access_token"].as_str().unwrap());
    assert_eq!(ca.sub, a["identity"].as_str().unwrap());
    assert_eq!(ca.name, "Sam Smith");
    assert_eq!(ca.video.room, room);
    assert_eq!(ca.video.can_publish_data, Some(false));
    assert_eq!(ca.video.can_publish, Some(true));
    let cb = app.verify(b["access_token"].as_str().unwrap());
    assert_eq!(cb.video.can_publish, Some(false));

    let (status, _) = app
        .post(
            &path,
            json!({"guest_name": "x", "session_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "guest_name");

    app.delete(&format!("/api/sessions/{id}")).await;
    let (status, body) = app.post(&path, json!({"guest_name": "late"})).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "session_not_live");
}

#[tokio::test]
async fn history_starts_empty_and_can_be_cleared() {
    let app = spawn_app().await;
    let body = app.create_session("hist").await;
    let id = body["session_id"].as_str().unwrap();
    let (status, history) = app.get(&format!("/api/sessions/{id}/history")).await;
    assert_eq!(status, 200);
    assert_eq!(history, json!({"session_id": id, "history": []}));
    let (status, cleared) = app.delete(&format!("/api/sessions/{id}/history")).await;
    assert_eq!(status, 200);
    assert_eq!(cleared["status"], "cleared");
}

#[tokio::test]
async fn restarting_the_server_keeps_every_session() {
    let mut app = spawn_app().await;
    let a = app.create_session("keep1").await;
    let b = app.create_session("keep2").await;
    app.delete(&format!(
        "/api/sessions/{}",
        b["session_id"].as_str().unwrap()
    ))
    .await;

    app.restart().await;

    let (status, read_a) = app
        .get(&format!(
            "/api/sessions/{}",
            a["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(read_a["room_name"], a["room_name"]);
    assert_eq!(read_a["status"], "created");
    let (_, read_b) = app
        .get(&format!(
            "/api/sessions/{}",
            b["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read_b["status"], "ended");
    let (_, list) = app.get("/api/sessions").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let app = spawn_app().await;
    let send = |body: serde_json::Value, key: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url("/api/sessions"))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            crate::helpers::read(resp).await
        }
    };
    let (s1, first) = send(json!({"user_id": "ida", "language": "en"}), "k-1").await;
    // Same body with its keys in another order is the same request.
    let (s2, again) = send(json!({"language": "en", "user_id": "ida"}), "k-1").await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, again);
    let (status, body) = send(json!({"user_id": "someone-else"}), "k-1").await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "Idempotency-Key");
    let (status, _) = send(json!({"user_id": "ida"}), "k-2").await;
    assert_eq!(status, 200, "another key is another session");
    let (_, list) = app.get("/api/sessions?user_id=ida").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_create_releases_its_idempotency_key() {
    let app = spawn_app().await;
    app.lk.fail(Failure::Status(503));
    let post = || {
        app.client
            .post(app.url("/api/sessions"))
            .header("idempotency-key", "retry-me")
            .json(&json!({"user_id": "ivan"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 502);
    app.lk.recover();
    assert_eq!(
        post().await.unwrap().status(),
        200,
        "the retry does the work"
    );
}
