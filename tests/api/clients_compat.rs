//! The real June clients, one test per client and revision (issue #16, docs/compat.md):
//! each sends exactly what that client sends — method, path, headers, body keys and types, as
//! read from its source (see /work/clients-report.md) — and asserts the status it checks and
//! every response field it reads. They run with `JUNE_COMPAT=v3`, which is how June's stack
//! runs this server. The default (secure) configuration's answers to the same requests are
//! checked at the end.
//!
//! Where several stored files hold the very same request code, one test stands for all of
//! them and its comment names each.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::helpers::{TestApp, read, spawn_app, spawn_app_with};

/// A server as June's stack runs it: `JUNE_COMPAT=v3` (default bot room `ozzu-main`,
/// `stt.auth=none`, room adoption on), `AUTH_MODE=none` (the default), plus `extra`.
async fn v3_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("JUNE_COMPAT", "v3")];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

/// Sends `body` as its JSON text with exactly `headers` (reqwest adds only `host`,
/// `content-length` and its defaults `accept: */*` unless `headers` names `accept`).
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let mut req = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .headers(map);
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    read(req.send().await.unwrap()).await
}

/// What httpx's `client.post(url, json=payload)` sends: only `Content-Type: application/json`.
const HTTPX_JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// A Keycloak access token as ozzu-app sends it. With `AUTH_MODE=none` nobody reads it.
const KEYCLOAK_BEARER: &str = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvenp1In0.c2ln";

/// `datetime.utcnow().isoformat()`: naive, microseconds, no `Z`.
const PY_UTC_NOW: &str = "2026-12-02T03:04:05.123456";

/// The room every June bot uses, in LiveKit: the bots and apps joined it, no session created
/// it. Under `JUNE_COMPAT=v3` room adoption (`voice.adopt_rooms`) makes it a room session
/// at its first final transcript.
fn livekit_has_ozzu_main(app: &TestApp) {
    app.lk.create_room("ozzu-main");
}

