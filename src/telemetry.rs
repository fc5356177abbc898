//! Logs and traces: log lines to stderr (text or JSON, filtered by `log.level` or
//! `FRONTDESK_LOG`; colours only on a terminal and without `NO_COLOR`; every configured
//! secret blanked out of each line before it is written), and, when `log.otlp_endpoint` is set, the same `tracing` spans
//! (webhook, ingest, reply, retrieve, llm with `gen_ai.*` attributes, send) exported as
//! OpenTelemetry traces over OTLP/HTTP in batches. The exporter's requests go through our
//! reqwest client on the server's runtime.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, Redactor};
use crate::error::{Error, Result};

/// Keeps the trace exporter alive; `shutdown` sends what is still buffered.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports buffered spans and stops the exporter (blocks up to a few seconds; call it
    /// outside async code, while the runtime given to `init` still runs).
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: exporting the last traces failed: {e}");
        }
    }
}

/// Starts logging (lines pass through `redactor`), and trace export when configured.
/// Trace export needs `runtime` (the exporter's HTTP requests run there); without it only
/// logs start.
pub fn init(config: &LogConfig, redactor: Redactor, runtime: Option<&tokio::runtime::Handle>) -> Result<Telemetry> {
    let filter = EnvFilter::try_from_env("FRONTDESK_LOG").unwrap_or_else(|_| EnvFilter::new(&config.level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(colour_wanted())
        .with_writer(RedactedStderr(Arc::new(redactor)));
    let fmt = if config.format == "json" {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let provider = match runtime {
        Some(rt) if !config.otlp_endpoint.is_empty() => Some(provider(config, rt.clone())?),
        _ => None,
    };
    let otel = provider.as_ref().map(|p| {
        // Only our spans: the exporter's own HTTP stack must not feed back into itself.
        let targets = Targets::new()
            .with_default(LevelFilter::OFF)
            .with_target("frontdesk", LevelFilter::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("frontdesk"))
            .with_filter(targets)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    if provider.is_some() {
        tracing::info!(endpoint = %config.otlp_endpoint, protocol = %config.otlp_protocol, "exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

/// Colour codes only for a person at a terminal: not into files, pipes or the journal,
/// and never with `NO_COLOR` set (no-color.org).
fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes each log line to stderr with the configured secrets replaced by `***` (the
/// formatter hands over one whole line per write).
#[derive(Clone)]
struct RedactedStderr(Arc<Redactor>);

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(self.0.redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn provider(config: &LogConfig, runtime: tokio::runtime::Handle) -> Result<SdkTracerProvider> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::internal("OTLP HTTP client", e))?;
    let headers: HashMap<String, String> = config
        .otlp_headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect();
    let protocol = if config.otlp_protocol == "http/json" {
        Protocol::HttpJson
    } else {
        Protocol::HttpBinary
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(ReqwestOnRuntime { client, runtime })
        .with_endpoint(config.otlp_endpoint.clone())
        .with_protocol(protocol)
        .with_timeout(Duration::from_secs(10))
        .with_headers(headers)
        .build()
        .map_err(|e| Error::Invalid(format!("log.otlp_endpoint: {e}")))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build())
}

/// The exporter's HTTP client: the batch processor calls it from its own thread, so each
/// request is run on the server's runtime and awaited from there.
#[derive(Debug, Clone)]
struct ReqwestOnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ReqwestOnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> std::result::Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        self.runtime
            .spawn(async move {
                let resp = client.execute(request).await?;
                let (status, headers) = (resp.status(), resp.headers().clone());
                let body = resp.bytes().await?;
                let mut out = Response::builder().status(status).body(body)?;
                *out.headers_mut() = headers;
                Ok::<_, HttpError>(out)
            })
            .await?
    }
}
