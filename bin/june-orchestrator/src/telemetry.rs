//! Logging and tracing: `tracing` with pretty or JSON lines, and, when the standard `OTEL_*`
//! variables name a collector, OTLP export of the same spans (design §8.4). Secrets and tokens
//! are kept out by construction (spans skip arguments; secrets are `SecretString`).
//!
//! With no collector configured nothing OpenTelemetry is built: no exporter, no layer, no
//! propagator, so an incoming `traceparent` is neither continued nor passed on.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The wire protocol of the OTLP exporter (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (the default): POST `…/v1/traces`.
    HttpProtobuf,
    /// `grpc`: the collector's gRPC TraceService, plaintext.
    Grpc,
}

/// Which traces are recorded (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerSetting {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    Ratio(f64),
    /// `parentbased_*`: follow the caller's sampled flag; the wrapped sampler decides for
    /// traces that start here. `parentbased_always_on` is the default.
    ParentBased(RootSampler),
}

/// The root sampler of a `parentbased_*` setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootSampler {
    /// `parentbased_always_on`.
    AlwaysOn,
    /// `parentbased_always_off`.
    AlwaysOff,
    /// `parentbased_traceidratio`.
    Ratio(f64),
}

/// OTLP trace export, read from the standard `OTEL_*` variables by
/// [`OtelSettings::from_env`]. Only built when a collector endpoint is named.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelSettings {
    /// Where spans go: the full URL of the traces endpoint (for HTTP, `…/v1/traces`).
    pub endpoint: String,
    /// `http/protobuf` or `grpc`.
    pub protocol: OtlpProtocol,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Further resource attributes (`OTEL_RESOURCE_ATTRIBUTES`), `service.name` excluded.
    pub resource: Vec<(String, String)>,
    /// Which traces are recorded.
    pub sampler: SamplerSetting,
    /// Longest single export (`OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, ms; default 10 s): a
    /// collector that does not answer costs a batch, never a request.
    pub timeout: Duration,
    /// Spans waiting for export (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048); a full queue drops
    /// new spans.
    pub max_queue_size: usize,
    /// Time between exports (`OTEL_BSP_SCHEDULE_DELAY`, ms; default 5000).
    pub scheduled_delay: Duration,
    /// Spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512, at most the queue).
    pub max_export_batch_size: usize,
}

/// Why the telemetry settings were refused, or the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An `OTEL_*` variable has a value we cannot use.
    #[error("tracing: invalid {name}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("tracing: cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> TelemetryError {
    TelemetryError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// The first of `names` that is set to something other than blanks.
fn first<'e>(
    env: &'e HashMap<String, String>,
    names: &[&'static str],
) -> Option<(&'static str, &'e str)> {
    names.iter().find_map(|name| {
        env.get(*name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| (*name, v))
    })
}

fn number<T: std::str::FromStr>(
    env: &HashMap<String, String>,
    names: &[&'static str],
    default: T,
) -> Result<T, TelemetryError> {
    match first(env, names) {
        None => Ok(default),
        Some((name, value)) => value
            .parse()
            .map_err(|_| invalid(name, value, "expected a whole number")),
    }
}

/// `%XX` escapes of W3C baggage-style values (`OTEL_RESOURCE_ATTRIBUTES`).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn ratio(env: &HashMap<String, String>) -> Result<f64, TelemetryError> {
    const NAME: &str = "OTEL_TRACES_SAMPLER_ARG";
    match first(env, &[NAME]) {
        None => Ok(1.0),
        Some((_, value)) => value
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| invalid(NAME, value, "expected a ratio between 0 and 1")),
    }
}

impl OtelSettings {
    /// Reads the standard variables from `env` (the process environment as a map; nothing
    /// here reads the environment itself). `None` — no export, no exporter — when no endpoint
    /// is set, when `OTEL_SDK_DISABLED=true`, or when `OTEL_TRACES_EXPORTER=none`. A value we
    /// cannot honour is an error (the server refuses to start), never a silent default.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Option<Self>, TelemetryError> {
        if first(env, &["OTEL_SDK_DISABLED"]).is_some_and(|(_, v)| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some((name, value)) = first(env, &["OTEL_TRACES_EXPORTER"]) {
            match value {
                "none" => return Ok(None),
                "otlp" => {}
                _ => return Err(invalid(name, value, "expected otlp or none")),
            }
        }
        let protocol = match first(
            env,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
        ) {
            None | Some((_, "http/protobuf")) => OtlpProtocol::HttpProtobuf,
            Some((_, "grpc")) => OtlpProtocol::Grpc,
            Some((name, value)) => {
                return Err(invalid(name, value, "expected http/protobuf or grpc"));
            }
        };
        // The signal's own variable is the URL as is; the general one is a base to which
        // HTTP appends the signal's path (the OTLP exporter spec).
        let (name, endpoint) = if let Some(found) =
            first(env, &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
        {
            (found.0, found.1.to_owned())
        } else if let Some((name, base)) = first(env, &["OTEL_EXPORTER_OTLP_ENDPOINT"]) {
            let url = match protocol {
                OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
                OtlpProtocol::Grpc => base.to_owned(),
            };
            (name, url)
        } else {
            return Ok(None);
        };
        let parsed = url::Url::parse(&endpoint)
            .map_err(|e| invalid(name, &endpoint, format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(
                name,
                &endpoint,
                "expected an http:// or https:// URL",
            ));
        }

        let mut resource = Vec::new();
        let mut named = None;
        if let Some((name, value)) = first(env, &["OTEL_RESOURCE_ATTRIBUTES"]) {
            for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
                let (key, val) = pair
                    .split_once('=')
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| invalid(name, value, format!("{pair:?} is not key=value")))?;
                let val = percent_decode(val)
                    .ok_or_else(|| invalid(name, value, format!("bad %-escape in {pair:?}")))?;
                if key == "service.name" {
                    named = Some(val);
                } else {
                    resource.push((key.to_owned(), val));
                }
            }
        }
        let service_name = first(env, &["OTEL_SERVICE_NAME"])
            .map(|(_, v)| v.to_owned())
            .or(named)
            .unwrap_or_else(|| "june-orchestrator".to_owned());

