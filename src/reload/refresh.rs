//! A dataset's remote sources at run time: the last good body of each URL its config names,
//! and a task per source that re-fetches it on its refresh interval (conditionally, with
//! jittered backoff after failures) and reports to the load task. A body that fails to load
//! is dropped and the last good one kept; a 304 or an unchanged body costs no parse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc::WeakSender;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::reload::load::{RemoteBodies, RemoteSource};
use crate::reload::status::SourceStatus;
use crate::reload::Trigger;
use crate::source::fetch::{
    self, FetchError, FetchSettings, Fetched, Fetcher, Jitter, OnStartFailure, Validators,
};
use crate::source::pxweb;
use crate::telemetry::{FetchResult, Telemetry};

/// The end of one scheduled fetch, sent to the load task.
#[derive(Debug)]
pub struct Done {
    /// The dataset's key (its config file).
    pub key: String,
    /// The URL as written in the config.
    pub url: String,
    /// Which task of that source fetched it: reports of a task since replaced are ignored.
    pub generation: u64,
    pub result: Result<Fetched, FetchError>,
}

/// A body as fetched, and what identifies it.
#[derive(Debug, Clone)]
struct Body {
    bytes: Bytes,
    hash: u64,
    validators: Validators,
}

fn body(bytes: &Bytes, validators: Validators) -> Body {
    Body {
        bytes: bytes.clone(),
        hash: xxhash(bytes),
        validators,
    }
}

/// A fast content hash, to tell an unchanged body without parsing it.
fn xxhash(b: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    b.hash(&mut h);
    h.finish()
}

struct Source {
    settings: FetchSettings,
    /// The PxWeb query, when the source is one (a changed query is another source).
    pxweb: Option<Arc<pxweb::Query>>,
    fetcher: Arc<Client>,
    /// Where the URL is written, for errors at start-up.
    at: Diagnostic,
    /// The last body that loaded.
    good: Option<Body>,
    /// A fetched body being loaded.
    candidate: Option<Body>,
    /// The validators the task sends: the good body's.
    validators: Arc<Mutex<Validators>>,
    /// Failures in a row, for the backoff; shared with the task.
    failures: Arc<Mutex<u32>>,
    /// Told to the task once the body it fetched is dealt with (loaded, refused or unchanged),
    /// so that its next wait counts a body that failed to load as a failure.
    settled: Arc<Notify>,
    /// Whether the candidate came from the task, which waits on `settled`.
    task_waits: bool,
    /// The hash of the last body that failed to load: fetched again, it is not parsed again
    /// (until the dataset is loaded for another reason).
    refused: Option<u64>,
    status: SourceStatus,
    generation: u64,
    task: Option<JoinHandle<()>>,
    /// What the first fetch's 429 or 503 asked in `Retry-After`: the refresh task waits it.
    retry_after: Duration,
    /// Where its last good body is kept on disk (an SDMX structure under `--storage.path`).
    copy: Option<PathBuf>,
}

/// The file under `storage` that keeps the body of `url`: its URL made a file name, cut, and
/// its hash, so that two URLs never share one.
fn copy_path(storage: &Path, url: &str) -> PathBuf {
    let readable: String = fetch::redact(url)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(80)
        .collect();
    let name = format!("{readable}-{:016x}.xml", xxhash(url.as_bytes()));
    storage.join("structures").join(name)
}

