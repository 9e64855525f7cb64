//! Request context: one request id per request (the caller's `x-request-id` if well-formed),
//! the client's address (see `client_addr`) and its per-address budget, a tracing span carrying
//! both around every log line of the request, and the id echoed back. When tracing is on, the
//! request span continues the caller's W3C `traceparent`/`tracestate` and records its
//! `trace_id`, so every log line of the request can be found in the trace and back.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use futures_util::FutureExt;
use tracing::Instrument;

use crate::client_addr::ClientAddr;
use crate::error::ApiError;

/// The header carrying the request id both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An incoming id is reused only if it is short and plain, so nobody can inject log lines.
fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Headers every response carries: the request id, and hardening for an API that serves no
/// pages (no sniffing, no framing, no referrers, nothing cached unless a route says so).
fn finish(res: &mut ServiceResponse<BoxBody>, id: &str) {
    // Swagger UI is a page: it needs its own scripts, styles and images.
    let csp = if res.request().path().starts_with("/docs") {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(REQUEST_ID, value);
    }
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", csp),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if !headers.contains_key("cache-control") {
        headers.insert(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        );
    }
}

/// The middleware function (used with `actix_web::middleware::from_fn`).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Who the client is (the peer, or behind trusted proxies the address they forwarded):
    // worked out once, for the limit, the log span and handlers (`ClientAddr`).
    let state = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .cloned();
    let client = req.peer_addr().map(|peer| match &state {
        Some(state) => state.config.proxies.client(peer.ip(), req.headers()),
        None => peer.ip().to_canonical(),
    });
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        client_ip = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        otel.kind = "server",
        http.response.status_code = tracing::field::Empty,
    );
    // Before anything reads the span's context: its parent is fixed when it starts.
    june_trace_context::continue_trace(&span, |name| {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    });
    if let Some(trace_id) = june_trace_context::trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    if let Some(ip) = client {
        span.record("client_ip", tracing::field::display(ip));
        req.extensions_mut().insert(ClientAddr(ip));
    }
    let started = Instant::now();
    // Per-address budget, before any work. The route table's probes and metrics are exempt,
    // and so are LiveKit's signed webhooks: one LiveKit server sends every room's events from one
    // address, and a 429 there would lose events. The STT bot's routes are budgeted like
    // every other route (a wrong bearer must not be guessable at line rate).
    if !crate::unbudgeted(req.path())
        && let (Some(state), Some(ip)) = (&state, client)
        && let Err(e) = state
            .rate_limits
            .check_ip(ip)
            .instrument(span.clone())
            .await
    {
        let mut res = req.into_response(actix_web::ResponseError::error_response(&e));
        finish(&mut res, &id);
        return Ok(res);
    }
    // No clone of the request is kept across the call: NormalizePath and friends need the
    // only reference to rewrite it. An inner *error* (not an error response) is rare (CORS
    // refusals) and goes out as actix renders it, without our header.
    let method = crate::metrics::method_label(req.method().as_str());
    let call = std::panic::AssertUnwindSafe(next.call(req).instrument(span.clone()));
    let mut res = match call.catch_unwind().await {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(e)) => {
            span.in_scope(|| tracing::info!(error = %e, "request refused by middleware"));
            return Err(e);
        }
        // A bug of ours must not drop the connection without an answer: a JSON 500 (actix
        // renders the error with our ResponseError), and one structured log line.
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            span.in_scope(|| tracing::error!(panic = %message, "request handler panicked"));
            crate::metrics::http_request(method, "panicked", 500, started.elapsed());
            return Err(ApiError::Internal(format!("handler panicked: {message}")).into());
        }
    };
    finish(&mut res, &id);
    let took = started.elapsed();
    let route = res.request().match_pattern();
    let route = route.as_deref().unwrap_or("unmatched");
    crate::metrics::http_request(
        res.request().method().as_str(),
        route,
        res.status().as_u16(),
        took,
    );
    // The exported span is named by route, not path: one name per endpoint, no ids in it.
    june_trace_context::rename(&span, format!("{} {route}", res.request().method()));
    span.record("http.response.status_code", res.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            latency_ms = took.as_millis() as u64,
            "request finished"
        );
    });
    Ok(res)
}

/// The text a panic was raised with (`panic!("…")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn probes_and_signed_webhooks_are_outside_the_address_budget() {
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/livekit-webhooks",
            "/readyz/",
        ] {
            assert!(crate::unbudgeted(path), "{path}");
        }
        for path in [
            "/",
            "/api/sessions",
            "/api/webhooks/stt",
            "/token",
            "/openapi.json",
        ] {
            assert!(!crate::unbudgeted(path), "{path}");
        }
    }

    #[test]
    fn only_plain_short_ids_are_reused() {
        assert!(well_formed("abc-123_x.y"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed("line\nbreak"));
        assert!(!well_formed(&"x".repeat(129)));
    }
}
