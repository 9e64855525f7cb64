//! OpenTelemetry with the collector away: the OTLP endpoint is a closed port. Spans cannot
//! be exported, and are dropped; every request is answered as usual, and the exporter's
//! shutdown (the flush at exit) ends within its timeout.
//!
//! Its own test binary, as the tracer provider is process-global (see `tests/otel/main.rs`).

// The api suite's `spawn_app` and friends; this suite uses a few of them.
#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::net::TcpListener;

use june_orchestrator::telemetry::{OtelSettings, init_with};
use serde_json::json;

#[tokio::test]
async fn requests_succeed_while_the_collector_is_unreachable() {
    // Arrange: a port that was free a moment ago and now has no listener.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let env: HashMap<String, String> = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{closed}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "16".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let otel = OtelSettings::from_env(&env).unwrap().unwrap();
    let telemetry = init_with("info", false, std::io::sink, Some(&otel)).unwrap();
    assert!(telemetry.exporting());
    let app = helpers::spawn_app().await;

    // Act: more requests (and spans) than the export queue holds.
    for n in 0..20 {
        let (status, body) = app
            .post("/api/sessions", json!({"user_id": format!("user-{n}")}))
            .await;

        // Assert
        assert_eq!(status, 200, "{body}");
        let id = body["session_id"].as_str().unwrap();
        let (status, _) = app.get(&format!("/api/sessions/{id}")).await;
        assert_eq!(status, 200);
    }
    // The flush at exit gives up on the unreachable collector instead of hanging.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
}