/// Writes `bytes` to `path` whole or not at all: a temporary file, then a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("xml.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Source {
    /// The copy on disk, when the first fetch failed and there is one: it becomes the
    /// candidate, and the start goes on with it.
    fn use_copy(&mut self, dataset: &str, telemetry: &Telemetry) -> bool {
        let Some(path) = &self.copy else {
            return false;
        };
        let url = &self.status.url;
        match crate::read::read_file(path, self.settings.max_size) {
            Ok(bytes) => {
                warn!(dataset, source = %url, copy = %path.display(), "publisher unreachable, using the copy kept on disk");
                telemetry.copy_used(dataset, url);
                self.candidate = Some(body(&Bytes::from(bytes), Validators::default()));
                self.status
                    .last_result
                    .push_str(" (using the copy on disk)");
                true
            }
            Err(why) => {
                debug!(dataset, source = %url, copy = %path.display(), why, "no copy on disk");
                false
            }
        }
    }

    /// Keeps a body that loaded on disk, when this source is kept.
    fn keep(&self, bytes: &[u8]) {
        let Some(path) = &self.copy else { return };
        if let Err(e) = write_atomically(path, bytes) {
            warn!(source = %self.status.url, copy = %path.display(), error = %e, "cannot keep a copy on disk");
        }
    }

    /// Takes in the result of the first fetch: a body becomes the candidate for the load;
    /// anything else is the load's error.
    fn first(
        &mut self,
        result: Result<Fetched, FetchError>,
        dataset: &str,
        telemetry: &Telemetry,
    ) -> Option<Diagnostic> {
        self.status.last_attempt = Some(SystemTime::now());
        let url = &self.status.url;
        match result {
            Ok(Fetched::Body {
                body: bytes,
                validators,
            }) => {
                let n = bytes.len() as u64;
                telemetry.fetched(dataset, url, FetchResult::Changed, n);
                self.status.bytes += n;
                self.candidate = Some(body(&bytes, validators));
                None
            }
            Ok(Fetched::NotModified) => {
                // Asked without validators: a server answering 304 is broken.
                telemetry.fetched(dataset, url, FetchResult::Failed("http_status"), 0);
                Some(Diagnostic {
                    message: format!("{url}: 304 Not Modified to a request that was not conditional, expected 200 with the data"),
                    ..self.at.clone()
                })
            }
            Err(e) => {
                telemetry.fetched(dataset, url, FetchResult::Failed(e.reason()), 0);
                warn!(dataset, source = %url, error = %e, "cannot fetch remote source");
                self.status.failures += 1;
                self.status.last_result = format!("failed: {}", e.reason());
                *self.failures.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                self.retry_after = asked_wait(&e);
                if self.use_copy(dataset, telemetry) {
                    return None;
                }
                Some(Diagnostic {
                    message: format!("{e}"),
                    ..e.at().unwrap_or(&self.at).clone()
                })
            }
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The remote sources of one dataset, by URL as written in its config.
#[derive(Default)]
pub struct Sources {
    sources: BTreeMap<String, Source>,
    generations: u64,
}

impl Sources {
    /// Sets up the remote sources the dataset's config names (a source whose settings
    /// changed starts again), fetches those that have no body yet, and hands the bodies to the
    /// load. A source that cannot be fetched is an error of the load, unless it already has a
    /// body.
    pub async fn prepare(
        &mut self,
        wanted: &[RemoteSource],
        key: &str,
        dataset: &str,
        telemetry: &Arc<Telemetry>,
        triggers: &WeakSender<Trigger>,
        storage: Option<&Path>,
    ) -> Result<Arc<RemoteBodies>, Diagnostics> {
        // A load may fail for reasons outside the body (the config, a clash with another
        // dataset): a body refused before this load is parsed again at its next fetch.
        for s in self.sources.values_mut() {
            s.refused = None;
        }
        let mut errors = self.set_up(wanted, dataset, telemetry, storage);
        errors.extend(self.first_fetches(dataset, telemetry).await);
        self.start_refreshes(key, triggers);
        let bodies: RemoteBodies = self
            .sources
            .iter()
            .filter_map(|(url, s)| {
                let b = s.candidate.as_ref().or(s.good.as_ref())?;
                Some((url.clone(), Ok(b.bytes.clone())))
            })
            .collect();
        if errors.is_empty() {
            Ok(Arc::new(bodies))
        } else {
            Err(Diagnostics::new(errors))
        }
    }

    /// Keeps the sources still wanted, and makes new ones (and ones whose settings changed,
    /// keeping their last good body). Returns the sources whose client cannot be made.
    fn set_up(
        &mut self,
        wanted: &[RemoteSource],
        dataset: &str,
        telemetry: &Telemetry,
        storage: Option<&Path>,
    ) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        let keep: Vec<String> = wanted.iter().map(|r| fetch::redact(&r.url)).collect();
        self.sources
            .retain(|u, _| wanted.iter().any(|r| r.url == *u));
        telemetry.sources_removed(dataset, &keep);
        for RemoteSource {
            url,
            settings,
            at,
            pxweb,
            kept,
        } in wanted.iter().cloned()
        {
            if self
                .sources
                .get(&url)
                .is_some_and(|s| s.settings == settings && s.pxweb == pxweb)
            {
                continue;
            }
            let fetcher = match Client::new(&settings, pxweb.clone()) {
                Ok(f) => Arc::new(f),
                Err(e) => {
                    errors.push(Diagnostic {
                        message: e.to_string(),
                        ..at
                    });
                    continue;
                }
            };
            // Keeps the body of a source whose settings changed: it is still the last good.
            let good = self.sources.remove(&url).and_then(|mut s| s.good.take());
            let validators = good
                .as_ref()
                .map(|b| b.validators.clone())
                .unwrap_or_default();
            let status = SourceStatus {
                url: fetch::redact(&url),
                ..SourceStatus::default()
            };
            let source = Source {
                status,
                settings,
                pxweb,
                fetcher,
                at,
                good,
                candidate: None,
                validators: Arc::new(Mutex::new(validators)),
                failures: Arc::default(),
                settled: Arc::default(),
                task_waits: false,
                refused: None,
                generation: 0,
                task: None,
                copy: storage.filter(|_| kept).map(|s| copy_path(s, &url)),
                retry_after: Duration::ZERO,
            };
            self.sources.insert(url, source);
        }
        errors
    }

    /// Fetches every source without a body, all at once; returns those that failed.
    async fn first_fetches(&mut self, dataset: &str, telemetry: &Telemetry) -> Vec<Diagnostic> {
        let firsts: Vec<_> = self
            .sources
            .iter()
            .filter(|(_, s)| s.good.is_none() && s.candidate.is_none())
            .map(|(url, s)| {
                let (url, fetcher) = (url.clone(), s.fetcher.clone());
                tokio::spawn(async move {
                    let r = fetcher.fetch(&url, &Validators::default()).await;
                    (url, r)
                })
            })
            .collect();
        let mut errors = Vec::new();
        for t in firsts {
            let Ok((url, result)) = t.await else { continue };
            let Some(s) = self.sources.get_mut(&url) else {
                continue;
            };
            errors.extend(s.first(result, dataset, telemetry));
        }
        errors
    }

    /// Starts the refresh task of every source that has none, a source still without a body
    /// included: it keeps trying with backoff.
    fn start_refreshes(&mut self, key: &str, triggers: &WeakSender<Trigger>) {
        for (url, s) in self.sources.iter_mut() {
            if s.task.is_some() {
                continue;
            }
            self.generations += 1;
            s.generation = self.generations;
            let schedule = Schedule {
                key: key.to_string(),
                url: url.clone(),
                generation: s.generation,
                validators: s.validators.clone(),
                failures: s.failures.clone(),
                settled: s.settled.clone(),
                triggers: triggers.clone(),
                not_before: std::mem::take(&mut s.retry_after),
            };
            let task = refresh(schedule, s.fetcher.clone(), Jitter::from_clock());
            s.task = Some(tokio::spawn(task));
        }
    }

    /// Whether the dataset may start without its sources: one of them failed and says so.
    pub fn may_wait(&self) -> bool {
        self.sources
            .values()
            .any(|s| s.good.is_none() && s.settings.on_start_failure == OnStartFailure::NotReady)
    }

    /// After a load that used the bodies [`Sources::prepare`] gave: the new bodies become
    /// the good ones when it succeeded, and are dropped when it failed.
    pub fn loaded(&mut self, ok: bool, dataset: &str, telemetry: &Telemetry) {
        for s in self.sources.values_mut() {
            let Some(c) = s.candidate.take() else {
                continue;
            };
            if ok {
                *s.validators.lock().unwrap_or_else(PoisonError::into_inner) = c.validators.clone();
                *s.failures.lock().unwrap_or_else(PoisonError::into_inner) = 0;
                s.status.last_success = Some(SystemTime::now());
                s.status.last_result = "changed".into();
                s.keep(&c.bytes);
                s.good = Some(c);
                s.refused = None;
            } else {
                // A body that does not load is a failure for the backoff, like a failed fetch.
                let mut f = s.failures.lock().unwrap_or_else(PoisonError::into_inner);
                *f = f.saturating_add(1);
                drop(f);
                s.refused = Some(c.hash);
                if s.good.is_some() {
                    // A body already counted as fetched, then refused by the load.
                    telemetry.fetched(dataset, &s.status.url, FetchResult::Failed("invalid"), 0);
                    s.status.failures += 1;
                    s.status.last_result = "failed: invalid".into();
                }
            }
            if std::mem::take(&mut s.task_waits) {
                s.settled.notify_one();
            }
        }
    }

    /// Takes in a scheduled fetch's result; true when it brought a new body to load.
    pub fn take(&mut self, done: Done, dataset: &str, telemetry: &Telemetry) -> bool {
        let Some(s) = self.sources.get_mut(&done.url) else {
            return false;
        };
        if s.generation != done.generation {
            return false;
        }
        s.status.last_attempt = Some(SystemTime::now());
        let url = s.status.url.clone();
        match done.result {
            Ok(Fetched::NotModified) => {
                telemetry.fetched(dataset, &url, FetchResult::NotModified, 0);
                s.status.last_success = s.status.last_attempt;
                s.status.last_result = "not_modified".into();
                false
            }
            Ok(Fetched::Body {
                body: bytes,
                validators,
            }) => {
                let n = bytes.len() as u64;
                s.status.bytes += n;
                let b = body(&bytes, validators);
                if s.good.as_ref().is_some_and(|g| g.hash == b.hash) {
                    telemetry.fetched(dataset, &url, FetchResult::Unchanged, n);
                    *s.validators.lock().unwrap_or_else(PoisonError::into_inner) =
                        b.validators.clone();
                    *s.failures.lock().unwrap_or_else(PoisonError::into_inner) = 0;
                    s.status.last_success = s.status.last_attempt;
                    s.status.last_result = "unchanged".into();
                    s.settled.notify_one();
                    return false;
                }
                if s.refused == Some(b.hash) {
                    // It would fail to load as it did: a failure, and no parse.
                    debug!(dataset, source = %url, "remote source unchanged since it failed to load, not parsed again");
                    telemetry.fetched(dataset, &url, FetchResult::Failed("invalid"), n);
                    let mut f = s.failures.lock().unwrap_or_else(PoisonError::into_inner);
                    *f = f.saturating_add(1);
                    drop(f);
                    s.status.failures += 1;
                    s.status.last_result = "failed: invalid".into();
                    s.settled.notify_one();
                    return false;
                }
                telemetry.fetched(dataset, &url, FetchResult::Changed, n);
                info!(dataset, source = %url, bytes = n, "remote source changed, loading");
                s.candidate = Some(b);
                s.task_waits = true;
                true
            }
            Err(e) => {
                warn!(dataset, source = %url, error = %e, "cannot fetch remote source, keeping the last good data");
                telemetry.fetched(dataset, &url, FetchResult::Failed(e.reason()), 0);
                s.status.failures += 1;
                s.status.last_result = format!("failed: {}", e.reason());
                false
            }
        }
    }

    pub fn status(&self) -> Vec<SourceStatus> {
        self.sources.values().map(|s| s.status.clone()).collect()
    }

    /// Ends every refresh task.
    pub fn stop(&self) {
        for s in self.sources.values() {
            if let Some(t) = &s.task {
                t.abort();
            }
        }
    }
}

/// How long a failure asks not to be asked again: its `Retry-After`, at most a day.
fn asked_wait(e: &FetchError) -> Duration {
    e.retry_after()
        .map_or(Duration::ZERO, |d| d.min(fetch::MAX_RETRY_AFTER))
}

/// What a source's refresh task fetches with: the source's HTTP client, or a test's script.
pub(crate) trait Fetch: Send + Sync + 'static {
    fn fetch(
        &self,
        url: &str,
        previous: &Validators,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send;
    /// The refresh interval while fetches succeed.
    fn every(&self) -> Duration;
}

/// A source's HTTP client: a GET of its URL, or the requests of a PxWeb query.
enum Client {
    Get(Fetcher),
    PxWeb(pxweb::Client),
}

impl Client {
    fn new(
        settings: &FetchSettings,
        pxweb: Option<Arc<pxweb::Query>>,
    ) -> Result<Client, fetch::BuildError> {
        Ok(match pxweb {
            Some(q) => Client::PxWeb(pxweb::Client::new(settings, q)?),
            None => Client::Get(Fetcher::new(settings)?),
        })
    }

    async fn fetch(&self, url: &str, previous: &Validators) -> Result<Fetched, FetchError> {
        match self {
            Client::Get(f) => f.fetch(url, previous).await,
            Client::PxWeb(p) => p.fetch().await,
        }
    }
}

impl Fetch for Client {
    fn fetch(
        &self,
        url: &str,
        previous: &Validators,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send {
        Client::fetch(self, url, previous)
    }
    fn every(&self) -> Duration {
        match self {
            Client::Get(f) => f.settings().refresh,
            Client::PxWeb(p) => p.settings().refresh,
        }
    }
}

/// What a source's refresh task shares with the load task.
struct Schedule {
    key: String,
    url: String,
    generation: u64,
    /// The validators of the good body, sent with each fetch.
    validators: Arc<Mutex<Validators>>,
    /// Failures in a row, for the backoff.
    failures: Arc<Mutex<u32>>,
    /// Notified when a fetched body has been dealt with (see [`Source::settled`]).
    settled: Arc<Notify>,
    triggers: WeakSender<Trigger>,
    /// No first fetch before this (the start-up fetch's `Retry-After`).
    not_before: Duration,
}

/// Fetches one source on its schedule until the load task is gone: after `refresh` (±10 %)
/// while it succeeds, after a growing backoff while it fails (a body that fails to load is a
/// failure), and never sooner than a 429 or 503 asked in `Retry-After` (at most a day).
async fn refresh(s: Schedule, fetcher: Arc<impl Fetch>, mut jitter: Jitter) {
    let every = fetcher.every();
    let mut not_before = s.not_before;
    loop {
        let failed = *s.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = if failed > 0 {
            fetch::backoff(failed, every, jitter.next_f64())
        } else {
            fetch::next_refresh(every, jitter.next_f64())
        };
        tokio::time::sleep(wait.max(not_before)).await;
        let previous = s
            .validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let result = fetcher.fetch(&s.url, &previous).await;
        not_before = result.as_ref().err().map_or(Duration::ZERO, asked_wait);
        // A body counts as a success or a failure once the load task has dealt with it.
        let body = matches!(result, Ok(Fetched::Body { .. }));
        match &result {
            Err(_) => {
                let mut f = s.failures.lock().unwrap_or_else(PoisonError::into_inner);
                *f = f.saturating_add(1);
            }
            Ok(Fetched::NotModified) => {
                *s.failures.lock().unwrap_or_else(PoisonError::into_inner) = 0;
            }
            Ok(Fetched::Body { .. }) => {}
        }
        let Some(tx) = s.triggers.upgrade() else {
            return;
        };
        let done = Done {
            key: s.key.clone(),
            url: s.url.clone(),
            generation: s.generation,
            result,
        };
        if tx.send(Trigger::Fetched(Box::new(done))).await.is_err() {
            return;
        }
        drop(tx);
        if body {
            s.settled.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    /// Answers fetches from a list, in order; the last answer again once the list is spent.
    struct Script {
        answers: Mutex<VecDeque<Result<Fetched, FetchError>>>,
        every: Duration,
    }

    impl Fetch for Script {
        async fn fetch(&self, _: &str, _: &Validators) -> Result<Fetched, FetchError> {
            let mut a = self.answers.lock().unwrap();
            if a.len() > 1 {
                a.pop_front().unwrap()
            } else {
                a.front().cloned().unwrap()
            }
        }
        fn every(&self) -> Duration {
            self.every
        }
    }

    fn refused() -> Result<Fetched, FetchError> {
        Err(FetchError::Connect {
            url: "http://127.0.0.1:9/x".into(),
            cause: "connection refused".into(),
        })
    }

    fn body(text: &str) -> Result<Fetched, FetchError> {
        Ok(Fetched::Body {
            body: Bytes::from(text.to_string()),
            validators: Validators::default(),
        })
    }

    fn too_many_requests(retry_after: Option<Duration>) -> Result<Fetched, FetchError> {
        Err(FetchError::HttpStatus {
            url: "http://127.0.0.1:9/x".into(),
            status: reqwest::StatusCode::TOO_MANY_REQUESTS,
            retry_after,
        })
    }

    /// Runs a refresh task on `answers` with a seeded jitter; returns the times of its first
    /// `n` reports after its start, and the results, on a paused clock. Every body loads.
    async fn schedule(
        answers: Vec<Result<Fetched, FetchError>>,
        every: Duration,
        n: usize,
    ) -> Vec<(Duration, bool)> {
        schedule_loading(answers, every, n, true, Duration::ZERO).await
    }

    /// [`schedule`], the load task taking each body as loaded or not as `loads` says.
    async fn schedule_loading(
        answers: Vec<Result<Fetched, FetchError>>,
        every: Duration,
        n: usize,
        loads: bool,
        not_before: Duration,
    ) -> Vec<(Duration, bool)> {
        let (tx, mut rx) = mpsc::channel(1);
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            every,
        });
        let failures: Arc<Mutex<u32>> = Arc::default();
        let settled: Arc<Notify> = Arc::default();
        let s = Schedule {
            key: "k".into(),
            url: "http://127.0.0.1:9/x".into(),
            generation: 7,
            validators: Arc::default(),
            failures: failures.clone(),
            settled: settled.clone(),
            triggers: tx.downgrade(),
            not_before,
        };
        let started = Instant::now();
        let task = tokio::spawn(refresh(s, script, Jitter::seeded(42)));
        let mut out = Vec::new();
        while out.len() < n {
            let Some(Trigger::Fetched(done)) = rx.recv().await else {
                panic!("the task ended early");
            };
            assert_eq!((done.key.as_str(), done.generation), ("k", 7));
            out.push((started.elapsed(), done.result.is_ok()));
            // What `Sources::loaded` does with a body.
            if let Ok(Fetched::Body { .. }) = done.result {
                let mut f = failures.lock().unwrap();
                *f = if loads { 0 } else { *f + 1 };
                settled.notify_one();
            }
        }
        // The load task goes: the refresh task ends at its next report.
        drop((tx, rx));
        tokio::time::timeout(Duration::from_secs(86_400), task)
            .await
            .expect("the refresh task ends when the load task is gone")
            .unwrap();
        out
    }

    /// The times of the fetches the same seeded jitter gives, for `failures` in a row before
    /// each; the timer wakes on the millisecond at or after each deadline.
    fn expected(failures: &[u32], every: Duration) -> Vec<Duration> {
        let mut jitter = Jitter::seeded(42);
        let mut at = Duration::ZERO;
        failures
            .iter()
            .map(|&f| {
                at += match f {
                    0 => fetch::next_refresh(every, jitter.next_f64()),
                    f => fetch::backoff(f, every, jitter.next_f64()),
                };
                at = Duration::from_millis(at.as_nanos().div_ceil(1_000_000) as u64);
                at
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_source_backs_off_and_a_success_returns_to_the_interval() {
        let hour = Duration::from_secs(3600);
        let answers = vec![refused(), refused(), refused(), body("a"), body("a")];
        let got = schedule(answers, hour, 5).await;
        // Fetches: refresh after start, then 1, 2, 3 failures in a row, then the success.
        let want = expected(&[0, 1, 2, 3, 0], hour);
        let times: Vec<Duration> = got.iter().map(|g| g.0).collect();
        assert_eq!(times, want);
        let oks: Vec<bool> = got.iter().map(|g| g.1).collect();
        assert_eq!(oks, [false, false, false, true, true]);
        // The backoff itself: 5 s, 10 s, 20 s ±20 %, far below the hour.
        let gaps: Vec<u64> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() as u64)
            .collect();
        for (gap, base) in gaps.iter().zip([5_000u64, 10_000, 20_000]) {
            assert!((base * 8 / 10..=base * 12 / 10).contains(gap), "{gaps:?}");
        }
        assert!((3_240_000..=3_960_000).contains(&gaps[3]), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_interval_caps_the_backoff() {
        let every = Duration::from_secs(8);
        let got = schedule(vec![refused()], every, 4).await;
        let times: Vec<Duration> = got.iter().map(|g| g.0).collect();
        assert_eq!(times, expected(&[0, 1, 2, 3], every));
        // Never longer than the interval (±20 %), however many failures.
        let last = times[3] - times[2];
        assert!(last <= Duration::from_millis(9_600), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_not_retried_before_its_retry_after() {
        let hour = Duration::from_secs(3600);
        let two_minutes = Some(Duration::from_secs(120));
        let answers = vec![too_many_requests(two_minutes), body("a"), body("a")];
        let got = schedule(answers, hour, 3).await;
        let times: Vec<Duration> = got.iter().map(|g| g.0).collect();
        // 120 s, not the 5 s backoff; then the interval again.
        let gap = times[1] - times[0];
        assert!(
            (Duration::from_secs(120)..Duration::from_millis(120_001)).contains(&gap),
            "{times:?}"
        );
        assert!(
            times[2] - times[1] > Duration::from_secs(3_000),
            "{times:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_at_start_up_holds_the_first_refresh_until_its_retry_after() {
        // What `Source::first` keeps of a start-up fetch answered 429 with `Retry-After: 120`.
        let asked = asked_wait(&too_many_requests(Some(Duration::from_secs(120))).unwrap_err());
        assert_eq!(asked, Duration::from_secs(120));
        // One failure so far: the backoff alone would retry after 5 s (±20 %).
        let answers = vec![body("a")];
        let every = Duration::from_secs(8);
        let got = schedule_loading(answers, every, 1, true, asked).await;
        assert!(
            (Duration::from_secs(120)..Duration::from_millis(120_001)).contains(&got[0].0),
            "{got:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_capped_at_a_day_and_never_shortens_the_backoff() {
        let hour = Duration::from_secs(3600);
        let week = Some(Duration::from_secs(7 * 86_400));
        let answers = vec![
            too_many_requests(week),
            too_many_requests(Some(Duration::ZERO)),
        ];
        let got = schedule(answers, hour, 3).await;
        let times: Vec<Duration> = got.iter().map(|g| g.0).collect();
        assert_eq!(times[1] - times[0], Duration::from_secs(86_400));
        // `Retry-After: 0` after two failures: the backoff's 10 s (±20 %), not at once.
        let gap = times[2] - times[1];
        assert!(
            (Duration::from_secs(8)..=Duration::from_secs(12)).contains(&gap),
            "{times:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_fails_to_load_backs_off_like_a_failed_fetch() {
        let hour = Duration::from_secs(3600);
        let got = schedule_loading(vec![body("bad")], hour, 4, false, Duration::ZERO).await;
        let times: Vec<Duration> = got.iter().map(|g| g.0).collect();
        assert_eq!(times, expected(&[0, 1, 2, 3], hour));
    }

    fn source(good: Option<&str>) -> Sources {
        let settings = fetch::FetchOptions::default()
            .settings(std::path::Path::new("."))
            .unwrap();
        let fetcher = Arc::new(Client::new(&settings, None).unwrap());
        let mut sources = Sources::default();
        sources.sources.insert(
            "http://127.0.0.1:9/x".into(),
            Source {
                settings,
                pxweb: None,
                fetcher,
                at: Diagnostic::file(std::path::Path::new("d.toml"), ""),
                good: good.map(|t| super::body(&Bytes::from(t.to_string()), Validators::default())),
                candidate: None,
                validators: Arc::default(),
                failures: Arc::default(),
                settled: Arc::default(),
                task_waits: false,
                refused: None,
                status: SourceStatus::default(),
                generation: 3,
                task: None,
                copy: None,
                retry_after: Duration::ZERO,
            },
        );
        sources
    }

    fn done(generation: u64, result: Result<Fetched, FetchError>) -> Done {
        Done {
            key: "k".into(),
            url: "http://127.0.0.1:9/x".into(),
            generation,
            result,
        }
    }

    #[test]
    fn only_a_new_body_from_the_current_task_asks_for_a_load() {
        let t = Telemetry::new();
        let mut s = source(Some("a"));
        // A report of a task since replaced is ignored, whatever it brings.
        assert!(!s.take(done(2, body("b")), "d", &t));
        assert_eq!(s.status()[0].last_result, "");
        // 304, and a body identical to the good one, cost no load.
        assert!(!s.take(done(3, Ok(Fetched::NotModified)), "d", &t));
        assert_eq!(s.status()[0].last_result, "not_modified");
        assert!(!s.take(done(3, body("a")), "d", &t));
        assert_eq!(s.status()[0].last_result, "unchanged");
        assert!(!s.take(done(3, refused()), "d", &t));
        assert_eq!(s.status()[0].last_result, "failed: connect");
        assert_eq!(s.status()[0].failures, 1);
        // A new body is a candidate for the load.
        assert!(s.take(done(3, body("b")), "d", &t));
        // Bytes fetched count every body, unchanged ones too.
        assert_eq!(s.status()[0].bytes, 2);
    }

    #[test]
    fn an_unchanged_body_that_failed_to_load_is_parsed_once() {
        let t = Telemetry::new();
        let mut s = source(Some("a"));
        let failures = s.sources["http://127.0.0.1:9/x"].failures.clone();
        // `take` answering true is what starts a load, the only parse of a body.
        assert!(s.take(done(3, body("bad")), "d", &t));
        s.loaded(false, "d", &t);
        assert_eq!(*failures.lock().unwrap(), 1);
        for n in 2..5 {
            assert!(!s.take(done(3, body("bad")), "d", &t), "parsed again");
            assert_eq!(*failures.lock().unwrap(), n, "backs off further");
            assert_eq!(s.status()[0].failures, n as u64);
            assert_eq!(s.status()[0].last_result, "failed: invalid");
        }
        let exposed = String::from_utf8(t.render(crate::expose::encode::Format::Text)).unwrap();
        assert!(
            exposed.contains(
                "indicator_exporter_source_failures_total{dataset=\"d\",reason=\"invalid\",source=\"\"} 4"
            ),
            "each refusal is counted: {exposed}"
        );
        // Another body is parsed; the good one again ends the failures.
        assert!(s.take(done(3, body("bad2")), "d", &t));
        s.loaded(false, "d", &t);
        assert!(!s.take(done(3, body("a")), "d", &t));
        assert_eq!(s.status()[0].last_result, "unchanged");
        assert_eq!(*failures.lock().unwrap(), 0);
    }

    #[test]
    fn a_load_keeps_a_good_candidate_and_drops_a_bad_one() {
        let t = Telemetry::new();
        let mut s = source(Some("a"));
        assert!(s.take(done(3, body("b")), "d", &t));
        s.loaded(false, "d", &t);
        let src = &s.sources["http://127.0.0.1:9/x"];
        assert_eq!(&src.good.as_ref().unwrap().bytes[..], b"a");
        assert!(src.candidate.is_none());
        assert_eq!(s.status()[0].last_result, "failed: invalid");
        assert!(s.take(done(3, body("c")), "d", &t));
        s.loaded(true, "d", &t);
        let src = &s.sources["http://127.0.0.1:9/x"];
        assert_eq!(&src.good.as_ref().unwrap().bytes[..], b"c");
        assert_eq!(s.status()[0].last_result, "changed");
        assert!(
            !s.may_wait(),
            "a source with a body never holds its dataset back"
        );
    }
}