        let sampler = match first(env, &["OTEL_TRACES_SAMPLER"]) {
            None | Some((_, "parentbased_always_on")) => {
                SamplerSetting::ParentBased(RootSampler::AlwaysOn)
            }
            Some((_, "always_on")) => SamplerSetting::AlwaysOn,
            Some((_, "always_off")) => SamplerSetting::AlwaysOff,
            Some((_, "traceidratio")) => SamplerSetting::Ratio(ratio(env)?),
            Some((_, "parentbased_always_off")) => {
                SamplerSetting::ParentBased(RootSampler::AlwaysOff)
            }
            Some((_, "parentbased_traceidratio")) => {
                SamplerSetting::ParentBased(RootSampler::Ratio(ratio(env)?))
            }
            Some((name, value)) => {
                return Err(invalid(
                    name,
                    value,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                ));
            }
        };

        let timeout_ms: u64 = number(
            env,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
            10_000,
        )?;
        let max_queue_size: usize = number(env, &["OTEL_BSP_MAX_QUEUE_SIZE"], 2048)?;
        let delay_ms: u64 = number(env, &["OTEL_BSP_SCHEDULE_DELAY"], 5000)?;
        let batch: usize = number(env, &["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], 512)?;
        if max_queue_size == 0 {
            return Err(invalid(
                "OTEL_BSP_MAX_QUEUE_SIZE",
                "0",
                "must be at least 1",
            ));
        }
        if timeout_ms == 0 {
            return Err(invalid(
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "0",
                "must be at least 1 ms",
            ));
        }
        Ok(Some(OtelSettings {
            endpoint,
            protocol,
            service_name,
            resource,
            sampler,
            timeout: Duration::from_millis(timeout_ms),
            max_queue_size,
            scheduled_delay: Duration::from_millis(delay_ms.max(1)),
            max_export_batch_size: batch.clamp(1, max_queue_size),
        }))
    }

    fn sampler(&self) -> Sampler {
        let root = |r: RootSampler| match r {
            RootSampler::AlwaysOn => Sampler::AlwaysOn,
            RootSampler::AlwaysOff => Sampler::AlwaysOff,
            RootSampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
        };
        match self.sampler {
            SamplerSetting::AlwaysOn => Sampler::AlwaysOn,
            SamplerSetting::AlwaysOff => Sampler::AlwaysOff,
            SamplerSetting::Ratio(r) => Sampler::TraceIdRatioBased(r),
            SamplerSetting::ParentBased(r) => Sampler::ParentBased(Box::new(root(r))),
        }
    }

    /// The tracer provider: the OTLP exporter behind a batch processor with a bounded queue,
    /// exporting from its own thread with a timeout per export. For `grpc`, call it inside
    /// the tokio runtime that will outlive it (tonic's connection runs there).
    fn provider(&self) -> Result<SdkTracerProvider, TelemetryError> {
        // The exporter's own reqwest client takes the process-wide rustls provider: ring, the
        // one our other clients use (an `https://` collector works; no second TLS stack).
        // Whoever installs first wins, which is the same provider either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = match self.protocol {
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(&self.endpoint)
                .with_timeout(self.timeout)
                .build()?,
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&self.endpoint)
                .with_timeout(self.timeout)
                .build()?,
        };
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(self.max_queue_size)
            .with_max_export_batch_size(self.max_export_batch_size)
            .with_scheduled_delay(self.scheduled_delay)
            .build();
        let resource = Resource::builder_empty()
            .with_service_name(self.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .with_attributes(
                self.resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .build();
        Ok(SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch)
                    .build(),
            )
            .with_sampler(self.sampler())
            .with_resource(resource)
            .build())
    }
}

/// What [`init_with`] set up; hold it until the end and [`shutdown`](Self::shutdown) it so
/// the spans still queued are exported.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is queued (bounded by the export timeout) and stops the exporter. Blocks:
    /// call it off the async workers (`spawn_blocking`), after the server has stopped.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "tracing: the last spans could not be exported");
        }
    }
}

