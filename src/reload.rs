//! Reloading: SIGHUP, `POST /-/reload` and a file watcher all send one [`Trigger`] to one
//! task, which runs the same pipeline as start-up and swaps the snapshot only if every stage
//! succeeded. Reloads are serialised by construction: there is one task.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::changes::diff;
use crate::dataset::Dataset;
use crate::diagnostic::Diagnostics;
use crate::load::load_and_render;
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
}

impl Reloader {
    /// Runs the pipeline once; on success swaps the snapshot, else keeps it.
    pub async fn reload(&mut self) -> Result<String, Diagnostics> {
        let started = Instant::now();
        let (dataset, snapshot) = match load_and_render(&self.config_file).await {
            Ok(x) => x,
            Err(e) => {
                self.telemetry.reload_failed(&e);
                return Err(e);
            }
        };
        for change in diff(&self.current, &dataset) {
            self.telemetry.changed(&change);
        }
        self.store.store(Arc::new(snapshot));
        self.telemetry.loaded(&dataset, true, started.elapsed());
        let _ = self.files.send(dataset.files.clone());
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

/// Sends a reload on SIGHUP until the trigger channel closes.
#[cfg(unix)]
pub async fn on_sighup(triggers: mpsc::Sender<Trigger>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP; reload by signal is off");
        return;
    };
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
/// returned future does the rest.
pub fn watch_files(
    mut files: watch::Receiver<Vec<PathBuf>>,
    triggers: mpsc::Sender<Trigger>,
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
    let mut last = fingerprint(&current);
    Ok(async move {
        loop {
            tokio::select! {
                changed = files.changed() => {
                    if changed.is_err() { return; }
                    current = files.borrow_and_update().clone();
                    rewatch(&mut watcher, &mut watched, &current);
                    last = fingerprint(&current);
                    continue;
                }
                ev = events.recv() => if ev.is_none() { return; },
            }
            // One save is often several events (truncate, write, rename, chmod).
            if !quiet(&mut events, DEBOUNCE).await {
                return;
            }
            let now = fingerprint(&current);
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

/// Content hash of the files (a missing file hashes as missing), following symlinks.
fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(Path::new(f)).ok().hash(&mut h);
    }
    h.finish()
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
