//! §8.2 rolling restarts, in process: SIGTERM's drain (`/readyz` 503 while every route still
//! serves, connections closed), then the stop (no new connection, in-flight requests and
//! background work finish, what outlives the deadline gives its claims back), and webhooks
//! answered whatever LiveKit's agent dispatch does. [`ShutdownSignal`] does exactly what
//! SIGTERM does; no test asserts a duration: every wait is for an event, with a deadline only
//! so that a broken build fails instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use june_orchestrator::config::Settings;
use june_orchestrator::{Application, ShutdownSignal};
use june_testkit::LiveKitDouble;
use june_testkit::webhook::track_event;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::helpers::{env_for, read};

/// Long enough never to be reached by a passing test.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// A server run by the test itself, so that the test holds its [`ShutdownSignal`] and sees
/// `run_until_stopped` end.
struct Running {
    port: u16,
    client: reqwest::Client,
    lk: Arc<LiveKitDouble>,
    signal: ShutdownSignal,
    run: JoinHandle<std::io::Result<()>>,
    db_url: String,
    /// Holds the database file.
    _dir: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Running {
    let lk = Arc::new(LiveKitDouble::start());
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/june.db", dir.path().display());
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let settings = Settings::load(&env_for(&lk, &db_url, &extra), None).unwrap();
    let app = Application::build(settings).await.unwrap();
    Running {
        port: app.port(),
        client: june_testkit::http_client(),
        lk,
        signal: app.shutdown_signal(),
        run: tokio::spawn(app.run_until_stopped()),
        db_url,
        _dir: dir,
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A GET's status, JSON body and `Connection` header.
    async fn get(&self, path: &str) -> (u16, Value, Option<String>) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let connection = connection(&resp);
        let (status, body) = read(resp).await;
        (status, body, connection)
    }

    /// A voice session for `user` with `user` in its room, publishing a microphone; the
    /// session id and its `track_published` event.
    async fn talking(&self, user: &str) -> (String, livekit_protocol::WebhookEvent) {
        let resp = self
            .client
            .post(self.url("/api/sessions"))
            .json(&json!({"user_id": user, "voice": true}))
            .send()
            .await
            .unwrap();
        let (status, session) = read(resp).await;
        assert_eq!(status, 200, "{session}");
        let room_name = session["room_name"].as_str().unwrap();
        let room = self.lk.room(room_name).unwrap();
        let person = self.lk.join(room_name, user, true);
        let event = track_event("track_published", &room, &person, &person.tracks[0]);
        (session["session_id"].as_str().unwrap().to_owned(), event)
    }

    /// Posts a signed webhook; its status.
    async fn send_event(&self, event: &livekit_protocol::WebhookEvent) -> u16 {
        let body = june_testkit::webhook::protojson(event);
        let auth = june_testkit::webhook::authorization(
            body.as_bytes(),
            self.lk.api_key(),
            self.lk.api_secret(),
            june_testkit::webhook::VALID_FOR_SECS,
        );
        let resp = self
            .client
            .post(self.url("/api/livekit-webhooks"))
            .header("content-type", "application/webhook+json")
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }

    /// Waits until nothing accepts connections on the port any more.
    async fn until_closed(&self) {
        let port = self.port;
        tokio::time::timeout(HANG_GUARD, async move {
            while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the port closes");
    }

    /// Waits for `run_until_stopped` to end; its result.
    async fn stopped(&mut self) -> std::io::Result<()> {
        tokio::time::timeout(HANG_GUARD, &mut self.run)
            .await
            .expect("the server stops")
            .unwrap()
    }
}

fn connection(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
}

/// Waits until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(HANG_GUARD, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited in vain for {what}"));
}

/// A request whose body the test sends in two parts: in flight for as long as it wants.
struct SlowRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowRequest {
    async fn begin(port: u16, path: &str, body: &Value) -> SlowRequest {
        let body = body.to_string().into_bytes();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(first).await.unwrap();
        SlowRequest {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body; the whole answer (the server closes the connection).
    async fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(HANG_GUARD, self.stream.read_to_end(&mut answer))
            .await
            .expect("an answer")
            .unwrap();
        String::from_utf8_lossy(&answer).to_lowercase()
    }
}

#[tokio::test]
async fn sigterm_drains_then_stops_accepting_finishes_in_flight_requests_and_closes_the_port() {
    // Arrange: a drain far longer than the test; the second signal ends it.
    let mut app = start(&[("JUNE__SERVER__DRAIN_SECONDS", "3600")]).await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!((status, &body["status"]), (200, &json!("ready")), "{body}");
    let in_flight = SlowRequest::begin(app.port, "/api/sessions", &json!({"user_id": "ivy"})).await;

    // Act 1: SIGTERM.
    app.signal.send();

    // Assert 1: not ready any more, connections closed after each answer, and every route
    // still serves.
    let mut readyz = (0, Value::Null, None);
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while readyz.0 != 503 && tokio::time::Instant::now() < deadline {
        readyz = app.get("/readyz").await;
    }
    let (status, body, closes) = readyz;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "draining");
    assert_eq!(body["checks"]["store"]["status"], "ok");
    assert_eq!(closes.as_deref(), Some("close"));
    let resp = app
        .client
        .post(app.url("/api/sessions"))
        .json(&json!({"user_id": "jon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(connection(&resp).as_deref(), Some("close"));
    let (status, session) = read(resp).await;
    assert_eq!(status, 200, "{session}");
    let (status, _, _) = app
        .get(&format!(
            "/api/sessions/{}",
            session["session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);

    // Act 2: a second signal ends the drain: the server stops accepting.
    app.signal.send();
    app.until_closed().await;

    // Assert 2: the request in flight since before the drain is still answered, in full,
    // and the server then stops cleanly.
    let answer = in_flight.finish().await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("\"session_id\""), "{answer}");
    app.stopped().await.unwrap();
}

#[tokio::test]
async fn webhooks_are_answered_while_livekit_holds_every_agent_dispatch() {
    // Arrange: six voice sessions, each with a person publishing a microphone; LiveKit's
    // agent dispatch answers nothing until the test releases it.
    let app = start(&[]).await;
    let mut talks = Vec::new();
    for i in 0..6 {
        talks.push(app.talking(&format!("user{i}")).await);
    }
    app.lk.hold_dispatches();

    // Act: the first microphone's dispatch starts and is held by LiveKit; then the others
    // arrive, all at once.
    assert_eq!(app.send_event(&talks[0].1).await, 200);
    until("the first dispatch to reach LiveKit", || {
        app.lk.held_dispatches() == 1
    })
    .await;
    let rest =
        futures_util::future::join_all(talks[1..].iter().map(|(_, e)| app.send_event(e))).await;

    // Assert: every delivery was answered while LiveKit still held the dispatches (none has
    // been made yet) ...
    assert_eq!(rest, [200; 5]);
    assert!(app.lk.held_dispatches() >= 1);
    assert!(app.lk.dispatches().is_empty());
    // ... and once LiveKit answers, every session gets both bots, once.
    app.lk.release_dispatches();
    until("twelve dispatches", || app.lk.dispatches().len() == 12).await;
    for (id, _) in &talks {
        let mut agents: Vec<String> = app
            .lk
            .dispatches()
            .iter()
            .filter(|d| d.metadata.contains(id.as_str()))
            .map(|d| d.agent_name.clone())
            .collect();
        agents.sort();
        assert_eq!(agents, ["june-stt", "june-tts"], "session {id}");
    }
}

/// A server with `server.shutdown_timeout_secs = budget` whose one voice session's bot
/// dispatch has reached LiveKit, which holds it; the session id.
async fn holding_a_dispatch(budget: &str) -> (Running, String) {
    let app = start(&[("JUNE__SERVER__SHUTDOWN_TIMEOUT_SECS", budget)]).await;
    let (id, microphone) = app.talking("kim").await;
    app.lk.hold_dispatches();
    assert_eq!(app.send_event(&microphone).await, 200);
    until("the dispatch to reach LiveKit", || {
        app.lk.held_dispatches() == 1
    })
    .await;
    (app, id)
}

#[tokio::test]
async fn after_the_stop_the_server_waits_for_a_running_bot_dispatch() {
    // Arrange: a dispatch LiveKit holds, and a budget far longer than the test.
    let (mut app, _) = holding_a_dispatch("3600").await;

    // Act: SIGTERM twice (no drain): the server stops accepting.
    app.signal.send();
    app.signal.send();
    app.until_closed().await;

    // Assert: it has not finished while the dispatch is held; released, the dispatch
    // completes (both bots) and only then does the server stop.
    assert!(!app.run.is_finished());
    app.lk.release_dispatches();
    app.stopped().await.unwrap();
    let agents: Vec<String> = app
        .lk
        .dispatches()
        .iter()
        .map(|d| d.agent_name.clone())
        .collect();
    assert_eq!(agents, ["june-stt", "june-tts"]);
}

#[tokio::test]
async fn a_dispatch_still_held_at_the_deadline_is_abandoned_and_its_claim_given_back() {
    // Arrange: a one-second budget, and a dispatch LiveKit never answers in it.
    let (mut app, id) = holding_a_dispatch("1").await;

    // Act: SIGTERM twice; the server gives up on the dispatch at the deadline and stops.
    app.signal.send();
    app.signal.send();
    app.stopped().await.unwrap();

    // Assert: the claim is free, so the next track_published (on any replica) dispatches.
    let stores = june_store::connect(&app.db_url, &Default::default())
        .await
        .unwrap();
    let id = uuid::Uuid::parse_str(&id).unwrap();
    assert!(
        stores
            .voice
            .claim_dispatch(id, chrono::Utc::now())
            .await
            .unwrap(),
        "the abandoned dispatch gave its claim back"
    );
}
