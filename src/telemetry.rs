//! The exporter's own metrics and logs. Each event is one function that both logs and counts,
//! so the two never disagree.
//!
//! A scrape ends with them, in two parts. The `indicator_exporter_*` series change with events
//! alone: they are rendered and compressed when an event changed them (a generation counter
//! bumped by every event says so), never for a scrape. The `process_*` series (CPU time,
//! memory, descriptors) change all the time: they are read at most once per [`MAX_AGE`], since
//! reading `/proc` on every request would cost more than serving a mid-sized dataset, and
//! follow as a small final part, with the HTTP requests in flight (as changeable, as
//! cheap to read stale). No self-metric counts scrapes, so nothing else changes per scrape; a
//! whole gzip response is reused until a dataset, an event or the process metrics change it
//! ([`Telemetry::gzip_response`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{Counter, CounterVec, Gauge, GaugeVec, IntGauge, Opts, Registry};
use tracing::{error, info, warn};

use crate::dataset::changes::MetricChange;
use crate::dataset::Dataset;
use crate::diagnostic::Diagnostics;
use crate::expose::encode::{Encoder, Format, Kind};
use crate::expose::gzip;
use crate::expose::snapshot::Served;

/// How long the process metrics, read from `/proc`, may be reused.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// A gzip response up to this long is served as one chunk, copied once from the datasets'
/// bodies and the tail and reused: hyper writes a response of one chunk in one system call,
/// where a chunk after one larger than its buffer takes another. Larger responses are joined
/// for each scrape, sharing the bodies' bytes.
pub const ONE_CHUNK_MAX: usize = 1 << 20;

/// How long the change counters of a metric that left the dataset are still served: the
/// `[1h]` window of the alerting rules, so `increase(…_series_removed_total[1h])` sees the step
/// of its last reload however the scrapes fall, and `IndicatorSeriesRemoved` fires.
pub const REMOVED_METRIC_RETENTION: Duration = Duration::from_secs(3600);

/// At most this many metrics that left the dataset keep their change counters; beyond it the
/// oldest go first, so renaming metrics again and again cannot grow `/metrics` without bound.
pub const MAX_REMOVED_METRICS: usize = 100;

/// The end of a `/metrics` response in one format: the self-metrics (and `# EOF` for
/// OpenMetrics), plain and as the final part of a gzip stream.
#[derive(Debug)]
pub struct Tail {
    /// The `indicator_exporter_*` series, then the `process_*` ones (and `# EOF`).
    pub plain: [Bytes; 2],
    /// The `indicator_exporter_*` series compressed, open: shared by every tail until an
    /// event changes them.
    pub events: Arc<gzip::OpenGzip>,
    /// The `process_*` series (and `# EOF`) compressed, the end of the stream.
    pub process: gzip::Tail,
    /// The generation the tail shows, and when its process metrics were read.
    generation: u64,
    read_at: Instant,
}

impl Tail {
    /// The gzip stream of `segments` followed by this tail, as chunks to send in order.
    pub fn join<'a>(
        &'a self,
        segments: impl IntoIterator<Item = &'a gzip::OpenGzip>,
    ) -> Vec<Bytes> {
        gzip::join(segments.into_iter().chain([&*self.events]), &self.process)
    }
}

/// The `indicator_exporter_*` series of one format, plain and compressed.
#[derive(Debug)]
struct Events {
    plain: Bytes,
    gzip: Arc<gzip::OpenGzip>,
}

#[derive(Default)]
struct TailCache {
    /// The generation `events` were rendered at.
    generation: u64,
    events: [Option<Arc<Events>>; 2],
    /// When the process metrics were read for `tails`.
    process_read_at: Option<Instant>,
    tails: [Option<Arc<Tail>>; 2],
}

/// A gzip response of one chunk, and what it was made of: the datasets in service (not kept
/// alive by it) and the tail.
struct Joined {
    served: Weak<Served>,
    tail: Arc<Tail>,
    body: Bytes,
}

