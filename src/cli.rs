//! Command-line flags, named as Prometheus exporters name them. Doc comments are the --help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::http::limits::{self, Limits};

/// The default port, outside the 9100–9999 range that Prometheus exporters have filled.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":8905";

/// Serves official indicator datasets, described in TOML configs, as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "indicator_exporter", disable_version_flag = true)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Path to the main configuration file: a dataset, a catalogue of dataset files
    /// (`[catalog]`), or both.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "config.toml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Validate every dataset of the configuration and its data files (remote sources fetched
    /// once), print a summary per dataset or every error, and exit (0 if valid, 1 if not)
    /// without serving.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Reload a dataset when its configuration file or a data file it names changes (including
    /// replacement by rename or symlink swap), and the catalogue when the main file or its
    /// directory of dataset files changes. Idle otherwise: no file is read.
    #[arg(long = "config.watch")]
    pub config_watch: bool,

    /// Serve only this shard of the catalogue: the datasets whose name hashes to N (FNV-1a
    /// 64 of the name, modulo --catalog.shards). Numbered from 0.
    #[arg(
        long = "catalog.shard",
        value_name = "N",
        default_value_t = 0,
        conflicts_with = "shard_from_pod_name"
    )]
    pub shard: u64,

    /// How many shards the catalogue is split into; each dataset is served by exactly one.
    #[arg(long = "catalog.shards", value_name = "M", default_value_t = 1)]
    pub shards: u64,

    /// Take --catalog.shard from a StatefulSet pod's name: the ordinal it ends with
    /// (`indicator-exporter-2` is shard 2). Pass `$(POD_NAME)` from the downward API.
    #[arg(long = "catalog.shard-from-pod-name", value_name = "NAME")]
    pub shard_from_pod_name: Option<String>,

    /// Largest configuration or data file read (bytes, or with a unit: KiB, MiB, GiB, KB, MB,
    /// GB); a larger file is an error that names it. Applies to start-up, reloads and
    /// --config.check.
    #[arg(long = "config.max-file-size", value_name = "SIZE", default_value = "256MiB", value_parser = crate::read::parse_size, global = true)]
    pub max_file_size: u64,

    /// Address to listen on for web interface and telemetry; repeat to listen on several
    /// (`:PORT` listens on all IPv4 and IPv6 interfaces).
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: Vec<String>,

    /// Use systemd socket activation listeners instead of port listeners (Linux only).
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,

    /// Path to the exporter-toolkit web configuration file (YAML) that enables TLS, client
    /// certificates, basic auth and security headers; re-read on every reload.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = telemetry_path)]
    pub telemetry_path: String,

    /// Enable reload via HTTP request (POST or PUT /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Maximum number of parallel scrape requests; more are answered 503 at once. 0 disables
    /// the limit.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = limits::DEFAULT_MAX_REQUESTS)]
    pub max_requests: usize,

    /// Maximum number of open connections (lowered to what the open files limit allows). At
    /// the limit the longest idle connection is closed to make room for a new one; when every
    /// connection is busy, new ones are closed at once.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = limits::DEFAULT_MAX_CONNECTIONS, value_parser = positive)]
    pub max_connections: usize,

    /// How long a client may take to send a request's headers, from the connection's start
    /// (after the TLS handshake) or from the first byte of a later request. 0 disables it.
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub read_header_timeout: Duration,

    /// How long a kept-alive connection may wait for its next request. 0 disables it.
    #[arg(long = "web.idle-timeout", value_name = "DURATION", default_value = "2m", value_parser = duration)]
    pub idle_timeout: Duration,

    /// How long a client may take to read a whole response once it is ready; a client that
    /// has not is disconnected. 0 disables it.
    #[arg(long = "web.write-timeout", value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub write_timeout: Duration,

    /// Directory for what survives a restart: each dataset's last served figures and every
    /// value its series have had (vintages) go to `DIR/state/`, copies of remote SDMX
    /// structures to `DIR/structures/`. A restart then counts and logs the revisions, new
    /// periods and removed series published while the exporter was down, and uses the
    /// structures when their publisher is down. Not set: nothing is kept.
    #[arg(long = "storage.path", value_name = "DIR", global = true)]
    pub storage_path: Option<PathBuf>,

    /// Vintages kept per series under --storage.path, the value served included; the oldest
    /// go first.
    #[arg(long = "storage.vintages.max-per-series", value_name = "N", default_value_t = 100, value_parser = positive)]
    pub vintages_max_per_series: usize,

    /// How long a vintage is kept after it was first seen (`400d`, `5y`, `720h`; 0 keeps them
    /// all). The value served is always kept.
    #[arg(long = "storage.vintages.retention", value_name = "DURATION", default_value = "1825d", value_parser = retention)]
    pub vintages_retention: Duration,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// Print version information and exit.
    #[arg(long = "version")]
    pub version: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write every dataset's history as timestamped samples for backfilling a time-series
    /// database: each period's figure at the last second of its period, series named and
    /// labelled as served minus the period label. Loads and validates like start-up.
    Export(ExportArgs),
    /// Write a dataset config for a publisher file (any format the exporter reads): its
    /// format, components, labels, metrics, units and missing marks found in the file, every
    /// choice said in a comment. The config is then loaded as --config.check loads it and what
    /// it will serve is printed on stderr.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The publisher file, or its http(s) URL.
    #[arg(value_name = "FILE|URL")]
    pub source: String,

    /// An SDMX structure message (file or URL) for SDMX data: its data structure definition
    /// says which component is which, its codelists name the codes.
    #[arg(long = "structure", value_name = "FILE|URL")]
    pub structure: Option<String>,

    /// Where to write the config (`-`: standard output).
    #[arg(long = "output", short = 'o', value_name = "PATH", default_value = "-")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// `openmetrics` (timestamps in seconds, `# EOF`) for `promtool tsdb create-blocks-from
    /// openmetrics`; `prometheus` (text format, timestamps in milliseconds) for
    /// VictoriaMetrics' `/api/v1/import/prometheus`; `csv` (with --vintages) for analysts.
    #[arg(long = "format", value_enum, default_value_t = ExportFormat::Openmetrics)]
    pub format: ExportFormat,

    /// Write the revision history stored under --storage.path instead: every value each
    /// series has had at the time it was first seen, as `NAME_vintage` series (openmetrics,
    /// prometheus) or rows (csv). Reads no configuration.
    #[arg(long = "vintages")]
    pub vintages: bool,

    /// Where to write (`-`: standard output).
    #[arg(long = "output", short = 'o', value_name = "PATH", default_value = "-")]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Openmetrics,
    Prometheus,
    Csv,
}

