//! indicator_exporter serves an official indicator dataset as Prometheus metrics.
//!
//! The pipeline, one way, with I/O only at its ends:
//!
//! ```text
//! config.toml ─▶ config::parse ─▶ dataset::build ─▶ Snapshot::build ─▶ server::serve
//!  (+ data files, load::load)      (validated)       (pre-encoded bodies)  (HTTP)
//!                                       ▲
//!   SIGHUP · POST /-/reload · file watch ┘ reload::Reloader runs the same stages
//!                                          (load::load_and_render), swaps the snapshot only
//!                                          when all succeeded, and reports changes::diff.
//! ```

pub mod cli;
pub(crate) mod config;
pub mod dataset;
pub mod diagnostic;
pub mod export;
pub mod expose;
pub mod http;
pub mod init;
pub mod logging;
pub(crate) mod read;
pub mod reload;
pub(crate) mod source;
pub mod state;
pub mod telemetry;

pub use crate::config::shard::Shard;

use std::future::Future;

use crate::http::{server, web};
use crate::reload::{load, watcher};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::dataset::Dataset;
use crate::diagnostic::Diagnostics;
use crate::http::server::AppState;
use crate::reload::Reloader;
use crate::telemetry::Telemetry;

/// What `run` needs beyond the listeners: everything the flags decide.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_file: PathBuf,
    pub telemetry_path: String,
    pub enable_lifecycle: bool,
    pub watch: bool,
    /// Largest file a load reads, and how long a load may take.
    pub limits: load::Limits,
    /// exporter-toolkit web config: TLS, basic auth, headers (`--web.config.file`).
    pub web_config_file: Option<PathBuf>,
    /// Timeouts and caps on connections and requests (`--web.read-header-timeout`, …).
    pub web_limits: http::limits::Limits,
    /// The part of the catalogue served (`--catalog.shard`, `--catalog.shards`).
    pub shard: Shard,
}

/// Loads and validates the dataset, as start-up does, without serving it.
pub fn check(config_file: &std::path::Path) -> Result<Dataset, Diagnostics> {
    load::load(config_file)
}

/// [`check`], reading no file larger than `max_file_size` bytes.
pub fn check_with(
    config_file: &std::path::Path,
    max_file_size: u64,
) -> Result<Dataset, Diagnostics> {
    load::load_with(config_file, max_file_size)
}

/// Loads and validates every dataset of the catalogue, as start-up does (remote sources
/// fetched once), and checks them against one another, without serving them: the load of
/// `--config.check` and `export`.
pub fn check_catalog(
    config_file: &std::path::Path,
    max_file_size: u64,
) -> Result<Vec<Arc<Dataset>>, Diagnostics> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Diagnostics::one(diagnostic::Diagnostic::file(
                config_file,
                format!("cannot start the runtime for remote sources: {e}"),
            ))
        })?;
    let limits = load::Limits {
        max_file_size,
        ..load::Limits::default()
    };
    runtime.block_on(Reloader::check(config_file.to_path_buf(), limits))
}

/// Loads the dataset, then serves it on `listener` until `shutdown` resolves. An invalid
/// dataset is an error before anything is served.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Diagnostics> {
    run_on(settings, vec![listener], shutdown).await
}

/// [`run`] on several listeners (`--web.listen-address` given more than once). The web config
/// is loaded with the dataset; errors in either are all reported before anything is served.
pub async fn run_on(
    settings: Settings,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Diagnostics> {
    let web = web::Web::load(settings.web_config_file.as_deref()).map(Arc::new);
    let telemetry = Arc::new(Telemetry::new());
    let (trigger_tx, trigger_rx) = mpsc::channel(64);
    let (files_tx, files_rx) = watch::channel(Vec::new());
    // Without a web config there is nothing to wait for: the catalogue loads beside it.
    let web = match web {
        Ok(w) => w,
        Err(e) => {
            let loaded = Reloader::start(
                settings.config_file.clone(),
                settings.limits.clone(),
                settings.shard,
                Arc::new(web::Web::load(None)?),
                telemetry,
                files_tx,
                trigger_tx.downgrade(),
            )
            .await;
            let all = loaded.err().into_iter().chain([e]);
            return Err(Diagnostics::new(all.flat_map(|e| e.0).collect()));
        }
    };
    let reloader = Reloader::start(
        settings.config_file.clone(),
        settings.limits.clone(),
        settings.shard,
        web.clone(),
        telemetry.clone(),
        files_tx,
        trigger_tx.downgrade(),
    )
    .await?;
    let (store, status) = (reloader.store.clone(), reloader.status.clone());

    let mut background = vec![tokio::spawn(reloader.run(trigger_rx))];
    #[cfg(unix)]
    background.push(tokio::spawn(reload::on_sighup(trigger_tx.clone())));
    if settings.watch {
        let (changed_tx, changed_rx) = mpsc::channel(16);
        match watcher::watch(files_rx, changed_tx).await {
            Ok(w) => {
                background.push(tokio::spawn(w));
                background.push(tokio::spawn(reload::forward_changes(
                    changed_rx,
                    trigger_tx.clone(),
                )));
            }
            Err(e) => {
                warn!(error = %e, "cannot start the file watcher; reload on file change is off")
            }
        }
    }

    let active = web.current();
    let state = Arc::new(AppState {
        store,
        status,
        telemetry,
        telemetry_path: settings.telemetry_path.clone(),
        enable_lifecycle: settings.enable_lifecycle,
        reload: trigger_tx,
        web,
        limits: settings.web_limits.clone(),
    });
    for listener in &listeners {
        if let Ok(addr) = listener.local_addr() {
            info!(address = %addr, telemetry_path = %settings.telemetry_path, tls = active.tls.is_some(), http2 = active.tls.is_some() && active.http2, "listening");
        }
    }
    if settings.web_config_file.is_some() {
        info!(web = %active.summary(), "web config loaded");
    }
    drop(active);
    server::serve(listeners, state, shutdown).await;
    for task in background {
        task.abort();
    }
    info!("stopped");
    Ok(())
}