fn slot(format: Format) -> usize {
    match format {
        Format::Text => 0,
        Format::OpenMetrics => 1,
    }
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("INDICATOR_EXPORTER_REVISION");

pub struct Telemetry {
    registry: Registry,
    series: GaugeVec,
    ready: GaugeVec,
    load_ok: GaugeVec,
    load_ok_time: GaugeVec,
    load_duration: GaugeVec,
    loads: CounterVec,
    reload_ok: Gauge,
    reload_ok_time: Gauge,
    reloads: CounterVec,
    revised: CounterVec,
    added: CounterVec,
    removed: CounterVec,
    last_change: GaugeVec,
    missing: GaugeVec,
    source_ok: GaugeVec,
    source_ok_time: GaugeVec,
    source_requests: CounterVec,
    source_failures: CounterVec,
    source_bytes: CounterVec,
    source_copies: CounterVec,
    /// State files (`--storage.path`) that could not be read or written, by reason.
    state_errors: CounterVec,
    /// Failed and throttled logins (basic auth).
    auth: [Counter; 2],
    /// The shard served, the datasets served and skipped, and what the HTTP limits did.
    serving: Serving,
    /// Label sets of `missing` now set, per dataset, so a load can remove the ones that went.
    missing_sets: Mutex<HashMap<String, Vec<[String; 3]>>>,
    /// The declared metrics of each dataset in service, which keep their change counters.
    metrics: Mutex<HashMap<String, Vec<String>>>,
    /// Metrics that left their dataset and still have change counters, oldest first, with
    /// when they left: (dataset, metric, when).
    removed_metrics: Mutex<Vec<(String, String, Instant)>>,
    /// Bumped by every event, so a cached tail never hides one.
    generation: AtomicU64,
    /// The process metrics, apart: they change without events.
    process: Registry,
    cache: Mutex<TailCache>,
    /// Renders of the `indicator_exporter_*` series.
    renders: AtomicU64,
    responses: Mutex<[Option<Joined>; 2]>,
}

/// What a fetch of a remote source came to, as the self-metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// A new body, loaded into its dataset.
    Changed,
    /// `304 Not Modified`: nothing read, nothing parsed.
    NotModified,
    /// A body equal to the one in service: not parsed again.
    Unchanged,
    /// Failed, for the reason given (a label value).
    Failed(&'static str),
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("indicator_exporter")
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(opts(name, help), labels).expect("static metric definition")
}

fn counters(name: &str, help: &str, labels: &[&str]) -> CounterVec {
    CounterVec::new(opts(name, help), labels).expect("static metric definition")
}

/// Removes every series of `vec` whose labels `keep` refuses.
fn remove_where<T: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<T>,
    keep: impl Fn(&HashMap<&str, &str>) -> bool,
) {
    for mf in vec.collect() {
        for m in mf.get_metric() {
            let labels: HashMap<&str, &str> = m
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if !keep(&labels) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

/// Removes every series of `vec` whose `dataset` label is `dataset`.
fn remove_dataset<T: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<T>,
    dataset: &str,
) {
    remove_where(vec, |l| l.get("dataset") != Some(&dataset));
}

/// `build_info`, set once.
fn build_info() -> GaugeVec {
    let build = gauges(
        "build_info",
        "A metric with a constant '1' value labeled by version and revision of indicator_exporter.",
        &["version", "revision"],
    );
    build.with_label_values(&[VERSION, REVISION]).set(1.0);
    build
}

/// The gauges of each dataset's state: series, ready, last load successful, its time and
/// its duration.
fn dataset_gauges() -> [GaugeVec; 5] {
    let d = &["dataset"];
    [
        gauges(
            "dataset_series",
            "Number of series of the declared metrics in the dataset being served.",
            d,
        ),
        gauges(
            "dataset_ready",
            "Whether the dataset is served (1), or not yet loaded, waiting for a source (0).",
            d,
        ),
        gauges(
            "dataset_last_load_successful",
            "Whether the last load of the dataset (start-up, reload, file change or refresh) was successful.",
            d,
        ),
        gauges(
            "dataset_last_load_success_timestamp_seconds",
            "When the dataset was last loaded successfully.",
            d,
        ),
        gauges(
            "dataset_last_load_duration_seconds",
            "How long the last successful load of the dataset took: reading, validating, rendering and compressing it.",
            d,
        ),
    ]
}

/// The configuration reloads: last successful, its time, and attempts by result.
fn config_metrics() -> (Gauge, Gauge, CounterVec) {
    let reload_ok = Gauge::with_opts(opts(
        "config_last_reload_successful",
        "Whether the last configuration reload attempt was successful: the catalogue and every dataset in it.",
    ))
    .expect("static metric definition");
    let reload_ok_time = Gauge::with_opts(opts(
        "config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration load (start-up or reload).",
    ))
    .expect("static metric definition");
    let reloads = counters(
        "config_reloads_total",
        "Configuration reload attempts since start, by result.",
        &["result"],
    );
    for r in ["success", "failure"] {
        reloads.with_label_values(&[r]);
    }
    (reload_ok, reload_ok_time, reloads)
}

/// What reloads changed, by dataset and metric: the revised, added and removed counters,
/// and the time of the last change.
fn change_metrics() -> ([CounterVec; 3], GaugeVec) {
    let dm = &["dataset", "metric"];
    let revised = counters(
        "series_revisions_total",
        "Series whose value changed on a reload (a published figure was revised), by dataset and metric.",
        dm,
    );
    let added = counters(
        "series_added_total",
        "Series that appeared on a reload (e.g. a new period was published), by dataset and metric.",
        dm,
    );
    let removed = counters(
        "series_removed_total",
        "Series that disappeared on a reload, by dataset and metric.",
        dm,
    );
    let last_change = gauges(
        "metric_last_change_timestamp_seconds",
        "When a reload last added, removed or revised a series of this metric; absent until the first change since start.",
        dm,
    );
    ([revised, added, removed], last_change)
}

/// The fetches of remote sources: last attempt successful and the time of the last success;
/// requests by result, failures by reason, and bytes received.
fn source_metrics() -> ([GaugeVec; 2], [CounterVec; 4]) {
    let ds = &["dataset", "source"];
    let source_ok = gauges(
        "source_last_attempt_successful",
        "Whether the last fetch of the remote source succeeded (a new body that loaded, 304 Not Modified, or an unchanged body).",
        ds,
    );
    let source_ok_time = gauges(
        "source_last_success_timestamp_seconds",
        "When a fetch of the remote source last succeeded.",
        ds,
    );
    let source_requests = counters(
        "source_requests_total",
        "Fetches of the remote source, by result: changed, not_modified (304), unchanged (same body) or failed.",
        &["dataset", "source", "result"],
    );
    let source_failures = counters(
        "source_failures_total",
        "Failed fetches of the remote source, by reason (connect, timeout, tls, http_status, redirects, too_large, body, invalid, api_key, invalid_url, query). The last good data stays in service.",
        &["dataset", "source", "reason"],
    );
    let source_bytes = counters(
        "source_fetched_bytes_total",
        "Body bytes received from the remote source.",
        ds,
    );
    let source_copies = counters(
        "source_disk_copy_uses_total",
        "Loads that used the copy of the remote source kept under --storage.path, because the first fetch since start failed.",
        ds,
    );
    (
        [source_ok, source_ok_time],
        [
            source_requests,
            source_failures,
            source_bytes,
            source_copies,
        ],
    )
}

/// The logins that basic auth refused after a password check, and those answered 429 without
/// one.
fn auth_metrics() -> [Counter; 2] {
    [
        (
            "http_auth_failures_total",
            "Logins refused after a password check: an unknown user or a wrong password (requests without credentials are not counted).",
        ),
        (
            "http_auth_throttled_total",
            "Logins answered 429 without a password check: the client address failed too often and is locked out, or has too many logins waiting.",
        ),
    ]
    .map(|(name, help)| Counter::with_opts(opts(name, help)).expect("static metric definition"))
}

/// The catalogue's shard and the HTTP limits at work.
struct Serving {
    shard_info: GaugeVec,
    datasets: GaugeVec,
    refused: Counter,
    closed: CounterVec,
    /// In the process registry: it changes with every request, not with events.
    in_flight: IntGauge,
}

/// Why the server closed a connection, as `http_connections_closed_total` labels it.
pub const CLOSE_REASONS: [&str; 6] = [
    "read_header_timeout",
    "idle_timeout",
    "write_timeout",
    "max_connections_evicted",
    "max_connections_refused",
    "stalled_permit_taken",
];

impl Serving {
    fn new() -> Serving {
        let shard_info = gauges(
            "catalog_shard_info",
            "The shard of the catalogue this process serves (--catalog.shard of --catalog.shards): the datasets whose name's FNV-1a 64 hash modulo shards is shard.",
            &["shard", "shards"],
        );
        let datasets = gauges(
            "catalog_datasets",
            "Datasets of the catalogue by assignment: served by this shard, or skipped (another shard's, only their config is parsed).",
            &["assignment"],
        );
        let refused = Counter::with_opts(opts(
            "http_requests_refused_total",
            "Scrapes answered 503 because --web.max-requests scrapes were already in progress.",
        ))
        .expect("static metric definition");
        let closed = counters(
            "http_connections_closed_total",
            "Connections the server closed, by reason: read_header_timeout, idle_timeout, write_timeout, max_connections_evicted (idle, to make room), max_connections_refused (new, every connection busy), stalled_permit_taken (response not read, its scrape permit given to another scrape).",
            &["reason"],
        );
        for r in CLOSE_REASONS {
            closed.with_label_values(&[r]);
        }
        let in_flight = IntGauge::with_opts(opts(
            "http_requests_in_flight",
            "HTTP requests received and not yet answered to their last byte (read at most once a second).",
        ))
        .expect("static metric definition");
        Serving {
            shard_info,
            datasets,
            refused,
            closed,
            in_flight,
        }
    }

    fn collectors(&self) -> [Box<dyn Collector>; 4] {
        [
            Box::new(self.shard_info.clone()),
            Box::new(self.datasets.clone()),
            Box::new(self.refused.clone()),
            Box::new(self.closed.clone()),
        ]
    }
}

/// Counts a request in flight until dropped.
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A registry of `collectors`.
fn registry(collectors: Vec<Box<dyn Collector>>) -> Registry {
    let registry = Registry::new();
    for c in collectors {
        registry.register(c).expect("self-metric names are unique");
    }
    registry
}

/// A registry of the process metrics, where there are some.
fn process_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process metric names are unique");
    registry
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let [series, ready, load_ok, load_ok_time, load_duration] = dataset_gauges();
        let loads = counters(
            "dataset_loads_total",
            "Loads of the dataset since start, by result.",
            &["dataset", "result"],
        );
        let missing = gauges(
            "dataset_missing_observations",
            "Observations in the dataset's files that have no figure (empty, `..`, `:`, flagged missing or confidential), so no sample, by metric and reason (missing, not_available, confidential), as of the last load.",
            &["dataset", "metric", "reason"],
        );
        let (reload_ok, reload_ok_time, reloads) = config_metrics();
        let ([revised, added, removed], last_change) = change_metrics();
        let (
            [source_ok, source_ok_time],
            [source_requests, source_failures, source_bytes, source_copies],
        ) = source_metrics();
        let auth = auth_metrics();
        let state_errors = counters(
            "storage_state_errors_total",
            "State files under --storage.path that could not be used or written, by dataset and reason (missing, unreadable, truncated, corrupt, version, foreign: started fresh; write: the previous file kept).",
            &["dataset", "reason"],
        );
        let serving = Serving::new();
        let process = process_registry();
        process
            .register(Box::new(serving.in_flight.clone()))
            .expect("self-metric names are unique");
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(missing.clone()),
            Box::new(build_info()),
            Box::new(series.clone()),
            Box::new(ready.clone()),
            Box::new(load_ok.clone()),
            Box::new(load_ok_time.clone()),
            Box::new(load_duration.clone()),
            Box::new(loads.clone()),
            Box::new(reload_ok.clone()),
            Box::new(reload_ok_time.clone()),
            Box::new(reloads.clone()),
            Box::new(revised.clone()),
            Box::new(added.clone()),
            Box::new(removed.clone()),
            Box::new(last_change.clone()),
            Box::new(source_ok.clone()),
            Box::new(source_ok_time.clone()),
            Box::new(source_requests.clone()),
            Box::new(source_failures.clone()),
            Box::new(source_bytes.clone()),
            Box::new(source_copies.clone()),
            Box::new(state_errors.clone()),
            Box::new(auth[0].clone()),
            Box::new(auth[1].clone()),
        ];
        collectors.extend(serving.collectors());
        Telemetry {
            registry: registry(collectors),
            process,
            serving,
            series,
            ready,
            load_ok,
            load_ok_time,
            load_duration,
            loads,
            reload_ok,
            reload_ok_time,
            reloads,
            revised,
            added,
            removed,
            last_change,
            missing,
            source_ok,
            source_ok_time,
            source_requests,
            source_failures,
            source_bytes,
            source_copies,
            state_errors,
            auth,
            missing_sets: Mutex::default(),
            metrics: Mutex::default(),
            removed_metrics: Mutex::new(Vec::new()),
            generation: AtomicU64::new(1),
            cache: Mutex::new(TailCache::default()),
            renders: AtomicU64::new(0),
            responses: Mutex::default(),
        }
    }

    /// A dataset went into service (start-up, reload, file change or refresh).
    pub fn loaded(&self, dataset: &Dataset, reload: bool, took: Duration) {
        let series = dataset.series_count();
        let name = dataset.info.name.as_str();
        info!(
            dataset = name,
            series,
            duration_ms = took.as_millis() as u64,
            "{}",
            if reload {
                "dataset reloaded"
            } else {
                "dataset loaded"
            }
        );
        self.series.with_label_values(&[name]).set(series as f64);
        self.ready.with_label_values(&[name]).set(1.0);
        self.load_ok.with_label_values(&[name]).set(1.0);
        self.load_ok_time.with_label_values(&[name]).set(unix_now());
        self.load_duration
            .with_label_values(&[name])
            .set(took.as_secs_f64());
        self.loads.with_label_values(&[name, "success"]).inc();
        self.loads.with_label_values(&[name, "failure"]);
        let sets: Vec<[String; 3]> = dataset
            .missing
            .iter()
            .map(|(m, r, _)| [name.to_string(), m.clone(), r.to_string()])
            .collect();
        for ((_, _, n), set) in dataset.missing.iter().zip(&sets) {
            self.missing
                .with_label_values(&[&set[0], &set[1], &set[2]])
                .set(*n as f64);
        }
        let mut all = self
            .missing_sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = all
            .insert(name.to_string(), sets.clone())
            .unwrap_or_default();
        for gone in old.iter().filter(|s| !sets.contains(s)) {
            let _ = self
                .missing
                .remove_label_values(&[&gone[0], &gone[1], &gone[2]]);
        }
        drop(all);
        // Change counters start at zero for every metric, so the first change shows in
        // increase().
        for m in &dataset.metrics {
            self.change_counters(name, &m.name);
        }
        self.track_removed(dataset, Instant::now());
        self.touched();
    }

    /// A dataset could not be loaded; its previous snapshot, if any, stays in service.
    pub fn load_failed(&self, dataset: &str, serving: bool, errors: &Diagnostics) {
        error!(
            dataset,
            errors = errors.len(),
            "{}:\n{errors}",
            if serving {
                "reload failed, still serving the previous version of the dataset"
            } else {
                "load failed, the dataset is not served"
            }
        );
        self.load_ok.with_label_values(&[dataset]).set(0.0);
        self.ready
            .with_label_values(&[dataset])
            .set(if serving { 1.0 } else { 0.0 });
        self.loads.with_label_values(&[dataset, "failure"]).inc();
        self.loads.with_label_values(&[dataset, "success"]);
        self.touched();
    }

    /// A whole configuration load ended (start-up or reload): the catalogue and every dataset.
    pub fn config_loaded(&self, ok: bool, reload: bool) {
        self.reload_ok.set(if ok { 1.0 } else { 0.0 });
        if ok {
            self.reload_ok_time.set(unix_now());
        }
        if reload {
            let result = if ok { "success" } else { "failure" };
            self.reloads.with_label_values(&[result]).inc();
        }
        self.touched();
    }

    /// A dataset left the catalogue: its series go with it.
    pub fn dataset_removed(&self, dataset: &str) {
        info!(dataset, "dataset removed from the catalogue");
        remove_dataset(&self.series, dataset);
        remove_dataset(&self.ready, dataset);
        remove_dataset(&self.load_ok, dataset);
        remove_dataset(&self.load_ok_time, dataset);
        remove_dataset(&self.load_duration, dataset);
        remove_dataset(&self.loads, dataset);
        remove_dataset(&self.revised, dataset);
        remove_dataset(&self.added, dataset);
        remove_dataset(&self.removed, dataset);
        remove_dataset(&self.last_change, dataset);
        remove_dataset(&self.missing, dataset);
        remove_dataset(&self.state_errors, dataset);
        self.sources_removed(dataset, &[]);
        self.missing_sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(dataset);
        self.metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(dataset);
        self.removed_metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(d, _, _)| d != dataset);
        self.touched();
    }

    /// Drops the series of the dataset's remote sources other than `keep`.
    pub fn sources_removed(&self, dataset: &str, keep: &[String]) {
        let stays = |l: &HashMap<&str, &str>| {
            l.get("dataset") != Some(&dataset)
                || l.get("source").is_some_and(|s| keep.iter().any(|k| k == s))
        };
        remove_where(&self.source_ok, stays);
        remove_where(&self.source_ok_time, stays);
        remove_where(&self.source_requests, stays);
        remove_where(&self.source_failures, stays);
        remove_where(&self.source_bytes, stays);
        remove_where(&self.source_copies, stays);
        self.touched();
    }

    /// Counts one fetch of a remote source and its outcome.
    pub fn fetched(&self, dataset: &str, source: &str, result: FetchResult, bytes: u64) {
        let l = [dataset, source];
        self.source_bytes.with_label_values(&l).inc_by(bytes as f64);
        for r in ["changed", "not_modified", "unchanged", "failed"] {
            self.source_requests
                .with_label_values(&[dataset, source, r]);
        }
        let result_label = match result {
            FetchResult::Changed => "changed",
            FetchResult::NotModified => "not_modified",
            FetchResult::Unchanged => "unchanged",
            FetchResult::Failed(_) => "failed",
        };
        self.source_requests
            .with_label_values(&[dataset, source, result_label])
            .inc();
        match result {
            FetchResult::Failed(reason) => {
                self.source_ok.with_label_values(&l).set(0.0);
                self.source_failures
                    .with_label_values(&[dataset, source, reason])
                    .inc();
            }
            _ => {
                self.source_ok.with_label_values(&l).set(1.0);
                self.source_ok_time.with_label_values(&l).set(unix_now());
            }
        }
        self.touched();
    }

    /// A start used the copy of a remote source kept on disk.
    pub fn copy_used(&self, dataset: &str, source: &str) {
        self.source_copies
            .with_label_values(&[dataset, source])
            .inc();
        self.touched();
    }

    /// A dataset is waiting for a source before it can be served.
    pub fn waiting(&self, dataset: &str) {
        self.ready.with_label_values(&[dataset]).set(0.0);
        self.touched();
    }

    /// A reload added, removed or revised series of one metric: logs each revision with its
    /// old and new value, counts, and stamps the change.
    pub fn changed(&self, dataset: &str, change: &MetricChange) {
        let metric = change.metric.as_str();
        for (labels, old, new) in &change.revised {
            info!(
                dataset,
                metric, labels, old, new, "published figure revised"
            );
        }
        info!(
            dataset,
            metric,
            added = change.added,
            removed = change.removed,
            revised = change.revised.len(),
            "metric changed"
        );
        let [added, removed, revised] = self.change_counters(dataset, metric);
        added.inc_by(change.added as f64);
        removed.inc_by(change.removed as f64);
        revised.inc_by(change.revised.len() as f64);
        self.last_change
            .with_label_values(&[dataset, metric])
            .set(unix_now());
        self.touched();
    }

    /// Notes the metrics that left the dataset with this load, forgets those that came back,
    /// and drops the counters of those gone too long or too many.
    fn track_removed(&self, dataset: &Dataset, now: Instant) {
        let name = &dataset.info.name;
        let names: Vec<String> = dataset.metrics.iter().map(|m| m.name.clone()).collect();
        let old = self
            .metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), names.clone())
            .unwrap_or_default();
        let mut removed = self
            .removed_metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        removed.retain(|(d, m, _)| d != name || !names.contains(m));
        for m in old.into_iter().filter(|m| !names.contains(m)) {
            removed.push((name.clone(), m, now));
        }
        drop(removed);
        self.prune_removed(now);
    }

    /// Drops the change counters of metrics that left their dataset more than
    /// [`REMOVED_METRIC_RETENTION`] ago, and of all but the last [`MAX_REMOVED_METRICS`].
    fn prune_removed(&self, now: Instant) {
        let mut removed = self
            .removed_metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let expired = removed
            .iter()
            .take_while(|(_, _, at)| now.saturating_duration_since(*at) > REMOVED_METRIC_RETENTION)
            .count();
        let n = expired.max(removed.len().saturating_sub(MAX_REMOVED_METRICS));
        if n == 0 {
            return;
        }
        for (d, m, _) in removed.drain(..n) {
            for c in [&self.added, &self.removed, &self.revised] {
                let _ = c.remove_label_values(&[&d, &m]);
            }
            let _ = self.last_change.remove_label_values(&[&d, &m]);
        }
        drop(removed);
        self.touched();
    }

    /// The added, removed and revised counters of `metric`, created at zero if new.
    fn change_counters(&self, dataset: &str, metric: &str) -> [Counter; 3] {
        [&self.added, &self.removed, &self.revised].map(|c| c.with_label_values(&[dataset, metric]))
    }

    /// A dataset's state file could not be used (it starts fresh) or written (the previous
    /// one stays): logged and counted, never a reason to stop serving.
    pub fn state_error(&self, dataset: &str, problem: crate::state::Problem, error: &str) {
        let reason = problem.reason();
        if problem == crate::state::Problem::Write {
            warn!(
                dataset,
                error, "cannot write the dataset's state; the previous state file is kept"
            );
        } else {
            warn!(
                dataset,
                reason, error, "stored state not usable, starting fresh"
            );
        }
        self.state_errors
            .with_label_values(&[dataset, reason])
            .inc();
        self.touched();
    }

    /// A login was refused after a password check (`throttled`: false), or answered 429
    /// without one (true).
    pub fn login_refused(&self, throttled: bool) {
        self.auth[usize::from(throttled)].inc();
        self.touched();
    }

    /// This process serves shard `index` of `count`.
    pub fn shard(&self, index: u64, count: u64) {
        self.serving.shard_info.reset();
        let l = [index.to_string(), count.to_string()];
        self.serving
            .shard_info
            .with_label_values(&[l[0].as_str(), l[1].as_str()])
            .set(1.0);
        self.touched();
    }

    /// The catalogue holds `served` datasets of this shard and `skipped` of others.
    pub fn catalog_datasets(&self, served: usize, skipped: usize) {
        for (a, n) in [("served", served), ("skipped", skipped)] {
            let g = self.serving.datasets.with_label_values(&[a]);
            if g.get() != n as f64 {
                g.set(n as f64);
                self.touched();
            }
        }
    }

    /// A scrape was answered 503: `--web.max-requests` scrapes were in progress.
    pub fn request_refused(&self) {
        self.serving.refused.inc();
        self.touched();
    }

    /// The server closed a connection, for `reason` (one of [`CLOSE_REASONS`]).
    pub fn connection_closed(&self, reason: &str) {
        if let Ok(c) = self.serving.closed.get_metric_with_label_values(&[reason]) {
            c.inc();
            self.touched();
        }
    }

    /// A request arrived; it is in flight until the guard is dropped.
    pub fn request_started(&self) -> InFlight {
        self.serving.in_flight.inc();
        InFlight(self.serving.in_flight.clone())
    }

    /// Marks the self-metrics changed, after the change: a cached tail is never newer.
    fn touched(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The response tail for `format`. Its `indicator_exporter_*` part is rendered again only
    /// after an event; its `process_*` part, when older than [`MAX_AGE`].
    pub fn tail(&self, format: Format) -> Arc<Tail> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if cache
            .process_read_at
            .is_none_or(|t| now.saturating_duration_since(t) >= MAX_AGE)
        {
            // Expiry is checked as often as the process metrics are read: at most once per
            // MAX_AGE. An expiry is an event.
            self.prune_removed(now);
            cache.process_read_at = Some(now);
            cache.tails = Default::default();
        }
        // Read after the events it reflects: an event during the render leaves it outdated.
        let generation = self.generation.load(Ordering::Acquire);
        if cache.generation != generation {
            cache.generation = generation;
            cache.events = Default::default();
            cache.tails = Default::default();
        }
        let i = slot(format);
        if let Some(t) = &cache.tails[i] {
            return t.clone();
        }
        let events = cache.events[i]
            .get_or_insert_with(|| {
                self.renders.fetch_add(1, Ordering::Relaxed);
                let plain = render(&self.registry, format);
                Arc::new(Events {
                    gzip: Arc::new(gzip::OpenGzip::at(gzip::SETTLED, &[&plain])),
                    plain: Bytes::from(plain),
                })
            })
            .clone();
        let mut process = render(&self.process, format);
        if format == Format::OpenMetrics {
            process.extend_from_slice(b"# EOF\n");
        }
        let tail = Arc::new(Tail {
            events: events.gzip.clone(),
            process: gzip::Tail::new(&process),
            plain: [events.plain.clone(), Bytes::from(process)],
            generation,
            read_at: cache.process_read_at.unwrap_or(now),
        });
        cache.tails[i] = Some(tail.clone());
        tail
    }

    /// How many times the `indicator_exporter_*` series were rendered for a tail: once per
    /// format after each event, never for a scrape alone.
    pub fn tail_renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// The gzip `/metrics` response in `format`: the bodies of the datasets in `served`, then
    /// the tail, as chunks to send in order. Up to [`ONE_CHUNK_MAX`] bytes it is one chunk,
    /// made once and reused while the datasets and the tail are the same.
    pub fn gzip_response(&self, format: Format, served: &Arc<Served>) -> Vec<Bytes> {
        // The cached response's tail is what `tail` would return while no event happened and
        // its process metrics are fresh: then the response is served with one lock taken.
        let generation = self.generation.load(Ordering::Acquire);
        let now = Instant::now();
        let mut responses = self
            .responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cached = &mut responses[slot(format)];
        let same_served = |j: &Joined| std::ptr::eq(j.served.as_ptr(), Arc::as_ptr(served));
        if let Some(j) = cached.as_ref() {
            if j.tail.generation == generation
                && now.saturating_duration_since(j.tail.read_at) < MAX_AGE
                && same_served(j)
            {
                return vec![j.body.clone()];
            }
        }
        let tail = self.tail(format);
        if let Some(j) = cached.as_ref() {
            if Arc::ptr_eq(&j.tail, &tail) && same_served(j) {
                return vec![j.body.clone()];
            }
        }
        // Each dataset's body was compressed once at its load; only the trailer is new.
        let chunks = tail.join(served.datasets.iter().map(|s| &s.body(format).gzip));
        if chunks.iter().map(Bytes::len).sum::<usize>() > ONE_CHUNK_MAX {
            *cached = None;
            return chunks;
        }
        let body = gzip::concat(&chunks);
        *cached = Some(Joined {
            served: Arc::downgrade(served),
            tail,
            body: body.clone(),
        });
        vec![body]
    }

    /// The self-metrics in one format, sorted by name: the `indicator_exporter_*` series,
    /// then the `process_*` ones.
    pub fn render(&self, format: Format) -> Vec<u8> {
        let mut out = render(&self.registry, format);
        out.extend_from_slice(&render(&self.process, format));
        out
    }
}

