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

pub mod calendar;
pub mod changes;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod diagnostic;
pub mod encode;
pub mod export;
pub mod gzip;
pub mod ingest;
pub mod load;
pub mod logging;
pub mod reload;
pub mod render;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod telemetry;
pub mod units;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::dataset::Dataset;
use crate::diagnostic::Diagnostics;
use crate::reload::Reloader;
use crate::server::AppState;
use crate::telemetry::Telemetry;

/// What `run` needs beyond the listener: everything the flags decide.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_file: PathBuf,
    pub telemetry_path: String,
    pub enable_lifecycle: bool,
    pub watch: bool,
    /// Largest file a load reads, and how long a load may take.
    pub limits: load::Limits,
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

/// Loads the dataset, then serves it on `listener` until `shutdown` resolves. An invalid
/// dataset is an error before anything is served.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Diagnostics> {
    let started = Instant::now();
    let (dataset, snapshot) =
        load::load_and_render(&settings.config_file, &settings.limits).await?;
    let telemetry = Arc::new(Telemetry::new());
    telemetry.loaded(&dataset, false, started.elapsed());
    let store = snapshot::store(snapshot);

    let (trigger_tx, trigger_rx) = mpsc::channel(16);
    let (files_tx, files_rx) = watch::channel(dataset.files.clone());
    let reloader = Reloader {
        config_file: settings.config_file.clone(),
        store: store.clone(),
        telemetry: telemetry.clone(),
        current: dataset,
        files: files_tx,
        limits: settings.limits.clone(),
    };
    let mut background = vec![tokio::spawn(reloader.run(trigger_rx))];
    #[cfg(unix)]
    background.push(tokio::spawn(reload::on_sighup(trigger_tx.clone())));
    if settings.watch {
        let max = settings.limits.max_file_size;
        match reload::watch_files(files_rx, trigger_tx.clone(), max).await {
            Ok(watcher) => background.push(tokio::spawn(watcher)),
            Err(e) => {
                warn!(error = %e, "cannot start the file watcher; reload on file change is off")
            }
        }
    }

    let state = Arc::new(AppState {
        store,
        telemetry,
        telemetry_path: settings.telemetry_path.clone(),
        enable_lifecycle: settings.enable_lifecycle,
        reload: trigger_tx,
    });
    if let Ok(addr) = listener.local_addr() {
        info!(address = %addr, telemetry_path = %settings.telemetry_path, "listening");
    }
    server::serve(listener, state, shutdown).await;
    for task in background {
        task.abort();
    }
    info!("stopped");
    Ok(())
}
