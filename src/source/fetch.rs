//! Remote sources: data files fetched over HTTP(S), conditionally, within limits.
//! `[fetch]` options (TOML) -> checked [`FetchSettings`] -> one [`Fetcher`] per source, whose
//! [`Fetcher::fetch`] yields the body for the readers, or says it has not changed, or why not.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderName, HeaderValue, ETAG, LAST_MODIFIED, LOCATION};
use reqwest::{StatusCode, Url};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use toml::Spanned;

pub use crate::source::sdmx_query::AsyncPoll;

/// How often a remote source is re-fetched unless its config says otherwise.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
/// The first retry after a failure; later ones double, up to [`MAX_BACKOFF`] (or the refresh).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// The longest `Retry-After` obeyed: a server asking for more is asked again after a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);
/// Requests in flight to one host at once unless configured: a publisher is asked politely.
pub const DEFAULT_MAX_CONCURRENT_PER_HOST: u32 = 2;
pub const DEFAULT_ASYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// Largest `ca_file` or `header_file` read: both are a few KiB at most.
const MAX_SMALL_FILE: u64 = 1 << 20;
/// Headers the exporter sets itself (framing, conditional requests): a key header may not
/// replace them.
const RESERVED_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "if-none-match",
    "if-modified-since",
    "accept-encoding",
];

/// `[fetch]` of a dataset config, or `[input.fetch]` of one remote `[[input]]` (which overrides
/// the dataset's, key by key). Values stay spanned so [`FetchOptions::settings`] can point at
/// the one that is wrong.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchOptions {
    /// How often the source is re-fetched: `30s`, `10m`, `1h`, `1d`.
    pub refresh: Option<Spanned<String>>,
    /// Time to open the connection (TLS handshake included).
    pub connect_timeout: Option<Spanned<String>>,
    /// Time for the whole request: redirects, headers and body.
    pub timeout: Option<Spanned<String>>,
    /// Largest body accepted: bytes, or with a unit (`64MiB`).
    pub max_size: Option<Spanned<String>>,
    /// Most redirects followed (0: none).
    pub max_redirects: Option<Spanned<u32>>,
    /// PEM certificates trusted in addition to the system roots, relative to the config file.
    pub ca_file: Option<Spanned<String>>,
    /// Name of a header whose value is read from `header_file` (an API key).
    pub header: Option<Spanned<String>>,
    /// The file holding `header`'s value, re-read at every fetch so a rotated key is used.
    pub header_file: Option<Spanned<String>>,
    /// `fail` (start-up fails when the source cannot be fetched) or `not-ready`.
    pub on_start_failure: Option<Spanned<String>>,
    /// Least time between two requests to the source's host, across every dataset (`1s`).
    pub min_interval: Option<Spanned<String>>,
    /// Most requests in flight to the source's host at once, across every dataset.
    pub max_concurrent_per_host: Option<Spanned<u32>>,
    /// How long a queued (asynchronous) answer is followed before the fetch fails.
    pub async_timeout: Option<Spanned<String>>,
}

/// What start-up does when a dataset's remote source cannot be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStartFailure {
    /// The exporter exits with an error naming the source.
    #[default]
    Fail,
    /// The exporter serves without the dataset (not ready) and keeps trying.
    NotReady,
}

impl OnStartFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnStartFailure::Fail => "fail",
            OnStartFailure::NotReady => "not-ready",
        }
    }
}

/// A header sent with every request of a source, its value read from `file` at fetch time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHeader {
    pub name: HeaderName,
    /// Absolute (resolved against the config file's directory).
    pub file: PathBuf,
}

/// Checked fetch options of one source. Holds no secret: the key is read at fetch time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    pub refresh: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_size: u64,
    pub max_redirects: u32,
    /// `ca_file` resolved, and the certificates it held when the settings were made.
    pub ca_file: Option<PathBuf>,
    pub ca_certs: Vec<CertificateDer<'static>>,
    pub key_header: Option<KeyHeader>,
    pub on_start_failure: OnStartFailure,
    pub min_interval: Duration,
    pub max_concurrent_per_host: u32,
    pub async_timeout: Duration,
    /// Headers the request asks with (an SDMX query's Accept).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Where a queued answer is followed, for a service that queues large queries.
    pub async_poll: Option<AsyncPoll>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            refresh: DEFAULT_REFRESH,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            ca_file: None,
            ca_certs: Vec::new(),
            key_header: None,
            on_start_failure: OnStartFailure::Fail,
            min_interval: Duration::ZERO,
            max_concurrent_per_host: DEFAULT_MAX_CONCURRENT_PER_HOST,
            async_timeout: DEFAULT_ASYNC_TIMEOUT,
            headers: Vec::new(),
            async_poll: None,
        }
    }
}

/// Problems found in fetch options: the span of the offending value and what is wrong.
pub type Problems = Vec<(Range<usize>, String)>;

impl FetchOptions {
    /// These options with every key `over` sets taken from `over` (an input's over its
    /// dataset's).
    pub fn merged(&self, over: &FetchOptions) -> FetchOptions {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.as_ref().or(base.as_ref()).cloned()
        }
        FetchOptions {
            refresh: pick(&self.refresh, &over.refresh),
            connect_timeout: pick(&self.connect_timeout, &over.connect_timeout),
            timeout: pick(&self.timeout, &over.timeout),
            max_size: pick(&self.max_size, &over.max_size),
            max_redirects: pick(&self.max_redirects, &over.max_redirects),
            ca_file: pick(&self.ca_file, &over.ca_file),
            header: pick(&self.header, &over.header),
            header_file: pick(&self.header_file, &over.header_file),
            on_start_failure: pick(&self.on_start_failure, &over.on_start_failure),
            min_interval: pick(&self.min_interval, &over.min_interval),
            max_concurrent_per_host: pick(
                &self.max_concurrent_per_host,
                &over.max_concurrent_per_host,
            ),
            async_timeout: pick(&self.async_timeout, &over.async_timeout),
        }
    }

    /// Checks every option (files relative to `base_dir`) and returns the settings, or every
    /// problem with the span of the value at fault.
    pub fn settings(&self, base_dir: &Path) -> Result<FetchSettings, Problems> {
        let mut problems = Problems::new();
        let mut s = FetchSettings::default();

        // A refresh under a second would hammer the publisher; timeouts of 0 would never succeed.
        let min_timeout = Duration::from_millis(1);
        let durations = [
            (
                "refresh",
                &self.refresh,
                Duration::from_secs(1),
                &mut s.refresh,
            ),
            (
                "connect_timeout",
                &self.connect_timeout,
                min_timeout,
                &mut s.connect_timeout,
            ),
            ("timeout", &self.timeout, min_timeout, &mut s.timeout),
            (
                "min_interval",
                &self.min_interval,
                Duration::ZERO,
                &mut s.min_interval,
            ),
            (
                "async_timeout",
                &self.async_timeout,
                min_timeout,
                &mut s.async_timeout,
            ),
        ];
        for (key, v, min, out) in durations {
            if let Some(v) = v {
                match checked_duration(key, v.get_ref(), min) {
                    Ok(d) => *out = d,
                    Err(e) => problems.push((v.span(), e)),
                }
            }
        }
        if let Some(v) = &self.max_size {
            match crate::read::parse_size(v.get_ref()) {
                Ok(n) => s.max_size = n,
                Err(e) => problems.push((v.span(), format!("max_size: {e}"))),
            }
        }
        if let Some(v) = &self.max_redirects {
            s.max_redirects = *v.get_ref();
        }
        match &self.max_concurrent_per_host {
            Some(v) if *v.get_ref() == 0 => problems.push((
                v.span(),
                "max_concurrent_per_host = 0 would never fetch, expected at least 1".into(),
            )),
            Some(v) => s.max_concurrent_per_host = *v.get_ref(),
            None => {}
        }
        if let Some(v) = &self.on_start_failure {
            match on_start_failure(v.get_ref()) {
                Ok(o) => s.on_start_failure = o,
                Err(e) => problems.push((v.span(), e)),
            }
        }
        if let Some(v) = &self.ca_file {
            let path = base_dir.join(v.get_ref());
            match read_ca_file(&path) {
                Ok(certs) => {
                    s.ca_file = Some(path);
                    s.ca_certs = certs;
                }
                Err(e) => problems.push((v.span(), format!("ca_file {}: {e}", path.display()))),
            }
        }
        s.key_header = self.key_header(base_dir, &mut problems);

        if problems.is_empty() {
            Ok(s)
        } else {
            problems.sort_by_key(|(span, _)| span.start);
            Err(problems)
        }
    }

    /// `header` and `header_file` checked together: both or neither, a header name the
    /// exporter does not set itself, a file holding a usable value.
    fn key_header(&self, base_dir: &Path, problems: &mut Problems) -> Option<KeyHeader> {
        match (&self.header, &self.header_file) {
            (Some(h), Some(f)) => {
                let name = match header_name(h.get_ref()) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        problems.push((h.span(), e));
                        None
                    }
                };
                let file = base_dir.join(f.get_ref());
                // Read once now so a missing key fails the config, not the first fetch.
                let read = read_key_sync(&file);
                if let Err(e) = &read {
                    problems.push((f.span(), format!("header_file {}: {e}", file.display())));
                }
                match (name, read) {
                    (Some(name), Ok(_)) => Some(KeyHeader { name, file }),
                    _ => None,
                }
            }
            (Some(h), None) => {
                problems.push((
                    h.span(),
                    "header is set without header_file, expected header_file naming the file that holds its value".into(),
                ));
                None
            }
            (None, Some(f)) => {
                problems.push((
                    f.span(),
                    "header_file is set without header, expected header naming the header it is sent in, such as X-API-Key".into(),
                ));
                None
            }
            (None, None) => None,
        }
    }
}