/// Installs the global subscriber, writing to `sink`, without OTLP export. `RUST_LOG`, when
/// set, wins over `level` (handy while debugging one module). Calling it twice is harmless
/// (tests do).
pub fn init<W>(level: &str, json: bool, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // Without OTLP settings nothing can fail.
    let _ = init_with(level, json, sink, None);
}

/// [`init`], plus OTLP export of the spans when `otel` is given: the OpenTelemetry layer, the
/// W3C propagator (so the request span continues an incoming `traceparent` and outgoing
/// calls carry one), and the exporter. If a subscriber is already installed (tests), this
/// one is not, and nothing is exported by it.
pub fn init_with<W>(
    level: &str,
    json: bool,
    sink: W,
    otel: Option<&OtelSettings>,
) -> Result<Telemetry, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(sink)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    // Inside a request, every line names the request span, whose fields include `trace_id`
    // when tracing is on (JSON: under "span"/"spans"; plain: in the span prefix).
    let fmt = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    } else {
        fmt.boxed()
    };
    let provider = otel.map(OtelSettings::provider).transpose()?;
    let layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("june-orchestrator"))
            // Thread names/ids and source locations only bloat every exported span.
            .with_threads(false)
            .with_location(false)
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(layer)
        .try_init()
        .is_ok();
    let provider = provider.filter(|_| installed);
    if let (Some(provider), Some(otel)) = (&provider, otel) {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing::info!(
            endpoint = %otel.endpoint,
            protocol = ?otel.protocol,
            service = %otel.service_name,
            "tracing: exporting spans over OTLP"
        );
    }
    // A panic is a log event like any other (one JSON line in JSON mode), not a plain-text
    // line on stderr in the middle of the structured log.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %message, %location, "panic");
    }));
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Option<OtelSettings> {
        OtelSettings::from_env(&env(pairs)).expect("valid settings")
    }

    fn refused(pairs: &[(&str, &str)]) -> String {
        OtelSettings::from_env(&env(pairs))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        assert_eq!(parse(&[]), None);
        // Other OTEL variables alone do not turn export on.
        assert_eq!(
            parse(&[
                ("OTEL_SERVICE_NAME", "june"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_TRACES_SAMPLER", "always_on"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "  "),
            ]),
            None
        );
    }

    #[test]
    fn export_can_be_switched_off_with_an_endpoint_set() {
        let e = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(parse(&[e, ("OTEL_SDK_DISABLED", "true")]), None);
        assert_eq!(parse(&[e, ("OTEL_TRACES_EXPORTER", "none")]), None);
        assert!(parse(&[e, ("OTEL_TRACES_EXPORTER", "otlp")]).is_some());
        assert!(refused(&[e, ("OTEL_TRACES_EXPORTER", "jaeger")]).contains("OTEL_TRACES_EXPORTER"));
    }

    #[test]
    fn an_endpoint_alone_exports_http_protobuf_with_the_defaults() {
        let s = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(s.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(s.service_name, "june-orchestrator");
        assert_eq!(
            s.sampler,
            SamplerSetting::ParentBased(RootSampler::AlwaysOn)
        );
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.max_queue_size, 2048);
        assert_eq!(s.max_export_batch_size, 512);
    }

    #[test]
    fn grpc_uses_the_endpoint_as_is_and_the_signal_endpoint_wins() {
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.protocol),
            ("http://collector:4317", OtlpProtocol::Grpc)
        );
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"),
        ])
        .unwrap();
        assert_eq!(s.endpoint, "http://b:4318/custom");
    }

    #[test]
    fn service_name_sampler_and_resource_come_from_their_variables() {
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attrs, deployment.environment=prod,team=voice%20ops",
            ),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert_eq!(s.service_name, "from-attrs");
        assert_eq!(
            s.resource,
            [
                ("deployment.environment".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "voice ops".to_owned()),
            ]
        );
        assert_eq!(
            s.sampler,
            SamplerSetting::ParentBased(RootSampler::Ratio(0.25))
        );
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "june-eu"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ])
        .unwrap();
        assert_eq!(s.service_name, "june-eu");
        assert_eq!(s.sampler, SamplerSetting::AlwaysOff);
    }

    #[test]
    fn values_that_cannot_be_honoured_are_refused_with_their_name() {
        let e = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (pairs, name) in [
            (
                vec![e, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![e, ("OTEL_TRACES_SAMPLER", "sometimes")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                vec![
                    e,
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                vec![e, ("OTEL_RESOURCE_ATTRIBUTES", "novalue")],
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
            (
                vec![e, ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz")],
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
            (
                vec![e, ("OTEL_BSP_MAX_QUEUE_SIZE", "lots")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
            (
                vec![e, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
        ] {
            let message = refused(&pairs);
            assert!(message.contains(name), "{message}");
        }
    }

    #[test]
    fn the_export_batch_never_exceeds_the_queue() {
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"),
        ])
        .unwrap();
        assert_eq!((s.max_queue_size, s.max_export_batch_size), (100, 100));
    }
}
