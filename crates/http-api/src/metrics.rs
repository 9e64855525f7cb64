//! Prometheus metrics: one process-wide recorder, rendered by `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::HttpResponse;
use june_domain::{TurnObserver, TurnRecord, TurnReport, TurnSource};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets for latencies, in seconds: 1 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the recorder on first use (several apps in one test process share it).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// `GET /metrics`: Prometheus text exposition (store pool gauges are read at scrape time).
pub async fn render(state: actix_web::web::Data<crate::AppState>) -> HttpResponse {
    if let Some((size, idle)) = state.sessions.store_pool() {
        metrics::gauge!("june_store_pool_connections").set(f64::from(size));
        metrics::gauge!("june_store_pool_idle_connections").set(f64::from(idle));
    }
    metrics::gauge!("june_background_tasks").set(state.background.len() as f64);
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// A method as a label: the standard ones by name, anything a client makes up as `OTHER`,
/// so no caller can add series (each one is memory kept for the process's life).
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts one HTTP request by route pattern (never the raw path: ids would explode it; an
/// unmatched path is `unmatched`) and method from a closed set. Every label is bounded.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let labels = [
        ("method", method_label(method).to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("june_http_requests_total", &labels).increment(1);
    metrics::histogram!("june_http_request_duration_seconds", &labels).record(took.as_secs_f64());
}

/// Whether a required dependency (`store` or `livekit`, a closed set) answered the last
/// `/readyz` check: 1 or 0. The kubelet probes every few seconds, so the store-down and
/// LiveKit-down alerts have a signal even without traffic, and a LiveKit call cut short by
/// the readiness timeout (never counted in `june_livekit_calls_total`) still shows.
pub fn dependency_up(dependency: &'static str, up: bool) {
    metrics::gauge!("june_dependency_up", "dependency" => dependency).set(f64::from(u8::from(up)));
}

/// Counts a request refused for its budget; `scope` is `principal` or `address` (never the
/// key itself: addresses and principals are unbounded).
pub fn rate_limited(scope: &'static str) {
    metrics::counter!("june_rate_limited_total", "scope" => scope).increment(1);
}

/// Which backend decides the rate limits: 1 for the one in force, 0 for the other.
/// `backend` is `local` or the shared backend's fixed name (`redis`).
pub fn rate_limit_backend(backend: &'static str, shared_in_force: bool) {
    if backend != "local" {
        metrics::gauge!("june_rate_limit_backend", "backend" => backend)
            .set(f64::from(u8::from(shared_in_force)));
    }
    metrics::gauge!("june_rate_limit_backend", "backend" => "local")
        .set(f64::from(u8::from(!shared_in_force || backend == "local")));
}

/// Counts a call to the shared rate-limit backend that failed or timed out.
pub fn rate_limit_backend_error() {
    metrics::counter!("june_rate_limit_backend_errors_total").increment(1);
}

/// LiveKit's webhook event names; any other name (a newer LiveKit's) counts as `other`.
const WEBHOOK_EVENTS: &[&str] = &[
    "room_started",
    "room_finished",
    "participant_joined",
    "participant_left",
    "participant_connection_aborted",
    "track_published",
    "track_unpublished",
    "egress_started",
    "egress_updated",
    "egress_ended",
    "ingress_started",
    "ingress_ended",
    "unknown",
];

/// Counts LiveKit webhooks by event and outcome (both from closed sets).
pub fn webhook(event: &str, outcome: &'static str) {
    let event = WEBHOOK_EVENTS
        .iter()
        .find(|e| **e == event)
        .copied()
        .unwrap_or("other");
    metrics::counter!(
        "june_livekit_webhooks_total",
        "event" => event,
        "outcome" => outcome
    )
    .increment(1);
}

/// Counts one voice bot dispatch order by how it ended (`DispatchOutcome::as_str`, a
/// closed set).
pub fn bot_dispatch(outcome: &'static str) {
    metrics::counter!("june_bot_dispatches_total", "outcome" => outcome).increment(1);
}

/// Counts one retry of a bot dispatch order (an attempt failed or timed out).
pub fn bot_dispatch_retry() {
    metrics::counter!("june_bot_dispatch_retries_total").increment(1);
}

/// Counts a final transcript refused because `voice.max_concurrent_turns` turns run.
pub fn turn_refused() {
    metrics::counter!("june_turns_refused_total").increment(1);
}

/// Voice turn metrics (design §4.4).
pub struct PrometheusTurns;

impl TurnObserver for PrometheusTurns {
    fn partial(&self) {
        metrics::counter!("june_stt_partials_total").increment(1);
    }

    fn started(&self) {
        metrics::counter!("june_turns_started_total").increment(1);
    }

    fn finished(&self, r: &TurnReport) {
        metrics::counter!("june_turns_total", "outcome" => r.outcome.as_str()).increment(1);
        if let Some(d) = r.to_first_token {
            metrics::histogram!("june_turn_first_token_seconds").record(d.as_secs_f64());
        }
        if let Some(d) = r.to_first_tts {
            metrics::histogram!("june_turn_first_tts_seconds").record(d.as_secs_f64());
        }
        metrics::histogram!("june_turn_seconds", "outcome" => r.outcome.as_str())
            .record(r.total.as_secs_f64());
    }

    /// Tokens by kind, and each stage of the turn (voice and chat) from its record: the
    /// pipeline breakdown a dashboard stacks. Labels come from closed sets.
    fn recorded(&self, r: &TurnRecord) {
        metrics::counter!("june_llm_tokens_total", "kind" => "prompt")
            .increment(r.usage.prompt_tokens);
        metrics::counter!("june_llm_tokens_total", "kind" => "output")
            .increment(r.usage.output_tokens);
        let source = match r.source {
            TurnSource::Voice => "voice",
            TurnSource::Chat => "chat",
        };
        let t = &r.timings_ms;
        let stages = [
            ("first_token", t.first_token),
            ("first_sentence", t.first_sentence),
            ("first_tts_request", t.first_tts_request),
            ("first_tts_done", t.first_tts_done),
            ("last_tts_done", t.last_tts_done),
            ("end", Some(t.end)),
        ];
        for (stage, ms) in stages
            .into_iter()
            .filter_map(|(stage, ms)| Some((stage, ms?)))
        {
            metrics::histogram!("june_turn_stage_seconds", "stage" => stage, "source" => source)
                .record(Duration::from_millis(ms).as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn made_up_methods_fold_into_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("M123"), "OTHER");
        assert_eq!(method_label("get"), "OTHER");
    }
}
