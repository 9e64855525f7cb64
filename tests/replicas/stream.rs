//! The live stream across processes (issue #19 part 5): a client of replica B sees what
//! happens on replica A, through PostgreSQL `LISTEN/NOTIFY`.
//!
//! Status changes (a webhook on A, a DELETE on A) and a voice turn run on A (its transcript,
//! reply sentences and turn record) reach a client of B.

use std::time::Duration;

use june_testkit::webhook::{VALID_FOR_SECS, authorization, participant_event, protojson};
use serde_json::{Value, json};

use june_testkit::drip::{Chunk, DripServer};
use june_testkit::recorder::Recorder;

use crate::harness::{Cluster, Replica};

/// The `event:` and `data:` of the next SSE event (pings skipped); `None` at the end.
async fn next_event(resp: &mut reqwest::Response, buffer: &mut String) -> Option<(String, Value)> {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if frame.starts_with(':') {
                continue;
            }
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            return Some((field("event"), serde_json::from_str(&field("data")).ok()?));
        }
        let chunk = resp.chunk().await.ok()??;
        buffer.push_str(std::str::from_utf8(&chunk).ok()?);
    }
}

async fn open_stream(replica: &Replica, id: &str) -> reqwest::Response {
    let resp = june_testkit::http_client()
        .get(replica.url(&format!("/api/sessions/{id}/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

/// A participant joins the session's room; the webhook goes to `replica`.
async fn joined(cluster: &Cluster, replica: &Replica, room_name: &str) {
    let room = cluster.lk.room(room_name).unwrap();
    let alice = cluster.lk.join(room_name, "alice", true);
    let body = protojson(&participant_event("participant_joined", &room, &alice));
    let auth = authorization(
        body.as_bytes(),
        cluster.lk.api_key(),
        cluster.lk.api_secret(),
        VALID_FOR_SECS,
    );
    let (status, answer) = replica.post_webhook(&body, &auth).await;
    assert_eq!(status, 200, "{answer}");
}

/// B's listener connects in the background after start-up, and a notification sent before
/// it listens is not kept: waits until a probe session's change made on A shows up on B (a
/// new probe each time; a hang guard, not a timing assertion).
async fn until_b_hears_a(cluster: &Cluster, a: &Replica, b: &Replica) {
    let mut tries = 0;
    loop {
        tries += 1;
        assert!(tries <= 50, "B never heard A's notifications");
        let (_, probe) = a.post("/api/sessions", json!({"user_id": "probe"})).await;
        let id = probe["session_id"].as_str().unwrap();
        let mut resp = open_stream(b, id).await;
        let mut buffer = String::new();
        joined(cluster, a, probe["room_name"].as_str().unwrap()).await;
        let heard = tokio::time::timeout(
            Duration::from_millis(200),
            next_event(&mut resp, &mut buffer),
        )
        .await;
        if let Ok(Some(_)) = heard {
            break;
        }
    }
}

#[tokio::test]
async fn a_stream_on_one_process_sees_the_status_changes_made_on_another() {
    let cluster = Cluster::start(&[]).await;
    let a = cluster.spawn("a").await;
    let b = cluster.spawn("b").await;
    until_b_hears_a(&cluster, &a, &b).await;

    // Arrange
    let (status, created) = a.post("/api/sessions", json!({"user_id": "alice"})).await;
    assert_eq!(status, 200, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let mut resp = open_stream(&b, id).await;
    let mut buffer = String::new();

    // Act: on A, someone joins, then the session is deleted.
    joined(&cluster, &a, created["room_name"].as_str().unwrap()).await;
    let (status, _) = a.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);

    // Assert: B's client saw both, in order, and its stream ended with the session.
    let guard = Duration::from_secs(10);
    let first = tokio::time::timeout(guard, next_event(&mut resp, &mut buffer)).await;
    assert_eq!(
        first.unwrap(),
        Some(("status".into(), json!({"status": "active"})))
    );
    let second = tokio::time::timeout(guard, next_event(&mut resp, &mut buffer)).await;
    assert_eq!(
        second.unwrap(),
        Some(("status".into(), json!({"status": "ended"})))
    );
    let end = tokio::time::timeout(guard, next_event(&mut resp, &mut buffer)).await;
    assert_eq!(end.unwrap(), None);
    drop((a, b));
    cluster.finish().await;
}

/// One streamed Gemini reply in two chunks, the last with its usage.
fn gemini_reply() -> DripServer {
    let chunk = |text: &str, last: bool| {
        let mut c = json!({"content": {"role": "model", "parts": [{"text": text}]}});
        let mut body = json!({"candidates": [c.take()]});
        if last {
            body["candidates"][0]["finishReason"] = json!("STOP");
            body["usageMetadata"] =
                json!({"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12});
        }
        Chunk::now(format!("data: {body}\r\n\r\n"))
    };
    DripServer::start(vec![
        chunk("Hello there. How can I ", false),
        chunk("help?", true),
    ])
}

#[tokio::test]
async fn a_stream_on_one_process_sees_the_voice_turn_run_on_another() {
    // Arrange: Gemini and TTS faked for both processes, the STT webhook open (v3 bots).
    let llm = gemini_reply();
    let tts = Recorder::start();
    let (llm_url, tts_url) = (llm.url(), tts.url());
    let cluster = Cluster::start(&[
        ("GEMINI_API_KEY", "k"),
        ("GEMINI_BASE_URL", llm_url.as_str()),
        ("AI_MODEL", "test-model"),
        ("TTS_SERVICE_URL", tts_url.as_str()),
        ("SERVICE_AUTH_TOKEN", "tts-token"),
        ("STT_WEBHOOK_AUTH", "none"),
    ])
    .await;
    let a = cluster.spawn("a").await;
    let b = cluster.spawn("b").await;
    until_b_hears_a(&cluster, &a, &b).await;
    let (status, created) = a
        .post("/api/sessions", json!({"user_id": "alice", "voice": true}))
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let mut resp = open_stream(&b, id).await;
    let mut buffer = String::new();

    // Act: the final transcript reaches A, which runs the turn.
    let (status, answer) = a
        .post(
            "/api/webhooks/stt",
            json!({"event": "final", "room_name": created["room_name"], "text": "Hi June"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    // Assert: B's client saw the turn's events, in order.
    let guard = Duration::from_secs(15);
    let mut seen = Vec::new();
    while seen
        .last()
        .is_none_or(|(event, _): &(String, Value)| event != "turn")
    {
        let next = tokio::time::timeout(guard, next_event(&mut resp, &mut buffer)).await;
        seen.push(
            next.expect("the turn's events")
                .expect("the stream stays open"),
        );
    }
    assert_eq!(
        seen[..3],
        [
            (
                "transcript".to_owned(),
                json!({"turn": 1, "text": "Hi June"})
            ),
            (
                "reply".to_owned(),
                json!({"turn": 1, "index": 0, "text": "Hello there."})
            ),
            (
                "reply".to_owned(),
                json!({"turn": 1, "index": 1, "text": "How can I help?"})
            ),
        ]
    );
    let (_, record) = &seen[3];
    assert_eq!(record["turn"], 1);
    assert_eq!(record["outcome"], "completed");
    assert_eq!(record["usage"]["total_tokens"], 12);
    let (status, stored) = b.get(&format!("/api/sessions/{id}/turns/1")).await;
    assert_eq!((status, &stored), (200, record));
    drop((a, b));
    cluster.finish().await;
}