/// A duration option's value checked: a duration of at least `min`, or what is wrong with it.
fn checked_duration(key: &str, value: &str, min: Duration) -> Result<Duration, String> {
    match crate::read::parse_duration(value) {
        Ok(d) if d < min => Err(format!(
            "{key} = \"{value}\" is too short, expected at least {}",
            show_duration(min)
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{key}: {e}")),
    }
}

/// `on_start_failure`'s value read, or what is wrong with it.
fn on_start_failure(value: &str) -> Result<OnStartFailure, String> {
    match value {
        "fail" => Ok(OnStartFailure::Fail),
        "not-ready" => Ok(OnStartFailure::NotReady),
        other => Err(format!(
            "unknown on_start_failure `{other}`, expected \"fail\" or \"not-ready\""
        )),
    }
}

/// A duration as the config would write it (`1s`, `250ms`, `1h`).
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!("invalid header name `{name}`, expected a token such as X-API-Key or Authorization")
    })?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(format!(
            "header `{name}` is set by the exporter itself, expected an API key header such as X-API-Key or Authorization"
        ));
    }
    Ok(parsed)
}

/// Reads a small regular file (never a FIFO or device, which could block or never end).
fn read_small_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file, expected a file".into());
    }
    if meta.len() > MAX_SMALL_FILE {
        return Err(format!(
            "is {} bytes, expected at most {MAX_SMALL_FILE}",
            meta.len()
        ));
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SMALL_FILE + 1).read_to_end(&mut buf))
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(buf)
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_small_file(path)?;
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| {
            format!(
                "certificate {} is not valid PEM ({e}), expected PEM certificates",
                i + 1
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).map_err(|e| {
            format!(
                "certificate {} cannot be trusted ({e}), expected CA certificates",
                i + 1
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(
            "holds no certificate, expected PEM `-----BEGIN CERTIFICATE-----` blocks".into(),
        );
    }
    Ok(certs)
}

/// The key header's value from its file: surrounding whitespace (a final newline) dropped.
/// Errors never include the file's content.
fn key_value(content: &[u8]) -> Result<HeaderValue, String> {
    let text = std::str::from_utf8(content)
        .map_err(|_| "is not UTF-8 text, expected the key on one line".to_string())?;
    let key = text.trim();
    if key.is_empty() {
        return Err("is empty, expected the key".into());
    }
    let mut value = HeaderValue::from_str(key).map_err(|_| {
        "holds characters a header cannot carry, expected the key on one line of visible ASCII"
            .to_string()
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn read_key_sync(path: &Path) -> Result<HeaderValue, String> {
    key_value(&read_small_file(path)?)
}

/// ETag and Last-Modified of the last body fetched, sent back to ask "only if changed".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What a fetch brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the source is as it was when `previous` was fetched; no body was read.
    NotModified,
    /// 200: the whole body (at most `max_size` bytes) and its validators.
    Body { body: Bytes, validators: Validators },
}

/// Why a fetch failed. `url` is the source's URL without userinfo, followed by where a redirect
/// led when the failure happened there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    InvalidUrl {
        url: String,
        problem: String,
    },
    /// The key header's file could not be read or does not hold a usable value.
    ApiKey {
        url: String,
        file: PathBuf,
        problem: String,
    },
    /// No HTTP answer: DNS, refused, reset, closed.
    Connect {
        url: String,
        cause: String,
    },
    ConnectTimeout {
        url: String,
        after: Duration,
    },
    Tls {
        url: String,
        cause: String,
    },
    /// The whole request took longer than `timeout`.
    Timeout {
        url: String,
        after: Duration,
    },
    HttpStatus {
        url: String,
        status: StatusCode,
        /// What a 429 or 503 said in `Retry-After`: no retry before it.
        retry_after: Option<Duration>,
    },
    /// The answer's status line and headers are over the HTTP client's limit (hyper's:
    /// about 400 KiB or 100 headers); nothing more of it is read.
    HeadTooLarge {
        url: String,
    },
    /// The body is over `limit`: as announced by Content-Length, or found while reading.
    TooLarge {
        url: String,
        limit: u64,
        declared: Option<u64>,
    },
    /// A gzip body whose decompressed bytes are over `limit`.
    Inflated {
        url: String,
        limit: u64,
    },
    Redirects {
        url: String,
        limit: u32,
        last: String,
    },
    /// A queued answer that did not become data: failed, expired, or not by the deadline.
    Async {
        url: String,
        problem: String,
    },
    Body {
        url: String,
        cause: String,
    },
    /// A query the service cannot answer as configured (a PxWeb selection naming what the
    /// table does not have), or answers that do not make one dataset; `at` is where in the
    /// config, when it is one key's fault.
    Query {
        url: String,
        at: Option<Box<crate::diagnostic::Diagnostic>>,
        problem: String,
    },
}

impl FetchError {
    /// The `reason` label value of `source_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl { .. } => "invalid_url",
            FetchError::ApiKey { .. } => "api_key",
            FetchError::Connect { .. } | FetchError::ConnectTimeout { .. } => "connect",
            FetchError::Tls { .. } => "tls",
            FetchError::Timeout { .. } => "timeout",
            FetchError::HttpStatus { .. } => "http_status",
            FetchError::TooLarge { .. }
            | FetchError::HeadTooLarge { .. }
            | FetchError::Inflated { .. } => "too_large",
            FetchError::Redirects { .. } => "redirects",
            FetchError::Async { .. } => "async",
            FetchError::Body { .. } => "body",
            FetchError::Query { .. } => "query",
        }
    }

    /// Every reason [`FetchError::reason`] gives, so counters can start at 0.
    pub const REASONS: [&'static str; 11] = [
        "invalid_url",
        "api_key",
        "connect",
        "tls",
        "timeout",
        "http_status",
        "too_large",
        "redirects",
        "async",
        "body",
        "query",
    ];

    /// How long the server asked not to be asked again (`Retry-After` on a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Where in the config the failure is written, when it is one key's fault.
    pub fn at(&self) -> Option<&crate::diagnostic::Diagnostic> {
        match self {
            FetchError::Query { at, .. } => at.as_deref(),
            _ => None,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            FetchError::InvalidUrl { url, .. }
            | FetchError::ApiKey { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::ConnectTimeout { url, .. }
            | FetchError::Tls { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::HttpStatus { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::HeadTooLarge { url }
            | FetchError::Inflated { url, .. }
            | FetchError::Async { url, .. }
            | FetchError::Redirects { url, .. }
            | FetchError::Body { url, .. }
            | FetchError::Query { url, .. } => url,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidUrl { url, problem } => {
                write!(f, "{url}: {problem}, expected an http:// or https:// URL")
            }
            FetchError::ApiKey { url, file, problem } => write!(
                f,
                "{url}: the key for the request header: header_file {} {problem}",
                file.display()
            ),
            FetchError::Connect { url, cause } => write!(
                f,
                "{url}: no HTTP answer ({cause}), expected a server answering"
            ),
            FetchError::ConnectTimeout { url, after } => write!(
                f,
                "{url}: no connection within {} (connect_timeout), expected a server accepting connections",
                show_duration(*after)
            ),
            FetchError::Tls { url, cause } => write!(
                f,
                "{url}: TLS failed ({cause}), expected a certificate trusted by the system roots or ca_file"
            ),
            FetchError::Timeout { url, after } => write!(
                f,
                "{url}: no complete answer within {} (timeout), expected the whole response sooner",
                show_duration(*after)
            ),
            FetchError::HttpStatus { url, status, .. } => write!(
                f,
                "{url}: HTTP {} {}, expected 200 or 304",
                status.as_u16(),
                status.canonical_reason().unwrap_or("(unknown status)")
            ),
            FetchError::TooLarge {
                url,
                limit,
                declared: Some(n),
            } => write!(
                f,
                "{url}: the body is {n} bytes (Content-Length), expected at most {limit} (max_size)"
            ),
            FetchError::TooLarge {
                url,
                limit,
                declared: None,
            } => write!(
                f,
                "{url}: the body is over {limit} bytes, expected at most {limit} (max_size)"
            ),
            FetchError::HeadTooLarge { url } => write!(
                f,
                "{url}: the answer's header block is too large (over 100 headers or about 400 KiB), expected a usual HTTP head"
            ),
            FetchError::Inflated { url, limit } => write!(
                f,
                "{url}: the gzip body decompresses to over {limit} bytes, expected at most {limit} (max_size, applied to the decompressed data)"
            ),
            FetchError::Async { url, problem } => write!(
                f,
                "{url}: the service queued the query and {problem}, expected the data within async_timeout"
            ),
            FetchError::Redirects { url, limit, last } => write!(
                f,
                "{url}: more than {limit} redirects (the last to {last}), expected at most {limit} (max_redirects)"
            ),
            FetchError::Body { url, cause } => {
                write!(f, "{url}: reading the body failed ({cause}), expected the whole body")
            }
            FetchError::Query { url, problem, .. } => write!(f, "{url}: {problem}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// Whether a data file named in a config is a remote source rather than a local path.
pub fn is_remote(file: &str) -> bool {
    let lower = file.get(..8).unwrap_or(file).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `url` without its userinfo (`https://user:pass@host/x` -> `https://host/x`), for logs,
/// errors and labels. Text that does not parse as a URL loses what looks like userinfo.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                // Only fails for URLs that cannot have userinfo, which then have none.
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => {
            let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
                return url.to_string();
            };
            let rest = &url[scheme_end..];
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}{}", &url[..scheme_end], &rest[at + 1..]),
                None => url.to_string(),
            }
        }
    }
}

/// The delay before retrying a source after `failures` failures in a row (1 for the first):
/// 5 s doubling each time, at most `min(refresh, 15 min)`, then ±20 % by `jitter` (in 0..1,
/// from the caller's random source) so sources failing together do not retry together.
pub fn backoff(failures: u32, refresh: Duration, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let base = FIRST_BACKOFF.saturating_mul(1 << doublings);
    let cap = refresh.min(MAX_BACKOFF);
    scale(base.min(cap), 0.2, jitter)
}

/// The delay before the next scheduled fetch: `refresh` ±10 % by `jitter` (in 0..1), so
/// sources configured alike do not all fire at once.
pub fn next_refresh(refresh: Duration, jitter: f64) -> Duration {
    scale(refresh, 0.1, jitter)
}

/// `d` times `1 + spread * (2 * jitter - 1)`: jitter 0 shortens by `spread`, 1 lengthens.
fn scale(d: Duration, spread: f64, jitter: f64) -> Duration {
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    d.mul_f64(1.0 + spread * (2.0 * jitter - 1.0))
}

/// A small random source for [`backoff`] and [`next_refresh`] (SplitMix64): jitter needs to
/// differ between sources and runs, not to be unpredictable.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    #[cfg(test)]
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// Seeded from the clock and the process id.
    pub fn from_clock() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// The next number in 0..1.
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The client could not be set up (e.g. the system's root certificates are all unreadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot set up the HTTP client: {}", self.0)
    }
}

impl std::error::Error for BuildError {}

/// Fetches one source with its settings; built once per source and rebuilt on reload. Keeps
/// connections open between fetches.
pub struct Fetcher {
    client: reqwest::Client,
    settings: FetchSettings,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    pub fn new(settings: &FetchSettings) -> Result<Fetcher, BuildError> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("indicator_exporter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.connect_timeout)
            // Redirects are followed here, so the key header never goes to another origin.
            .redirect(reqwest::redirect::Policy::none());
        for cert in &settings.ca_certs {
            let cert =
                reqwest::Certificate::from_der(cert).map_err(|e| BuildError(e.to_string()))?;
            b = b.add_root_certificate(cert);
        }
        let client = b.build().map_err(|e| BuildError(chain(&e)))?;
        Ok(Fetcher {
            client,
            settings: settings.clone(),
        })
    }

    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// GETs `url`, conditionally on `previous`, following redirects, within the settings'
    /// limits. A 304 reads no body; a body is cut off as soon as it is over `max_size`. A
    /// queued answer of a service that queues large queries is followed until its data is
    /// ready. Requests to one host wait for its turn ([`Host`]).
    pub async fn fetch(&self, url: &str, previous: &Validators) -> Result<Fetched, FetchError> {
        self.send(url, previous, None).await
    }

    /// POSTs `body` as JSON to `url` (a PxWeb v1 query), within the same limits as [`Self::fetch`].
    pub async fn post_json(&self, url: &str, body: Bytes) -> Result<Fetched, FetchError> {
        self.send(url, &Validators::default(), Some(&body)).await
    }

    /// A GET (or a POST of `body`) of `url` within the host's turn, a queued answer followed.
    async fn send(
        &self,
        url: &str,
        previous: &Validators,
        body: Option<&Bytes>,
    ) -> Result<Fetched, FetchError> {
        let host = Url::parse(url)
            .ok()
            .map(|u| host(&u, self.settings.max_concurrent_per_host));
        // Held for the whole fetch, asynchronous polls included: one query is one slot.
        let _slot = match &host {
            Some(h) => h.slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let fetched = self
            .fetch_once(url, previous, body, host.as_deref())
            .await?;
        let (Some(poll), Fetched::Body { body, .. }) = (&self.settings.async_poll, &fetched) else {
            return Ok(fetched);
        };
        match queued_id(body) {
            Some(id) => self.follow(url, poll, &id, host.as_deref()).await,
            None => Ok(fetched),
        }
    }

    /// One request of `url` (redirects followed) within `timeout`.
    async fn fetch_once(
        &self,
        url: &str,
        previous: &Validators,
        body: Option<&Bytes>,
        host: Option<&Host>,
    ) -> Result<Fetched, FetchError> {
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, self.fetch_within(url, previous, body, host)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: redact(url),
                after: timeout,
            }),
        }
    }

    /// Polls a queued request's status every `poll.every` until it is available, then
    /// fetches its data; gives up at `async_timeout` from now.
    async fn follow(
        &self,
        url: &str,
        poll: &AsyncPoll,
        id: &str,
        host: Option<&Host>,
    ) -> Result<Fetched, FetchError> {
        let deadline = tokio::time::Instant::now() + self.settings.async_timeout;
        let failed = |problem: String| FetchError::Async {
            url: redact(url),
            problem,
        };
        let status_url = poll.status.replace("{id}", id);
        tracing::info!(source = %redact(url), id, "the service queued the query, polling until its data is ready");
        loop {
            if tokio::time::Instant::now() + poll.every > deadline {
                return Err(failed(format!(
                    "request {id} was not ready within {} (async_timeout)",
                    show_duration(self.settings.async_timeout)
                )));
            }
            tokio::time::sleep(poll.every).await;
            let status = match self
                .fetch_once(&status_url, &Validators::default(), None, host)
                .await?
            {
                Fetched::Body { body, .. } => async_status(&body),
                Fetched::NotModified => AsyncStatus::Waiting,
            };
            match status {
                AsyncStatus::Available => break,
                AsyncStatus::Waiting => {}
                AsyncStatus::Gone(why) => {
                    return Err(failed(format!("request {id} is {why}")));
                }
            }
        }
        let data_url = poll.data.replace("{id}", id);
        self.fetch_once(&data_url, &Validators::default(), None, host)
            .await
    }

    async fn fetch_within(
        &self,
        url: &str,
        previous: &Validators,
        body: Option<&Bytes>,
        host: Option<&Host>,
    ) -> Result<Fetched, FetchError> {
        let mut hop = Hop::start(url)?;
        let key = self.key(&hop.shown).await?;
        loop {
            let at = hop.at();
            if let Some(h) = host {
                h.pace(self.settings.min_interval).await;
            }
            let resp = self
                .request(&hop, previous, key.as_ref(), body)
                .send()
                .await
                .map_err(|e| self.send_error(&e, at.clone()))?;
            let status = resp.status();
            match outcome(status, !previous.is_empty()) {
                Outcome::Redirect => hop.follow(
                    status,
                    resp.headers().get(LOCATION),
                    self.settings.max_redirects,
                )?,
                Outcome::NotModified => return Ok(Fetched::NotModified),
                Outcome::Refused => {
                    let retry_after = retry_after(status, resp.headers(), SystemTime::now());
                    return Err(FetchError::HttpStatus {
                        url: at,
                        status,
                        retry_after,
                    });
                }
                Outcome::Body => return read_body(resp, at, self.settings.max_size).await,
            }
        }
    }

    /// The key header's name and its value read from its file now, so a rotated key is used.
    async fn key(&self, shown: &str) -> Result<Option<(HeaderName, HeaderValue)>, FetchError> {
        let Some(k) = &self.settings.key_header else {
            return Ok(None);
        };
        let value = read_key(&k.file)
            .await
            .map_err(|problem| FetchError::ApiKey {
                url: shown.to_string(),
                file: k.file.clone(),
                problem,
            })?;
        Ok(Some((k.name.clone(), value)))
    }

    /// The GET of `hop`'s URL (a POST of `body` if given): conditional on `previous`, with the
    /// key only on the first origin.
    fn request(
        &self,
        hop: &Hop,
        previous: &Validators,
        key: Option<&(HeaderName, HeaderValue)>,
        body: Option<&Bytes>,
    ) -> reqwest::RequestBuilder {
        let mut req = match body {
            Some(b) => self
                .client
                .post(hop.current.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.clone()),
            None => self.client.get(hop.current.clone()),
        };
        if let Some(etag) = previous.etag.as_deref().and_then(header_value) {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = previous.last_modified.as_deref().and_then(header_value) {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        if let Some((name, value)) = key.filter(|_| hop.sends_key()) {
            req = req.header(name.clone(), value.clone());
        }
        for (name, value) in &self.settings.headers {
            req = req.header(name.clone(), value.clone());
        }
        req.header(reqwest::header::ACCEPT_ENCODING, "gzip")
    }

    fn send_error(&self, e: &reqwest::Error, url: String) -> FetchError {
        if let Some(cause) = tls_cause(e) {
            return FetchError::Tls { url, cause };
        }
        if e.is_timeout() {
            // The whole-request timeout is ours; a timeout inside the client is the connect one.
            return FetchError::ConnectTimeout {
                url,
                after: self.settings.connect_timeout,
            };
        }
        if head_too_large(e) {
            return FetchError::HeadTooLarge { url };
        }
        if e.is_builder() {
            return FetchError::InvalidUrl {
                url,
                problem: innermost(e),
            };
        }
        FetchError::Connect {
            url,
            cause: innermost(e),
        }
    }
}

/// Where a fetch is: the URL asked now, and how many redirects led there from the source's.
#[derive(Debug)]
struct Hop {
    /// The source's URL without userinfo, as errors show it.
    shown: String,
    /// The source's URL: its origin is the only one the key header is sent to.
    start: Url,
    current: Url,
    redirects: u32,
}

impl Hop {
    /// The first hop: the source's URL, refused unless it is http(s) with a host.
    fn start(url: &str) -> Result<Hop, FetchError> {
        let shown = redact(url);
        let start = Url::parse(url).map_err(|e| FetchError::InvalidUrl {
            url: shown.clone(),
            problem: format!("not a URL ({e})"),
        })?;
        check_scheme(&start, &shown)?;
        Ok(Hop {
            current: start.clone(),
            start,
            shown,
            redirects: 0,
        })
    }

    /// The URL named in errors at this hop: the source's, and where redirects led if they did.
    fn at(&self) -> String {
        if self.redirects == 0 {
            self.shown.clone()
        } else {
            self.redirected_to(&self.current)
        }
    }

    fn redirected_to(&self, next: &Url) -> String {
        format!("{} (redirected to {})", self.shown, redact(next.as_str()))
    }

    /// Whether the key header goes with this hop's request: only to the source's own origin,
    /// so a redirect elsewhere never sees the key.
    fn sends_key(&self) -> bool {
        self.current.origin() == self.start.origin()
    }

    /// Moves on to where a redirect (`status`) points, unless its Location is unusable, the
    /// redirects are at `max_redirects` already, or it leads to a URL that is not fetched.
    fn follow(
        &mut self,
        status: StatusCode,
        location: Option<&HeaderValue>,
        max_redirects: u32,
    ) -> Result<(), FetchError> {
        let Some(next) = location
            .and_then(|l| l.to_str().ok())
            .and_then(|l| self.current.join(l).ok())
        else {
            return Err(FetchError::InvalidUrl {
                url: self.at(),
                problem: format!("HTTP {} without a usable Location header", status.as_u16()),
            });
        };
        if self.redirects == max_redirects {
            return Err(FetchError::Redirects {
                url: self.shown.clone(),
                limit: max_redirects,
                last: redact(next.as_str()),
            });
        }
        check_scheme(&next, &self.redirected_to(&next))?;
        self.redirects += 1;
        self.current = next;
        Ok(())
    }
}

/// Whether the client gave up on an answer because its head was too large.
fn head_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// The delay a 429 or 503 asks for in `Retry-After` (delay-seconds or an HTTP date, RFC 9110
/// 10.2.3), from `now`; None for other statuses or a value that is neither.
fn retry_after(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Digits beyond u64 are more than any cap: the longest delay.
        return Some(v.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What an answer's status makes of the fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A redirect to follow (any 3xx but 304).
    Redirect,
    /// 304 to a conditional request: the source has not changed.
    NotModified,
    /// 200 or 203: the body is the data.
    Body,
    /// Anything else, a 304 to an unconditional request included: an `http_status` failure.
    Refused,
}

/// The outcome of `status`, the request having been `conditional` (validators were sent).
fn outcome(status: StatusCode, conditional: bool) -> Outcome {
    if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
        Outcome::Redirect
    } else if status == StatusCode::NOT_MODIFIED && conditional {
        Outcome::NotModified
    } else if status == StatusCode::OK || status == StatusCode::NON_AUTHORITATIVE_INFORMATION {
        Outcome::Body
    } else {
        Outcome::Refused
    }
}

/// The body of an accepted answer with its validators, refused as soon as it is known to be
/// over `limit`: by its Content-Length before reading, else while reading.
async fn read_body(
    mut resp: reqwest::Response,
    at: String,
    limit: u64,
) -> Result<Fetched, FetchError> {
    if let Some(n) = resp.content_length().filter(|&n| n > limit) {
        return Err(FetchError::TooLarge {
            url: at,
            limit,
            declared: Some(n),
        });
    }
    let validators = Validators {
        etag: header_text(&resp, ETAG),
        last_modified: header_text(&resp, LAST_MODIFIED),
    };
    let gzip = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let capacity = resp.content_length().unwrap_or(0).min(limit);
    let mut body = Capped {
        bytes: BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0)),
        limit,
    };
    // Decompressed as it arrives, so a small body that inflates past the limit is cut off
    // there and never held whole.
    let mut inflate = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    let inflated = |at: String| FetchError::Inflated { url: at, limit };
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => match inflate.as_mut() {
                Some(d) => {
                    if let Err(e) = inflate_into(d, &chunk, &mut body) {
                        return Err(match e {
                            Inflate::Over => inflated(at),
                            Inflate::Bad(cause) => FetchError::Body { url: at, cause },
                        });
                    }
                }
                None => {
                    if body.push(&chunk).is_err() {
                        return Err(FetchError::TooLarge {
                            url: at,
                            limit,
                            declared: None,
                        });
                    }
                }
            },
            Ok(None) => break,
            Err(e) => {
                return Err(FetchError::Body {
                    url: at,
                    cause: innermost(&e),
                })
            }
        }
    }
    if let Some(d) = inflate {
        let rest = d.finish().map_err(|e| FetchError::Body {
            url: at.clone(),
            cause: format!("gzip: {e}"),
        })?;
        if body.push(&rest).is_err() {
            return Err(inflated(at));
        }
    }
    Ok(Fetched::Body {
        body: body.bytes.freeze(),
        validators,
    })
}

