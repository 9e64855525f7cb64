//! `june-loadgen`: throughput and latency of session creation and webhook ingest, on SQLite
//! and on PostgreSQL. The real `Application` runs in this process (port 0) with the LiveKit
//! test double; closed-loop clients hammer it over loopback HTTP for a fixed time.
//!
//! `cargo run --release -p june-bench -- [--seconds N] [--concurrency C] [--backends sqlite,postgres]`
//! Prints a Markdown table (docs/benchmarks.md keeps the last one).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use june_orchestrator::Application;
use june_orchestrator::config::Settings;
use june_testkit::LiveKitDouble;
use june_testkit::webhook::{authorization, participant_event, protojson};
use livekit_protocol as proto;
use serde_json::json;
use sqlx::Connection;

struct Args {
    seconds: u64,
    concurrency: usize,
    backends: Vec<String>,
    turns: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        seconds: 10,
        concurrency: 32,
        backends: vec!["sqlite".into(), "postgres".into()],
        turns: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse()?,
            "--concurrency" => a.concurrency = value.parse()?,
            "--backends" => a.backends = value.split(',').map(str::to_owned).collect(),
            "--turns" => a.turns = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// One measured scenario.
struct Outcome {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// Runs `concurrency` closed-loop workers for `seconds`; `request(worker, n)` makes one call.
async fn run<F, Fut>(concurrency: usize, seconds: u64, request: F) -> Outcome
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers = (0..concurrency).map(|w| {
        let request = request.clone();
        tokio::spawn(async move {
            let (mut lat, mut ok, mut failed, mut n) = (Vec::new(), 0, 0, 0);
            while Instant::now() < deadline {
                let t = Instant::now();
                if request(w, n).await {
                    ok += 1;
                    lat.push(t.elapsed());
                } else {
                    failed += 1;
                }
                n += 1;
            }
            (lat, ok, failed)
        })
    });
    let mut out = Outcome {
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for r in futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        out.latencies.extend(r.0);
        out.ok += r.1;
        out.failed += r.2;
    }
    out.elapsed = started.elapsed();
    out.latencies.sort();
    out
}

async fn start(lk: &LiveKitDouble, database_url: &str) -> Result<String> {
    start_with(lk, database_url, &[]).await
}

async fn start_with(
    lk: &LiveKitDouble,
    database_url: &str,
    extra: &[(&str, String)],
) -> Result<String> {
    let mut env: HashMap<String, String> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("LIVEKIT_WS_URL", lk.ws_url()),
        ("LIVEKIT_API_KEY", lk.api_key().to_owned()),
        ("LIVEKIT_API_SECRET", lk.api_secret().to_owned()),
        ("LOG_LEVEL", "warn".to_owned()),
        ("JUNE__DATABASE__MAX_CONNECTIONS", "16".to_owned()),
        // Every client is 127.0.0.1: the per-address budget would measure itself.
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "0".to_owned()),
        ("JUNE__RATE_LIMIT__PER_SECOND", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let app = Application::build(Settings::load(&env, None)?).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Ok(address)
}

fn row(scenario: &str, backend: &str, o: &Outcome) -> String {
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
    format!(
        "| {scenario} | {backend} | {} | {} | {:.0} | {} | {} |",
        o.ok,
        o.failed,
        o.ok as f64 / o.elapsed.as_secs_f64(),
        ms(o.percentile(0.50)),
        ms(o.percentile(0.99)),
    )
}

async fn bench_backend(backend: &str, a: &Args, client: &reqwest::Client) -> Result<Vec<String>> {
    let lk = LiveKitDouble::start();
    let dir = tempfile::tempdir()?;
    let (url, schema) = database(backend, &dir, "bench").await?;
    let base = start(&lk, &url).await?;
    let mut rows = Vec::new();

    let (c, b) = (client.clone(), base.clone());
    let create = run(a.concurrency, a.seconds, move |w, n| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            c.post(format!("{b}/api/sessions"))
                .json(&json!({ "user_id": format!("load-{w}-{n}") }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    rows.push(row("POST /api/sessions", backend, &create));

    // Webhooks as a busy deployment sees them: 50 live sessions, a handful of people in each
    // joining and leaving, every event with its own id, signed as LiveKit signs them.
    let mut rooms = Vec::new();
    for i in 0..50 {
        let session: serde_json::Value = client
            .post(format!("{base}/api/sessions"))
            .json(&json!({ "user_id": format!("webhook-target-{i}") }))
            .send()
            .await?
            .json()
            .await?;
        rooms.push(
            lk.room(session["room_name"].as_str().unwrap_or_default())
                .context("a bench session's room")?,
        );
    }
    let rooms = std::sync::Arc::new(rooms);
    let (key, secret) = (lk.api_key(), lk.api_secret());
    let (c, b) = (client.clone(), base.clone());
    let ingest = run(a.concurrency, a.seconds, move |w, n| {
        let (c, b, rooms) = (c.clone(), b.clone(), rooms.clone());
        async move {
            let room = &rooms[(w * 7 + n) % rooms.len()];
            let who = proto::ParticipantInfo {
                identity: format!("p-{}", n % 8),
                ..Default::default()
            };
            let kind = if n % 2 == 0 {
                "participant_joined"
            } else {
                "participant_left"
            };
            let body = protojson(&participant_event(kind, room, &who));
            let auth = authorization(body.as_bytes(), key, secret, 300);
            c.post(format!("{b}/api/livekit-webhooks"))
                .header("content-type", "application/webhook+json")
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    rows.push(row("POST /api/livekit-webhooks", backend, &ingest));

    // One big room: every event a new participant joining the same session's room, so the
    // room grows to as many participants as there are events (presence cost per event must
    // not grow with it).
    let session: serde_json::Value = client
        .post(format!("{base}/api/sessions"))
        .json(&json!({ "user_id": "webhook-big-room" }))
        .send()
        .await?
        .json()
        .await?;
    let id = session["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let big = std::sync::Arc::new(
        lk.room(session["room_name"].as_str().unwrap_or_default())
            .context("the big room")?,
    );
    let (c, b) = (client.clone(), base.clone());
    let grow = run(a.concurrency, a.seconds, move |w, n| {
        let (c, b, big) = (c.clone(), b.clone(), big.clone());
        async move {
            let who = proto::ParticipantInfo {
                identity: format!("big-{w}-{n}"),
                ..Default::default()
            };
            let body = protojson(&participant_event("participant_joined", &big, &who));
            let auth = authorization(body.as_bytes(), key, secret, 300);
            c.post(format!("{b}/api/livekit-webhooks"))
                .header("content-type", "application/webhook+json")
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let counted: serde_json::Value = client
        .get(format!("{base}/api/sessions/{id}"))
        .send()
        .await?
        .json()
        .await?;
    eprintln!(
        "{backend}: the big room counts {} participants after {} joins",
        counted["participant_count"], grow.ok
    );
    rows.push(row(
        "POST /api/livekit-webhooks, one room growing",
        backend,
        &grow,
    ));

    drop_schema(schema).await?;
    Ok(rows)
}

/// The database URL of `backend`: a file in `dir` for SQLite, a fresh schema on the test
/// PostgreSQL (`JUNE_TEST_POSTGRES_URL`) otherwise, returned for [`drop_schema`].
async fn database(
    backend: &str,
    dir: &tempfile::TempDir,
    name: &str,
) -> Result<(String, Option<(String, String)>)> {
    Ok(match backend {
        "sqlite" => (format!("sqlite://{}/{name}.db", dir.path().display()), None),
        "postgres" => {
            let server = std::env::var("JUNE_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let schema = format!("june_bench_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&server).await?;
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut admin)
                .await?;
            (
                format!("{server}?options=-c%20search_path%3D{schema}"),
                Some((server, schema)),
            )
        }
        other => bail!("unknown backend {other}"),
    })
}

async fn drop_schema(schema: Option<(String, String)>) -> Result<()> {
    if let Some((server, schema)) = schema {
        let mut admin = sqlx::PgConnection::connect(&server).await?;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}

/// Orchestration overhead of a voice turn: a final transcript in, until the first sentence
/// reaches TTS, with a Gemini that answers at once and a TTS that records arrivals. Turns run
/// one after another so each measures the path alone. Everything a turn does in production
/// is on: its record is stored, its captions go to the LiveKit double, and an SSE client
/// follows the session's live stream.
async fn bench_turns(backend: &str, turns: usize, client: &reqwest::Client) -> Result<String> {
    use june_testkit::drip::{Chunk, DripServer};
    use june_testkit::recorder::Recorder;
    let reply = serde_json::json!({"candidates": [{
        "content": {"role": "model", "parts": [{"text": "Sure. Here it is."}]},
        "finishReason": "STOP"
    }]});
    let gemini = DripServer::start(vec![Chunk::now(format!("data: {reply}\r\n\r\n"))]);
    let tts = Recorder::start();
    let lk = LiveKitDouble::start();
    let dir = tempfile::tempdir()?;
    let (url, schema) = database(backend, &dir, "turns").await?;
    let base = start_with(
        &lk,
        &url,
        &[
            ("GEMINI_API_KEY", "bench".into()),
            ("GEMINI_BASE_URL", gemini.url()),
            ("TTS_SERVICE_URL", tts.url()),
            ("STT_SERVICE_TOKEN", "bench-stt".into()),
        ],
    )
    .await?;
    let session: serde_json::Value = client
        .post(format!("{base}/api/sessions"))
        .json(&json!({ "user_id": "voice-bench", "voice": true }))
        .send()
        .await?
        .json()
        .await?;
    let room = session["room_name"].as_str().unwrap_or_default().to_owned();
    let id = session["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A dashboard following the session: read and dropped as it comes.
    let mut stream = client
        .get(format!("{base}/api/sessions/{id}/stream"))
        .send()
        .await?;
    let follower = tokio::spawn(async move { while let Ok(Some(_)) = stream.chunk().await {} });
    let mut latencies = Vec::with_capacity(turns);
    let started = Instant::now();
    for n in 0..turns {
        let before = tts.hits("/api/tts/synthesize").len();
        let sent = Instant::now();
        client
            .post(format!("{base}/api/webhooks/stt"))
            .bearer_auth("bench-stt")
            .json(&json!({"event": "final", "room_name": room, "text": format!("turn {n}")}))
            .send()
            .await?;
        let first = loop {
            let hits = tts.hits("/api/tts/synthesize");
            if hits.len() > before {
                break hits[before].at;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(first.saturating_duration_since(sent));
        // Let the turn finish before the next one, so no turn cancels another.
        while tts.hits("/api/tts/synthesize").len() < before + 2 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let elapsed = started.elapsed();
    follower.abort();
    drop_schema(schema).await?;
    latencies.sort();
    let o = Outcome {
        ok: turns,
        failed: 0,
        elapsed,
        latencies,
    };
    Ok(row(
        "voice turn: STT final → first TTS request (record, captions, SSE client)",
        backend,
        &o,
    ))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let client = june_testkit::http_client();
    println!(
        "{} s per scenario, {} concurrent clients, server and clients in one process on {} cores\n",
        a.seconds,
        a.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| scenario | store | ok | failed | req/s | p50 ms | p99 ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for backend in &a.backends {
        for line in bench_backend(backend, &a, &client).await? {
            println!("{line}");
        }
    }
    for backend in &a.backends {
        if a.turns > 0 {
            println!("{}", bench_turns(backend, a.turns, &client).await?);
        }
    }
    Ok(())
}
