//! A fake OpenTelemetry collector: OTLP/HTTP `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest`, decoded with the OTLP types the exporter itself uses, kept
//! in memory for the tests to read. It runs on a thread of its own, as the global tracer
//! provider it serves outlives every test's runtime.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;

/// One exported span, as the collector saw it.
#[derive(Debug, Clone)]
pub struct SeenSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    /// OTLP `SpanKind`: 2 server, 3 client.
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
    pub service_name: String,
}

impl SeenSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The collector's address and what it received.
#[derive(Clone)]
pub struct Collector {
    pub port: u16,
    spans: Arc<Mutex<Vec<SeenSpan>>>,
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    spans: web::Data<Mutex<Vec<SeenSpan>>>,
) -> HttpResponse {
    if req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        != Some("application/x-protobuf")
    {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut seen = Vec::new();
    for rs in export.resource_spans {
        let service_name = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            seen.push(SeenSpan {
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                name: span.name,
                kind: span.kind,
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                    .collect(),
                service_name: service_name.clone(),
            });
        }
    }
    spans.lock().unwrap().extend(seen);
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

impl Collector {
    /// Starts the collector on a free local port.
    pub fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = web::Data::new(Mutex::new(Vec::new()));
        let shared = spans.clone().into_inner();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(spans.clone())
                        .app_data(web::PayloadConfig::new(16 << 20))
                        .route("/v1/traces", web::post().to(receive))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run()
                .await
            })
        });
        Collector {
            port,
            spans: shared,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.port)
    }

    /// The spans received so far that `pick` selects.
    pub fn spans(&self, pick: impl Fn(&SeenSpan) -> bool) -> Vec<SeenSpan> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| pick(s))
            .cloned()
            .collect()
    }

    /// Waits (at most 15 s: export is batched) until `done` holds for the spans received, and
    /// returns them either way; the caller's assertions say what was missing.
    pub async fn wait_for(&self, done: impl Fn(&[SeenSpan]) -> bool) -> Vec<SeenSpan> {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let all = self.spans(|_| true);
            if done(&all) || Instant::now() > until {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