impl ExportFormat {
    /// The exposition format, None for CSV.
    pub fn encoding(self) -> Option<crate::expose::encode::Format> {
        match self {
            ExportFormat::Openmetrics => Some(crate::expose::encode::Format::OpenMetrics),
            ExportFormat::Prometheus => Some(crate::expose::encode::Format::Text),
            ExportFormat::Csv => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl Cli {
    /// Where state is kept, and for how long, as the `--storage.*` flags set them.
    pub fn storage(&self) -> Option<crate::state::Storage> {
        let retention = crate::state::Retention {
            max_per_series: self.vintages_max_per_series,
            max_age: self.vintages_retention,
        };
        let path = self.storage_path.as_deref()?;
        Some(crate::state::Storage::new(path, retention))
    }

    /// The server's limits as the `--web.*` flags set them.
    pub fn web_limits(&self) -> Limits {
        let on = |d: Duration| (!d.is_zero()).then_some(d);
        Limits {
            read_header_timeout: on(self.read_header_timeout),
            idle_timeout: on(self.idle_timeout),
            write_timeout: on(self.write_timeout),
            max_requests: self.max_requests,
            max_connections: self.max_connections,
        }
    }
}

impl Cli {
    /// The shard of the catalogue this process serves, as the `--catalog.*` flags set it.
    pub fn shard(&self) -> Result<crate::Shard, String> {
        match &self.shard_from_pod_name {
            Some(pod) => crate::Shard::from_pod_name(pod, self.shards),
            None => crate::Shard::new(self.shard, self.shards),
        }
    }
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a positive whole number")),
    }
}

/// A Go duration (`10s`, `2m`, `500ms`; `0`).
fn duration(s: &str) -> Result<Duration, String> {
    limits::parse_timeout(s).map(Option::unwrap_or_default)
}

/// A retention: a Go duration, or a whole number of days (`400d`), weeks (`8w`) or years of
/// 365 days (`5y`), as Prometheus' own retention flags take them.
fn retention(s: &str) -> Result<Duration, String> {
    let days = |n: &str, per: u64| n.parse::<u64>().ok().map(|n| n * per * 86_400);
    let secs = match s.char_indices().last() {
        Some((at, 'd')) => days(&s[..at], 1),
        Some((at, 'w')) => days(&s[..at], 7),
        Some((at, 'y')) => days(&s[..at], 365),
        _ => return duration(s),
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("invalid retention `{s}`, expected a duration such as 400d, 5y or 720h (0 keeps every vintage)"))
}

fn telemetry_path(s: &str) -> Result<String, String> {
    match s {
        _ if !s.starts_with('/') => Err("must start with `/`".into()),
        "/" | "/-/healthy" | "/-/ready" | "/-/reload" => {
            Err(format!("`{s}` is taken by another endpoint"))
        }
        _ => Ok(s.to_string()),
    }
}

/// What `--version` prints, laid out as the Prometheus project's exporters lay it out.
pub fn version_text() -> String {
    format!(
        "indicator_exporter, version {} (revision: {})\n  build date:       {}\n  rust version:     {}\n  platform:         {}/{}\n",
        crate::telemetry::VERSION,
        crate::telemetry::REVISION,
        env!("INDICATOR_EXPORTER_BUILD_DATE"),
        env!("INDICATOR_EXPORTER_RUSTC_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_prometheus_names() {
        let c = Cli::try_parse_from([
            "x",
            "--config.file=a.toml",
            "--web.listen-address=127.0.0.1:0",
            "--log.format=json",
            "--web.enable-lifecycle",
        ])
        .unwrap();
        assert_eq!(c.config_file, PathBuf::from("a.toml"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.enable_lifecycle && !c.config_check);
        assert_eq!(c.telemetry_path, "/metrics");
        assert!(Cli::try_parse_from(["x", "--web.telemetry-path=/-/ready"]).is_err());
        assert!(Cli::try_parse_from(["x", "--web.telemetry-path=metrics"]).is_err());
    }

    #[test]
    fn export_takes_the_config_flag_on_either_side() {
        for args in [
            &["x", "export", "--config.file=a.toml", "--format=prometheus"][..],
            &["x", "--config.file=a.toml", "export", "--format=prometheus"][..],
        ] {
            let c = Cli::try_parse_from(args).unwrap();
            assert_eq!(c.config_file, PathBuf::from("a.toml"));
            let Some(Command::Export(e)) = c.command else {
                panic!("not an export: {args:?}")
            };
            assert_eq!(e.format, ExportFormat::Prometheus);
            assert_eq!(e.output, PathBuf::from("-"));
        }
        let c = Cli::try_parse_from(["x", "export", "-o", "h.om"]).unwrap();
        let Some(Command::Export(e)) = c.command else {
            panic!("not an export")
        };
        assert_eq!(e.format, ExportFormat::Openmetrics);
        assert_eq!(e.output, PathBuf::from("h.om"));
        assert!(Cli::try_parse_from(["x", "export", "--format=xml"]).is_err());
    }

    #[test]
    fn retention_takes_days_weeks_years_and_go_durations() {
        let day = Duration::from_secs(86_400);
        assert_eq!(retention("400d"), Ok(day * 400));
        assert_eq!(retention("8w"), Ok(day * 56));
        assert_eq!(retention("5y"), Ok(day * 5 * 365));
        assert_eq!(retention("720h"), Ok(day * 30));
        assert_eq!(retention("0"), Ok(Duration::ZERO));
        assert!(retention("xd").is_err() && retention("soon").is_err());
        let c = Cli::try_parse_from(["x", "export", "--vintages", "--storage.path", "s"]).unwrap();
        let storage = c.storage().expect("a storage");
        assert_eq!(storage.dir, PathBuf::from("s/state"));
        assert_eq!(storage.retention.max_per_series, 100);
        assert_eq!(storage.retention.max_age, day * 1825);
    }

    #[test]
    fn web_flags() {
        let c = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(c.listen_address, [":8905"]);
        assert_eq!(c.web_config_file, None);
        let c = Cli::try_parse_from([
            "x",
            "--web.listen-address=127.0.0.1:1",
            "--web.listen-address",
            "[::1]:2",
            "--web.config.file=web.yml",
            "--web.systemd-socket",
        ])
        .unwrap();
        assert_eq!(c.listen_address, ["127.0.0.1:1", "[::1]:2"]);
        assert_eq!(c.web_config_file, Some(PathBuf::from("web.yml")));
        assert!(c.systemd_socket);
    }

    #[test]
    fn shard_flags() {
        let shard = |args: &[&str]| Cli::try_parse_from(args).unwrap().shard();
        assert_eq!(shard(&["x"]), Ok(crate::Shard::default()));
        assert_eq!(
            shard(&["x", "--catalog.shard=1", "--catalog.shards=4"]),
            crate::Shard::new(1, 4)
        );
        assert_eq!(
            shard(&[
                "x",
                "--catalog.shard-from-pod-name=ie-3",
                "--catalog.shards=4"
            ]),
            crate::Shard::new(3, 4)
        );
        assert!(shard(&["x", "--catalog.shard=4", "--catalog.shards=4"]).is_err());
        assert!(shard(&["x", "--catalog.shards=0"]).is_err());
        assert!(Cli::try_parse_from([
            "x",
            "--catalog.shard=1",
            "--catalog.shard-from-pod-name=a-1"
        ])
        .is_err());
    }

    #[test]
    fn limit_flags_default_to_the_documented_constants() {
        let d = Cli::try_parse_from(["x"]).unwrap().web_limits();
        let want = Limits::default();
        assert_eq!(d.read_header_timeout, want.read_header_timeout);
        assert_eq!(d.idle_timeout, want.idle_timeout);
        assert_eq!(d.write_timeout, want.write_timeout);
        assert_eq!(d.max_requests, want.max_requests);
        assert_eq!(d.max_connections, want.max_connections);
        let c = Cli::try_parse_from([
            "x",
            "--web.read-header-timeout=500ms",
            "--web.idle-timeout=0",
            "--web.write-timeout=1m30s",
            "--web.max-requests=0",
            "--web.max-connections=10",
        ])
        .unwrap()
        .web_limits();
        assert_eq!(c.read_header_timeout, Some(Duration::from_millis(500)));
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.write_timeout, Some(Duration::from_secs(90)));
        assert_eq!((c.max_requests, c.max_connections), (0, 10));
        assert!(Cli::try_parse_from(["x", "--web.write-timeout=30"]).is_err());
        assert!(Cli::try_parse_from(["x", "--web.max-connections=0"]).is_err());
    }
}
