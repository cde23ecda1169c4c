//! The load pipeline, start-up and reload alike: read the config and the data files it names
//! (the only I/O, through [`crate::read`]), parse and validate ([`load`]), then render
//! ([`load_and_render`]), on a blocking thread that is waited for within a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config;
use crate::dataset::{self, DataFile, DataFiles, Dataset};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::expose::snapshot::Snapshot;
use crate::read::{read_text, DEFAULT_MAX_FILE_SIZE};

/// How long a load may take before its caller stops waiting for it.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Loads that outlived their timeout and may still be running (each holds a blocking thread);
/// beyond this many, no new load is started until one ends.
pub const MAX_ABANDONED_LOADS: usize = 4;

/// Bounds on what one load reads and how long it may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest config or data file read, in bytes (`--config.max-file-size`).
    pub max_file_size: u64,
    /// How long [`load_and_render`] waits for the pipeline.
    pub timeout: Duration,
    /// Loads still running after their timeout, shared by every load of one exporter.
    pub abandoned: Arc<AtomicUsize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            timeout: LOAD_TIMEOUT,
            abandoned: Arc::default(),
        }
    }
}

/// The bodies of a dataset's remote sources, by URL as written in the config, as last
/// fetched (or why there is none). A load reads them instead of files.
pub type RemoteBodies = HashMap<String, Result<String, String>>;

/// The whole pipeline, on a blocking thread: a large dataset takes CPU-bound seconds. Waited
/// for at most `limits.timeout`: a load stuck on a file (a hung network mount) fails instead,
/// and the next reload does not wait for it.
pub async fn load_and_render(
    path: &Path,
    limits: &Limits,
    remote: Arc<RemoteBodies>,
) -> Result<Snapshot, Diagnostics> {
    tracing::debug!(config = %path.display(), "loading the dataset");
    let owned = path.to_path_buf();
    let max = limits.max_file_size;
    let fail = |message: String| Err(Diagnostics::one(Diagnostic::file(path, message)));
    match off_thread(limits, move || {
        let d = load_remote(&owned, max, &remote)?;
        Ok(Snapshot::build(Arc::new(d)))
    })
    .await
    {
        Ok(result) => result,
        Err(stuck) => fail(stuck.message(limits)),
    }
}

/// Why [`off_thread`] gave no result.
#[derive(Debug)]
pub enum Stuck {
    /// The work did not finish in time; it may still be running.
    Timeout,
    /// Too many earlier calls are still running past their timeout.
    Busy(usize),
    Panicked(String),
}

impl Stuck {
    /// What a load that gave no result says, as the message of a diagnostic.
    pub fn message(&self, limits: &Limits) -> String {
        match self {
            Stuck::Timeout => format!(
                "loading did not finish within {} s (a file that cannot be read?), expected a load to finish; still serving what was loaded before",
                limits.timeout.as_secs()
            ),
            Stuck::Busy(n) => format!(
                "{n} earlier loads are still running past their timeout (a file that cannot be read?), expected them to end before another starts"
            ),
            Stuck::Panicked(e) => format!("loading failed internally: {e}"),
        }
    }
}

/// Runs `work` on a blocking thread and waits at most `limits.timeout` for it. Work that
/// outlives its wait is counted in `limits.abandoned` until it ends.
pub async fn off_thread<T: Send + 'static>(
    limits: &Limits,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stuck> {
    let abandoned = limits.abandoned.load(Ordering::Acquire);
    if abandoned >= MAX_ABANDONED_LOADS {
        return Err(Stuck::Busy(abandoned));
    }
    // The worker and its waiter agree through `state` on who counts an abandoned load:
    // 0 running, 1 finished, 2 abandoned by the waiter.
    let state = Arc::new(AtomicUsize::new(0));
    let (worker_state, counter) = (state.clone(), limits.abandoned.clone());
    let handle = tokio::task::spawn_blocking(move || {
        let out = work();
        if worker_state.swap(1, Ordering::AcqRel) == 2 {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
        out
    });
    match tokio::time::timeout(limits.timeout, handle).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(Stuck::Panicked(e.to_string())),
        Err(_) => {
            if state
                .compare_exchange(0, 2, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                limits.abandoned.fetch_add(1, Ordering::AcqRel);
            }
            Err(Stuck::Timeout)
        }
    }
}

