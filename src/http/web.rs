//! The web configuration of exporter-toolkit (`--web.config.file`): TLS, client
//! certificates, basic auth, security headers and a rate limit, read from the YAML file that
//! node_exporter reads, and applied to each connection and request. Re-read on every reload;
//! a file that does not load keeps the previous one in service.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::http::{auth, tls, web_config as config};
use http::header::{HeaderName, HeaderValue};
use tracing::info;

use crate::diagnostic::Diagnostics;

/// How long a client may take to complete the TLS handshake before the connection is dropped
/// (Go's servers have no such limit by default; a client that never finishes would hold a
/// connection and a task forever).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One loaded web config: what new connections and requests use.
pub struct Active {
    pub tls: Option<tls::Tls>,
    /// Offer HTTP/2 (by ALPN, so over TLS only), as `http_server_config.http2` says.
    pub http2: bool,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// User name and bcrypt hash; empty: no basic auth.
    pub users: Vec<(String, String)>,
    pub rate_limit: Option<auth::RateLimit>,
    /// The config file and every file it named, for the watcher.
    pub files: Vec<PathBuf>,
}

impl Active {
    /// No web config: plain HTTP, no auth.
    pub fn plain() -> Active {
        Active {
            tls: None,
            http2: true,
            headers: Vec::new(),
            users: Vec::new(),
            rate_limit: None,
            files: Vec::new(),
        }
    }

    /// One line for logs and `--config.check`.
    pub fn summary(&self) -> String {
        let mut parts = vec![match &self.tls {
            Some(t) => t.summary.clone(),
            None => "TLS off".to_string(),
        }];
        parts.push(match self.users.len() {
            0 => "basic auth off".to_string(),
            1 => "basic auth for 1 user".to_string(),
            n => format!("basic auth for {n} users"),
        });
        if !self.headers.is_empty() {
            parts.push(format!("{} response headers", self.headers.len()));
        }
        if let Some(r) = &self.rate_limit {
            parts.push(format!(
                "rate limit 1 per {:?}, burst {}",
                r.interval, r.burst
            ));
        }
        parts.join(", ")
    }
}

/// The web config in service, swapped whole by a reload, and what outlives reloads.
pub struct Web {
    path: Option<PathBuf>,
    active: ArcSwap<Active>,
    pub verifier: auth::Verifier,
}

impl Web {
    /// Loads `path` (None: plain HTTP, no auth).
    pub fn load(path: Option<&Path>) -> Result<Web, Diagnostics> {
        let active = match path {
            Some(p) => config::load(p)?,
            None => Active::plain(),
        };
        Ok(Web {
            path: path.map(Path::to_path_buf),
            active: ArcSwap::from_pointee(active),
            verifier: auth::Verifier::default(),
        })
    }

    /// Reads the file again, certificates included, without applying it.
    pub fn reread(&self) -> Result<Option<Active>, Diagnostics> {
        self.path.as_deref().map(config::load).transpose()
    }

    /// Puts a reread config into service for new connections and requests.
    pub fn apply(&self, active: Active) {
        if let Some(p) = &self.path {
            info!(file = %p.display(), web = %active.summary(), "web config reloaded");
        }
        self.active.store(Arc::new(active));
    }

    pub fn current(&self) -> Arc<Active> {
        self.active.load_full()
    }

    /// The web config file and the files it names (empty without `--web.config.file`).
    pub fn files(&self) -> Vec<PathBuf> {
        self.active.load().files.clone()
    }
}

/// Re-read with the catalogue by every full reload, put in service only when all of it is
/// valid.
impl crate::reload::Companion for Web {
    type Loaded = Active;
    fn reread(&self) -> Result<Option<Active>, Diagnostics> {
        Web::reread(self)
    }
    fn apply(&self, active: Active) {
        Web::apply(self, active)
    }
    fn files(&self) -> Vec<PathBuf> {
        Web::files(self)
    }
}

/// `--config.check` for the web config: a summary line, or every error.
pub fn check(path: &Path) -> Result<String, Diagnostics> {
    config::load(path).map(|a| a.summary())
}