/// The room every June bot uses, owned by a session, as the default configuration (no
/// room adoption) needs it.
async fn session_owning_ozzu_main(app: &TestApp) -> Value {
    let (status, body) = app
        .post(
            "/api/sessions",
            json!({"user_id": "ozzu", "room_name": "ozzu-main"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The token of a `/token`-style answer, checked by LiveKit's own verifier.
fn claims(app: &TestApp, body: &Value) -> livekit_api::access_token::Claims {
    app.verify(body["token"].as_str().expect("a token"))
}

/// What the Python bots do with a token answer: `data.get("livekitUrl") or
/// data.get("ws_url")`, then `data["token"]`.
fn bot_reads_token_answer(app: &TestApp, body: &Value) {
    let ws = body["livekitUrl"]
        .as_str()
        .or_else(|| body["ws_url"].as_str())
        .expect("livekitUrl or ws_url");
    assert_eq!(ws, app.lk.ws_url());
    assert!(body["token"].is_string());
}

// ---------------------------------------------------------------------------------------
// june-stt (ozzuworld/June, June/services/june-stt/)
// ---------------------------------------------------------------------------------------

/// The body of june-stt 1.A/1.B `send_to_orchestrator()`.
fn stt_worker_body(is_partial: bool, text: &str) -> Value {
    json!({
        "event": if is_partial { "partial" } else { "final" },
        "room_name": "ozzu-main",
        "participant": "ozzu-app",
        "text": text,
        "language": "en",
        "confidence": 1.0,
        "timestamp": PY_UTC_NOW,
        "partial": is_partial,
        "segments": [],
    })
}

/// june-stt `livekit_worker.py` @ 83132ade4f6f99fa10dfbb1cef3680847b66ac1e ("ENTERPRISE GRADE
/// - FIXED", started by `main.py` @ 15596d8a): `get_livekit_token()` ≈L92-145,
/// `send_to_orchestrator()` ≈L192-290, `send_final_with_retry()` ≈L293-350. No Authorization
/// anywhere; only `== 200` counts, and a final is retried on anything else.
#[tokio::test]
async fn june_stt_livekit_worker_83132ad() {
    let app = v3_app(&[]).await;
    // POST {ORCHESTRATOR_URL}/token {"roomName", "participantName"} (≈L121-127):
    // raise_for_status, then livekitUrl or ws_url, then data["token"].
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        HTTPX_JSON,
        Some(&json!({"roomName": "ozzu-main", "participantName": "june-stt"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bot_reads_token_answer(&app, &body);
    assert_eq!(claims(&app, &body).video.room, "ozzu-main");
    // GET {ORCHESTRATOR_URL}/healthz after connecting (only logged).
    assert_eq!(app.get("/healthz").await.0, 200);

    livekit_has_ozzu_main(&app);
    // Partials go out fire-and-forget from the first word; before the room is a session
    // (partials do not adopt it) they are skipped with a 200, not a 404 the bot would log
    // as an error.
    let (status, body) = send(
        &app,
        "POST",
        "/api/webhooks/stt",
        HTTPX_JSON,
        Some(&stt_worker_body(true, "what")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "skipped", "reason": "unknown_room"}));

    // The first final makes ozzu-main a room session and starts a turn.
    let final_ = stt_worker_body(false, "what time is it");
    let (status, body) = send(&app, "POST", "/api/webhooks/stt", HTTPX_JSON, Some(&final_)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["event"]),
        (&json!("accepted"), &json!("final"))
    );
    // A retry of the same final (send_final_with_retry) is a 200 too: skipped, never 409/429.
    let (status, body) = send(&app, "POST", "/api/webhooks/stt", HTTPX_JSON, Some(&final_)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "skipped", "reason": "duplicate"}));
    // The next utterance's partials are accepted.
    let (status, body) = send(
        &app,
        "POST",
        "/api/webhooks/stt",
        HTTPX_JSON,
        Some(&stt_worker_body(true, "and the")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "accepted", "event": "partial"}));
}

/// june-stt `livekit_worker.py`, the earlier "OPTIMIZED" version (index id:28222123682, commit
/// not exposed): the same `/token` call and the same body as 83132ad; each final is awaited
/// once with no retry, and only `== 200` counts.
#[tokio::test]
async fn june_stt_livekit_worker_optimized() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        HTTPX_JSON,
        Some(&json!({"roomName": "ozzu-main", "participantName": "june-stt"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bot_reads_token_answer(&app, &body);
    livekit_has_ozzu_main(&app);
    for (is_partial, text) in [(true, "hello"), (false, "hello June")] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/webhooks/stt",
            HTTPX_JSON,
            Some(&stt_worker_body(is_partial, text)),
        )
        .await;
        assert_eq!(status, 200, "{text}: {body}");
    }
}

/// The body of june-stt 1.C `services/orchestrator_client.py` L41-68 (and `main.py` @ 041f7e04
/// `_notify_orchestrator()`).
fn stt_sota_body(transcript_id: &str, partial: bool, text: &str) -> Value {
    let mut body = json!({
        "transcript_id": transcript_id,
        "user_id": "ozzu-app",
        "participant": "ozzu-app",
        "event": if partial { "partial_transcript" } else { "transcript" },
        "text": text,
        "language": null,
        "timestamp": PY_UTC_NOW,
        "room_name": "ozzu-main",
        "partial": partial,
    });
    if partial {
        let extra = json!({
            "utterance_id": "utt-1",
            "partial_sequence": 2,
            "is_streaming": true,
            "sota_optimized": true,
            "streaming_metadata": {
                "chunk_duration_ms": 200, "buffer_ms": 600, "vad_active": true,
                "first_word_ms": 180.5, "speech_ratio": 0.8, "is_final_chunk": false,
            },
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
    }
    body
}

/// june-stt "SOTA VOICE AI OPTIMIZATION": `services/orchestrator_client.py` @
/// 0274d5d2ed842c875ec86ceeb2c190fd0b5252d2 (payload L41-68, POST L72) and `main.py` @
/// 041f7e049fa34574db2b1873264ff30c10d87712 (`_notify_orchestrator()`, the same code); health
/// L19-31 (`GET /healthz`, `== 200`). httpx with no explicit headers, no Authorization, no
/// confidence; partials `partial_transcript`, finals `transcript`; a fresh uuid4
/// `transcript_id` per message. Any `!= 200` marks the orchestrator unavailable.
#[tokio::test]
async fn june_stt_orchestrator_client_0274d5d() {
    let app = v3_app(&[]).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    livekit_has_ozzu_main(&app);
    let post = |body: Value| {
        let app = &app;
        async move { send(app, "POST", "/api/webhooks/stt", HTTPX_JSON, Some(&body)).await }
    };
    // Before the first final the room is no session's: a partial is a 200 skip.
    let (status, body) = post(stt_sota_body(
        "0b0d3c1e-5f7a-4b8e-9c2d-1a2b3c4d5e6f",
        true,
        "tell me",
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "skipped", "reason": "unknown_room"}));
    let id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let (status, body) = post(stt_sota_body(id, false, "tell me a joke")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"], "final");
    // The same transcript_id again is a resend: skipped (still a 200).
    let (status, body) = post(stt_sota_body(id, false, "tell me a joke")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "skipped", "reason": "duplicate"}));
    // Once adopted, the room's partials are accepted.
    let (status, body) = post(stt_sota_body(
        "5a1f0c9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
        true,
        "another",
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "accepted", "event": "partial"}));
}

/// The body of june-stt 1.D `_notify_orchestrator()` (v2.0 file L79-103): finals only.
fn stt_whisper_body(transcript_id: &str, text: &str) -> Value {
    json!({
        "transcript_id": transcript_id,
        "user_id": "ozzu-app",
        "participant": "ozzu-app",
        "event": "transcript",
        "text": text,
        "language": "en",
        "timestamp": PY_UTC_NOW,
        "room_name": "ozzu-main",
    })
}

/// june-stt `main.py` faster-whisper v2.0 (index id:28245064426, commit not exposed),
/// `_notify_orchestrator()` L79-103: finals only, `event: "transcript"`, no Authorization, no
/// retry. Token: `livekit_token.py` (see the 0af0517 test).
#[tokio::test]
async fn june_stt_main_faster_whisper_v2() {
    let app = v3_app(&[]).await;
    livekit_has_ozzu_main(&app);
    let (status, body) = send(
        &app,
        "POST",
        "/api/webhooks/stt",
        HTTPX_JSON,
        Some(&stt_whisper_body(
            "4f1b2c3d-0000-4000-8000-000000000001",
            "good morning",
        )),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// june-stt `main.py` Silero-VAD "Enhanced" 4.1.0 (index id:28174670203, commit not
/// exposed): the same `_notify_orchestrator()` body as v2.0; 429 is taken as "expected
/// protection", anything else but 200 is a failure.
#[tokio::test]
async fn june_stt_main_silero_vad_4_1_0() {
    let app = v3_app(&[]).await;
    livekit_has_ozzu_main(&app);
    for (id, text) in [
        ("4f1b2c3d-0000-4000-8000-000000000002", "first thing"),
        ("4f1b2c3d-0000-4000-8000-000000000003", "second thing"),
    ] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/webhooks/stt",
            HTTPX_JSON,
            Some(&stt_whisper_body(id, text)),
        )
        .await;
        assert_eq!(status, 200, "{text}: {body}");
        assert_eq!(body["status"], "accepted");
    }
}

/// june-stt `livekit_token.py` @ 0af05172503a93fc3c6f1720ecccac00271e6b8d (used by the SOTA
/// and whisper generations): `POST /token {"roomName", "participantName"}` L25-27 with no
/// Authorization, `raise_for_status`; reads `livekitUrl` or `ws_url` (L29), `data["token"]` (L30).
#[tokio::test]
async fn june_stt_livekit_token_0af0517() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        HTTPX_JSON,
        Some(&json!({"roomName": "ozzu-main", "participantName": "june-stt"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bot_reads_token_answer(&app, &body);
    let c = claims(&app, &body);
    assert_eq!(
        (c.sub.as_str(), c.video.room.as_str()),
        ("june-stt", "ozzu-main")
    );
}

// ---------------------------------------------------------------------------------------
// june-tts (ozzuworld/June, June/services/june-tts/)
// ---------------------------------------------------------------------------------------

/// june-tts `livekit_token.py` @ 449986bbc457cf685361f32949dde3c60f2db5ad (CosyVoice2 era):
/// tries `POST /api/livekit/token` first, then `/token` (L40), each with
/// `{"roomName", "participantName"}` (L52-55), no Authorization; `raise_for_status`, then
/// `livekitUrl` or `ws_url` (L68-72) and `data["token"]` (L73). Identity `cosyvoice2-tts`
/// (CosyVoice `main.py` @ 013db40b), listed in `livekit.bot_identities` as a deployment
/// would.
#[tokio::test]
async fn june_tts_livekit_token_449986b() {
    let app = v3_app(&[("JUNE__LIVEKIT__BOT_IDENTITIES", "cosyvoice2-tts")]).await;
    let body = json!({"roomName": "ozzu-main", "participantName": "cosyvoice2-tts"});
    for path in ["/api/livekit/token", "/token"] {
        let (status, answer) = send(&app, "POST", path, HTTPX_JSON, Some(&body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
        bot_reads_token_answer(&app, &answer);
        let c = claims(&app, &answer);
        assert_eq!(
            (c.sub.as_str(), c.video.room.as_str()),
            ("cosyvoice2-tts", "ozzu-main")
        );
    }
    // The first path answers, so the bot never falls through; it speaks, so it is an agent
    // the others can see (docs/compat.md, "Bot grants").
    let (_, answer) = send(&app, "POST", "/api/livekit/token", HTTPX_JSON, Some(&body)).await;
    let c = claims(&app, &answer);
    assert!(c.video.agent && !c.video.hidden);
}

/// june-tts `livekit_token.py` @ a868a65ec039df0067a5621cae25926d3695625d: `POST
/// {base}/livekit/token` (L12) with only `{"service_identity": identity}` (L14), no room, no
/// Authorization, no retry; `raise_for_status`, then `data.get("ws_url")` and
/// `data["token"]` (L17). The room is `livekit.default_bot_room` (ozzu-main under v3).
#[tokio::test]
async fn june_tts_livekit_token_a868a65() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/livekit/token",
        HTTPX_JSON,
        Some(&json!({"service_identity": "june-tts"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ws_url"], app.lk.ws_url());
    let c = claims(&app, &body);
    assert_eq!(
        (c.sub.as_str(), c.video.room.as_str()),
        ("june-tts", "ozzu-main")
    );
    // The TTS agent speaks into the room: an agent, not hidden (ozzu-app looks for it).
    assert!(c.video.agent && !c.video.hidden);
}

/// june-tts Chatterbox "7.0.0-vllm" `main.py` (index id:28167096593) and XTTS v2 `main.py`
/// (id:28492853022), commits not exposed; the same block is in id:28229603755,
/// id:28364085488, id:29112831131 and id:28199236989: `POST {ORCHESTRATOR_URL}/token
/// {"roomName": LIVEKIT_ROOM, "participantName": LIVEKIT_IDENTITY}` ("ozzu-main",
/// "june-tts"), no Authorization, `raise_for_status`; `livekitUrl` or `ws_url`, `data["token"]`.
#[tokio::test]
async fn june_tts_main_chatterbox_and_xtts() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        HTTPX_JSON,
        Some(&json!({"roomName": "ozzu-main", "participantName": "june-tts"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bot_reads_token_answer(&app, &body);
    let c = claims(&app, &body);
    assert_eq!(c.video.room, "ozzu-main");
    // `/token` mints what v3.0 minted: a participant that publishes.
    assert_eq!(c.video.can_publish, Some(true));
}

// ---------------------------------------------------------------------------------------
// LiveKitApp (ozzuworld/LiveKitApp, React Native / Expo), utils/tokenService.ts
// ---------------------------------------------------------------------------------------

/// `fetch(..., {headers: {Accept, Content-Type: application/json}})`.
const FETCH_JSON: &[(&str, &str)] = &[
    ("accept", "application/json"),
    ("content-type", "application/json"),
];

/// LiveKitApp `utils/tokenService.ts` @ 3c520ed3e29d170bd9e8927aab9d2b5670a2ab8f: `POST
/// https://api.ozzu.world/livekit/token` (L11-12) with `{room, identity}` (L23-26), Accept and
/// Content-Type, no Authorization (L31-38); checks `response.ok` (L40) and `data.token` (L47).
#[tokio::test]
async fn livekit_app_token_service_3c520ed() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/livekit/token",
        FETCH_JSON,
        Some(&json!({"room": "family-room", "identity": "user-4821"})),
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {body}");
    let c = claims(&app, &body);
    assert_eq!(
        (c.sub.as_str(), c.video.room.as_str()),
        ("user-4821", "family-room")
    );
}

/// LiveKitApp `utils/tokenService.ts` @ 9bffcf5b303613456f103064768193d00d2aa56e: the same
/// endpoint (L10) and headers (L20-23) with `{roomName, participantName}` (L24-27); the
/// response type (L1-6) is `{token, roomName, participantName, livekitUrl}`; checks
/// `response.ok` (L30) and `data.token` (L37).
#[tokio::test]
async fn livekit_app_token_service_9bffcf5() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/livekit/token",
        FETCH_JSON,
        Some(&json!({"roomName": "family-room", "participantName": "user-77"})),
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {body}");
    claims(&app, &body);
    assert_eq!(body["roomName"], "family-room");
    assert_eq!(body["participantName"], "user-77");
    assert_eq!(body["livekitUrl"], app.lk.ws_url());
}

/// LiveKitApp `utils/tokenService.ts` with `validateParticipantName` (index id:45432746980,
/// commit not exposed), used by `App.tsx` @ ba7e0c6bb02f1afa2d39ce432c2e1065370c0ccd and @
/// 0e69ddf7895551c5b41eafbe3db3eb7852e63f58: `{roomName, participantName, metadata: string}`
/// (L1-5, L27-34); reads `token`, `roomName`, `participantName`, `livekitUrl`, then
/// connects to `livekitUrl` without a trailing `/` plus `/rtc`.
#[tokio::test]
async fn livekit_app_token_service_with_metadata() {
    let app = v3_app(&[]).await;
    let metadata = r#"{"platform":"ios","app":"LiveKitApp"}"#;
    let (status, body) = send(
        &app,
        "POST",
        "/livekit/token",
        FETCH_JSON,
        Some(&json!({"roomName": "default-room", "participantName": "user-123", "metadata": metadata})),
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {body}");
    let c = claims(&app, &body);
    assert_eq!(c.metadata, metadata);
    assert_eq!(body["roomName"], "default-room");
    assert_eq!(body["participantName"], "user-123");
    // LIVEKIT_WS_URL is returned as configured; the app appends /rtc, so it must be bare.
    let url = body["livekitUrl"].as_str().unwrap();
    let rtc = format!("{}/rtc", url.trim_end_matches('/'));
    assert_eq!(reqwest::Url::parse(&rtc).unwrap().path(), "/rtc");
}

// ---------------------------------------------------------------------------------------
// june-voice-clean (ozzuworld/june-voice-clean, Expo), the older session flow
// ---------------------------------------------------------------------------------------

/// What june-voice-clean's session flow sends and reads, on `path`.
async fn voice_clean_session_flow(app: &TestApp, path: &str) {
    let (status, body) = send(
        app,
        "POST",
        path,
        &[("content-type", "application/json")],
        Some(&json!({"user_id": "user-5150", "room_name": "voice-clean-room"})),
    )
    .await;
    assert!((200..300).contains(&status), "{path}: {status} {body}");
    for key in ["access_token", "session_id", "livekit_url"] {
        assert!(body[key].is_string(), "{key}: {body}");
    }
    assert_eq!(body["room_name"], "voice-clean-room");
    assert_eq!(body["livekit_url"], app.lk.ws_url());
    // GET /api/livekit/config: no such route (v3.0 had none either); the app falls back.
    let (status, body) = app.get("/api/livekit/config").await;
    assert_eq!(status, 404, "{body}");
}

/// june-voice-clean, older `config/livekit.ts` (index id:19188761399): `POST
/// https://api.ozzu.world/api/sessions {user_id, room_name}` with Content-Type; reads
/// `access_token`, `session_id`, `livekit_url`, `room_name`; checks `resp.ok`.
#[tokio::test]
async fn june_voice_clean_sessions() {
    let app = v3_app(&[]).await;
    voice_clean_session_flow(&app, "/api/sessions").await;
}

/// june-voice-clean, the variant with a trailing slash (index id:19157110442): `POST
/// https://api.ozzu.world/api/sessions/`, otherwise the same.
#[tokio::test]
async fn june_voice_clean_sessions_trailing_slash() {
    let app = v3_app(&[]).await;
    voice_clean_session_flow(&app, "/api/sessions/").await;
}

// ---------------------------------------------------------------------------------------
// ozzu-app (ozzuworld/ozzu-app, Flutter)
// ---------------------------------------------------------------------------------------

/// `http.post(..., headers: {Content-Type, Accept, Authorization: Bearer <Keycloak token>})`.
const FLUTTER_WITH_LOGIN: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("accept", "application/json"),
    ("authorization", KEYCLOAK_BEARER),
];

/// ozzu-app `lib/screens/voice_call_screen.dart` @ 06a779f81b514271b3f3101bca283327204ed56f
/// (also id:43402572862 and id:43575214559): `POST https://api.ozzu.world/api/livekit/token`
/// with `{"service_identity": "ozzu-app"}` and the Keycloak bearer when logged in; `==
/// 200`, then `data['token']`. The app is a person's: an ordinary participant of ozzu-main.
#[tokio::test]
async fn ozzu_app_voice_call_screen_06a779f() {
    let app = v3_app(&[]).await;
    for headers in [FLUTTER_WITH_LOGIN, &FLUTTER_WITH_LOGIN[..2]] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/livekit/token",
            headers,
            Some(&json!({"service_identity": "ozzu-app"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let c = claims(&app, &body);
        assert_eq!(
            (c.sub.as_str(), c.video.room.as_str()),
            ("ozzu-app", "ozzu-main")
        );
        assert!(!c.video.hidden && !c.video.agent, "a person, not a bot");
        assert_eq!(c.video.can_publish, Some(true));
    }
}

/// ozzu-app `lib/screens/voice_call_screen.dart` @ 7f65fb46d4882ecb4eabf55f952d2b3d07461a35
/// (also id:44075703522): `POST https://api.ozzu.world/token {roomName: 'ozzu-main',
/// participantName: 'ozzu-app'}` with the bearer when logged in; `== 200`, `data['token']`.
/// It finds June's audio by a remote participant whose identity contains `june-tts`,
/// `june_tts`, `tts` or `june`: the TTS bot must not be hidden.
#[tokio::test]
async fn ozzu_app_voice_call_screen_7f65fb4() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        FLUTTER_WITH_LOGIN,
        Some(&json!({"roomName": "ozzu-main", "participantName": "ozzu-app"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(&app, &body).video.room, "ozzu-main");
    // The TTS bot's own token (june-tts 2.B) leaves it visible to this app.
    let (_, tts) = app
        .post(
            "/api/livekit/token",
            json!({"service_identity": "june-tts"}),
        )
        .await;
    assert!(!claims(&app, &tts).video.hidden);
}

/// ozzu-app `lib/screens/talk_screen.dart` @ 1327e603ca232b77d47a49294b4368c7cbe949b7 and @
/// ccf7e4e78a41e9f1d7e88894684a984accebe08d (the same calls): `POST /rooms/list` with `{}`
/// → `== 200`, `data['rooms']` with `sid`, `name`, `num_participants`, `max_participants`,
/// `creation_time` (int) and `metadata` (String); then `POST /token {roomName: <typed>,
/// participantName: 'user-<millis>'}` → `== 200`, `data['token']`.
#[tokio::test]
async fn ozzu_app_talk_screen_1327e60() {
    let app = v3_app(&[]).await;
    app.lk.create_room("ozzu-main");
    let (status, body) = send(
        &app,
        "POST",
        "/rooms/list",
        FLUTTER_WITH_LOGIN,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rooms = body["rooms"].as_array().unwrap();
    let room = rooms.iter().find(|r| r["name"] == "ozzu-main").unwrap();
    assert!(room["sid"].is_string());
    assert!(room["num_participants"].is_u64());
    assert!(room["max_participants"].is_u64());
    assert!(room["creation_time"].is_i64());
    assert!(room["metadata"].is_string());
    let typed = |room: &str| json!({"roomName": room, "participantName": "user-1764644645123"});
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        FLUTTER_WITH_LOGIN,
        Some(&typed("study-group")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(&app, &body).sub, "user-1764644645123");
    // The room is whatever the user typed. A name outside A-Z a-z 0-9 _ - . (a space, say)
    // is a 422 naming roomName, where v3.0 minted for anything (docs/compat.md).
    let (status, body) = send(
        &app,
        "POST",
        "/token",
        FLUTTER_WITH_LOGIN,
        Some(&typed("study group")),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "roomName");
}

/// ozzu-app, older versions (index id:33653157958, id:43799114405, id:33413065665;
/// `lib/config.dart` @ 2dfeb77cd772a2d8ee34b848ca1116d337eb86d1): `POST
/// https://api.ozzu.world/livekit/token {roomName: 'voice-room', participantName:
/// 'flutter-user-<millis>'}`; `== 200`, `data['token']`.
#[tokio::test]
async fn ozzu_app_config_2dfeb77() {
    let app = v3_app(&[]).await;
    let (status, body) = send(
        &app,
        "POST",
        "/livekit/token",
        &FLUTTER_WITH_LOGIN[..2],
        Some(&json!({"roomName": "voice-room", "participantName": "flutter-user-1764644645123"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(&app, &body).video.room, "voice-room");
}

// ---------------------------------------------------------------------------------------
// What JUNE_COMPAT=v3 changes beyond the clients above, and the default configuration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn under_v3_the_stt_routes_take_no_credentials_and_readyz_says_so() {
    let app = v3_app(&[]).await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "stt.auth=none never makes it unready: {body}");
    assert_eq!(body["stt_auth"], "none");
    // voice_onset has no real caller; the v3.x handler's body was {session_id, room_name}.
    let onset = json!({"session_id": "whatever", "room_name": "ozzu-main"});
    let (status, _) = send(
        &app,
        "POST",
        "/api/webhooks/voice_onset",
        HTTPX_JSON,
        Some(&onset),
    )
    .await;
    assert_eq!(status, 404, "no session owns the room yet");
    // A final adopts the room (onsets do not).
    livekit_has_ozzu_main(&app);
    let (status, body) = send(
        &app,
        "POST",
        "/api/webhooks/stt",
        HTTPX_JSON,
        Some(&stt_worker_body(false, "hello")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // No Authorization, and a wrong one: both accepted, there is nothing to check.
    for headers in [
        HTTPX_JSON,
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer not-the-token"),
        ],
    ] {
        let (status, body) = send(
            &app,
            "POST",
            "/api/webhooks/voice_onset",
            headers,
            Some(&onset),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "interrupted");
    }
    // A final for a room LiveKit does not have is a 404: adoption needs LiveKit's room.
    let mut final_ = stt_worker_body(false, "anyone there");
    final_["room_name"] = json!("nobody-owns-this");
    let (status, body) = send(&app, "POST", "/api/webhooks/stt", HTTPX_JSON, Some(&final_)).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn by_default_the_stt_bots_body_without_authorization_is_refused() {
    let app = spawn_app_with(&[("STT_SERVICE_TOKEN", "stt-secret")]).await;
    session_owning_ozzu_main(&app).await;
    for body in [
        stt_worker_body(false, "hello"),
        stt_sota_body("id-1", false, "hello"),
    ] {
        let (status, answer) =
            send(&app, "POST", "/api/webhooks/stt", HTTPX_JSON, Some(&body)).await;
        assert_eq!(status, 401, "{answer}");
    }
    let onset = json!({"room_name": "ozzu-main"});
    let (status, _) = send(
        &app,
        "POST",
        "/api/webhooks/voice_onset",
        HTTPX_JSON,
        Some(&onset),
    )
    .await;
    assert_eq!(status, 401);
    let (_, ready) = app.get("/readyz").await;
    assert_eq!(ready["stt_auth"], "bearer");
    // Without STT_SERVICE_TOKEN, transcripts are refused outright.
    let closed = spawn_app().await;
    let (status, body) = send(
        &closed,
        "POST",
        "/api/webhooks/stt",
        HTTPX_JSON,
        Some(&stt_worker_body(false, "hello")),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "stt_auth_not_configured");
}

#[tokio::test]
async fn by_default_a_service_token_without_a_room_names_the_setting() {
    let app = spawn_app().await;
    for (path, body) in [
        (
            "/api/livekit/token",
            json!({"service_identity": "june-tts"}),
        ),
        ("/livekit/token", json!({"service_identity": "june-tts"})),
        (
            "/api/livekit/token",
            json!({"service_identity": "ozzu-app"}),
        ),
    ] {
        let (status, answer) = send(&app, "POST", path, HTTPX_JSON, Some(&body)).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            detail.contains("livekit.default_bot_room")
                && detail.contains("JUNE__LIVEKIT__DEFAULT_BOT_ROOM"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn by_default_only_configured_bots_get_bot_grants() {
    let app = spawn_app_with(&[("JUNE__LIVEKIT__BOT_IDENTITIES", "cosyvoice2-tts")]).await;
    let token = |identity: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    "/api/livekit/token",
                    json!({"service_identity": identity, "room": "lobby"}),
                )
                .await;
            assert_eq!(status, 200, "{identity}: {body}");
            claims(app, &body).video
        }
    };
    // A browser following the old frontend guide, and ozzu-app: people.
    for person in ["frontend-user", "ozzu-app"] {
        let v = token(person).await;
        assert!(!v.hidden && !v.agent, "{person}");
        assert!(v.room_join && v.can_publish == Some(true), "{person}");
        assert_eq!(v.room, "lobby");
    }
    let stt = token("june-stt").await;
    assert!(stt.hidden && stt.agent);
    for speaker in ["june-tts", "cosyvoice2-tts"] {
        let v = token(speaker).await;
        assert!(v.agent && !v.hidden, "{speaker}");
    }
}
