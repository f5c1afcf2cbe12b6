//! `/metrics`: the daemon's counters and histograms in the Prometheus project's text exposition
//! (OpenMetrics 1.0, which Prometheus scrapes natively), through `prometheus-client` — never
//! hand-formatted. One process-wide registry ([`metrics`]): the HTTP middleware
//! ([`crate::observe`]) counts requests, [`crate::observe::plugin_call`] times plugin calls, and
//! the task gauges are read from the task table when scraped.
//!
//! Labels stay bounded: routes are axum's route templates (`/v1/domains/{dom}`), never raw
//! paths; plugins are plugin names; error codes are libvirt's symbolic names.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{HeaderValue, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use virtplug_wire::TaskState;

use crate::state::AppState;

/// The content type of the exposition.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, from 0.5 ms (a cached read) to 10 s (a large import).
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// One HTTP request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP method.
    pub method: String,
    /// The route template, or `unmatched`.
    pub route: String,
    /// The response status.
    pub status: u16,
}

/// One plugin call's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The plugin's name (`mock`).
    pub plugin: String,
    /// Who called: `http` (a route) or `libvirt` (libvirt's RPC socket).
    pub via: &'static str,
}

/// One failed plugin call's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginErrorLabels {
    /// The plugin's name.
    pub plugin: String,
    /// `http` or `libvirt`.
    pub via: &'static str,
    /// libvirt's symbolic error name (`VIR_ERR_NO_DOMAIN`).
    pub code: &'static str,
}

/// A task state's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `running`, `succeeded` or `failed`.
    pub state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the daemon.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// HTTP request latency (to the response head; a stream's body is not included).
    pub request_seconds: HistogramFamily<RequestLabels>,
    /// Tasks by state (set when scraped).
    pub tasks: Family<TaskLabels, Gauge>,
    /// Clients following `/v1/events`.
    pub event_subscribers: Gauge,
    /// Plugin call latency.
    pub plugin_seconds: HistogramFamily<PluginLabels>,
    /// Plugin calls that failed.
    pub plugin_errors: Family<PluginErrorLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("virtplugd");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let request_seconds = HistogramFamily::<RequestLabels>::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency in seconds until the response head, by method, route template and status",
            request_seconds.clone(),
        );
        let tasks = Family::<TaskLabels, Gauge>::default();
        registry.register("tasks", "Tasks of this daemon run, by state", tasks.clone());
        let event_subscribers = Gauge::default();
        registry.register(
            "event_subscribers",
            "Clients following the event stream (/v1/events)",
            event_subscribers.clone(),
        );
        let plugin_seconds = HistogramFamily::<PluginLabels>::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call latency in seconds, by plugin and caller (http, libvirt); for plugins that keep \
             metadata (mock, qemu) every call reads or writes their store, so this is also their store \
             operation latency",
            plugin_seconds.clone(),
        );
        let plugin_errors = Family::<PluginErrorLabels, Counter>::default();
        registry.register(
            "plugin_call_errors",
            "Plugin calls that failed, by plugin, caller and libvirt error name",
            plugin_errors.clone(),
        );
        Self { registry, requests, request_seconds, tasks, event_subscribers, plugin_seconds, plugin_errors }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The task state's label value (as the wire names it).
fn task_state(s: TaskState) -> &'static str {
    match s {
        TaskState::Running => "running",
        TaskState::Succeeded => "succeeded",
        TaskState::Failed => "failed",
    }
}

/// Prometheus metrics of this daemon (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "observe", operation_id = "daemon_metrics",
    responses((status = 200, description = "OpenMetrics 1.0 text exposition", content_type = "application/openmetrics-text", body = String), crate::openapi::ProbeErrors))]
pub async fn handler(State(state): State<AppState>) -> Response {
    let m = metrics();
    let mut counts = [(TaskState::Running, 0_i64), (TaskState::Succeeded, 0), (TaskState::Failed, 0)];
    for task in state.tasks.all() {
        if let Some((_, n)) = counts.iter_mut().find(|(s, _)| *s == task.state) {
            *n += 1;
        }
    }
    for (s, n) in counts {
        m.tasks.get_or_create(&TaskLabels { state: task_state(s) }).set(n);
    }
    let mut resp = m.encode().into_response();
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS));
    resp
}