/// A body being read, refused past `limit` bytes.
struct Capped {
    bytes: BytesMut,
    limit: u64,
}

impl Capped {
    fn push(&mut self, chunk: &[u8]) -> Result<(), ()> {
        if (self.bytes.len() + chunk.len()) as u64 > self.limit {
            return Err(());
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
}

enum Inflate {
    Over,
    Bad(String),
}

/// Feeds one compressed chunk to the decoder and moves what it decompressed into `body`.
fn inflate_into(
    d: &mut flate2::write::GzDecoder<Vec<u8>>,
    chunk: &[u8],
    body: &mut Capped,
) -> Result<(), Inflate> {
    use std::io::Write;
    // Small steps, so one chunk of a bomb never inflates far past the limit in memory.
    for part in chunk.chunks(8 << 10) {
        d.write_all(part)
            .map_err(|e| Inflate::Bad(format!("gzip: {e}")))?;
        let out = std::mem::take(d.get_mut());
        body.push(&out).map_err(|()| Inflate::Over)?;
    }
    Ok(())
}

/// One host's turn-taking, shared by every [`Fetcher`] of the process: at most `slots`
/// fetches in flight, and `min_interval` between the starts of two requests.
pub(crate) struct Host {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    size: u32,
    last: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Host {
    /// Waits until `min_interval` has passed since the host's last request, and takes the
    /// turn. Waiters queue on the lock, so each one keeps the interval after the one before.
    async fn pace(&self, min_interval: Duration) {
        let mut last = self.last.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until(at + min_interval).await;
        }
        *last = Some(tokio::time::Instant::now());
    }
}

/// Every host fetched from, by `host:port`.
static HOSTS: std::sync::Mutex<std::collections::BTreeMap<String, std::sync::Arc<Host>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The turn-taking of `url`'s host. Sources of one host asking different bounds share the
/// smallest: an entry is made anew only for a smaller one (the fetches under the old bound
/// keep theirs), so a larger bound takes effect at the next start.
fn host(url: &Url, slots: u32) -> std::sync::Arc<Host> {
    let name = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    );
    let mut hosts = HOSTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = hosts.entry(name).or_insert_with(|| new_host(slots));
    if slots < entry.size {
        // Keeps the pace: the new entry starts from the old one's last request.
        let last = entry.last.try_lock().ok().and_then(|l| *l);
        let fresh = new_host(slots);
        *fresh.last.try_lock().expect("a new lock is free") = last;
        *entry = fresh;
    }
    entry.clone()
}

fn new_host(slots: u32) -> std::sync::Arc<Host> {
    std::sync::Arc::new(Host {
        slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots as usize)),
        size: slots,
        last: tokio::sync::Mutex::new(None),
    })
}

