//! # june-trace-context
//!
//! W3C trace context (`traceparent`/`tracestate`) at our HTTP boundaries, shared by the HTTP
//! API (continue the caller's trace in the request span) and the adapters (carry the current
//! span's trace to Gemini, TTS and STT), so none of them copies the propagation code.
//!
//! Depends on the OpenTelemetry *API* and `tracing-opentelemetry` only, never on an HTTP
//! library: callers hand in a header getter or take header pairs out, in whatever `http`
//! version their framework uses. The binary installs the SDK, the exporter and the global
//! propagator; until it does (tracing off), every function here is a cheap no-op: the global
//! propagator is the no-op one and spans carry no OpenTelemetry context.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A header getter as an OpenTelemetry [`Extractor`] (the marker ties the values it returns
/// to the headers it reads).
struct Getter<'a, F>(F, std::marker::PhantomData<&'a str>);

impl<'a, F> Extractor for Getter<'a, F>
where
    F: Fn(&str) -> Option<&'a str>,
{
    fn get(&self, key: &str) -> Option<&str> {
        (self.0)(key)
    }

    fn keys(&self) -> Vec<&str> {
        // Only the W3C propagators are installed; they ask for their headers by name.
        Vec::new()
    }
}

/// Header pairs collected for an outgoing request.
#[derive(Default)]
struct Pairs(Vec<(String, String)>);

impl Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// Makes `span` a child of the trace the caller's headers name (`get("traceparent")`, …),
/// if they name a valid one. Call it before the span is entered or its context read: an
/// OpenTelemetry span's parent is fixed when it starts. A malformed `traceparent` is ignored
/// (the span starts a new trace), as the W3C spec asks.
pub fn continue_trace<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    let carrier = Getter(get, std::marker::PhantomData);
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed (tracing off): nothing to do.
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` a child of `parent` in the exported trace only. For work that outlives the
/// request that started it: created with `parent: None`, it does not keep the request's
/// span open (tracing closes a span after its children), so the request span ends with the
/// response while the work stays in the request's trace. Call it before `span` is entered.
pub fn adopt(span: &tracing::Span, parent: &tracing::Span) {
    let cx = parent.context();
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Renames `span` in the exported trace, after it started (a request span is named by its
/// route once routing has matched one). `otel.name` recorded that late would be ignored.
pub fn rename(span: &tracing::Span, name: String) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        cx.span().update_name(name);
    }
}

/// The headers that carry `span`'s trace to the next service (`traceparent`, and
/// `tracestate` when there is one). Empty when tracing is off or the span is disabled.
pub fn outgoing_headers(span: &tracing::Span) -> Vec<(String, String)> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut pairs = Pairs::default();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut pairs));
    pairs.0
}

/// `span`'s trace id (32 lowercase hex digits), for log lines; `None` when tracing is off.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Runs `f` under a subscriber with an OpenTelemetry layer (no exporter) and the W3C
    /// propagator, as the binary sets them up when tracing is on.
    fn traced(f: impl FnOnce()) {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn an_incoming_traceparent_is_continued_and_carried_out() {
        traced(|| {
            let span = tracing::info_span!("request");
            continue_trace(&span, |k| (k == "traceparent").then_some(PARENT));
            assert_eq!(
                trace_id(&span).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
            let child = span.in_scope(|| tracing::info_span!("client"));
            let headers = outgoing_headers(&child);
            let (name, value) = &headers[0];
            assert_eq!(name, "traceparent");
            assert!(
                value.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{value}"
            );
            // The child's own span id goes out, not the caller's.
            assert!(!value.contains("00f067aa0ba902b7"), "{value}");
        });
    }

    #[test]
    fn adopted_work_is_in_the_parent_trace() {
        traced(|| {
            let request = tracing::info_span!("request");
            continue_trace(&request, |k| (k == "traceparent").then_some(PARENT));
            let work = tracing::info_span!(parent: None, "work");
            adopt(&work, &request);
            assert_eq!(trace_id(&work), trace_id(&request));
        });
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        traced(|| {
            let span = tracing::info_span!("request");
            continue_trace(&span, |k| (k == "traceparent").then_some("00-zz-yy-01"));
            let id = trace_id(&span).expect("a new trace");
            assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(id.len(), 32);
        });
    }

    #[test]
    fn without_an_opentelemetry_layer_nothing_is_carried() {
        let span = tracing::info_span!("request");
        continue_trace(&span, |k| (k == "traceparent").then_some(PARENT));
        assert!(outgoing_headers(&span).is_empty());
        assert_eq!(trace_id(&span), None);
    }
}
