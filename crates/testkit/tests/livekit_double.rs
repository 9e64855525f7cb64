//! The double behaves as the real LiveKit server does on the wire (livekit-notes §1, §7).

use june_testkit::{Failure, LiveKitDouble};
use livekit_api::access_token::{AccessToken, VideoGrants};

fn token(secret: &str, grants: VideoGrants) -> String {
    AccessToken::with_api_key("testkey", secret)
        .with_grants(grants)
        .to_jwt()
        .unwrap()
}

async fn post(
    lk: &LiveKitDouble,
    method: &str,
    auth: Option<String>,
    body: serde_json::Value,
) -> reqwest::Response {
    let mut req = june_testkit::http_client()
        .post(format!("{}/twirp/livekit.RoomService/{method}", lk.url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

fn create_grant() -> VideoGrants {
    VideoGrants {
        room_create: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn json_requests_get_snake_case_json_replies() {
    let lk = LiveKitDouble::start();
    let auth = format!("Bearer {}", token(lk.api_secret(), create_grant()));
    let resp = post(
        &lk,
        "CreateRoom",
        Some(auth),
        serde_json::json!({"name": "r", "emptyTimeout": 60}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "r");
    assert_eq!(body["empty_timeout"], 60);
    assert!(body.get("emptyTimeout").is_none());
    // int64 as a string, as protojson writes it.
    assert!(body["creation_time"].is_string());
}

#[tokio::test]
async fn a_missing_grant_is_twirp_unauthenticated_401_not_403() {
    let lk = LiveKitDouble::start();
    let auth = format!("Bearer {}", token(lk.api_secret(), VideoGrants::default()));
    let resp = post(
        &lk,
        "CreateRoom",
        Some(auth),
        serde_json::json!({"name": "r"}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": "unauthenticated", "msg": "permissions denied"})
    );

    // No header at all: no grants, same answer.
    let resp = post(&lk, "ListRooms", None, serde_json::json!({})).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "unauthenticated"
    );
}

#[tokio::test]
async fn admin_calls_need_room_admin_for_that_very_room() {
    let lk = LiveKitDouble::start();
    lk.join("mine", "alice", false);
    let other_room = VideoGrants {
        room_admin: true,
        room: "other".into(),
        ..Default::default()
    };
    let auth = format!("Bearer {}", token(lk.api_secret(), other_room));
    let resp = post(
        &lk,
        "ListParticipants",
        Some(auth),
        serde_json::json!({"room": "mine"}),
    )
    .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn bad_tokens_get_a_plain_text_401() {
    let lk = LiveKitDouble::start();
    let cases = [
        ("Token abc".to_owned(), "Must start with Bearer"),
        ("Bearer not-a-jwt".to_owned(), "invalid authorization token"),
        (
            format!(
                "Bearer {}",
                token("wrong-secret-0123456789abcdef0123456", create_grant())
            ),
            "invalid authorization token:",
        ),
        (
            format!(
                "Bearer {}",
                AccessToken::with_api_key("otherkey", "x-0123456789abcdef0123456789abcdef")
                    .with_grants(create_grant())
                    .to_jwt()
                    .unwrap()
            ),
            "invalid API key",
        ),
    ];
    for (auth, expected) in cases {
        let resp = post(&lk, "ListRooms", Some(auth.clone()), serde_json::json!({})).await;
        assert_eq!(resp.status(), 401, "{auth}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = resp.text().await.unwrap();
        assert!(
            text.contains(expected),
            "{text:?} should contain {expected:?}"
        );
    }
}

#[tokio::test]
async fn unknown_methods_and_content_types_are_bad_routes() {
    let lk = LiveKitDouble::start();
    let resp = post(&lk, "Nope", None, serde_json::json!({})).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "bad_route"
    );

    let resp = june_testkit::http_client()
        .post(format!("{}/twirp/livekit.RoomService/ListRooms", lk.url()))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn deleting_a_missing_room_is_not_found_and_failures_can_be_injected() {
    let lk = LiveKitDouble::start();
    let auth = format!("Bearer {}", token(lk.api_secret(), create_grant()));
    let resp = post(
        &lk,
        "DeleteRoom",
        Some(auth.clone()),
        serde_json::json!({"room": "x"}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["msg"],
        "requested room does not exist"
    );

    lk.fail(Failure::Status(503));
    let resp = post(
        &lk,
        "DeleteRoom",
        Some(auth),
        serde_json::json!({"room": "x"}),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "unavailable"
    );
}