/// The metrics of `registry` in one format, sorted by name.
fn render(registry: &Registry, format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    let mut enc = Encoder {
        format,
        out: &mut out,
    };
    for mf in registry.gather() {
        let kind = match mf.get_field_type() {
            MetricType::COUNTER => Kind::Counter,
            MetricType::GAUGE if mf.name().ends_with("_info") => Kind::Info,
            MetricType::GAUGE => Kind::Gauge,
            // Only counters and gauges are registered.
            _ => continue,
        };
        let name = mf.name();
        enc.family(name, mf.help(), kind, None);
        for m in mf.get_metric() {
            let value = match kind {
                Kind::Counter => m.get_counter().get_value(),
                _ => m.get_gauge().get_value(),
            };
            enc.sample(
                name,
                m.get_label().iter().map(|l| (l.name(), l.value())),
                value,
            );
        }
    }
    out
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(t: &Telemetry, added: usize) {
        t.changed(
            "d",
            &MetricChange {
                metric: "m_ratio".into(),
                added,
                removed: 0,
                revised: vec![],
            },
        );
    }

    fn text(tail: &Tail) -> String {
        String::from_utf8(gzip::concat(&tail.plain).to_vec()).unwrap()
    }

    #[test]
    fn tail_is_reused_until_an_event_changes_the_metrics() {
        let t = Telemetry::new();
        let first = t.tail(Format::Text);
        assert_eq!(t.tail_renders(), 1);
        assert!(Arc::ptr_eq(&first, &t.tail(Format::Text)));
        assert!(!Arc::ptr_eq(&first, &t.tail(Format::OpenMetrics)));
        assert!(t.tail(Format::OpenMetrics).plain[1].ends_with(b"# EOF\n"));
        assert_eq!(t.tail_renders(), 2, "once per format");
        assert!(text(&first).contains("indicator_exporter_build_info{"));
        // The second part changes without events: requests in flight, then process metrics.
        assert!(first.plain[1].starts_with(b"# HELP indicator_exporter_http_requests_in_flight "));
        #[cfg(target_os = "linux")]
        assert!(String::from_utf8_lossy(&first.plain[1]).contains("\n# HELP process_"));
        change(&t, 2);
        let after = t.tail(Format::Text);
        assert!(!Arc::ptr_eq(&first, &after) && !Arc::ptr_eq(&first.events, &after.events));
        assert_eq!(t.tail_renders(), 3);
        assert!(text(&after).contains(
            "indicator_exporter_series_added_total{dataset=\"d\",metric=\"m_ratio\"} 2\n"
        ));
        assert!(text(&after).contains(
            "indicator_exporter_series_revisions_total{dataset=\"d\",metric=\"m_ratio\"} 0\n"
        ));
    }

    #[test]
    fn process_metrics_are_read_again_without_rendering_the_rest() {
        let t = Telemetry::new();
        let first = t.tail(Format::Text);
        let age = |t: &Telemetry| {
            let mut cache = t.cache.lock().unwrap();
            cache.process_read_at = cache.process_read_at.map(|at| at - MAX_AGE);
        };
        age(&t);
        let second = t.tail(Format::Text);
        assert!(!Arc::ptr_eq(&first, &second), "process metrics read again");
        assert!(Arc::ptr_eq(&first.events, &second.events));
        assert_eq!(t.tail_renders(), 1);
        change(&t, 1);
        assert!(!Arc::ptr_eq(&first.events, &t.tail(Format::Text).events));
        assert_eq!(t.tail_renders(), 2);
    }

    /// The datasets in `served`, then `tail`, decompressed from `chunks`.
    fn gunzip(chunks: &[Bytes]) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip::concat(chunks)[..]),
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn a_gzip_response_is_one_chunk_reused_until_its_parts_change() {
        let t = Telemetry::new();
        let snapshot = |m: &str| {
            Arc::new(crate::expose::snapshot::Snapshot::build(Arc::new(dataset(
                m,
            ))))
        };
        let served = Arc::new(Served {
            datasets: vec![snapshot("m_ratio")],
        });
        let expected = |served: &Served, format: Format| {
            let mut plain = Vec::new();
            for s in &served.datasets {
                plain.extend_from_slice(&gzip::concat(&s.body(format).plain));
            }
            plain.extend_from_slice(&gzip::concat(&t.tail(format).plain));
            plain
        };
        for format in [Format::Text, Format::OpenMetrics] {
            let first = t.gzip_response(format, &served);
            assert_eq!(first.len(), 1);
            assert_eq!(gunzip(&first), expected(&served, format));
            let again = t.gzip_response(format, &served);
            assert_eq!(again[0].as_ptr(), first[0].as_ptr(), "the same bytes");
        }
        let first = t.gzip_response(Format::Text, &served);
        change(&t, 3);
        let after = t.gzip_response(Format::Text, &served);
        assert_ne!(after[0].as_ptr(), first[0].as_ptr());
        assert_eq!(gunzip(&after), expected(&served, Format::Text));
        let other = Arc::new(Served {
            datasets: vec![snapshot("m_ratio"), snapshot("n_ratio")],
        });
        let both = t.gzip_response(Format::Text, &other);
        assert_eq!(gunzip(&both), expected(&other, Format::Text));
        // The cache does not keep the datasets it was made of in memory.
        let weak = Arc::downgrade(&other);
        drop(other);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_panic_while_a_lock_is_held_does_not_take_down_later_scrapes() {
        let t = Arc::new(Telemetry::new());
        for lock in 0..2 {
            let held = t.clone();
            let panicked = std::thread::spawn(move || {
                let _guard = if lock == 0 {
                    (Some(held.cache.lock().unwrap()), None)
                } else {
                    (None, Some(held.metrics.lock().unwrap()))
                };
                panic!("while holding lock {lock}");
            })
            .join();
            assert!(panicked.is_err());
        }
        assert!(t.cache.is_poisoned() && t.metrics.is_poisoned());
        // Loads and /metrics still take them.
        t.loaded(&dataset("m_ratio"), true, Duration::ZERO);
        t.changed(
            "d",
            &MetricChange {
                metric: "m_ratio".into(),
                added: 1,
                removed: 0,
                revised: vec![],
            },
        );
        assert!(text(&t.tail(Format::Text)).contains(
            "indicator_exporter_series_added_total{dataset=\"d\",metric=\"m_ratio\"} 1\n"
        ));
    }

    fn dataset(metric: &str) -> Dataset {
        let text = format!(
            "[dataset]\nname = \"d\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2024-01-01\"\nmetric_prefix = \"\"\n\n[[metric]]\nname = \"{metric}\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"k\"]\nsamples = [{{ labels = {{ k = \"a\" }}, value = 1 }}]\n"
        );
        let path = std::path::Path::new("c.toml");
        let config = crate::config::parse(path, &text).unwrap();
        crate::dataset::build(path, &text, &config, &Default::default()).unwrap()
    }

    fn served(t: &Telemetry, metric: &str) -> bool {
        let text = String::from_utf8(t.render(Format::Text)).unwrap();
        text.contains(&format!(
            "indicator_exporter_series_removed_total{{dataset=\"d\",metric=\"{metric}\"}}"
        ))
    }

    /// A renamed metric: its series are counted as removed on the reload, then loaded.
    fn rename(t: &Telemetry, from: &str, to: &str, now: Instant) {
        t.changed(
            "d",
            &MetricChange {
                metric: from.into(),
                added: 0,
                removed: 1,
                revised: vec![],
            },
        );
        t.loaded(&dataset(to), true, Duration::ZERO);
        // As if the load had happened at `now`.
        for (_, _, at) in t.removed_metrics.lock().unwrap().iter_mut() {
            *at = (*at).min(now);
        }
    }

    #[test]
    fn a_metric_that_left_keeps_its_counters_for_the_alert_window_then_goes() {
        let t = Telemetry::new();
        t.loaded(&dataset("a"), false, Duration::ZERO);
        let start = Instant::now();
        rename(&t, "a", "b", start);
        // Served with its step, so increase(…[1h]) > 0 and IndicatorSeriesRemoved fires.
        let text = String::from_utf8(t.render(Format::Text)).unwrap();
        assert!(
            text.contains(
                "indicator_exporter_series_removed_total{dataset=\"d\",metric=\"a\"} 1\n"
            ),
            "{text}"
        );
        assert!(served(&t, "b"));
        t.prune_removed(start + REMOVED_METRIC_RETENTION);
        assert!(served(&t, "a"), "still within the window");
        t.prune_removed(start + REMOVED_METRIC_RETENTION + Duration::from_secs(1));
        let text = String::from_utf8(t.render(Format::Text)).unwrap();
        assert!(!text.contains("metric=\"a\""), "{text}");
        assert!(served(&t, "b"));
    }

    #[test]
    fn a_metric_that_comes_back_is_not_dropped() {
        let t = Telemetry::new();
        t.loaded(&dataset("a"), false, Duration::ZERO);
        let start = Instant::now();
        rename(&t, "a", "b", start);
        rename(&t, "b", "a", start);
        t.prune_removed(start + 2 * REMOVED_METRIC_RETENTION);
        assert!(served(&t, "a"));
        assert!(!served(&t, "b"));
    }

    #[test]
    fn at_most_the_cap_of_metrics_that_left_keep_counters() {
        let t = Telemetry::new();
        t.loaded(&dataset("m0"), false, Duration::ZERO);
        let now = Instant::now();
        let n = MAX_REMOVED_METRICS + 50;
        for i in 0..n {
            rename(&t, &format!("m{i}"), &format!("m{}", i + 1), now);
        }
        let text = String::from_utf8(t.render(Format::Text)).unwrap();
        let kept = text
            .lines()
            .filter(|l| l.starts_with("indicator_exporter_series_removed_total{"))
            .count();
        // The ones that left last, and the one in service.
        assert_eq!(kept, MAX_REMOVED_METRICS + 1);
        assert!(!served(&t, "m49") && served(&t, "m50") && served(&t, &format!("m{n}")));
    }
}
