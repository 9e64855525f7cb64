//! The dashboard and the alerts (deploy/monitoring) query only what the server exports:
//! every `june_*` family they name, and every label they match on, is checked against a live
//! `/metrics` after traffic that makes each family appear (issue #20).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use june_testkit::Failure;
use june_testkit::recorder::Recorder;
use june_testkit::webhook::track_event;
use livekit_protocol as proto;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::voice::{gemini, voice_app};

/// Labels Prometheus attaches to every series of a ServiceMonitor's target at scrape time:
/// selectors may match them though `/metrics` never carries them.
const TARGET_LABELS: &[&str] = &[
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "endpoint",
    "container",
];

/// Suffixes Prometheus adds to a histogram's (or summary's) family name.
const SERIES_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

/// Every `june_[a-z0-9_]+` word in `text` (not the tail of a longer identifier).
fn june_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("june_").map(|i| i + from) {
        let mut end = at + "june_".len();
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        let starts_a_word = at == 0 || !(word(bytes[at - 1]) || bytes[at - 1].is_ascii_uppercase());
        if starts_a_word && end > at + "june_".len() {
            names.insert(text[at..end].to_owned());
        }
        from = end;
    }
    names
}

/// A series name's family: `june_x_seconds_bucket` → `june_x_seconds`.
fn family(name: &str) -> &str {
    SERIES_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// Each `june_name{matchers}` selector in `text`: the series name and the label names it
/// matches on (`{route=~"/api/.*", status="200"}` → `route`, `status`).
fn selectors(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for name in june_names(text) {
        let needle = format!("{name}{{");
        let mut from = 0;
        while let Some(at) = text[from..].find(&needle).map(|i| i + from) {
            let body_start = at + needle.len();
            let Some(len) = text[body_start..].find('}') else {
                break;
            };
            let labels = text[body_start..body_start + len]
                .split(',')
                .filter_map(|m| {
                    let label: String = m
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    (!label.is_empty()).then_some(label)
                })
                .collect();
            found.push((name.clone(), labels));
            from = body_start + len;
        }
    }
    found
}

/// The exposition's families and, for each, the label names its series carry.
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let series = &line[..name_end];
        let labels = families.entry(family(series).to_owned()).or_default();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.find('}').unwrap_or(line.len())];
            for pair in body.split("\",") {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.trim().to_owned());
                }
            }
        }
    }
    families
}

