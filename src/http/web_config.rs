//! The web config file (`--web.config.file`, exporter-toolkit's format) -> a validated
//! [`Active`] web state: TLS server config, basic auth users, headers, rate limit. Every
//! problem is reported in one run, positioned in the YAML file; certificate and key files are
//! read here, so a config that loads is one that serves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::http::auth::RateLimit;
use crate::http::tls;
use crate::http::web::Active;
use crate::http::yaml::{self, Kind, Node, Pos, Problems};
use crate::read::read_file;

/// Only to name the top-level keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TopLevel {
    tls_server_config: Option<IgnoredAny>,
    http_server_config: Option<IgnoredAny>,
    basic_auth_users: Option<IgnoredAny>,
    rate_limit: Option<IgnoredAny>,
}

/// `tls_server_config`, as exporter-toolkit reads it: an empty string is an unset key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    pub cert: String,
    pub key: String,
    pub client_ca: String,
    pub cert_file: String,
    pub key_file: String,
    pub client_auth_type: String,
    pub client_ca_file: String,
    pub client_allowed_sans: Vec<String>,
    pub min_version: String,
    pub max_version: String,
    pub cipher_suites: Vec<String>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub curve_preferences: Vec<String>,
}

impl TlsServerConfig {
    /// exporter-toolkit's rule: any of these keys turns TLS on (and then cert and key are
    /// required); the others alone do not.
    fn enabled(&self) -> bool {
        [
            &self.cert,
            &self.key,
            &self.cert_file,
            &self.key_file,
            &self.client_ca,
            &self.client_ca_file,
            &self.client_auth_type,
        ]
        .iter()
        .any(|s| !s.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpServerConfig {
    http2: Option<bool>,
    /// Read on its own by [`read_headers`], so a bad `http2` hides no header problem.
    headers: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitConfig {
    interval: Option<GoDuration>,
    burst: Option<i64>,
}

/// Go's YAML reader takes a `time.Duration` as text (`1s`) or as nanoseconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GoDuration {
    Nanos(i64),
    Text(String),
}

/// The security headers exporter-toolkit lets a config set, with their allowed values (none:
/// any value).
pub const HEADERS: [(&str, &[&str]); 5] = [
    ("Content-Security-Policy", &[]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-XSS-Protection", &[]),
    ("Strict-Transport-Security", &[]),
];

/// The largest web config, certificate or key file read: they are a few kilobytes, and only
/// regular files are read (a FIFO would hold up a reload).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Collects problems and warnings while one web config file is read.
pub struct Ctx {
    /// The file's directory: relative paths in the file are relative to it.
    pub base: PathBuf,
    pub problems: Problems,
    pub warnings: Problems,
    /// Files read, for the watcher.
    pub files: Vec<PathBuf>,
}

impl Ctx {
    pub fn problem(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push((pos, message.into()));
    }
    pub fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push((pos, message.into()));
    }
    /// A path from the file, relative to the file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        self.base.join(p)
    }
    /// Reads a file the config names, recording it for the watcher.
    pub fn read(&mut self, key: &str, p: &Path, pos: Pos) -> Option<Vec<u8>> {
        self.files.push(p.to_path_buf());
        match read_file(p, MAX_FILE_SIZE) {
            Ok(b) => Some(b),
            Err(e) => {
                self.problem(pos, format!("cannot read {key} `{}`: {e}", p.display()));
                None
            }
        }
    }
}

/// Reads and validates the web config file at `path`.
pub fn load(path: &Path) -> Result<Active, Diagnostics> {
    let fail = |why: String| Diagnostics::one(Diagnostic::file(path, why));
    let bytes = read_file(path, MAX_FILE_SIZE)
        .map_err(|e| fail(format!("cannot read web config file: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| fail("the web config file is not UTF-8 text, expected YAML".into()))?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut cx = Ctx {
        base,
        problems: Vec::new(),
        warnings: Vec::new(),
        files: vec![path.to_path_buf()],
    };
    let active = read(&text, &mut cx);
    let diag = |(pos, msg): &(Pos, String)| Diagnostic::at(path, pos.0, pos.1, msg.clone());
    if !cx.problems.is_empty() {
        return Err(Diagnostics::new(cx.problems.iter().map(diag).collect()));
    }
    for w in &cx.warnings {
        tracing::warn!(file = %path.display(), "{}", diag(w));
    }
    let mut active = active.expect("no problems means a config");
    active.files = cx.files;
    Ok(active)
}

fn read(text: &str, cx: &mut Ctx) -> Option<Active> {
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        // An empty file is a valid config that changes nothing, as in exporter-toolkit.
        Ok(None) => return Some(Active::plain()),
        Err((pos, msg)) => {
            cx.problem(pos, format!("YAML syntax error: {msg}"));
            return None;
        }
    };
    let Kind::Map(mut entries) = root.kind.clone() else {
        cx.problem(
            root.pos,
            format!(
                "the web config is not a mapping, expected {}",
                yaml::one_of(&yaml::fields::<TopLevel>())
            ),
        );
        return None;
    };
    yaml::check_keys(
        &mut entries,
        "the web config",
        Some(&yaml::fields::<TopLevel>()),
        &mut cx.problems,
    );
    let section = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_key() == Some(name))
            .map(|(k, v)| (k.pos, v))
    };

    let mut http2 = true;
    let mut headers = Vec::new();
    if let Some((_, node)) = section("http_server_config") {
        if let Some(h) =
            yaml::read::<HttpServerConfig>(node, "`http_server_config`", &mut cx.problems)
        {
            http2 = h.http2.unwrap_or(true);
        }
        headers = read_headers(node, cx);
    }

    let mut tls = None;
    if let Some((key_pos, node)) = section("tls_server_config") {
        if let Some(c) =
            yaml::read::<TlsServerConfig>(node, "`tls_server_config`", &mut cx.problems)
        {
            if c.enabled() {
                tls = tls::build(&c, node, key_pos, http2, cx);
            }
        }
    }

    let mut users = Vec::new();
    if let Some((_, node)) = section("basic_auth_users") {
        users = read_users(node, cx);
    }

    let mut rate_limit = None;
    if let Some((_, node)) = section("rate_limit") {
        if let Some(r) = yaml::read::<RateLimitConfig>(node, "`rate_limit`", &mut cx.problems) {
            rate_limit = read_rate_limit(node, &r, cx);
        }
    }

    Some(Active {
        tls,
        http2,
        headers,
        users,
        rate_limit,
        files: Vec::new(),
    })
}

fn read_headers(node: &Node, cx: &mut Ctx) -> Vec<(HeaderName, HeaderValue)> {
    let Some((_, hnode)) = node.entry("headers") else {
        return Vec::new();
    };
    let mut hnode = hnode.clone();
    if let Kind::Map(entries) = &mut hnode.kind {
        yaml::check_keys(entries, "`headers`", None, &mut cx.problems);
    }
    let Some(headers) =
        yaml::read::<BTreeMap<String, String>>(&hnode, "`headers`", &mut cx.problems)
    else {
        return Vec::new();
    };
    let names: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for (name, value) in &headers {
        let key_pos = hnode.key_pos(name);
        let value_pos = hnode.pos_of(name);
        // Case as exporter-toolkit compares it: exactly.
        let Some((canonical, allowed)) = HEADERS.iter().find(|(n, _)| n == name) else {
            cx.problem(
                key_pos,
                format!(
                    "header `{name}` cannot be configured, expected {}",
                    yaml::one_of(&names)
                ),
            );
            continue;
        };
        // Blank means unset, as the toolkit documents.
        if value.is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            cx.problem(
                value_pos,
                format!(
                    "invalid value `{value}` for header {name}, expected {}",
                    yaml::one_of(allowed)
                ),
            );
            continue;
        }
        match HeaderValue::from_str(value) {
            Ok(v) => out.push((HeaderName::from_static(canonical_lower(canonical)), v)),
            Err(_) => cx.problem(
                value_pos,
                format!("invalid value for header {name}, expected visible ASCII text"),
            ),
        }
    }
    out
}

