//! Reloading: SIGHUP, `POST /-/reload` and a file watcher all send one [`Trigger`] to one
//! task, which runs the same pipeline as start-up and swaps the snapshot only if every stage
//! succeeded. Reloads are serialised by construction: there is one task; a load stuck on a
//! file is given up after [`Limits::timeout`], so it holds up neither later reloads nor
//! shutdown.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::changes::diff;
use crate::dataset::Dataset;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::load::{load_and_render, off_thread, read_file, Limits, LOAD_TIMEOUT};
use crate::snapshot::Store;
use crate::telemetry::Telemetry;

/// Why a reload was asked for. An HTTP trigger carries where to send the outcome.
#[derive(Debug)]
pub enum Trigger {
    Signal,
    Http(oneshot::Sender<Result<String, String>>),
    FileChanged,
}

/// The state the reload task owns: the dataset in service, to diff the next one against.
pub struct Reloader {
    pub config_file: PathBuf,
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    pub current: Dataset,
    /// Tells the watcher which files the dataset in service was read from.
    pub files: watch::Sender<Vec<PathBuf>>,
    pub limits: Limits,
    /// The web config (`--web.config.file`), re-read by every reload too.
    pub web: Arc<crate::web::Web>,
}

impl Reloader {
    /// Runs the pipeline once, web config included; on success swaps the snapshot and the
    /// web config, else keeps both.
    pub async fn reload(&mut self) -> Result<String, Diagnostics> {
        let started = Instant::now();
        // The web config is read off the async threads too, beside the dataset.
        let web = self.web.clone();
        let (web, loaded) = tokio::join!(
            off_thread(&self.limits, move || web.reread()),
            load_and_render(&self.config_file, &self.limits)
        );
        let web = web.unwrap_or_else(|stuck| {
            let at = self.web.files().first().cloned().unwrap_or_default();
            Err(Diagnostics::one(Diagnostic::file(
                &at,
                stuck.message(&self.limits),
            )))
        });
        let ((dataset, snapshot), web) = match (loaded, web) {
            (Ok(x), Ok(w)) => (x, w),
            (loaded, web) => {
                let all = loaded.err().into_iter().chain(web.err());
                let e = Diagnostics::new(all.flat_map(|e| e.0).collect());
                self.telemetry.reload_failed(&e);
                return Err(e);
            }
        };
        for change in diff(&self.current, &dataset) {
            self.telemetry.changed(&change);
        }
        self.store.store(Arc::new(snapshot));
        if let Some(web) = web {
            self.web.apply(web);
        }
        self.telemetry.loaded(&dataset, true, started.elapsed());
        let _ = self
            .files
            .send(crate::web::watched(&dataset.files, &self.web));
        let summary = format!("loaded {}", dataset.summary());
        self.current = dataset;
        Ok(summary)
    }

    pub async fn run(mut self, mut triggers: mpsc::Receiver<Trigger>) {
        while let Some(t) = triggers.recv().await {
            debug!(trigger = ?t, "reload requested");
            let result = self.reload().await.map_err(|e| e.to_string());
            if let Trigger::Http(reply) = t {
                let _ = reply.send(result);
            }
        }
    }
}

/// Set by a SIGHUP that arrives before [`on_sighup`] listens.
static EARLY_SIGHUP: AtomicBool = AtomicBool::new(false);

/// Catches SIGHUP from the start of the process, before the dataset is loaded and the reload
/// task listens: its default action would end the process. A SIGHUP caught then becomes one
/// reload as soon as [`on_sighup`] runs, since the files may have changed after start-up read
/// them.
#[cfg(unix)]
pub fn catch_early_sighup() -> std::io::Result<()> {
    // SAFETY: the action only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal_hook_registry::register(libc::SIGHUP, || EARLY_SIGHUP.store(true, Ordering::SeqCst))
    }
    .map(|_| ())
}

/// Sends a reload on SIGHUP until the trigger channel closes, and one for a SIGHUP caught
/// during start-up ([`catch_early_sighup`]).
#[cfg(unix)]
pub async fn on_sighup(triggers: mpsc::Sender<Trigger>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP; reload by signal is off");
        return;
    };
    // Listening first, then looking: a SIGHUP in between is seen at least once.
    if EARLY_SIGHUP.swap(false, Ordering::SeqCst) {
        info!("SIGHUP received during start-up, reloading");
        if triggers.send(Trigger::Signal).await.is_err() {
            return;
        }
    }
    while hup.recv().await.is_some() {
        info!("SIGHUP received, reloading");
        if triggers.send(Trigger::Signal).await.is_err() {
            return;
        }
    }
}