async fn metrics_text(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Scrapes until `family` is exported (a background job records it after the answer).
async fn wait_for_family(app: &TestApp, family: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if exported(&metrics_text(app).await).contains_key(family) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{family} never appeared on /metrics");
}

async fn stt(app: &TestApp, body: Value) -> (u16, Value) {
    crate::voice::stt(app, body, Some("stt-secret")).await
}

async fn voice_session(app: &TestApp, user: &str) -> (String, proto::Room) {
    let (status, s) = app
        .post("/api/sessions", json!({"user_id": user, "voice": true}))
        .await;
    assert_eq!(status, 200, "{s}");
    let room = app.lk.room(s["room_name"].as_str().unwrap()).unwrap();
    (s["session_id"].as_str().unwrap().to_owned(), room)
}

/// A microphone published by `user` in `room`: LiveKit's cue to dispatch the voice bots.
async fn publish_microphone(app: &TestApp, room: &proto::Room, user: &str) -> u16 {
    let person = app.lk.join(&room.name, user, true);
    let mic = person.tracks[0].clone();
    let (status, _) = app
        .send_event(&track_event("track_published", room, &person, &mic))
        .await;
    status
}

#[test]
fn the_scanner_finds_names_selectors_and_families() {
    let expr = r#"sum(rate(june_http_requests_total{status=~"5..", route!="/metrics"}[5m])) / x_june_not and june_turn_seconds_bucket"#;
    assert_eq!(
        june_names(expr).into_iter().collect::<Vec<_>>(),
        ["june_http_requests_total", "june_turn_seconds_bucket"]
    );
    assert_eq!(
        selectors(expr),
        [(
            "june_http_requests_total".to_owned(),
            vec!["status".to_owned(), "route".to_owned()]
        )]
    );
    assert_eq!(family("june_turn_seconds_bucket"), "june_turn_seconds");
    let text = "# TYPE june_a counter\njune_a{x=\"1\",y=\"a,b\"} 3\njune_b_sum 1\n";
    let families = exported(text);
    assert_eq!(
        families["june_a"],
        BTreeSet::from(["x".to_owned(), "y".to_owned()])
    );
    assert!(families.contains_key("june_b"));
}

/// Drives one of each kind of traffic (sessions, a webhook and a forged one, a chat, voice
/// turns, a refused turn, a 404, a 429, a failed bot dispatch, readiness with LiveKit up and
/// down), then holds every name and label in deploy/monitoring to what `/metrics` says.
#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported_by_the_server() {
    // Arrange: the voice fakes, one turn at a time, a Redis nothing listens on (the limiter
    // falls back and counts the errors), and one client behind the trusted proxy that will
    // overrun its address budget.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redis = format!("redis://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let llm = gemini(&["Hello there. ", "Goodbye."], Duration::from_millis(1000));
    let tts = Recorder::start();
    let app = voice_app(
        &llm,
        &tts,
        &[
            ("JUNE__VOICE__MAX_CONCURRENT_TURNS", "1"),
            ("JUNE__VOICE__DISPATCH_BACKOFF_MS", "10"),
            ("RATE_LIMIT_REDIS_URL", redis.as_str()),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("JUNE__RATE_LIMIT__IP_PER_SECOND", "1"),
            ("JUNE__RATE_LIMIT__IP_BURST", "200"),
        ],
    )
    .await;
    let mut dashboard_and_rules = String::new();
    let mut exprs = String::new();
    for entry in std::fs::read_dir(monitoring_dir()).expect("deploy/monitoring exists") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|e| e == "json") {
            let dashboard: Value = serde_json::from_str(&text).unwrap();
            collect_exprs(&dashboard, &mut exprs);
        } else {
            exprs.push_str(&text);
        }
        dashboard_and_rules.push_str(&text);
    }

    // Act: the traffic.
    assert_eq!(app.get("/readyz").await.0, 200);
    let (id, room) = voice_session(&app, "alice").await;
    assert_eq!(app.get(&format!("/api/sessions/{id}")).await.0, 200);
    assert_eq!(app.get("/api/nothing-here").await.0, 404);
    assert_eq!(publish_microphone(&app, &room, "alice").await, 200);
    let forged = app
        .post_webhook(r#"{"event":"room_started"}"#, Some("Bearer not-a-jwt"))
        .await;
    assert_eq!(forged.0, 401, "{}", forged.1);
    let partial = json!({"event": "partial", "room_name": room.name, "text": "hel"});
    assert_eq!(stt(&app, partial).await.0, 200);
    let first = json!({"event": "final", "room_name": room.name, "text": "hello"});
    assert_eq!(stt(&app, first).await.1["status"], "accepted");
    // The first turn holds the only slot while the model streams.
    let second = json!({"event": "final", "room_name": room.name, "text": "and more"});
    let (status, body) = stt(&app, second).await;
    assert_eq!(status, 503, "{body}");
    wait_for_family(&app, "june_turns_total").await;
    let (status, body) = app
        .post("/api/ai/chat", json!({"session_id": id, "text": "hi"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut refused = false;
    for _ in 0..400 {
        let resp = app
            .client
            .get(app.url("/"))
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            refused = true;
            break;
        }
    }
    assert!(refused, "the client behind the proxy overran its budget");
    // LiveKit fails: the bot dispatch is retried, and readiness sees LiveKit down.
    let (_, other_room) = voice_session(&app, "bob").await;
    app.lk.fail(Failure::Status(503));
    assert_eq!(publish_microphone(&app, &other_room, "bob").await, 200);
    wait_for_family(&app, "june_bot_dispatch_retries_total").await;
    assert_eq!(app.get("/readyz").await.0, 503);
    app.lk.recover();
    let text = metrics_text(&app).await;

    // Assert: the readiness gauge says which dependency failed.
    assert!(
        text.contains(r#"june_dependency_up{dependency="livekit"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"june_dependency_up{dependency="store"} 1"#),
        "{text}"
    );
    // Every name and every matched label the dashboard and the alerts use is exported.
    let families = exported(&text);
    let used = june_names(&dashboard_and_rules);
    assert!(
        used.contains("june_http_requests_total") && used.len() > 10,
        "the scan found the queries: {used:?}"
    );
    let missing: Vec<&str> = used
        .iter()
        .map(|n| family(n))
        .filter(|f| !families.contains_key(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/monitoring uses names /metrics does not export: {missing:?}\n{text}"
    );
    for (series, labels) in selectors(&exprs) {
        let fam = family(&series);
        for label in labels
            .iter()
            .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
        {
            assert!(
                families[fam].contains(label.as_str()),
                "{series} is matched on `{label}`, a label it does not carry: {:?}",
                families[fam]
            );
        }
    }
}

/// Appends every `expr` string of a Grafana dashboard, one per line.
fn collect_exprs(node: &Value, out: &mut String) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => {
                        out.push_str(expr);
                        out.push('\n');
                    }
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}