/// `HeaderName::from_static` takes lower case.
fn canonical_lower(name: &str) -> &'static str {
    match name {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

fn read_users(node: &Node, cx: &mut Ctx) -> Vec<(String, String)> {
    let entries = match &node.kind {
        Kind::Null => return Vec::new(),
        Kind::Map(entries) => entries,
        _ => {
            cx.problem(
                node.pos,
                "`basic_auth_users` is not a mapping, expected `user: bcrypt hash` lines",
            );
            return Vec::new();
        }
    };
    let mut entries = entries.clone();
    yaml::check_keys(&mut entries, "`basic_auth_users`", None, &mut cx.problems);
    let mut users = Vec::new();
    for (k, v) in &entries {
        let user = k.as_key().unwrap_or_default().to_string();
        let section = format!("the password hash of `{user}`");
        let Some(hash) = yaml::read::<String>(v, &section, &mut cx.problems) else {
            continue;
        };
        match check_bcrypt(&hash) {
            Ok(()) => users.push((user, hash)),
            Err(why) => cx.problem(
                v.pos,
                format!(
                    "the password hash of `{user}` is not a bcrypt hash ({why}), expected 60 characters such as `$2y$10$` and 53 more, as `htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints"
                ),
            ),
        }
    }
    users
}

/// What Go's `bcrypt.Cost` checks at start-up: the format, the version and the cost.
fn check_bcrypt(hash: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|e: bcrypt::BcryptError| {
        let s = e.to_string();
        s.strip_prefix("Invalid hash: ").unwrap_or(&s).to_string()
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("cost {cost} is outside 4 to 31"));
    }
    Ok(())
}

