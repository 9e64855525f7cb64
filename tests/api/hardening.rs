//! Issue #14, hardening: token ownership, room takeover, huge numbers, NUL bytes, bounded
//! metrics, stalled bodies, authentication before parsing, webhook error wording, and a
//! property run that throws arbitrary JSON at every JSON route.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use june_testkit::webhook::{authorization, participant_event, protojson};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{PgSchema, TestApp, read, spawn_app_with};

const STT_TOKEN: &str = "stt-secret-0123456789abcdef";
const USER_A_KEY: &str = "user-a-key-0123456789abcdef";
const USER_B_KEY: &str = "user-b-key-0123456789abcdef";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
/// Long enough for anything the server legitimately does here; only a hang reaches it.
const GENEROUS: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Fakes and helpers
// ---------------------------------------------------------------------------------------------

/// A Gemini that answers every POST with a short SSE reply.
async fn fake_gemini() -> MockServer {
    let mut c = json!({"content": {"role": "model", "parts": [{"text": "Fine, thanks."}]}});
    c["finishReason"] = json!("STOP");
    let sse = format!("data: {}\r\n\r\n", json!({"candidates": [c]}));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse),
        )
        .mount(&server)
        .await;
    server
}

/// A TTS that accepts everything.
async fn fake_tts() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// Settings under which no route has a legitimate reason to answer 5xx.
fn no_5xx_env(gemini: &MockServer, tts: &MockServer) -> Vec<(String, String)> {
    [
        ("GEMINI_API_KEY", "test-gemini-key".to_owned()),
        ("GEMINI_BASE_URL", gemini.uri()),
        ("AI_MODEL", "test-model".to_owned()),
        ("JUNE__AI__BACKOFF_MS", "1".to_owned()),
        ("JUNE__AI__MAX_RETRIES", "1".to_owned()),
        ("TTS_SERVICE_URL", tts.uri()),
        ("SERVICE_AUTH_TOKEN", "tts-token".to_owned()),
        ("STT_SERVICE_TOKEN", STT_TOKEN.to_owned()),
        ("JUNE__RATE_LIMIT__PER_SECOND", "0".to_owned()),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "0".to_owned()),
        ("JUNE__LIVEKIT__DEFAULT_BOT_ROOM", "bots".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// [`helpers::call`](crate::helpers::call), answered within [`GENEROUS`] (a hang fails).
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    tokio::time::timeout(
        GENEROUS,
        crate::helpers::call(app, method, path, bearer, body),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
}

/// Which store a scenario ran on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `scenario` against a SQLite app and a PostgreSQL app (fresh schema) built with the
/// same settings, and returns what each observed, labelled by backend.
async fn on_both_backends<F, Fut, T>(extra: &[(&str, &str)], scenario: F) -> Vec<(Backend, T)>
where
    F: Fn(TestApp, Backend) -> Fut,
    Fut: Future<Output = T>,
{
    let sqlite = scenario(spawn_app_with(extra).await, Backend::Sqlite).await;
    let schema = PgSchema::create().await;
    let url = schema.url();
    let mut env = extra.to_vec();
    env.push(("DATABASE_URL", url.as_str()));
    let postgres = scenario(spawn_app_with(&env).await, Backend::Postgres).await;
    schema.drop().await;
    vec![(Backend::Sqlite, sqlite), (Backend::Postgres, postgres)]
}

// ---------------------------------------------------------------------------------------------
// 1. Token routes and ownership
// ---------------------------------------------------------------------------------------------

async fn keyed_app() -> TestApp {
    let keys = format!("{USER_A_KEY}:user,{USER_B_KEY}:user,{ADMIN_KEY}:admin");
    spawn_app_with(&[("AUTH_MODE", "api_key"), ("API_KEYS", keys.as_str())]).await
}

#[tokio::test]
async fn hardening_token_routes_mint_only_for_rooms_the_caller_owns() {
    let app = keyed_app().await;
    let (status, a) = call(
        &app,
        "POST",
        "/api/sessions",
        Some(USER_A_KEY),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["user_id"], "key-1");
    let room = a["room_name"].as_str().unwrap().to_owned();

    // B asks for a token into A's room, under B's own name: no such session for B.
    let mut codes = Vec::new();
    for path in ["/token", "/livekit/token"] {
        let (status, body) = call(
            &app,
            "POST",
            path,
            Some(USER_B_KEY),
            Some(json!({"roomName": room, "participantName": "key-2"})),
        )
        .await;
        assert_eq!(status, 404, "B into A's room via {path}: {body}");
        assert_eq!(body["code"], "session_not_found", "{path}: {body}");
        codes.push(body["code"].clone());

        // A room that is no session at all answers exactly like another user's room.
        let (status, lobby) = call(
            &app,
            "POST",
            path,
            Some(USER_B_KEY),
            Some(json!({"roomName": "lobby", "participantName": "key-2"})),
        )
        .await;
        assert_eq!(status, 404, "B into lobby via {path}: {lobby}");
        assert_eq!(
            lobby["code"], body["code"],
            "an unknown room and a foreign room are indistinguishable"
        );
    }

    // The owner gets a token for their own room.
    for path in ["/token", "/livekit/token"] {
        let (status, body) = call(
            &app,
            "POST",
            path,
            Some(USER_A_KEY),
            Some(json!({"roomName": room, "participantName": "key-1"})),
        )
        .await;
        assert_eq!(status, 200, "A into own room via {path}: {body}");
        let claims = app.verify(body["token"].as_str().unwrap());
        assert_eq!(claims.sub, "key-1");
        assert_eq!(claims.video.room, room);
    }

    // An admin may mint for any room, session or not.
    let (status, body) = call(
        &app,
        "POST",
        "/token",
        Some(ADMIN_KEY),
        Some(json!({"roomName": "lobby", "participantName": "key-3"})),
    )
    .await;
    assert_eq!(status, 200, "admin into lobby: {body}");
    assert!(body["token"].as_str().is_some());
}

// ---------------------------------------------------------------------------------------------
// 2. Room takeover
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hardening_a_session_cannot_take_over_a_livekit_room_it_does_not_own() {
    let app = spawn_app_with(&[]).await;
    app.lk.create_room("lobby");
    let (status, body) = app
        .post(
            "/api/sessions",
            json!({"user_id": "alice", "room_name": "lobby"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "room_name_taken", "{body}");
    assert!(
        app.lk.room("lobby").is_some(),
        "the existing room is left alone"
    );
    let (_, list) = app.get("/api/sessions?user_id=alice").await;
    assert_eq!(list["sessions"], json!([]), "no session row was left");
}

// ---------------------------------------------------------------------------------------------
// 3. Huge numbers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hardening_a_huge_ttl_is_a_422_on_create_and_on_guest_tokens() {
    let app = spawn_app_with(&[]).await;
    let (status, body) = call(
        &app,
        "POST",
        "/api/sessions",
        None,
        Some(json!({"user_id": "u", "ttl_seconds": i64::MAX})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "ttl_seconds", "{body}");

    let s = app.create_session("u").await;
    let id = s["session_id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/sessions/{id}/guest-token"),
        None,
        Some(json!({"guest_name": "g", "ttl_seconds": i64::MAX})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "ttl_seconds", "{body}");

    assert_eq!(call(&app, "GET", "/healthz", None, None).await.0, 200);
}

#[tokio::test]
async fn hardening_a_refused_create_with_an_idempotency_key_is_refused_again_at_once() {
    let app = spawn_app_with(&[]).await;
    let body = json!({"user_id": "u", "ttl_seconds": i64::MAX});
    let mut answers = Vec::new();
    for attempt in 1..=2 {
        let send = app
            .client
            .post(app.url("/api/sessions"))
            .header("idempotency-key", "k1")
            .json(&body)
            .send();
        let resp = tokio::time::timeout(GENEROUS, send)
            .await
            .unwrap_or_else(|_| panic!("attempt {attempt}: no answer within 10 s"))
            .unwrap();
        let (status, reply) = read(resp).await;
        answers.push((status, reply));
    }
    assert_eq!(answers[0].0, 422, "{:?}", answers[0]);
    assert_eq!(
        answers[1].0, 422,
        "the retry is refused the same way, not 409 in progress: {:?}",
        answers[1]
    );
    assert_eq!(answers[1].1["field"], "ttl_seconds");
    assert_eq!(call(&app, "GET", "/healthz", None, None).await.0, 200);
}

// ---------------------------------------------------------------------------------------------
// 4. NUL and control characters, on both backends
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct NulAnswers {
    create_language: (u16, Value),
    chat: u16,
    history_has_nul: bool,
    stt_final: u16,
    webhook_joined: u16,
}

async fn nul_scenario(app: TestApp, backend: Backend) -> NulAnswers {
    let (status, body) = call(
        &app,
        "POST",
        "/api/sessions",
        None,
        Some(json!({"user_id": "u", "language": "e\u{0}n"})),
    )
    .await;
    let create_language = (status, body["field"].clone());

    let (status, s) = call(
        &app,
        "POST",
        "/api/sessions",
        None,
        Some(json!({"user_id": "alice"})),
    )
    .await;
    assert_eq!(status, 200, "{backend:?}: {s}");
    let id = s["session_id"].as_str().unwrap().to_owned();
    let room = s["room_name"].as_str().unwrap().to_owned();

    let (chat, reply) = call(
        &app,
        "POST",
        "/api/ai/chat",
        None,
        Some(json!({"session_id": id, "text": "hi\u{0}there"})),
    )
    .await;
    let (_, history) = call(
        &app,
        "GET",
        &format!("/api/sessions/{id}/history"),
        None,
        None,
    )
    .await;
    let history_has_nul = history.to_string().contains("\\u0000");
    if chat != 200 {
        eprintln!("{backend:?} chat: {chat} {reply}");
    }

    let (stt_final, reply) = call(
        &app,
        "POST",
        "/api/webhooks/stt",
        Some(STT_TOKEN),
        Some(
            json!({"event": "final", "room_name": room, "participant": "alice",
                    "text": "hello\u{0} world", "confidence": 0.9}),
        ),
    )
    .await;
    if stt_final >= 500 {
        eprintln!("{backend:?} stt: {stt_final} {reply}");
    }

    let lk_room = app.lk.room(&room).unwrap();
    let who = app.lk.join(&room, "bad\u{0}identity", true);
    let (webhook_joined, reply) = app
        .send_event(&participant_event("participant_joined", &lk_room, &who))
        .await;
    if webhook_joined != 200 {
        eprintln!("{backend:?} webhook: {webhook_joined} {reply}");
    }

    NulAnswers {
        create_language,
        chat,
        history_has_nul,
        stt_final,
        webhook_joined,
    }
}

#[tokio::test]
async fn hardening_nul_bytes_are_refused_or_stripped_alike_on_sqlite_and_postgres() {
    let gemini = fake_gemini().await;
    let tts = fake_tts().await;
    let env = no_5xx_env(&gemini, &tts);
    let answers = on_both_backends(&as_refs(&env), nul_scenario).await;
    let mut problems = Vec::new();
    for (backend, a) in &answers {
        if a.create_language != (422, json!("language")) {
            problems.push(format!(
                "{backend:?}: language \"e\\u0000n\" on create answered {:?}, want 422 field language",
                a.create_language
            ));
        }
        if a.chat != 200 {
            problems.push(format!(
                "{backend:?}: chat with a NUL answered {}, want 200 (NUL stripped)",
                a.chat
            ));
        }
        if a.history_has_nul {
            problems.push(format!("{backend:?}: the history kept a NUL"));
        }
        if a.stt_final >= 500 {
            problems.push(format!(
                "{backend:?}: STT final with a NUL answered {}",
                a.stt_final
            ));
        }
        if a.webhook_joined != 200 {
            problems.push(format!(
                "{backend:?}: participant_joined with a NUL identity answered {}, want 200",
                a.webhook_joined
            ));
        }
    }
    if answers[0].1 != answers[1].1 {
        problems.push(format!(
            "SQLite and PostgreSQL differ: {:?} vs {:?}",
            answers[0].1, answers[1].1
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 5. Bounded metrics
// ---------------------------------------------------------------------------------------------

async fn metrics_text(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

fn method_labels(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("june_http_requests_total{"))
        .filter_map(|l| {
            let start = l.find("method=\"")? + "method=\"".len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn hardening_made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app_with(&[("JUNE__RATE_LIMIT__IP_PER_SECOND", "0")]).await;
    // Warm up: the labels a normal client creates.
    app.get("/healthz").await;
    app.get("/api/sessions").await;
    app.get("/nowhere").await;
    let before = metrics_text(&app).await;

    let paths = ["/x", "/api/sessions", "/healthz", "/metrics", "/token"];
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        let path = paths[i % paths.len()];
        let resp = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().as_u16() < 500,
            "M{i} {path}: {}",
            resp.status()
        );
    }

    let after = metrics_text(&app).await;
    let methods = method_labels(&after);
    assert!(
        methods.len() <= 10,
        "methods fold into a closed set, got {} distinct: {:?}",
        methods.len(),
        methods.iter().take(20).collect::<Vec<_>>()
    );
    let growth = after.len().saturating_sub(before.len());
    assert!(
        growth <= 16 * 1024,
        "/metrics grew by {growth} bytes after 200 made-up methods ({} → {})",
        before.len(),
        after.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Stalled body
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hardening_a_stalled_request_body_is_cut_off() {
    let app = spawn_app_with(&[("JUNE__SERVER__BODY_TIMEOUT_MS", "1000")]).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    stream.flush().await.unwrap();

    let mut buf = vec![0u8; 4096];
    let outcome = tokio::time::timeout(GENEROUS, stream.read(&mut buf)).await;
    match outcome {
        Err(_) => panic!("the server neither answered nor closed within 10 s"),
        // Closed (or reset): the connection was cut off.
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => {
            let head = String::from_utf8_lossy(&buf[..n]);
            let status_line = head.lines().next().unwrap_or_default();
            assert!(
                status_line.starts_with("HTTP/1.1 408"),
                "expected 408 or a closed connection, got {status_line:?}"
            );
        }
    }
    // The server is still fine.
    assert_eq!(call(&app, "GET", "/healthz", None, None).await.0, 200);
}

// ---------------------------------------------------------------------------------------------
// 10. STT webhooks authenticate before parsing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hardening_stt_routes_authenticate_before_reading_the_body() {
    let app = spawn_app_with(&[("STT_SERVICE_TOKEN", STT_TOKEN)]).await;
    for path in ["/api/webhooks/stt", "/api/webhooks/voice_onset"] {
        let resp = app
            .client
            .post(app.url(path))
            .bearer_auth("wrong")
            .header("content-type", "application/json")
            .body(r#"{"event":"#)
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(
            status, 401,
            "{path} with a wrong token and a broken body: {body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Webhook 401 wording
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hardening_a_webhook_signed_with_the_wrong_secret_is_a_plain_401() {
    let app = spawn_app_with(&[]).await;
    let s = app.create_session("alice").await;
    let room = app.lk.room(s["room_name"].as_str().unwrap()).unwrap();
    let who = app.lk.join(&room.name, "bob", true);
    let body = protojson(&participant_event("participant_joined", &room, &who));
    let auth = authorization(
        body.as_bytes(),
        app.lk.api_key(),
        "wrong-secret-0123456789abcdef0123456789",
        300,
    );
    let (status, reply) = app.post_webhook(&body, Some(&auth)).await;
    assert_eq!(status, 401, "{reply}");
    let detail = reply["detail"].as_str().unwrap_or_default();
    assert!(
        !detail.to_lowercase().contains("encode"),
        "the detail speaks of a bad signature, not of encoding: {detail:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// P. Property run: arbitrary JSON at every JSON route
// ---------------------------------------------------------------------------------------------

/// What one fuzzed request carries.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Raw(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Json(v) => serde_json::to_vec(v).unwrap(),
            Body::Raw(b) => b.clone(),
        }
    }

    fn show(&self) -> String {
        let text = match self {
            Body::Json(v) => v.to_string(),
            Body::Raw(b) => format!("raw {:?}", String::from_utf8_lossy(b)),
        };
        let n = text.chars().count();
        if n > 400 {
            format!(
                "{}… ({n} chars)",
                text.chars().take(400).collect::<String>()
            )
        } else {
            text
        }
    }
}

const TRICKY_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "a\u{0}b",
    "e\u{0}n",
    "\u{1}\u{2}\u{1b}[31m\u{7f}",
    "\r\n\t",
    "\u{202e}evil",
    "\u{feff}",
    "🙂🙂",
    "../../etc/passwd",
    "room/with/slash",
    "%00",
    "null",
    "final",
    "partial",
    "en",
    "key-1",
    "admin",
    "lobby",
    "bots",
    "june-stt",
    "guest",
    "'; DROP TABLE sessions; --",
    "\u{10ffff}",
];

fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(TRICKY_STRINGS).prop_map(str::to_owned),
        3 => prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        1 => (prop::sample::select(TRICKY_STRINGS), prop::collection::vec(any::<char>(), 0..8))
            .prop_map(|(a, b)| format!("{a}{}", String::from_iter(b))),
        1 => (1usize..5).prop_map(|n| "x".repeat(n * 200)),
    ]
}

fn tricky_number() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(-1e308),
        json!(-0.0),
        json!(0),
        json!(-1),
        json!(f64::MIN_POSITIVE),
        json!(5e-324),
        json!(9_007_199_254_740_993_u64),
        json!(86_400),
        json!(604_801),
        json!(i64::from(i32::MAX) + 1),
        json!(0.5),
        json!(1.1),
        json!(i64::MAX / 1000 + 1),
        json!(1_000_000_000_000_000_i64),
        json!(-9_223_372_036_854_775_000_i64),
        json!(1e19),
    ])
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        tricky_number(),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((tricky_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value for a known field: anything, or one of the values that reach deep into the route
/// (the real session id, the real room).
fn wild(specials: Vec<Value>) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => json_value(),
        3 => prop::sample::select(specials),
        3 => tricky_string().prop_map(Value::String),
        3 => tricky_number(),
        2 => any::<i64>().prop_map(Value::from),
    ]
}

/// Objects built from the route's real field names with wild values.
fn fields_object(fields: Vec<&'static str>, specials: Vec<Value>) -> BoxedStrategy<Value> {
    prop::collection::vec((prop::sample::select(fields), wild(specials)), 0..7)
        .prop_map(|kv| {
            Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<serde_json::Map<_, _>>(),
            )
        })
        .boxed()
}

const RAW_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "1.7976931348623157e309",
    "-0",
    "0e0",
    "NaN",
    "Infinity",
];

fn raw_body(fields: Vec<&'static str>) -> BoxedStrategy<Body> {
    let mut fixed: Vec<Vec<u8>> = [
        "",
        "{",
        r#"{"a":"#,
        "null",
        "[]",
        r#""str""#,
        "1e400",
        r#"{"user_id": "\ud800"}"#,
        r#"{"a":1,"a":2}"#,
        "\u{feff}{}",
        "{} trailing",
        r#"{"text": "a\u0000b"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fixed.push(vec![0xff, 0xfe, b'{', b'}']);
    fixed.push(b"{\"x\": \"\xc3\x28\"}".to_vec());
    fixed.push(format!("{}{}", "[".repeat(300), "]".repeat(300)).into_bytes());
    fixed.push(format!(r#"{{"text": "{}"}}"#, "a".repeat(70_000)).into_bytes());
    prop_oneof![
        prop::sample::select(fixed).prop_map(Body::Raw),
        (
            prop::sample::select(fields),
            prop::sample::select(RAW_NUMBERS)
        )
            .prop_map(|(f, n)| Body::Raw(format!(r#"{{"{f}": {n}}}"#).into_bytes())),
    ]
    .boxed()
}

/// How a fuzzed route is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// The API credential of the run (none, or the admin key).
    Api,
    /// The STT bearer token.
    Stt,
    /// Nothing (LiveKit webhooks carry their own signature).
    Nothing,
}

struct Route {
    method: &'static str,
    path: String,
    auth: Auth,
    fields: Vec<&'static str>,
    /// A body the route accepts, which the generator then bends field by field.
    valid: Value,
}

impl Route {
    fn new(
        method: &'static str,
        path: String,
        auth: Auth,
        fields: &[&'static str],
        valid: Value,
    ) -> Route {
        Route {
            method,
            path,
            auth,
            fields: fields.to_vec(),
            valid,
        }
    }
}

fn routes(id: &str, room: &str) -> Vec<Route> {
    let random = uuid::Uuid::new_v4();
    let session = &[
        "user_id",
        "room_name",
        "metadata",
        "language",
        "voice",
        "ttl_seconds",
    ];
    let guest = &["guest_name", "session_id", "ttl_seconds", "can_publish"];
    let chat = &["session_id", "text", "language", "speak"];
    let legacy = &[
        "roomName",
        "participantName",
        "metadata",
        "room",
        "identity",
        "service_identity",
    ];
    let stt = &[
        "event",
        "type",
        "room_name",
        "roomName",
        "participant",
        "session_id",
        "text",
        "transcript",
        "language",
        "confidence",
        "timestamp",
        "segments",
        "partial",
        "is_partial",
        "user_id",
        "participant_identity",
        "final_text",
        "content",
        "transcript_id",
        "audio_data",
    ];
    let new_session = json!({"user_id": "alice"});
    let guest_ok = json!({"guest_name": "g"});
    let chat_ok = json!({"session_id": id, "text": "hi"});
    let legacy_ok = json!({"roomName": room, "participantName": "alice"});
    use Auth::*;
    vec![
        Route::new(
            "POST",
            "/api/sessions".into(),
            Api,
            session,
            new_session.clone(),
        ),
        Route::new("POST", "/api/sessions/".into(), Api, session, new_session),
        Route::new(
            "POST",
            format!("/api/sessions/{id}/guest-token"),
            Api,
            guest,
            guest_ok.clone(),
        ),
        Route::new(
            "POST",
            format!("/api/sessions/{random}/guest-token"),
            Api,
            guest,
            guest_ok.clone(),
        ),
        Route::new(
            "POST",
            "/api/sessions/not-a-uuid/guest-token".into(),
            Api,
            guest,
            guest_ok,
        ),
        Route::new("POST", "/api/ai/chat".into(), Api, chat, chat_ok.clone()),
        Route::new("POST", "/api/ai/process".into(), Api, chat, chat_ok),
        Route::new(
            "POST",
            "/api/tts/publish".into(),
            Api,
            &["room_name", "text", "language", "speaker", "speed"],
            json!({"room_name": room, "text": "Hello"}),
        ),
        Route::new("POST", "/token".into(), Api, legacy, legacy_ok.clone()),
        Route::new("POST", "/livekit/token".into(), Api, legacy, legacy_ok),
        Route::new(
            "POST",
            "/api/livekit/token".into(),
            Api,
            &[
                "service_identity",
                "participantName",
                "identity",
                "room",
                "roomName",
            ],
            json!({"service_identity": "june-stt", "room": room}),
        ),
        Route::new(
            "POST",
            "/api/livekit/token-source".into(),
            Api,
            &[
                "room_name",
                "participant_identity",
                "participant_name",
                "participant_metadata",
                "participant_attributes",
                "room_config",
            ],
            json!({"room_name": room, "participant_identity": "alice"}),
        ),
        Route::new(
            "POST",
            "/rooms/list".into(),
            Api,
            &["room", "names"],
            json!({}),
        ),
        Route::new(
            "POST",
            "/api/webhooks/stt".into(),
            Stt,
            stt,
            json!({"event": "final", "room_name": room, "participant": "alice",
                   "text": "hello there", "confidence": 0.9}),
        ),
        Route::new(
            "POST",
            "/api/webhooks/voice_onset".into(),
            Stt,
            &["room_name", "roomName", "participant"],
            json!({"room_name": room, "participant": "alice"}),
        ),
        Route::new(
            "DELETE",
            format!("/api/sessions/{id}/history"),
            Api,
            chat,
            json!({}),
        ),
        Route::new(
            "POST",
            "/api/livekit-webhooks".into(),
            Nothing,
            &["event", "room", "participant", "id", "createdAt"],
            json!({"event": "room_started", "room": {"name": room}}),
        ),
    ]
}

fn body_strategy(route: &Route, id: &str, room: &str) -> BoxedStrategy<Body> {
    let specials = vec![
        json!(id),
        json!(room),
        json!(uuid::Uuid::new_v4().to_string()),
        json!("alice"),
        json!("final"),
        json!({"agents": [{"agent_name": "x"}]}),
        json!({"name": room, "empty_timeout": 1}),
        json!({"k": "v"}),
        json!(true),
        json!(60),
    ];
    let valid = route.valid.clone();
    let fields = route.fields.clone();
    // The valid body with one field replaced by a wild value.
    let one = {
        let valid = valid.clone();
        (prop::sample::select(fields.clone()), wild(specials.clone())).prop_map(move |(k, v)| {
            let mut body = valid.clone();
            if let Some(map) = body.as_object_mut() {
                map.insert(k.to_owned(), v);
            }
            Body::Json(body)
        })
    };
    // … with up to three fields replaced and maybe one dropped.
    let bent = (
        prop::collection::vec(
            (prop::sample::select(fields.clone()), wild(specials.clone())),
            1..4,
        ),
        prop::option::of(prop::sample::select(fields.clone())),
    )
        .prop_map(move |(changes, dropped)| {
            let mut body = valid.clone();
            if let Some(map) = body.as_object_mut() {
                if let Some(f) = dropped {
                    map.remove(f);
                }
                for (k, v) in changes {
                    map.insert(k.to_owned(), v);
                }
            }
            Body::Json(body)
        });
    prop_oneof![
        4 => one,
        3 => bent,
        2 => fields_object(fields.clone(), specials).prop_map(Body::Json),
        1 => json_value().prop_map(Body::Json),
        1 => raw_body(fields),
    ]
    .boxed()
}

/// What a fuzzed request got back when it was not a clean JSON 2xx/4xx.
fn check(status: u16, content_type: &str, text: &str) -> Result<(), String> {
    if !(200..500).contains(&status) || (300..400).contains(&status) {
        return Err(format!("status {status}: {text:.300}"));
    }
    if !content_type.contains("json") {
        return Err(format!(
            "status {status} with content-type {content_type:?}: {text:.300}"
        ));
    }
    if serde_json::from_str::<Value>(text).is_err() {
        return Err(format!("status {status}, body is no JSON: {text:.300}"));
    }
    Ok(())
}

async fn fuzz_one(
    client: &reqwest::Client,
    base: &str,
    route: &Route,
    api_bearer: Option<&str>,
    body: &Body,
) -> Result<u16, String> {
    let mut req = client
        .request(
            route.method.parse().unwrap(),
            format!("{base}{}", route.path),
        )
        .header("content-type", "application/json")
        .body(body.bytes());
    let bearer = match route.auth {
        Auth::Api => api_bearer,
        Auth::Stt => Some(STT_TOKEN),
        Auth::Nothing => None,
    };
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = match tokio::time::timeout(GENEROUS, req.send()).await {
        Err(_) => return Err("no answer within 10 s".into()),
        Ok(Err(e)) => return Err(format!("transport error (dropped connection?): {e}")),
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = match tokio::time::timeout(GENEROUS, resp.text()).await {
        Err(_) => return Err(format!("status {status}, body never finished")),
        Ok(Err(e)) => return Err(format!("status {status}, body cut off: {e}")),
        Ok(Ok(t)) => t,
    };
    check(status, &content_type, &text).map(|()| status)
}

/// Builds one server for the whole run, then sends `CASES` generated bodies to each route and
/// collects every answer that is not a clean JSON 2xx/4xx. Panics listing them all.
fn property_run(auth_env: &[(&str, &str)], api_bearer: Option<&str>, on_postgres: bool) {
    const CASES: u32 = 256;
    const SHOWN_PER_ROUTE: usize = 5;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, schema, _gemini, _tts) = rt.block_on(async {
        let gemini = fake_gemini().await;
        let tts = fake_tts().await;
        let mut env = no_5xx_env(&gemini, &tts);
        env.extend(
            auth_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let schema = if on_postgres {
            let schema = PgSchema::create().await;
            env.push(("DATABASE_URL".to_owned(), schema.url()));
            Some(schema)
        } else {
            None
        };
        let app = spawn_app_with(&as_refs(&env)).await;
        (app, schema, gemini, tts)
    });
    let (status, s) = rt.block_on(call(
        &app,
        "POST",
        "/api/sessions",
        api_bearer,
        Some(json!({"user_id": api_bearer.map_or("alice", |_| "key-1")})),
    ));
    assert_eq!(status, 200, "{s}");
    let id = s["session_id"].as_str().unwrap().to_owned();
    let room = s["room_name"].as_str().unwrap().to_owned();

    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    for (n, route) in routes(&id, &room).into_iter().enumerate() {
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            max_shrink_iters: 0,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(
            config,
            TestRng::from_seed(RngAlgorithm::ChaCha, &[n as u8 + 1; 32]),
        );
        let found: Mutex<Vec<String>> = Mutex::default();
        let seen: Mutex<std::collections::BTreeMap<u16, u32>> = Mutex::default();
        let strategy = body_strategy(&route, &id, &room);
        let outcome = runner.run(&strategy, |body| {
            let answer = rt.block_on(fuzz_one(
                &app.client,
                &app.address,
                &route,
                api_bearer,
                &body,
            ));
            match answer {
                Ok(status) => *seen.lock().unwrap().entry(status).or_default() += 1,
                Err(why) => found
                    .lock()
                    .unwrap()
                    .push(format!("  {why}\n    body: {}", body.show())),
            }
            Ok(())
        });
        outcome.unwrap();
        eprintln!(
            "{} {}: clean answers by status {:?}",
            route.method,
            route.path,
            seen.into_inner().unwrap()
        );
        let found = found.into_inner().unwrap();
        if !found.is_empty() {
            let mut f = failures.lock().unwrap();
            f.push(format!(
                "{} {}: {} of {CASES} cases failed, e.g.:",
                route.method,
                route.path,
                found.len()
            ));
            f.extend(found.into_iter().take(SHOWN_PER_ROUTE));
        }
    }

    let health = rt.block_on(async {
        tokio::time::timeout(GENEROUS, app.client.get(app.url("/healthz")).send()).await
    });
    let healthy = matches!(health, Ok(Ok(ref r)) if r.status() == 200);
    if let Some(schema) = schema {
        rt.block_on(schema.drop());
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty() && healthy,
        "/healthz answered 200 after the run: {healthy}\n{}",
        failures.join("\n")
    );
}

#[test]
fn hardening_property_every_json_route_answers_json_and_never_5xx_without_auth() {
    property_run(&[("AUTH_MODE", "none")], None, false);
}

#[test]
fn hardening_property_every_json_route_answers_json_and_never_5xx_with_an_admin_key() {
    let keys = format!("{ADMIN_KEY}:admin");
    property_run(
        &[("AUTH_MODE", "api_key"), ("API_KEYS", keys.as_str())],
        Some(ADMIN_KEY),
        false,
    );
}

/// The same run on PostgreSQL, which refuses NUL bytes in text columns.
#[test]
fn hardening_property_every_json_route_answers_json_and_never_5xx_on_postgres() {
    property_run(&[("AUTH_MODE", "none")], None, true);
}
