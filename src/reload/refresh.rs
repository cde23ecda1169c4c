//! A dataset's remote sources at run time: the last good body of each URL its config names,
//! and a task per source that re-fetches it on its refresh interval (conditionally, with
//! jittered backoff after failures) and reports to the load task. A body that fails to load
//! is dropped and the last good one kept; a 304 or an unchanged body costs no parse.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::mpsc::WeakSender;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::reload::load::{RemoteBodies, RemoteSource};
use crate::reload::status::SourceStatus;
use crate::reload::Trigger;
use crate::source::fetch::{
    self, FetchError, FetchSettings, Fetched, Fetcher, Jitter, OnStartFailure, Validators,
};
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
    text: Result<String, String>,
    hash: u64,
    validators: Validators,
}

fn body(bytes: &Bytes, validators: Validators) -> Body {
    Body {
        text: crate::read::text_of(bytes.to_vec()),
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
    fetcher: Arc<Fetcher>,
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
    status: SourceStatus,
    generation: u64,
    task: Option<JoinHandle<()>>,
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
    ) -> Result<Arc<RemoteBodies>, Diagnostics> {
        let mut errors = Vec::new();
        let keep: Vec<String> = wanted.iter().map(|r| fetch::redact(&r.url)).collect();
        self.sources
            .retain(|u, _| wanted.iter().any(|r| r.url == *u));
        telemetry.sources_removed(dataset, &keep);
        for RemoteSource { url, settings, at } in wanted.iter().cloned() {
            if self
                .sources
                .get(&url)
                .is_some_and(|s| s.settings == settings)
            {
                continue;
            }
            let fetcher = match Fetcher::new(&settings) {
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
            self.sources.insert(
                url.clone(),
                Source {
                    status: SourceStatus {
                        url: fetch::redact(&url),
                        ..SourceStatus::default()
                    },
                    settings,
                    fetcher,
                    at,
                    good,
                    candidate: None,
                    validators: Arc::new(Mutex::new(validators)),
                    failures: Arc::default(),
                    generation: 0,
                    task: None,
                },
            );
        }
        // First fetches, all at once.
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
        for t in firsts {
            let Ok((url, result)) = t.await else { continue };
            let Some(s) = self.sources.get_mut(&url) else {
                continue;
            };
            s.status.last_attempt = Some(SystemTime::now());
            match result {
                Ok(Fetched::Body {
                    body: bytes,
                    validators,
                }) => {
                    telemetry.fetched(
                        dataset,
                        &s.status.url,
                        FetchResult::Changed,
                        bytes.len() as u64,
                    );
                    s.status.bytes += bytes.len() as u64;
                    s.candidate = Some(body(&bytes, validators));
                }
                Ok(Fetched::NotModified) => {
                    // Asked without validators: a server answering 304 is broken.
                    telemetry.fetched(
                        dataset,
                        &s.status.url,
                        FetchResult::Failed("http_status"),
                        0,
                    );
                    errors.push(Diagnostic {
                        message: format!("{}: 304 Not Modified to a request that was not conditional, expected 200 with the data", s.status.url),
                        ..s.at.clone()
                    });
                }
                Err(e) => {
                    telemetry.fetched(dataset, &s.status.url, FetchResult::Failed(e.reason()), 0);
                    s.status.failures += 1;
                    s.status.last_result = format!("failed: {}", e.reason());
                    *s.failures.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                    warn!(dataset, source = %s.status.url, error = %e, "cannot fetch remote source");
                    errors.push(Diagnostic {
                        message: format!("{e}"),
                        ..s.at.clone()
                    });
                }
            }
        }
        // Every source has its refresh task, a source still without a body included: it keeps
        // trying with backoff.
        for (url, s) in self.sources.iter_mut() {
            if s.task.is_none() {
                self.generations += 1;
                s.generation = self.generations;
                s.task = Some(tokio::spawn(refresh(
                    key.to_string(),
                    url.clone(),
                    s.generation,
                    s.fetcher.clone(),
                    s.validators.clone(),
                    s.failures.clone(),
                    triggers.clone(),
                )));
            }
        }
        let bodies: RemoteBodies = self
            .sources
            .iter()
            .filter_map(|(url, s)| {
                let b = s.candidate.as_ref().or(s.good.as_ref())?;
                Some((url.clone(), b.text.clone()))
            })
            .collect();
        if errors.is_empty() {
            Ok(Arc::new(bodies))
        } else {
            Err(Diagnostics::new(errors))
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
                s.good = Some(c);
            } else if s.good.is_some() {
                // A body already counted as fetched, then refused by the load.
                telemetry.fetched(dataset, &s.status.url, FetchResult::Failed("invalid"), 0);
                s.status.failures += 1;
                s.status.last_result = "failed: invalid".into();
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
                    s.status.last_success = s.status.last_attempt;
                    s.status.last_result = "unchanged".into();
                    return false;
                }
                telemetry.fetched(dataset, &url, FetchResult::Changed, n);
                info!(dataset, source = %url, bytes = n, "remote source changed, loading");
                s.candidate = Some(b);
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

/// Fetches one source on its schedule until the load task is gone: after `refresh` (±10 %)
/// while it succeeds, after a growing backoff while it fails.
async fn refresh(
    key: String,
    url: String,
    generation: u64,
    fetcher: Arc<Fetcher>,
    validators: Arc<Mutex<Validators>>,
    failures: Arc<Mutex<u32>>,
    triggers: WeakSender<Trigger>,
) {
    let mut jitter = Jitter::from_clock();
    let refresh_every = fetcher.settings().refresh;
    loop {
        let failed = *failures.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = if failed > 0 {
            fetch::backoff(failed, refresh_every, jitter.next_f64())
        } else {
            fetch::next_refresh(refresh_every, jitter.next_f64())
        };
        tokio::time::sleep(wait).await;
        let previous = validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let result = fetcher.fetch(&url, &previous).await;
        {
            let mut f = failures.lock().unwrap_or_else(PoisonError::into_inner);
            *f = if result.is_err() {
                f.saturating_add(1)
            } else {
                0
            };
        }
        let Some(tx) = triggers.upgrade() else { return };
        let done = Done {
            key: key.clone(),
            url: url.clone(),
            generation,
            result,
        };
        if tx.send(Trigger::Fetched(Box::new(done))).await.is_err() {
            return;
        }
    }
}