fn read_rate_limit(node: &Node, r: &RateLimitConfig, cx: &mut Ctx) -> Option<RateLimit> {
    let interval = match &r.interval {
        None => Duration::ZERO,
        Some(GoDuration::Nanos(n)) if *n >= 0 => Duration::from_nanos(*n as u64),
        Some(GoDuration::Text(t)) => match crate::read::parse_go_duration(t) {
            Some(d) => d,
            None => {
                cx.problem(
                    node.pos_of("interval"),
                    format!("invalid interval `{t}` in `rate_limit`, expected a duration such as `1s`, `500ms` or `1m30s`"),
                );
                return None;
            }
        },
        Some(GoDuration::Nanos(n)) => {
            cx.problem(
                node.pos_of("interval"),
                format!("negative interval {n} in `rate_limit`, expected a duration such as `1s`"),
            );
            return None;
        }
    };
    let burst = r.burst.unwrap_or(0);
    let Ok(burst) = u32::try_from(burst) else {
        cx.problem(
            node.pos_of("burst"),
            format!("burst {burst} in `rate_limit` is out of range, expected 0 to 4294967295"),
        );
        return None;
    };
    // An interval of 0 turns the limiter off, as in exporter-toolkit.
    (!interval.is_zero()).then(|| RateLimit::new(interval, burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        match load(&path) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
                .collect(),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_named_as_a_certificate_is_refused_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("server.crt");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo only reads the path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        )
        .unwrap();
        let errors = load(&path).err().expect("refused").to_string();
        assert!(errors.contains(":2:14: cannot read cert_file"), "{errors}");
        assert!(errors.contains(":3:13: cannot read key_file"), "{errors}");
    }

    #[test]
    fn empty_files_and_sections_are_plain_http() {
        assert!(problems("").is_empty());
        assert!(problems("# nothing\n").is_empty());
        assert!(problems("tls_server_config:\nbasic_auth_users:\n").is_empty());
        assert!(problems("tls_server_config:\n  min_version: TLS13\n").is_empty());
    }

    #[test]
    fn every_problem_in_one_run() {
        let got = problems(
            "tls_server_config:\n  cert_fiel: a.crt\nbasic_auth_users:\n  alice: plain\n  bob: $2y$10$short\n  carol: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\nhttp_server_config:\n  headers:\n    X-Powered-By: me\n    X-Frame-Options: allow\nrate_limit:\n  interval: soon\nextra: 1\n",
        );
        assert_eq!(
            got,
            [
                "2:3: unknown key `cert_fiel` in `tls_server_config`, expected one of `cert`, `key`, `client_ca`, `cert_file`, `key_file`, `client_auth_type`, `client_ca_file`, `client_allowed_sans`, `min_version`, `max_version`, `cipher_suites`, `prefer_server_cipher_suites` or `curve_preferences`",
                "4:10: the password hash of `alice` is not a bcrypt hash (the hash format is malformed; expected 60 ASCII bytes), expected 60 characters such as `$2y$10$` and 53 more, as `htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints",
                "5:8: the password hash of `bob` is not a bcrypt hash (the hash format is malformed; expected 60 ASCII bytes), expected 60 characters such as `$2y$10$` and 53 more, as `htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints",
                "9:5: header `X-Powered-By` cannot be configured, expected one of `Content-Security-Policy`, `X-Frame-Options`, `X-Content-Type-Options`, `X-XSS-Protection` or `Strict-Transport-Security`",
                "10:22: invalid value `allow` for header X-Frame-Options, expected one of `deny` or `sameorigin`",
                "12:13: invalid interval `soon` in `rate_limit`, expected a duration such as `1s`, `500ms` or `1m30s`",
                "13:1: unknown key `extra` in the web config, expected one of `tls_server_config`, `http_server_config`, `basic_auth_users` or `rate_limit`",
            ]
        );
    }

    #[test]
    fn tls_needs_cert_and_key() {
        assert_eq!(
            problems("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n"),
            [
                "1:1: `tls_server_config` has no certificate, expected `cert_file` (or `cert`) and `key_file` (or `key`)",
                "2:21: client_auth_type `RequireAndVerifyClientCert` verifies client certificates against a CA, expected `client_ca_file` (or `client_ca`) too",
            ]
        );
    }

    #[test]
    fn type_errors_are_positioned() {
        assert_eq!(
            problems("http_server_config:\n  http2: maybe\n"),
            ["2:10: invalid type: string \"maybe\", expected a boolean in `http_server_config`"]
        );
        assert_eq!(
            problems("basic_auth_users: [alice]\n"),
            ["1:19: `basic_auth_users` is not a mapping, expected `user: bcrypt hash` lines"]
        );
        assert_eq!(
            problems("a: [\n"),
            ["2:1: YAML syntax error: while parsing a node, did not find expected node content"]
        );
    }
}