/// Reads and validates the dataset with the default [`Limits`].
pub fn load(path: &Path) -> Result<Dataset, Diagnostics> {
    load_with(path, DEFAULT_MAX_FILE_SIZE)
}

/// Reads and validates the dataset, reading no file larger than `max_file_size` bytes.
pub fn load_with(path: &Path, max_file_size: u64) -> Result<Dataset, Diagnostics> {
    load_remote(path, max_file_size, &RemoteBodies::new())
}

/// [`load_with`], taking the data files that are URLs from `remote`.
pub fn load_remote(
    path: &Path,
    max_file_size: u64,
    remote: &RemoteBodies,
) -> Result<Dataset, Diagnostics> {
    let text = read_text(path, max_file_size).map_err(|why| {
        Diagnostics::one(Diagnostic::file(
            path,
            format!("cannot read config file: {why}"),
        ))
    })?;
    let (config, mut shape) = config::parse_partial(path, &text);
    let Some(config) = config else {
        return Err(Diagnostics::new(shape));
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut data = DataFiles::new();
    let named = config
        .metrics
        .iter()
        .filter_map(|m| m.get_ref().samples_file.as_ref())
        .chain(config.inputs.iter().map(|i| &i.get_ref().file));
    for f in named {
        if data.contains_key(f.get_ref()) {
            continue;
        }
        let (p, text) = if crate::source::fetch::is_remote(f.get_ref()) {
            let text = remote
                .get(f.get_ref())
                .cloned()
                .unwrap_or_else(|| Err("not fetched yet, expected a body from the source".into()));
            (
                PathBuf::from(crate::source::fetch::redact(f.get_ref())),
                text,
            )
        } else {
            let p = base.join(f.get_ref());
            let text = read_text(&p, max_file_size);
            (p, text)
        };
        data.insert(f.get_ref().clone(), DataFile { path: p, text });
    }
    // The fetch options of remote sources are checked whether or not they are fetched.
    shape.extend(crate::reload::refresh::remote_sources_of(path, &text, &config).1);
    match dataset::build(path, &text, &config, &data) {
        Ok(d) if shape.is_empty() => Ok(d),
        Ok(_) => Err(Diagnostics::new(shape)),
        Err(e) => {
            // Problems of shape first hide what they cause: a metric left out has no labels.
            shape.extend(e.0);
            Err(Diagnostics::new(shape))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_stuck_load_is_abandoned_at_its_timeout_and_counted_until_it_ends() {
        let limits = Limits {
            timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let stuck = off_thread(&limits, move || wait.recv().is_ok()).await;
        assert!(matches!(stuck, Err(Stuck::Timeout)), "{stuck:?}");
        assert_eq!(limits.abandoned.load(Ordering::Acquire), 1);
        // The next load is not held up by the stuck one (given time to run on a busy machine).
        let patient = Limits {
            timeout: Duration::from_secs(30),
            ..limits.clone()
        };
        assert_eq!(off_thread(&patient, || 7).await.unwrap(), 7);
        // Once the stuck load ends, it is no longer counted.
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while limits.abandoned.load(Ordering::Acquire) != 0 {
            assert!(
                Instant::now() < deadline,
                "the abandoned load was never uncounted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn too_many_stuck_loads_refuse_the_next_one() {
        let limits = Limits {
            timeout: Duration::from_millis(20),
            ..Limits::default()
        };
        let mut releases = Vec::new();
        for _ in 0..MAX_ABANDONED_LOADS {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let r = off_thread(&limits, move || wait.recv().is_ok()).await;
            assert!(matches!(r, Err(Stuck::Timeout)));
        }
        let refused = off_thread(&limits, || ()).await;
        assert!(
            matches!(refused, Err(Stuck::Busy(n)) if n == MAX_ABANDONED_LOADS),
            "{refused:?}"
        );
        drop(releases);
    }
}
