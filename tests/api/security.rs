//! Who may do what (issue: API authentication, ownership, rate limits, hardening).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use june_testkit::FakeIdp;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};

const SERVICE_KEY: &str = "svc-key-0123456789abcdef";
const ADMIN_KEY: &str = "adm-key-0123456789abcdef";
const USER_KEY: &str = "usr-key-0123456789abcdef";

async fn secured(idp: &FakeIdp, extra: &[(&str, &str)]) -> TestApp {
    let issuer = idp.issuer();
    let keys = format!("{SERVICE_KEY}:service,{ADMIN_KEY}:admin");
    let mut env = vec![
        ("AUTH_MODE", "api_key,oidc"),
        ("API_KEYS", keys.as_str()),
        ("OIDC_ISSUER", issuer.as_str()),
        ("OIDC_AUDIENCE", "june-orchestrator"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

use crate::helpers::call;

#[tokio::test]
async fn without_valid_credentials_every_api_route_is_401() {
    let idp = FakeIdp::start().await;
    let app = secured(&idp, &[]).await;
    for (method, path) in [
        ("POST", "/api/sessions"),
        ("GET", "/api/sessions"),
        ("POST", "/token"),
        ("POST", "/rooms/list"),
    ] {
        let resp = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let (status, body) = call(
            &app,
            method,
            path,
            Some("wrong-key-0123456789"),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 401, "{method} {path}");
        assert_eq!(body["code"], "unauthenticated");
    }
    // Probes stay open.
    assert_eq!(app.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn users_see_and_change_only_their_own_sessions_and_admins_see_all() {
    let idp = FakeIdp::start().await;
    let app = secured(&idp, &[]).await;
    let (alice, bob, admin) = (
        idp.token("alice", &["user"]),
        idp.token("bob", &["user"]),
        idp.token("root", &["admin"]),
    );

    // user_id defaults to the caller; another user's id is refused.
    let (status, a) = call(&app, "POST", "/api/sessions", Some(&alice), Some(json!({}))).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["user_id"], "alice");
    let (status, body) = call(
        &app,
        "POST",
        "/api/sessions",
        Some(&alice),
        Some(json!({"user_id": "bob"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "user_id");
    let id = a["session_id"].as_str().unwrap();

    for (method, p, body) in [
        ("GET", format!("/api/sessions/{id}"), None),
        ("GET", format!("/api/sessions/{id}/participants"), None),
        ("GET", format!("/api/sessions/{id}/history"), None),
        ("GET", format!("/api/sessions/{id}/events"), None),
        (
            "POST",
            format!("/api/sessions/{id}/guest-token"),
            Some(json!({"guest_name": "x"})),
        ),
        ("DELETE", format!("/api/sessions/{id}"), None),
    ] {
        let (status, reply) = call(&app, method, &p, Some(&bob), body).await;
        assert_eq!(status, 404, "bob {method} {p}: {reply}");
    }
    let (_, bobs_list) = call(&app, "GET", "/api/sessions?user_id=alice", Some(&bob), None).await;
    assert_eq!(
        bobs_list["sessions"],
        json!([]),
        "bob cannot list alice's sessions"
    );
    let (_, rooms) = call(&app, "POST", "/rooms/list", Some(&bob), Some(json!({}))).await;
    assert_eq!(rooms["rooms"], json!([]));

    let (status, _) = call(
        &app,
        "GET",
        &format!("/api/sessions/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, all) = call(&app, "GET", "/api/sessions", Some(&admin), None).await;
    assert_eq!(all["sessions"].as_array().unwrap().len(), 1);
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/api/sessions/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "an admin may end anyone's session");

    // Services (API keys) act for anyone.
    let (status, s) = call(
        &app,
        "POST",
        "/api/sessions",
        Some(SERVICE_KEY),
        Some(json!({"user_id": "carol"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s["user_id"], "carol");
}

#[tokio::test]
async fn token_routes_mint_only_for_the_caller() {
    let idp = FakeIdp::start().await;
    let app = secured(&idp, &[]).await;
    let alice = idp.token("alice", &[]);
    // A user gets a join token only for a live session of theirs…
    let (status, body) = call(
        &app,
        "POST",
        "/token",
        Some(&alice),
        Some(json!({"roomName": "r", "participantName": "alice"})),
    )
    .await;
    assert_eq!(status, 404, "room r is no session of alice's");
    assert_eq!(body["code"], "session_not_found");
    let (status, _) = call(
        &app,
        "POST",
        "/api/sessions",
        Some(&alice),
        Some(json!({"room_name": "r"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        "POST",
        "/token",
        Some(&alice),
        Some(json!({"roomName": "r", "participantName": "alice"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &app,
        "POST",
        "/token",
        Some(&alice),
        Some(json!({"roomName": "r", "participantName": "mallory"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "forbidden");
    let (status, _) = call(
        &app,
        "POST",
        "/api/livekit/token",
        Some(&alice),
        Some(json!({"service_identity": "june-stt", "room": "r"})),
    )
    .await;
    assert_eq!(status, 403, "bot tokens are for services");
    let (status, _) = call(
        &app,
        "POST",
        "/api/livekit/token",
        Some(SERVICE_KEY),
        Some(json!({"service_identity": "june-stt", "room": "r"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        "POST",
        "/livekit/token",
        Some(ADMIN_KEY),
        Some(json!({"roomName": "r", "participantName": "anyone"})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_rate_limit_trips_with_retry_after_and_recovers() {
    let idp = FakeIdp::start().await;
    let app = secured(
        &idp,
        &[
            ("JUNE__RATE_LIMIT__PER_SECOND", "1"),
            ("JUNE__RATE_LIMIT__BURST", "2"),
        ],
    )
    .await;
    let key = SERVICE_KEY;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let resp = app
            .client
            .get(app.url("/api/sessions"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // Another principal has its own budget.
    let (status, _) = call(&app, "GET", "/api/sessions", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = call(&app, "GET", "/api/sessions", Some(key), None).await;
    assert_eq!(status, 200, "recovered");
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let idp = FakeIdp::start().await;
    let app = secured(&idp, &[]).await;
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(resp.headers()[name], value, "{name}");
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A run through the routes at debug level leaves no token, key or secret in the logs.
#[tokio::test]
async fn no_secret_or_token_reaches_the_logs() {
    let logs = Capture::default();
    let sink = logs.clone();
    june_orchestrator::telemetry::init("debug", true, move || sink.clone());

    let idp = FakeIdp::start().await;
    let app = secured(
        &idp,
        &[
            ("STT_SERVICE_TOKEN", "stt-token-0123456789abcdef"),
            ("GEMINI_API_KEY", "gemini-key-0123456789abcdef"),
        ],
    )
    .await;
    let alice = idp.token("alice", &["user"]);
    let (_, s) = call(&app, "POST", "/api/sessions", Some(&alice), Some(json!({}))).await;
    let id = s["session_id"].as_str().unwrap();
    let (_, read) = call(
        &app,
        "GET",
        &format!("/api/sessions/{id}"),
        Some(&alice),
        None,
    )
    .await;
    let (_, guest) = call(
        &app,
        "POST",
        &format!("/api/sessions/{id}/guest-token"),
        Some(&alice),
        Some(json!({"guest_name": "g"})),
    )
    .await;
    let (_, legacy) = call(
        &app,
        "POST",
        "/token",
        Some(ADMIN_KEY),
        Some(json!({"roomName": "r", "participantName": "x"})),
    )
    .await;
    call(
        &app,
        "POST",
        "/api/sessions",
        Some("wrong-key-0123456789abcdef"),
        Some(json!({})),
    )
    .await;
    let body = june_testkit::webhook::protojson(&june_testkit::webhook::room_event(
        "room_started",
        &app.lk.room(s["room_name"].as_str().unwrap()).unwrap(),
    ));
    let auth = june_testkit::webhook::authorization(
        body.as_bytes(),
        app.lk.api_key(),
        app.lk.api_secret(),
        300,
    );
    app.post_webhook(&body, Some(&auth)).await;
    app.client
        .post(app.url("/api/webhooks/stt"))
        .bearer_auth("stt-token-0123456789abcdef")
        .json(&json!({"event": "partial", "room_name": s["room_name"], "text": "hi"}))
        .send()
        .await
        .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request finished"), "logs were captured");
    for secret in [
        s["access_token"].as_str().unwrap(),
        read["access_token"].as_str().unwrap(),
        guest["access_token"].as_str().unwrap(),
        legacy["token"].as_str().unwrap(),
        alice.as_str(),
        auth.as_str(),
        app.lk.api_secret(),
        SERVICE_KEY,
        ADMIN_KEY,
        "wrong-key-0123456789abcdef",
        "stt-token-0123456789abcdef",
        "gemini-key-0123456789abcdef",
    ] {
        assert!(
            !text.contains(secret),
            "a secret reached the logs: {}…",
            &secret[..12]
        );
    }
}

/// Issue #14 item 7: tokens with made-up key ids, each forcing a JWKS fetch from a slow
/// identity provider, used to hold up every valid user behind that fetch.
#[tokio::test]
async fn a_valid_user_is_answered_promptly_while_random_key_ids_wait_on_a_slow_idp() {
    // Arrange: refetches allowed at any time, each taking 2 s; alice's key is cached.
    let idp = FakeIdp::slow(Duration::from_secs(2)).await;
    let app = secured(&idp, &[("JUNE__AUTH__JWKS_REFRESH_FLOOR_SECS", "0")]).await;
    let alice = idp.token("alice", &["user"]);
    let (status, _) = call(&app, "GET", "/api/sessions", Some(&alice), None).await;
    assert_eq!(status, 200);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..4)
        .map(|n| {
            let (client, url, stop) = (app.client.clone(), app.url("/api/sessions"), stop.clone());
            let token = idp.sign(&idp.claims("mallory", &[]), &format!("made-up-{n}"));
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(resp.status(), 401);
                }
            })
        })
        .collect();
    while idp.key_fetches().await < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Act: alice calls while a refetch is in flight.
    let answered = tokio::time::timeout(
        Duration::from_secs(1),
        call(&app, "GET", "/api/sessions", Some(&alice), None),
    )
    .await;

    // Assert
    assert_eq!(answered.expect("alice is not kept waiting").0, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for attacker in attackers {
        attacker.await.unwrap();
    }
}

/// Issue #14 item 9: with both auth modes on, an OIDC token named `key-1` used to read the
/// sessions of API-key user `key-1`, and a token without `preferred_username` was named by
/// its `sub`, which can be another user's name.
#[tokio::test]
async fn oidc_tokens_cannot_take_an_api_key_name_or_fall_back_to_sub() {
    // Arrange: API-key user key-1 and OIDC user alice each own a session.
    let idp = FakeIdp::start().await;
    let issuer = idp.issuer();
    let keys = format!("{USER_KEY}:user,{SERVICE_KEY}:service");
    let app = spawn_app_with(&[
        ("AUTH_MODE", "api_key,oidc"),
        ("API_KEYS", keys.as_str()),
        ("OIDC_ISSUER", issuer.as_str()),
        ("OIDC_AUDIENCE", "june-orchestrator"),
    ])
    .await;
    let (status, k) = call(
        &app,
        "POST",
        "/api/sessions",
        Some(USER_KEY),
        Some(json!({})),
    )
    .await;
    assert_eq!((status, k["user_id"].as_str()), (200, Some("key-1")), "{k}");
    let alice = idp.token("alice", &["user"]);
    let (status, a) = call(&app, "POST", "/api/sessions", Some(&alice), Some(json!({}))).await;
    assert_eq!(status, 200, "{a}");
    let impostor = idp.token("key-1", &["user"]);
    let mut nameless = idp.claims("x", &["user"]);
    nameless["sub"] = json!("alice");
    nameless
        .as_object_mut()
        .unwrap()
        .remove("preferred_username");
    let nameless = idp.sign(&nameless, june_testkit::idp::KID);

    for (token, victim) in [(&impostor, &k), (&nameless, &a)] {
        // Act
        let id = victim["session_id"].as_str().unwrap();
        let (read, body) = call(
            &app,
            "GET",
            &format!("/api/sessions/{id}"),
            Some(token),
            None,
        )
        .await;
        let (list, _) = call(&app, "GET", "/api/sessions", Some(token), None).await;

        // Assert
        assert_eq!(read, 401, "{body}");
        assert_eq!(body["code"], "unauthenticated");
        assert_eq!(list, 401);
    }
    let (status, _) = call(
        &app,
        "GET",
        &format!("/api/sessions/{}", k["session_id"].as_str().unwrap()),
        Some(USER_KEY),
        None,
    )
    .await;
    assert_eq!(status, 200, "the key's own user still reads it");
}