/// The key of a queued request, when `body` is a service's "queued" answer (Eurostat's: a
/// SOAP message `<queued><id>…</id><status>SUBMITTED</status></queued>`) rather than data.
fn queued_id(body: &[u8]) -> Option<String> {
    // A queued answer is a few hundred bytes; data is not looked into.
    if body.len() > 16 << 10 {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let queued = &text[text.find("<queued")?..];
    let id = between(queued, "<id>", "</id>")?.trim();
    let safe = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    safe.then(|| id.to_string())
}

#[derive(Debug, PartialEq, Eq)]
enum AsyncStatus {
    Available,
    Waiting,
    /// Expired, unknown or failed: the data will not come.
    Gone(String),
}

/// A queued request's status answer: `AVAILABLE`, or still `SUBMITTED`/`PROCESSING`, or gone.
fn async_status(body: &[u8]) -> AsyncStatus {
    let text = String::from_utf8_lossy(body);
    let status = text
        .rfind("<status>")
        .and_then(|i| between(&text[i..], "<status>", "</status>"))
        .map(str::trim)
        .unwrap_or("");
    match status {
        "AVAILABLE" => AsyncStatus::Available,
        "SUBMITTED" | "PROCESSING" => AsyncStatus::Waiting,
        "" => AsyncStatus::Gone("answered without a status".into()),
        other => AsyncStatus::Gone(crate::diagnostic::excerpt(other).to_lowercase()),
    }
}

/// The text between the first `open` and the `close` after it.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

fn check_scheme(u: &Url, shown: &str) -> Result<(), FetchError> {
    match u.scheme() {
        "http" | "https" if u.host().is_some() => Ok(()),
        "http" | "https" => Err(FetchError::InvalidUrl {
            url: shown.to_string(),
            problem: "no host".into(),
        }),
        other => Err(FetchError::InvalidUrl {
            url: shown.to_string(),
            problem: format!("scheme `{other}` is not fetched"),
        }),
    }
}

async fn read_key(path: &Path) -> Result<HeaderValue, String> {
    let path = path.to_path_buf();
    match tokio::task::spawn_blocking(move || read_key_sync(&path)).await {
        Ok(r) => r,
        Err(e) => Err(format!("could not be read ({e})")),
    }
}

fn header_value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

fn header_text(resp: &reqwest::Response, name: HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The rustls error behind a client error, if the failure was TLS. rustls errors arrive
/// wrapped in `io::Error`s (twice, by the TLS stream and the connector), whose `source()`
/// skips the wrapped error, so look inside them too.
fn tls_cause(e: &reqwest::Error) -> Option<String> {
    fn rustls_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
        rustls_in(inner)
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = rustls_in(err) {
            return Some(r.to_string());
        }
        next = err.source();
    }
    None
}

/// The deepest cause of an error: the client's outer layers name the URL (with userinfo) and
/// say little ("error sending request", "client error (Connect)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// Every layer of an error that has no URL in it (the client builder's).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        parts.push(s.to_string());
        next = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use http_body::Frame;
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    // ---- options and settings ----

    fn options(toml_text: &str) -> FetchOptions {
        toml::from_str(toml_text).expect("valid options")
    }

    /// `line:col: message` of each problem, for exact assertions.
    fn problems(text: &str, base: &Path) -> Vec<String> {
        let errs = options(text).settings(base).expect_err("problems");
        errs.iter()
            .map(|(span, m)| {
                let before = &text[..span.start];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("{line}:{col}: {m}")
            })
            .collect()
    }

    #[test]
    fn defaults_apply_to_unset_keys() {
        let s = options("").settings(Path::new("/")).unwrap();
        assert_eq!(s, FetchSettings::default());
        assert_eq!(s.refresh, Duration::from_secs(3600));
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert_eq!(s.max_size, 64 << 20);
        assert_eq!(s.max_redirects, 5);
        assert_eq!(s.on_start_failure, OnStartFailure::Fail);
    }

    #[test]
    fn every_key_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "s3cret\n").unwrap();
        let s = options(
            "refresh = \"1d\"\nconnect_timeout = \"500ms\"\ntimeout = \"2m\"\nmax_size = \"1KiB\"\n\
             max_redirects = 0\nheader = \"X-API-Key\"\nheader_file = \"key\"\non_start_failure = \"not-ready\"\n",
        )
        .settings(dir.path())
        .unwrap();
        assert_eq!(s.refresh, Duration::from_secs(86_400));
        assert_eq!(s.connect_timeout, Duration::from_millis(500));
        assert_eq!(s.timeout, Duration::from_secs(120));
        assert_eq!(s.max_size, 1024);
        assert_eq!(s.max_redirects, 0);
        assert_eq!(s.on_start_failure, OnStartFailure::NotReady);
        let key = s.key_header.unwrap();
        assert_eq!(key.name.as_str(), "x-api-key");
        assert_eq!(key.file, dir.path().join("key"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<FetchOptions>("refresh = \"1h\"\nretries = 3\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `retries`"), "{e}");
    }

    #[test]
    fn an_input_overrides_its_dataset_key_by_key() {
        let dataset = options("refresh = \"1h\"\ntimeout = \"30s\"\n");
        let input = options("refresh = \"5m\"\nmax_redirects = 1\n");
        let s = dataset.merged(&input).settings(Path::new("/")).unwrap();
        assert_eq!(s.refresh, Duration::from_secs(300));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.max_redirects, 1);
        assert_eq!(s.max_size, DEFAULT_MAX_SIZE);
    }

    #[test]
    fn every_problem_is_reported_at_its_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("not-pem.crt"), "hello\n").unwrap();
        let text = "refresh = \"0s\"\nconnect_timeout = \"10 parsecs\"\ntimeout = \"1d2x\"\nmax_size = \"0\"\n\
                    ca_file = \"not-pem.crt\"\nheader = \"Bad Header\"\nheader_file = \"missing\"\non_start_failure = \"retry\"\n";
        let p = problems(text, dir.path());
        let ca = dir.path().join("not-pem.crt");
        let key = dir.path().join("missing");
        assert_eq!(
            p,
            [
                "1:11: refresh = \"0s\" is too short, expected at least 1s".to_string(),
                "2:19: connect_timeout: invalid duration `10 parsecs`, expected a number and a unit such as 30s, 10m, 1h or 1d".into(),
                "3:11: timeout: invalid duration `1d2x`, expected a number and a unit such as 30s, 10m, 1h or 1d".into(),
                "4:12: max_size: a size of 0 reads nothing, expected at least 1 byte".into(),
                format!("5:11: ca_file {}: holds no certificate, expected PEM `-----BEGIN CERTIFICATE-----` blocks", ca.display()),
                "6:10: invalid header name `Bad Header`, expected a token such as X-API-Key or Authorization".into(),
                format!("7:15: header_file {}: cannot read it: No such file or directory (os error 2)", key.display()),
                "8:20: unknown on_start_failure `retry`, expected \"fail\" or \"not-ready\"".into(),
            ]
        );
    }

    #[test]
    fn header_and_header_file_go_together_and_reserved_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "v").unwrap();
        assert_eq!(
            problems("header = \"X-Key\"\n", dir.path()),
            ["1:10: header is set without header_file, expected header_file naming the file that holds its value"]
        );
        assert_eq!(
            problems("header_file = \"k\"\n", dir.path()),
            ["1:15: header_file is set without header, expected header naming the header it is sent in, such as X-API-Key"]
        );
        assert_eq!(
            problems("header = \"If-None-Match\"\nheader_file = \"k\"\n", dir.path()),
            ["1:10: header `If-None-Match` is set by the exporter itself, expected an API key header such as X-API-Key or Authorization"]
        );
    }

    #[test]
    fn a_key_file_that_cannot_be_a_header_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "top\nsecret\n").unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let p = problems("header = \"X-Key\"\nheader_file = \"k\"\n", dir.path());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].ends_with(": holds characters a header cannot carry, expected the key on one line of visible ASCII"), "{p:?}");
        assert!(!p[0].contains("secret") && !p[0].contains("top"), "{p:?}");
        let p = problems("header = \"X-Key\"\nheader_file = \"empty\"\n", dir.path());
        assert!(p[0].ends_with("empty: is empty, expected the key"), "{p:?}");
        let p = problems("header = \"X-Key\"\nheader_file = \".\"\n", dir.path());
        assert!(
            p[0].ends_with(": is not a regular file, expected a file"),
            "{p:?}"
        );
    }

    #[test]
    fn a_duration_option_is_checked_against_its_minimum() {
        let second = Duration::from_secs(1);
        assert_eq!(checked_duration("refresh", "1s", second), Ok(second));
        assert_eq!(
            checked_duration("refresh", "999ms", second),
            Err("refresh = \"999ms\" is too short, expected at least 1s".into())
        );
        assert_eq!(
            checked_duration("timeout", "0s", Duration::from_millis(1)),
            Err("timeout = \"0s\" is too short, expected at least 1ms".into())
        );
        assert_eq!(
            checked_duration("timeout", "soon", second),
            Err("timeout: invalid duration `soon`, expected a number and a unit such as 30s, 10m, 1h or 1d".into())
        );
    }

    #[test]
    fn on_start_failure_is_fail_or_not_ready() {
        assert_eq!(on_start_failure("fail"), Ok(OnStartFailure::Fail));
        assert_eq!(on_start_failure("not-ready"), Ok(OnStartFailure::NotReady));
        assert_eq!(
            on_start_failure("Fail"),
            Err("unknown on_start_failure `Fail`, expected \"fail\" or \"not-ready\"".into())
        );
    }

    // ---- backoff and jitter ----

    #[test]
    fn backoff_doubles_from_5s_up_to_the_cap_with_20_percent_jitter() {
        let day = Duration::from_secs(86_400);
        let mid: Vec<u64> = (1..=10).map(|n| backoff(n, day, 0.5).as_secs()).collect();
        assert_eq!(mid, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(backoff(0, day, 0.5), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX, day, 0.5), Duration::from_secs(900));
        assert_eq!(backoff(1, day, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(1, day, 1.0), Duration::from_secs(6));
        assert_eq!(backoff(10, day, 0.0), Duration::from_secs(720));
        assert_eq!(backoff(10, day, 1.0), Duration::from_secs(1080));
        // A short refresh caps the backoff: retrying less often than fetching makes no sense.
        let minute = Duration::from_secs(60);
        assert_eq!(backoff(5, minute, 0.5), minute);
        assert_eq!(backoff(5, minute, 1.0), Duration::from_secs(72));
        // Out-of-range jitter is clamped, NaN is the middle.
        assert_eq!(backoff(1, day, 7.0), Duration::from_secs(6));
        assert_eq!(backoff(1, day, f64::NAN), Duration::from_secs(5));
    }

    #[test]
    fn next_refresh_spreads_by_10_percent() {
        let hour = Duration::from_secs(3600);
        assert_eq!(next_refresh(hour, 0.0), Duration::from_secs(3240));
        assert_eq!(next_refresh(hour, 0.5), hour);
        assert_eq!(next_refresh(hour, 1.0), Duration::from_secs(3960));
    }

    #[test]
    fn jitter_is_in_range_and_spread() {
        let mut j = Jitter::seeded(42);
        let xs: Vec<f64> = (0..10_000).map(|_| j.next_f64()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let low = xs.iter().filter(|&&x| x < 0.1).count();
        assert!((800..1200).contains(&low), "{low}");
        let mut again = Jitter::seeded(42);
        assert_eq!(again.next_f64(), xs[0]);
        assert_ne!(Jitter::seeded(43).next_f64(), xs[0]);
    }

    #[test]
    fn redact_strips_userinfo_only() {
        assert_eq!(
            redact("https://u:p@host:8443/a?b=c"),
            "https://host:8443/a?b=c"
        );
        assert_eq!(redact("https://user@host/a"), "https://host/a");
        assert_eq!(redact("https://host/a/b.csv"), "https://host/a/b.csv");
        assert_eq!(redact("https://u:p@ho st/a"), "https://ho st/a");
        assert_eq!(redact("not a url"), "not a url");
        assert!(is_remote("https://x/y") && is_remote("HTTP://x") && !is_remote("data/x.csv"));
        assert!(!is_remote("http"));
    }

    // ---- redirects and statuses, decided without a server ----

    #[test]
    fn each_status_has_one_outcome() {
        let cases = [
            (200, false, Outcome::Body),
            (203, true, Outcome::Body),
            (301, false, Outcome::Redirect),
            (302, true, Outcome::Redirect),
            (307, false, Outcome::Redirect),
            (308, true, Outcome::Redirect),
            (304, true, Outcome::NotModified),
            (304, false, Outcome::Refused),
            (201, false, Outcome::Refused),
            (204, true, Outcome::Refused),
            (206, false, Outcome::Refused),
            (404, true, Outcome::Refused),
            (500, false, Outcome::Refused),
        ];
        for (code, conditional, expected) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                outcome(status, conditional),
                expected,
                "{code} {conditional}"
            );
        }
    }

    fn location(l: &str) -> HeaderValue {
        HeaderValue::from_str(l).unwrap()
    }

    #[test]
    fn a_redirect_is_followed_and_the_key_stays_with_the_first_origin() {
        let mut hop = Hop::start("https://u:p@data.example/a/x.csv").unwrap();
        assert_eq!(hop.at(), "https://data.example/a/x.csv");
        assert!(hop.sends_key());
        hop.follow(StatusCode::FOUND, Some(&location("../b/y.csv")), 5)
            .unwrap();
        assert_eq!(hop.current.as_str(), "https://u:p@data.example/b/y.csv");
        assert_eq!(
            hop.at(),
            "https://data.example/a/x.csv (redirected to https://data.example/b/y.csv)"
        );
        assert!(hop.sends_key());
        hop.follow(
            StatusCode::MOVED_PERMANENTLY,
            Some(&location("https://cdn.example/y.csv")),
            5,
        )
        .unwrap();
        assert_eq!(hop.redirects, 2);
        assert!(!hop.sends_key());
        // Back on the first origin, the key goes again; another scheme or port is another origin.
        hop.follow(
            StatusCode::FOUND,
            Some(&location("https://data.example/z")),
            5,
        )
        .unwrap();
        assert!(hop.sends_key());
        for other in ["http://data.example/z", "https://data.example:8443/z"] {
            let mut h = Hop::start("https://data.example/a").unwrap();
            h.follow(StatusCode::FOUND, Some(&location(other)), 5)
                .unwrap();
            assert!(!h.sends_key(), "{other}");
        }
    }

    #[test]
    fn a_redirect_is_refused_without_location_over_the_limit_or_to_another_scheme() {
        let e = Hop::start("http://h.example/a")
            .and_then(|mut h| h.follow(StatusCode::FOUND, Some(&location("/b")), 0));
        assert_eq!(e.unwrap_err().reason(), "redirects");
        let mut hop = Hop::start("http://h.example/a").unwrap();
        let e = hop.follow(StatusCode::FOUND, None, 5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "http://h.example/a: HTTP 302 without a usable Location header, expected an http:// or https:// URL"
        );
        assert_eq!(e.reason(), "invalid_url");
        let bad = HeaderValue::from_bytes(b"/caf\xc3\xa9").unwrap();
        let e = hop
            .follow(StatusCode::SEE_OTHER, Some(&bad), 5)
            .unwrap_err();
        assert_eq!(e.reason(), "invalid_url");
        hop.follow(StatusCode::FOUND, Some(&location("/b")), 1)
            .unwrap();
        let e = hop
            .follow(StatusCode::FOUND, Some(&location("/c")), 1)
            .unwrap_err();
        assert_eq!(
            e,
            FetchError::Redirects {
                url: "http://h.example/a".into(),
                limit: 1,
                last: "http://h.example/c".into()
            }
        );
        let e = hop
            .follow(StatusCode::FOUND, Some(&location("ftp://h.example/x")), 5)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "http://h.example/a (redirected to ftp://h.example/x): scheme `ftp` is not fetched, expected an http:// or https:// URL"
        );
        // A refused redirect leaves the hop where it was.
        assert_eq!(hop.current.as_str(), "http://h.example/b");
        assert_eq!(hop.redirects, 1);
    }

    // ---- a loopback server that plays scripted answers ----

    /// One scripted answer: status, headers, body chunks, and whether Content-Length is sent.
    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        chunks: Vec<Bytes>,
        length: bool,
    }

    impl Answer {
        fn new(status: u16, body: &str) -> Answer {
            Answer {
                status,
                headers: Vec::new(),
                chunks: vec![Bytes::copy_from_slice(body.as_bytes())],
                length: true,
            }
        }
        fn header(mut self, k: &str, v: &str) -> Answer {
            self.headers.push((k.into(), v.into()));
            self
        }
    }

    /// A body of chunks, with its exact size announced or not (then sent chunked).
    struct Chunks {
        chunks: VecDeque<Bytes>,
        length: Option<u64>,
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
        }
        fn size_hint(&self) -> http_body::SizeHint {
            match self.length {
                Some(n) => http_body::SizeHint::with_exact(n),
                None => http_body::SizeHint::default(),
            }
        }
    }

    type Handler = Arc<dyn Fn(&http::Request<Incoming>) -> Answer + Send + Sync>;

    struct TestServer {
        addr: SocketAddr,
        /// Each request's path and headers, in order.
        seen: Arc<Mutex<Vec<(String, http::HeaderMap)>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl TestServer {
        async fn start(
            handler: impl Fn(&http::Request<Incoming>) -> Answer + Send + Sync + 'static,
        ) -> TestServer {
            TestServer::start_tls(handler, None).await
        }

        async fn start_tls(
            handler: impl Fn(&http::Request<Incoming>) -> Answer + Send + Sync + 'static,
            tls: Option<tokio_rustls::TlsAcceptor>,
        ) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let handler: Handler = Arc::new(handler);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let seen2 = seen.clone();
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (handler, seen, tls) = (handler.clone(), seen2.clone(), tls.clone());
                    tokio::spawn(async move {
                        let service =
                            hyper::service::service_fn(move |req: http::Request<Incoming>| {
                                seen.lock()
                                    .unwrap()
                                    .push((req.uri().to_string(), req.headers().clone()));
                                let a = handler(&req);
                                let mut resp = http::Response::builder().status(a.status);
                                for (k, v) in &a.headers {
                                    resp = resp.header(k, v);
                                }
                                let length = a
                                    .length
                                    .then(|| a.chunks.iter().map(|c| c.len() as u64).sum());
                                let body = Chunks {
                                    chunks: a.chunks.into(),
                                    length,
                                };
                                async move { Ok::<_, Infallible>(resp.body(body).unwrap()) }
                            });
                        let http = hyper::server::conn::http1::Builder::new();
                        match tls {
                            Some(acceptor) => {
                                if let Ok(s) = acceptor.accept(stream).await {
                                    let _ = http.serve_connection(TokioIo::new(s), service).await;
                                }
                            }
                            None => {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    });
                }
            });
            TestServer { addr, seen, task }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn requests(&self) -> Vec<(String, http::HeaderMap)> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn fetcher(f: impl FnOnce(&mut FetchSettings)) -> Fetcher {
        let mut s = FetchSettings::default();
        f(&mut s);
        Fetcher::new(&s).expect("client")
    }

    fn body_of(f: Fetched) -> (String, Validators) {
        match f {
            Fetched::Body { body, validators } => {
                (String::from_utf8(body.to_vec()).unwrap(), validators)
            }
            Fetched::NotModified => panic!("expected a body, got 304"),
        }
    }

    // ---- fetching ----

    #[tokio::test]
    async fn an_etag_is_sent_back_and_304_reads_no_body() {
        let server = TestServer::start(|req| {
            if req
                .headers()
                .get("if-none-match")
                .is_some_and(|v| v == "\"v1\"")
            {
                Answer::new(304, "")
            } else {
                Answer::new(200, "year,value\n2024,1\n").header("ETag", "\"v1\"")
            }
        })
        .await;
        let f = fetcher(|_| {});
        let (body, v) = body_of(
            f.fetch(&server.url("/a.csv"), &Validators::default())
                .await
                .unwrap(),
        );
        assert_eq!(body, "year,value\n2024,1\n");
        assert_eq!(
            v,
            Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None
            }
        );
        assert_eq!(
            f.fetch(&server.url("/a.csv"), &v).await.unwrap(),
            Fetched::NotModified
        );
        let seen = server.requests();
        assert_eq!(seen.len(), 2);
        assert!(seen[0].1.get("if-none-match").is_none());
        assert_eq!(seen[1].1.get("if-none-match").unwrap(), "\"v1\"");
        assert!(seen[1]
            .1
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("indicator_exporter/"));
    }

    #[tokio::test]
    async fn last_modified_is_sent_back_as_if_modified_since() {
        const LM: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
        let server = TestServer::start(|req| {
            if req
                .headers()
                .get("if-modified-since")
                .is_some_and(|v| v == LM)
            {
                Answer::new(304, "")
            } else {
                Answer::new(200, "x").header("Last-Modified", LM)
            }
        })
        .await;
        let f = fetcher(|_| {});
        let (_, v) = body_of(
            f.fetch(&server.url("/"), &Validators::default())
                .await
                .unwrap(),
        );
        assert_eq!(v.last_modified.as_deref(), Some(LM));
        assert_eq!(v.etag, None);
        assert_eq!(
            f.fetch(&server.url("/"), &v).await.unwrap(),
            Fetched::NotModified
        );
        assert_eq!(server.requests()[1].1.get("if-modified-since").unwrap(), LM);
    }

    #[tokio::test]
    async fn a_304_to_an_unconditional_request_is_an_error() {
        let server = TestServer::start(|_| Answer::new(304, "")).await;
        let e = fetcher(|_| {})
            .fetch(&server.url("/x"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "http_status");
    }

    #[tokio::test]
    async fn a_server_error_names_the_url_and_the_status() {
        let server = TestServer::start(|_| Answer::new(500, "oops")).await;
        let url = server.url("/data.csv");
        let e = fetcher(|_| {})
            .fetch(&url, &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "http_status");
        assert_eq!(
            e.to_string(),
            format!("{url}: HTTP 500 Internal Server Error, expected 200 or 304")
        );
    }

    #[tokio::test]
    async fn a_429_or_503_carries_its_retry_after_and_other_statuses_do_not() {
        let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let server = TestServer::start(move |req| match req.uri().path() {
            "/429" => Answer::new(429, "").header("Retry-After", "120"),
            "/503" => Answer::new(503, "").header("Retry-After", &in_an_hour),
            _ => Answer::new(500, "").header("Retry-After", "120"),
        })
        .await;
        let f = fetcher(|_| {});
        let after = |path: &'static str| {
            let (f, url) = (&f, server.url(path));
            async move {
                let e = f.fetch(&url, &Validators::default()).await.unwrap_err();
                assert_eq!(e.reason(), "http_status");
                e.retry_after()
            }
        };
        assert_eq!(after("/429").await, Some(Duration::from_secs(120)));
        let d = after("/503").await.unwrap();
        assert!(
            (Duration::from_secs(3590)..=Duration::from_secs(3600)).contains(&d),
            "{d:?}"
        );
        assert_eq!(after("/500").await, None);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let read = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                reqwest::header::RETRY_AFTER,
                HeaderValue::from_str(v).unwrap(),
            );
            retry_after(StatusCode::SERVICE_UNAVAILABLE, &h, now)
        };
        assert_eq!(read("0"), Some(Duration::ZERO));
        assert_eq!(read(" 86400 "), Some(Duration::from_secs(86_400)));
        assert_eq!(read("99999999999999999999999"), Some(Duration::MAX));
        assert_eq!(
            read("Wed, 21 Oct 2015 07:29:30 GMT"),
            Some(Duration::from_secs(90))
        );
        // A date already past: no wait of its own (the backoff still applies).
        assert_eq!(read("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(read("soon"), None);
        assert_eq!(read("-5"), None);
        assert_eq!(read("1.5"), None);
    }

    /// A loopback server that answers every request with `head` as its status line and
    /// headers, then an empty body.
    async fn raw_server(head: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    // The client hangs up once the head is too large: errors are expected.
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(b"content-length: 0\r\n\r\n").await;
                });
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_header_block_too_large_is_counted_as_too_large_not_connect() {
        let one_huge = format!("HTTP/1.1 200 OK\r\nx-pad: {}\r\n", "a".repeat(1 << 20));
        let many: String = (0..150).map(|i| format!("x-pad-{i}: a\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}");
        for head in [one_huge, many] {
            let (addr, task) = raw_server(head).await;
            let url = format!("http://{addr}/data.csv");
            let e = fetcher(|_| {})
                .fetch(&url, &Validators::default())
                .await
                .unwrap_err();
            task.abort();
            assert_eq!(e.reason(), "too_large", "{e}");
            assert_eq!(
                e.to_string(),
                format!("{url}: the answer's header block is too large (over 100 headers or about 400 KiB), expected a usual HTTP head")
            );
        }
    }

    #[tokio::test]
    async fn userinfo_is_not_shown_in_errors() {
        let server = TestServer::start(|_| Answer::new(404, "")).await;
        let url = format!("http://user:pa55@{}/x", server.addr);
        let e = fetcher(|_| {})
            .fetch(&url, &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "http://{}/x: HTTP 404 Not Found, expected 200 or 304",
                server.addr
            )
        );
        // The credentials are still used: sent as basic auth.
        assert!(server.requests()[0].1.get("authorization").is_some());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                open.push(s);
            }
        });
        let f = fetcher(|s| s.timeout = Duration::from_millis(300));
        let started = std::time::Instant::now();
        let e = f
            .fetch(&format!("http://{addr}/slow"), &Validators::default())
            .await
            .unwrap_err();
        let took = started.elapsed();
        hold.abort();
        assert_eq!(e.reason(), "timeout");
        assert_eq!(
            e.to_string(),
            format!("http://{addr}/slow: no complete answer within 300ms (timeout), expected the whole response sooner")
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = fetcher(|_| {})
            .fetch(&format!("http://{addr}/"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "connect");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("http://{addr}/: no HTTP answer (")),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    #[tokio::test]
    async fn invalid_urls_are_refused_before_any_request() {
        let f = fetcher(|_| {});
        for url in ["ftp://host/x", "no scheme", "http://"] {
            let e = f.fetch(url, &Validators::default()).await.unwrap_err();
            assert_eq!(e.reason(), "invalid_url", "{url}: {e}");
            assert!(
                e.to_string()
                    .ends_with("expected an http:// or https:// URL"),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_over_max_size_is_refused_with_or_without_content_length() {
        let server = TestServer::start(|req| {
            let mut a = Answer::new(200, "");
            a.chunks = vec![Bytes::from(vec![b'x'; 600]), Bytes::from(vec![b'y'; 600])];
            a.length = req.uri().path() == "/sized";
            a
        })
        .await;
        let f = fetcher(|s| s.max_size = 1000);
        let e = f
            .fetch(&server.url("/sized"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(
            e,
            FetchError::TooLarge {
                url: server.url("/sized"),
                limit: 1000,
                declared: Some(1200)
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the body is 1200 bytes (Content-Length), expected at most 1000 (max_size)",
                server.url("/sized")
            )
        );
        let e = f
            .fetch(&server.url("/chunked"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(
            e,
            FetchError::TooLarge {
                url: server.url("/chunked"),
                limit: 1000,
                declared: None
            }
        );
        assert_eq!(e.reason(), "too_large");
        // Exactly at the limit is fine, announced or not.
        let f = fetcher(|s| s.max_size = 1200);
        for path in ["/sized", "/chunked"] {
            let (body, _) = body_of(
                f.fetch(&server.url(path), &Validators::default())
                    .await
                    .unwrap(),
            );
            assert_eq!(body.len(), 1200);
        }
    }

    #[tokio::test]
    async fn redirects_are_followed_up_to_the_limit() {
        // /r/N redirects to /r/N-1 (relative Location); /r/0 is the data.
        let server = TestServer::start(|req| {
            let n: u32 = req.uri().path().trim_start_matches("/r/").parse().unwrap();
            if n == 0 {
                Answer::new(200, "final")
            } else {
                Answer::new(302, "").header("Location", &format!("/r/{}", n - 1))
            }
        })
        .await;
        let f = fetcher(|s| s.max_redirects = 3);
        let (body, _) = body_of(
            f.fetch(&server.url("/r/3"), &Validators::default())
                .await
                .unwrap(),
        );
        assert_eq!(body, "final");
        let e = f
            .fetch(&server.url("/r/4"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "redirects");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: more than 3 redirects (the last to {}), expected at most 3 (max_redirects)",
                server.url("/r/4"),
                server.url("/r/0")
            )
        );
        let e = fetcher(|s| s.max_redirects = 0)
            .fetch(&server.url("/r/1"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "redirects");
    }

    #[tokio::test]
    async fn a_failure_after_a_redirect_names_where_it_led() {
        let server = TestServer::start(|req| match req.uri().path() {
            "/moved" => Answer::new(301, "").header("Location", "/gone"),
            _ => Answer::new(410, ""),
        })
        .await;
        let e = fetcher(|_| {})
            .fetch(&server.url("/moved"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} (redirected to {}): HTTP 410 Gone, expected 200 or 304",
                server.url("/moved"),
                server.url("/gone")
            )
        );
    }

    #[tokio::test]
    async fn the_key_header_carries_the_file_and_is_read_at_every_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("api-key");
        std::fs::write(&key_file, "first-key\n").unwrap();
        let other = TestServer::start(|_| Answer::new(200, "elsewhere")).await;
        let other_url = other.url("/x");
        let server = TestServer::start(move |req| match req.uri().path() {
            "/away" => Answer::new(302, "").header("Location", &other_url),
            "/fail" => Answer::new(500, ""),
            _ => Answer::new(200, "ok"),
        })
        .await;
        let s = options("header = \"X-API-Key\"\nheader_file = \"api-key\"\n")
            .settings(dir.path())
            .unwrap();
        let f = Fetcher::new(&s).unwrap();
        body_of(
            f.fetch(&server.url("/a"), &Validators::default())
                .await
                .unwrap(),
        );
        // Rotated: the next fetch sends the new key without a new Fetcher.
        std::fs::write(&key_file, "second-key").unwrap();
        body_of(
            f.fetch(&server.url("/a"), &Validators::default())
                .await
                .unwrap(),
        );
        let seen = server.requests();
        assert_eq!(seen[0].1.get("x-api-key").unwrap(), "first-key");
        assert_eq!(seen[1].1.get("x-api-key").unwrap(), "second-key");

        let e = f
            .fetch(&server.url("/fail"), &Validators::default())
            .await
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("second-key"), "{e:?}");

        // A redirect to another origin does not take the key along.
        let (body, _) = body_of(
            f.fetch(&server.url("/away"), &Validators::default())
                .await
                .unwrap(),
        );
        assert_eq!(body, "elsewhere");
        assert!(server
            .requests()
            .last()
            .unwrap()
            .1
            .get("x-api-key")
            .is_some());
        assert!(other.requests()[0].1.get("x-api-key").is_none());

        // An unreadable key fails the fetch, reason api_key, without a request.
        std::fs::remove_file(&key_file).unwrap();
        let before = server.requests().len();
        let e = f
            .fetch(&server.url("/a"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "api_key");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the key for the request header: header_file {} cannot read it: No such file or directory (os error 2)",
                server.url("/a"),
                key_file.display()
            )
        );
        assert_eq!(server.requests().len(), before);
    }

    /// A CA, and a server certificate it signs for 127.0.0.1 and localhost.
    fn test_pki() -> (String, tokio_rustls::TlsAcceptor) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
        (ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    #[tokio::test]
    async fn https_with_the_ca_file_trusted() {
        let (ca_pem, acceptor) = test_pki();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let server = TestServer::start_tls(|_| Answer::new(200, "secure"), Some(acceptor)).await;
        let url = format!("https://localhost:{}/d.csv", server.addr.port());

        let s = options("ca_file = \"ca.pem\"\n")
            .settings(dir.path())
            .unwrap();
        assert_eq!(s.ca_certs.len(), 1);
        let f = Fetcher::new(&s).unwrap();
        let (body, _) = body_of(f.fetch(&url, &Validators::default()).await.unwrap());
        assert_eq!(body, "secure");
        let by_ip = format!("https://127.0.0.1:{}/d.csv", server.addr.port());
        body_of(f.fetch(&by_ip, &Validators::default()).await.unwrap());

        // Without the CA the server is not trusted.
        let e = fetcher(|_| {})
            .fetch(&url, &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "tls", "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{url}: TLS failed (invalid peer certificate")),
            "{text}"
        );
        assert!(
            text.ends_with("expected a certificate trusted by the system roots or ca_file"),
            "{text}"
        );
    }

    // ---- polite fetching ----

    #[test]
    fn the_polite_keys_are_read_and_a_zero_bound_refused() {
        let s =
            options("min_interval = \"2s\"\nmax_concurrent_per_host = 1\nasync_timeout = \"1m\"\n")
                .settings(Path::new("/"))
                .unwrap();
        assert_eq!(
            (s.min_interval, s.max_concurrent_per_host, s.async_timeout),
            (Duration::from_secs(2), 1, Duration::from_secs(60))
        );
        assert_eq!(
            problems("max_concurrent_per_host = 0\n", Path::new("/")),
            ["1:27: max_concurrent_per_host = 0 would never fetch, expected at least 1"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_host_spaces_the_requests_of_every_fetcher_and_keeps_the_smallest_bound() {
        let url = Url::parse("http://pace.invalid:81/a").unwrap();
        let (a, b) = (host(&url, 3), host(&url, 2));
        assert!(!Arc::ptr_eq(&a, &b), "a smaller bound makes a new entry");
        let c = host(&url, 5);
        assert!(Arc::ptr_eq(&b, &c), "a larger one shares the smaller");
        assert_eq!(c.slots.available_permits(), 2);
        let start = tokio::time::Instant::now();
        // Two fetchers of one host, three requests: each waits a second after the one before.
        b.pace(Duration::from_secs(1)).await;
        c.pace(Duration::from_secs(1)).await;
        b.pace(Duration::from_secs(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn a_queued_answer_and_its_status_are_read() {
        let queued = b"<env:Envelope><env:Body><ns0:syncResponse><queued><id>a1b2-c3</id><status>SUBMITTED</status></queued></ns0:syncResponse></env:Body></env:Envelope>";
        assert_eq!(queued_id(queued).as_deref(), Some("a1b2-c3"));
        assert_eq!(
            queued_id(b"DATAFLOW,TIME_PERIOD,OBS_VALUE\nX,2024,1\n"),
            None
        );
        // An id that would change the polled URL's path is not followed.
        assert_eq!(queued_id(b"<queued><id>../x</id></queued>"), None);
        let status = |s: &str| {
            async_status(format!("<status><key>a1</key><status>{s}</status></status>").as_bytes())
        };
        assert_eq!(status("AVAILABLE"), AsyncStatus::Available);
        assert_eq!(status("PROCESSING"), AsyncStatus::Waiting);
        assert_eq!(status("EXPIRED"), AsyncStatus::Gone("expired".into()));
    }
}