/// How long a burst of file events must be quiet before it counts as one save.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watches the directories of the dataset's files and sends one [`Trigger::FileChanged`] per
/// quiet burst of events that changed a file's content. Directories, not files, are watched:
/// editors and ConfigMaps replace files by rename or symlink swap, which a file watch misses.
///
/// The watches are in place when this returns, so no change after start-up is missed; the
/// returned future does the rest. Files are read to compare them on a blocking thread, and
/// only as [`read_file`] reads them: a file replaced by a FIFO or a device is never opened.
pub async fn watch_files(
    mut files: watch::Receiver<Vec<PathBuf>>,
    triggers: mpsc::Sender<Trigger>,
    max_file_size: u64,
) -> Result<impl std::future::Future<Output = ()>, notify::Error> {
    let (tx, mut events) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.send(());
        }
    })?;
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let mut current = files.borrow_and_update().clone();
    rewatch(&mut watcher, &mut watched, &current);
    let mut last = fingerprint(current.clone(), max_file_size).await;
    Ok(async move {
        loop {
            tokio::select! {
                changed = files.changed() => {
                    if changed.is_err() { return; }
                    current = files.borrow_and_update().clone();
                    rewatch(&mut watcher, &mut watched, &current);
                    last = fingerprint(current.clone(), max_file_size).await;
                    continue;
                }
                ev = events.recv() => if ev.is_none() { return; },
            }
            // One save is often several events (truncate, write, rename, chmod).
            if !quiet(&mut events, DEBOUNCE).await {
                return;
            }
            let now = fingerprint(current.clone(), max_file_size).await;
            if now != last {
                last = now;
                info!("dataset files changed, reloading");
                if triggers.send(Trigger::FileChanged).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// Waits until no event has arrived for `window`; false if the event source closed.
async fn quiet(events: &mut mpsc::UnboundedReceiver<()>, window: Duration) -> bool {
    loop {
        match tokio::time::timeout(window, events.recv()).await {
            Ok(Some(())) => continue,
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

fn rewatch(watcher: &mut impl notify::Watcher, watched: &mut HashSet<PathBuf>, files: &[PathBuf]) {
    let dirs: HashSet<PathBuf> = files
        .iter()
        .map(|f| match f.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    for d in watched.difference(&dirs) {
        let _ = watcher.unwatch(d);
    }
    for d in dirs.difference(watched) {
        if let Err(e) = watcher.watch(d, notify::RecursiveMode::NonRecursive) {
            warn!(dir = %d.display(), error = %e, "cannot watch directory");
        }
    }
    *watched = dirs;
}

/// Content hash of the files, following symlinks, on a blocking thread. A file that cannot
/// be read (missing, too large, not a regular file) hashes as why: replacing a file by a FIFO
/// is a change, and the reload says what is wrong.
async fn fingerprint(files: Vec<PathBuf>, max_file_size: u64) -> u64 {
    let hash = move || {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in &files {
            f.hash(&mut h);
            read_file(Path::new(f), max_file_size).hash(&mut h);
        }
        h.finish()
    };
    // Hashing that fails or hangs (a hung network mount) counts as a change: the reload
    // that follows reports the problem.
    match tokio::time::timeout(LOAD_TIMEOUT, tokio::task::spawn_blocking(hash)).await {
        Ok(Ok(h)) => h,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_is_one_change_after_a_quiet_window() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let start = tokio::time::Instant::now();
        tokio::spawn(async move {
            for _ in 0..4 {
                tx.send(()).unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Keep the channel open: closing it would end the wait early.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        assert!(quiet(&mut rx, DEBOUNCE).await);
        // The last event came at 300 ms; the window closes 250 ms later.
        assert_eq!(start.elapsed(), Duration::from_millis(300) + DEBOUNCE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_event_source_ends_the_wait() {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        drop(tx);
        assert!(!quiet(&mut rx, DEBOUNCE).await);
    }
}
