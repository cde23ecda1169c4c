//! Loading and reloading the catalogue. SIGHUP, `POST /-/reload`, the file watcher and the
//! refresh of remote sources all send one [`Trigger`] to one task, which runs the same
//! pipeline as start-up for the datasets concerned: all of them for a signal or a request,
//! one for a file change or a refresh. A dataset's new snapshot replaces its old one only if
//! every stage succeeded and it clashes with no other dataset; a failure keeps that dataset's
//! last good version and never touches the others. A load stuck on a file is given up after
//! [`Limits::timeout`], so it holds up neither later reloads nor shutdown.

pub mod load;
pub(crate) mod refresh;
pub mod status;
pub(crate) mod watcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, info, warn};

use crate::config::catalog::{self, Entry};
use crate::config::shard::Shard;
use crate::dataset::changes::{compare, diff};
use crate::dataset::Dataset;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::expose::snapshot::{Served, Snapshot, Store};
use crate::reload::load::{
    build_off_thread, off_thread, parse_off_thread, Limits, Loaded, Parsed, RemoteBodies,
};
use crate::reload::status::{Attempt, DatasetStatus};
pub use crate::reload::status::{CatalogStatus, Status};
use crate::reload::watcher::Watched;
use crate::state::State;
use crate::telemetry::Telemetry;

/// Why a load was asked for. An HTTP trigger carries where to send the outcome.
#[derive(Debug)]
pub enum Trigger {
    Signal,
    Http(oneshot::Sender<Result<String, String>>),
    /// The watcher saw files of these datasets change (keys: their config files).
    Files(Vec<String>),
    /// A scheduled fetch of a remote source ended.
    Fetched(Box<refresh::Done>),
    /// A large dataset's bodies, compressed again at the final level after it was served.
    Recompressed {
        key: String,
        old: Arc<Snapshot>,
        new: Arc<Snapshot>,
    },
}

impl Trigger {
    fn label(&self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::Http(_) => "http",
            Trigger::Files(_) => "file",
            Trigger::Fetched(_) => "refresh",
            Trigger::Recompressed { .. } => "recompress",
        }
    }
}

/// One dataset of the catalogue as the load task keeps it.
struct Slot {
    entry: Entry,
    /// The config's text when the catalogue read it already (the main file's own dataset):
    /// the next load parses it instead of reading the file again.
    text: Option<String>,
    /// The config file as text: the dataset's key for the watcher.
    key: String,
    /// The dataset's name: from its last good load, else as its config declares it, else the
    /// file's stem.
    name: String,
    /// Whether `name` is still the stem, before any parse of the config.
    unnamed: bool,
    /// The last good dataset, and its rendering when the catalogue is served.
    dataset: Option<Arc<Dataset>>,
    snapshot: Option<Arc<Snapshot>>,
    status: DatasetStatus,
    remote: refresh::Sources,
    /// Assigned to another shard: its config is parsed for its name, nothing more is read.
    elsewhere: bool,
    /// Its figures and vintages as last stored (`--storage.path`): read before its first
    /// good load, then the state after each load; None without storage or a usable file.
    stored: Option<Arc<State>>,
}

impl Slot {
    fn new(entry: Entry) -> Slot {
        let key = entry.config_file.display().to_string();
        let name = entry
            .config_file
            .file_stem()
            .map_or_else(|| "dataset".into(), |s| s.to_string_lossy().into_owned());
        Slot {
            status: DatasetStatus {
                name: name.clone(),
                ready: false,
                serving_since: None,
                last_attempt: None,
                errors: Vec::new(),
                sources: Vec::new(),
                revisions: Arc::default(),
            },
            entry,
            text: None,
            key,
            name,
            unnamed: true,
            dataset: None,
            snapshot: None,
            remote: refresh::Sources::default(),
            elsewhere: false,
            stored: None,
        }
    }

    /// Takes the name the config declares, the first time it is parsed.
    fn named(&mut self, parsed: &Parsed) {
        if let (true, Some(name)) = (self.unnamed, parsed.name()) {
            self.name = name.to_string();
            self.status.name = self.name.clone();
        }
        self.unnamed = false;
    }
}

/// A configuration besides the catalogue that every full reload re-reads with it, and puts in
/// service only when the whole reload is valid: the web config. The load task knows it
/// through this alone, so it depends on nothing of HTTP.
pub trait Companion: Send + Sync + 'static {
    type Loaded: Send + 'static;
    /// Reads its files again; `None` when it has none.
    fn reread(&self) -> Result<Option<Self::Loaded>, Diagnostics>;
    /// Puts what [`Companion::reread`] read in service.
    fn apply(&self, loaded: Self::Loaded);
    /// The files it was read from, watched like the catalogue's.
    fn files(&self) -> Vec<PathBuf>;
}

/// No companion: `--config.check` and `export` validate the web config on their own.
impl Companion for () {
    type Loaded = ();
    fn reread(&self) -> Result<Option<()>, Diagnostics> {
        Ok(None)
    }
    fn apply(&self, _: ()) {}
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// The load task's state: every dataset of the catalogue and what is shared with the server.
pub struct Reloader<C: Companion> {
    pub config_file: PathBuf,
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    pub status: Status,
    pub limits: Limits,
    /// The part of the catalogue this process serves.
    shard: Shard,
    /// The web config (`--web.config.file`), re-read by every full reload too.
    pub web: Arc<C>,
    /// Tells the watcher which files each dataset was read from.
    files: watch::Sender<Watched>,
    /// Where scheduled fetches report.
    triggers: mpsc::WeakSender<Trigger>,
    slots: Vec<Slot>,
    /// The catalogue's directory of dataset files, if it has one.
    directory: Option<PathBuf>,
    /// Whether datasets are rendered to be served; `--config.check` and `export` only
    /// validate them.
    render: bool,
}

/// The outcome of one dataset's load, before it is put in service.
type Outcome = Result<Loaded, Diagnostics>;

impl<C: Companion> Reloader<C> {
    /// Loads the whole catalogue for start-up. Every problem of every dataset is reported;
    /// a dataset whose remote source is down and may wait (`on_start_failure = "not-ready"`)
    /// is not one.
    pub async fn start(
        config_file: PathBuf,
        limits: Limits,
        shard: Shard,
        web: Arc<C>,
        telemetry: Arc<Telemetry>,
        files: watch::Sender<Watched>,
        triggers: mpsc::WeakSender<Trigger>,
    ) -> Result<Reloader<C>, Diagnostics> {
        telemetry.shard(shard.index(), shard.count());
        let load = (limits, shard);
        let r = Reloader::open(config_file, load, web, telemetry, files, triggers, true).await?;
        if shard.count() > 1 {
            let served = r.slots.iter().filter(|s| !s.elsewhere).count();
            let skipped = r.slots.len() - served;
            info!(%shard, served, skipped, "serving one shard of the catalogue");
        }
        Ok(r)
    }

    /// The first load of the catalogue, its datasets rendered for serving or only validated;
    /// only the datasets of `shard` are loaded.
    async fn open(
        config_file: PathBuf,
        (limits, shard): (Limits, Shard),
        web: Arc<C>,
        telemetry: Arc<Telemetry>,
        files: watch::Sender<Watched>,
        triggers: mpsc::WeakSender<Trigger>,
        render: bool,
    ) -> Result<Reloader<C>, Diagnostics> {
        let plan = plan(&config_file, &limits).await?;
        let mut r = Reloader {
            config_file,
            store: crate::expose::snapshot::store(Served::default()),
            telemetry,
            status: Status::default(),
            limits,
            shard,
            web,
            files,
            triggers,
            slots: plan.entries.iter().cloned().map(Slot::new).collect(),
            directory: plan.directory.clone(),
            render,
        };
        r.give_main_text(plan);
        let all: Vec<usize> = (0..r.slots.len()).collect();
        let errors = r.load(&all, "start").await;
        if !errors.is_empty() {
            return Err(Diagnostics::new(errors));
        }
        r.prune_state().await;
        r.telemetry.config_loaded(true, false);
        Ok(r)
    }

    /// The main config's text, read by the catalogue, to the dataset it holds if it holds one.
    fn give_main_text(&mut self, plan: catalog::Plan) {
        let main = &self.config_file;
        if let Some(slot) = self.slots.iter_mut().find(|s| s.entry.config_file == *main) {
            slot.text = plan.main_text;
        }
    }

    /// Reloads the catalogue and every dataset in it, web config included. Datasets that
    /// fail keep their last good version; the result lists every problem.
    pub async fn reload_all(&mut self, trigger: &str) -> Result<String, Diagnostics> {
        let web = self.web.clone();
        let (web, plan) = tokio::join!(
            off_thread(&self.limits, move || web.reread()),
            plan(&self.config_file, &self.limits)
        );
        let web = web.unwrap_or_else(|stuck| {
            let at = self.web.files().first().cloned().unwrap_or_default();
            Err(Diagnostics::one(Diagnostic::file(
                &at,
                stuck.message(&self.limits),
            )))
        });
        let (plan, web) = match (plan, web) {
            (Ok(p), Ok(w)) => (p, w),
            (plan, web) => {
                let all = plan.err().into_iter().chain(web.err());
                let e = Diagnostics::new(all.flat_map(|e| e.0).collect());
                self.status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .reload_failed = Some((
                    SystemTime::now(),
                    e.0.iter().map(|d| d.to_string()).collect(),
                ));
                tracing::error!(
                    errors = e.len(),
                    "reload failed, still serving every dataset as it was:\n{e}"
                );
                self.telemetry.config_loaded(false, true);
                return Err(e);
            }
        };
        if let Some(web) = web {
            self.web.apply(web);
        }
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reload_failed = None;
        // Datasets keep their state across the reload by config file; new ones start empty.
        let mut old: BTreeMap<PathBuf, Slot> = self
            .slots
            .drain(..)
            .map(|s| (s.entry.config_file.clone(), s))
            .collect();
        self.directory = plan.directory.clone();
        for entry in plan.entries.iter().cloned() {
            let slot = old
                .remove(&entry.config_file)
                .unwrap_or_else(|| Slot::new(entry));
            self.slots.push(slot);
        }
        self.give_main_text(plan);
        for (_, gone) in old {
            gone.remote.stop();
            if !self.slots.iter().any(|s| s.name == gone.name) {
                self.telemetry.dataset_removed(&gone.name);
            }
        }
        let all: Vec<usize> = (0..self.slots.len()).collect();
        let errors = self.load(&all, trigger).await;
        self.prune_state().await;
        self.telemetry.config_loaded(errors.is_empty(), true);
        if !errors.is_empty() {
            tracing::error!(
                errors = errors.len(),
                "reload failed for some datasets; each keeps serving its previous version"
            );
        }
        if errors.is_empty() {
            Ok(self.summary())
        } else {
            Err(Diagnostics::new(errors))
        }
    }

    /// `loaded dataset NAME, N metrics, N series` (`loaded N datasets: …; …` for several).
    fn summary(&self) -> String {
        let served: Vec<String> = self
            .slots
            .iter()
            .filter_map(|s| s.dataset.as_ref())
            .map(|d| d.summary())
            .collect();
        match served.len() {
            1 => format!("loaded {}", served[0]),
            n => format!("loaded {n} datasets: {}", served.join("; ")),
        }
    }

    /// Loads the datasets at `which` (indices into the catalogue), puts each that succeeded
    /// in service, and publishes the result. Returns every problem.
    async fn load(&mut self, which: &[usize], trigger: &str) -> Vec<Diagnostic> {
        let (mine, mut outcomes): (Vec<usize>, Vec<_>) = self
            .load_each(which)
            .await
            .into_iter()
            .map(|(i, outcome, took)| (i, (outcome, took)))
            .unzip();
        self.refuse_clashes(&mine, &mut outcomes);
        let mut errors = Vec::new();
        for (&i, (outcome, took)) in mine.iter().zip(outcomes) {
            if outcome.is_ok() && self.slots[i].dataset.is_none() {
                self.read_state(i, &outcome).await;
            }
            match self.put(i, outcome, took, trigger) {
                Ok(()) => {
                    self.write_state(i).await;
                    self.recompress(i);
                }
                Err(e) => errors.extend(e.0),
            }
        }
        self.publish();
        errors
    }

    /// Compresses a large dataset's bodies again at the final level, after it went into
    /// service compressed fast; [`Trigger::Recompressed`] swaps them in.
    fn recompress(&self, i: usize) {
        let slot = &self.slots[i];
        let Some(old) = slot.snapshot.clone().filter(|s| !s.final_gzip) else {
            return;
        };
        let (key, triggers) = (slot.key.clone(), self.triggers.clone());
        tokio::spawn(async move {
            let snapshot = old.clone();
            let Ok(Some(new)) = tokio::task::spawn_blocking(move || snapshot.recompressed()).await
            else {
                return;
            };
            if let Some(tx) = triggers.upgrade() {
                let new = Arc::new(new);
                let _ = tx.send(Trigger::Recompressed { key, old, new }).await;
            }
        });
    }

    /// Runs the pipeline for each dataset at `which`: its config parsed (read once for the
    /// whole load), its remote sources fetched (those not fetched yet; every dataset's at
    /// once, each host taking its own turns), then its data files read and the dataset built
    /// and rendered, as many at once as there are cores. A dataset of another shard stops
    /// after the parse that names it, and has no outcome.
    async fn load_each(&mut self, which: &[usize]) -> Vec<(usize, Outcome, Duration)> {
        let parses: Vec<_> = which
            .iter()
            .map(|&i| {
                let slot = &mut self.slots[i];
                let (path, text) = (slot.entry.config_file.clone(), slot.text.take());
                let limits = self.limits.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let parsed = parse_off_thread(&path, text, &limits).await;
                    (parsed, started.elapsed())
                })
            })
            .collect();
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = Arc::new(Semaphore::new(parallel));
        let mut tasks = Vec::new();
        for (&i, parse) in which.iter().zip(parses) {
            let (parsed, parse_took) = parse
                .await
                .unwrap_or_else(|e| (Err(internal(e)), Duration::ZERO));
            if !self.assign(i, parsed.as_ref().ok()) {
                continue;
            }
            let slot = &mut self.slots[i];
            if let Ok(p) = &parsed {
                slot.named(p);
            }
            // The task owns the sources while it fetches; they come back with its outcome.
            let mut remote = std::mem::take(&mut slot.remote);
            let fetching = Fetching {
                key: slot.key.clone(),
                name: slot.name.clone(),
                telemetry: self.telemetry.clone(),
                triggers: self.triggers.clone(),
                storage: self.limits.storage.as_ref().map(|s| s.root.clone()),
            };
            let (limits, permits, render) = (self.limits.clone(), permits.clone(), self.render);
            tasks.push((
                i,
                tokio::spawn(async move {
                    let prepared = match parsed {
                        Ok(p) => fetching.prepare(&mut remote, p).await,
                        Err(e) => Err(e),
                    };
                    let _permit = permits.acquire_owned().await;
                    let started = Instant::now();
                    let loaded = match prepared {
                        Ok((parsed, bodies)) => {
                            build_off_thread(parsed, &limits, bodies, render).await
                        }
                        Err(e) => Err(e),
                    };
                    (remote, loaded, parse_took + started.elapsed())
                }),
            ));
        }
        let mut out = Vec::new();
        for (i, t) in tasks {
            match t.await {
                Ok((remote, loaded, took)) => {
                    self.slots[i].remote = remote;
                    out.push((i, loaded, took));
                }
                Err(e) => out.push((i, Err(internal(e)), Duration::ZERO)),
            }
        }
        out
    }

    /// Whether slot `i` is this shard's, by the name its config declares (else the name it
    /// had). A dataset that moved to another shard stops being served here.
    fn assign(&mut self, i: usize, parsed: Option<&Parsed>) -> bool {
        let slot = &mut self.slots[i];
        let name = parsed.and_then(Parsed::name).unwrap_or(&slot.name);
        if self.shard.owns(name) {
            slot.elsewhere = false;
            return true;
        }
        if !slot.elsewhere && slot.status.last_attempt.is_some() {
            info!(dataset = slot.name, shard = %self.shard, "the dataset now belongs to another shard, no longer served here");
            self.telemetry.dataset_removed(&slot.name);
        }
        slot.remote.stop();
        let mut fresh = Slot::new(slot.entry.clone());
        if let Some(name) = parsed.and_then(Parsed::name) {
            fresh.name = name.to_string();
            fresh.status.name = fresh.name.clone();
            fresh.unnamed = false;
        }
        fresh.elsewhere = true;
        *slot = fresh;
        false
    }

    /// Turns each new dataset that clashes with another into an error. The datasets kept as
    /// they are come first, so a clash refuses the one that changed.
    fn refuse_clashes(&self, which: &[usize], outcomes: &mut [(Outcome, Duration)]) {
        let kept = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, _)| !which.contains(i))
            .filter_map(|(_, s)| s.dataset.as_deref());
        let mut order: Vec<(Option<usize>, &crate::dataset::Dataset)> =
            kept.map(|d| (None, d)).collect();
        for (k, (o, _)) in outcomes.iter().enumerate() {
            if let Ok(loaded) = o {
                order.push((Some(k), &loaded.dataset));
            }
        }
        let list: Vec<&crate::dataset::Dataset> = order.iter().map(|(_, d)| *d).collect();
        let mut refused: BTreeMap<usize, Vec<Diagnostic>> = BTreeMap::new();
        for (at, d) in crate::dataset::families::clashes(&list) {
            if let Some(k) = order[at].0 {
                refused.entry(k).or_default().push(d);
            }
        }
        for (k, diags) in refused {
            outcomes[k].0 = Err(Diagnostics::new(diags));
        }
    }

    /// Puts one dataset's outcome in its slot: a new snapshot in service, or the error noted
    /// and the last good one kept.
    fn put(
        &mut self,
        i: usize,
        outcome: Outcome,
        took: Duration,
        trigger: &str,
    ) -> Result<(), Diagnostics> {
        let slot = &mut self.slots[i];
        let now = SystemTime::now();
        slot.remote
            .loaded(outcome.is_ok(), &slot.name, &self.telemetry);
        match outcome {
            Ok(Loaded { dataset, snapshot }) => {
                // Reloads compare with the dataset served; the first load with what was stored
                // before a restart, so changes made meanwhile count alike.
                let changes = match (&slot.dataset, &slot.stored) {
                    (Some(old), _) => diff(old, &dataset),
                    (None, Some(stored)) => compare(&**stored, &*dataset),
                    (None, None) => Vec::new(),
                };
                for change in changes {
                    self.telemetry.changed(&dataset.info.name, &change);
                }
                if slot.name != dataset.info.name {
                    self.telemetry.dataset_removed(&slot.name);
                    slot.name.clone_from(&dataset.info.name);
                }
                self.telemetry.loaded(&dataset, trigger != "start", took);
                slot.snapshot = snapshot.map(Arc::new);
                slot.status = DatasetStatus {
                    name: slot.name.clone(),
                    ready: true,
                    serving_since: Some(now),
                    last_attempt: Some(Attempt {
                        at: now,
                        trigger: trigger.into(),
                        ok: true,
                        message: format!("loaded {}", dataset.summary()),
                    }),
                    errors: Vec::new(),
                    sources: slot.remote.status(),
                    revisions: slot.status.revisions.clone(),
                };
                slot.dataset = Some(dataset);
                Ok(())
            }
            Err(e) => {
                // Only a served catalogue may wait for a source; a check reports it.
                let waiting = slot.dataset.is_none() && slot.remote.may_wait() && self.render;
                if waiting && trigger == "start" {
                    warn!(dataset = slot.name, "a remote source is not available yet; serving the other datasets, this one is not ready");
                    self.telemetry.waiting(&slot.name);
                } else {
                    self.telemetry
                        .load_failed(&slot.name, slot.dataset.is_some(), &e);
                }
                slot.status.name.clone_from(&slot.name);
                slot.status.ready = slot.dataset.is_some();
                slot.status.last_attempt = Some(Attempt {
                    at: now,
                    trigger: trigger.into(),
                    ok: false,
                    message: e.0.first().map(|d| d.to_string()).unwrap_or_default(),
                });
                slot.status.errors = e.0.iter().map(|d| d.to_string()).collect();
                slot.status.sources = slot.remote.status();
                if waiting && trigger == "start" {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Reads the stored state of the dataset slot `i` is about to serve for the first time; a
    /// file that cannot be used is a warning and a fresh start.
    async fn read_state(&mut self, i: usize, outcome: &Outcome) {
        let (Some(storage), Ok(loaded)) = (self.limits.storage.clone(), outcome) else {
            return;
        };
        let name = loaded.dataset.info.name.clone();
        let read = {
            let name = name.clone();
            tokio::task::spawn_blocking(move || storage.read(&name)).await
        };
        self.slots[i].stored = match read {
            Ok(Ok(state)) => Some(Arc::new(state)),
            Ok(Err((problem, error))) => {
                self.telemetry.state_error(&name, problem, &error);
                None
            }
            Err(e) => {
                let error = e.to_string();
                self.telemetry
                    .state_error(&name, crate::state::Problem::Unreadable, &error);
                None
            }
        };
    }

    /// Stores the figures slot `i` serves now with their vintages, when they changed; a
    /// failed write is logged and counted, and serving goes on.
    async fn write_state(&mut self, i: usize) {
        let slot = &self.slots[i];
        let (Some(storage), Some(dataset)) = (self.limits.storage.clone(), slot.dataset.clone())
        else {
            return;
        };
        let old = slot.stored.clone();
        let name = slot.name.clone();
        let job = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let base = old.as_deref().cloned().unwrap_or_default();
            let new = base.advance(&dataset, SystemTime::now(), storage.retention);
            let unchanged = old.as_deref() == Some(&new);
            let written = if unchanged {
                Ok(())
            } else {
                storage.write(&new)
            };
            if !unchanged {
                let took_ms = started.elapsed().as_millis() as u64;
                debug!(dataset = name, took_ms, "state written");
            }
            let revisions = new.revised();
            (new, written, revisions)
        });
        let slot = &mut self.slots[i];
        match job.await {
            Ok((new, written, revisions)) => {
                if let Err(e) = written {
                    let problem = crate::state::Problem::Write;
                    self.telemetry
                        .state_error(&slot.name, problem, &e.to_string());
                }
                slot.stored = Some(Arc::new(new));
                slot.status.revisions = Arc::new(revisions);
            }
            Err(e) => {
                let problem = crate::state::Problem::Write;
                self.telemetry
                    .state_error(&slot.name, problem, &e.to_string());
            }
        }
    }

    /// Deletes the state of datasets no longer in the catalogue.
    async fn prune_state(&self) {
        let Some(storage) = self.limits.storage.clone() else {
            return;
        };
        let keep: Vec<String> = self.slots.iter().map(|s| s.name.clone()).collect();
        let pruned = tokio::task::spawn_blocking(move || {
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            storage.prune(&keep)
        })
        .await;
        match pruned {
            Ok(Ok(deleted)) => {
                for path in deleted {
                    info!(path = %path.display(), "state of a dataset no longer in the catalogue deleted");
                }
            }
            Ok(Err(e)) => {
                warn!(error = %e, "cannot delete the state of datasets no longer in the catalogue")
            }
            Err(e) => {
                warn!(error = %e, "cannot delete the state of datasets no longer in the catalogue")
            }
        }
    }

    /// Swaps in what is served now, and tells the watcher and the pages.
    fn publish(&mut self) {
        let served = Served {
            datasets: self
                .slots
                .iter()
                .filter_map(|s| s.snapshot.clone())
                .collect(),
        };
        self.store.store(Arc::new(served));
        let mine = || self.slots.iter().filter(|s| !s.elsewhere);
        self.telemetry
            .catalog_datasets(mine().count(), self.slots.len() - mine().count());
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .datasets = mine().map(|s| s.status.clone()).collect();
        let mut watched: Watched = self
            .slots
            .iter()
            .map(|s| {
                let files = match &s.dataset {
                    Some(d) => d
                        .files
                        .iter()
                        .filter(|f| !crate::source::fetch::is_remote(&f.to_string_lossy()))
                        .cloned()
                        .collect(),
                    None => vec![s.entry.config_file.clone()],
                };
                (s.key.clone(), files)
            })
            .collect();
        // The main file and the directory name the catalogue: a change to either reloads
        // everything (the key of no dataset).
        let mut catalogue = vec![self.config_file.clone()];
        catalogue.extend(self.directory.clone());
        watched.push((String::new(), catalogue));
        for w in self.web.files() {
            watched.push((String::new(), vec![w]));
        }
        let _ = self.files.send(watched);
    }

    /// Loads only the datasets whose config files are `keys`; a key that is not a dataset's
    /// (the catalogue file, the web config) means a full reload.
    async fn reload_files(&mut self, keys: &[String]) {
        let which: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| keys.contains(&s.key))
            .map(|(i, _)| i)
            .collect();
        if which.len() < keys.len() {
            info!("catalogue files changed, reloading every dataset");
            let _ = self.reload_all("file").await;
            return;
        }
        let names: Vec<&str> = which.iter().map(|&i| self.slots[i].name.as_str()).collect();
        info!(datasets = ?names, "dataset files changed, reloading");
        let errors = self.load(&which, "file").await;
        self.telemetry.config_loaded(errors.is_empty(), true);
    }

    /// A scheduled fetch ended: counted, and its dataset loaded again if the body changed.
    async fn fetched(&mut self, done: refresh::Done) {
        let Some(i) = self.slots.iter().position(|s| s.key == done.key) else {
            return;
        };
        let slot = &mut self.slots[i];
        if slot.remote.take(done, &slot.name, &self.telemetry) {
            self.load(&[i], "refresh").await;
        } else {
            slot.status.sources = slot.remote.status();
            self.publish();
        }
    }

    pub async fn run(mut self, mut triggers: mpsc::Receiver<Trigger>) {
        while let Some(t) = triggers.recv().await {
            debug!(trigger = ?t, "load requested");
            let label = t.label();
            match t {
                Trigger::Http(reply) => {
                    let result = self.reload_all(label).await.map_err(|e| e.to_string());
                    let _ = reply.send(result);
                }
                Trigger::Signal => {
                    let _ = self.reload_all(label).await;
                }
                Trigger::Files(keys) => self.reload_files(&keys).await,
                Trigger::Fetched(done) => self.fetched(*done).await,
                Trigger::Recompressed { key, old, new } => {
                    // Only if no load replaced that snapshot meanwhile.
                    let slot = self.slots.iter_mut().find(|s| s.key == key);
                    if let Some(slot) = slot.filter(|s| {
                        s.snapshot
                            .as_ref()
                            .is_some_and(|cur| Arc::ptr_eq(cur, &old))
                    }) {
                        debug!(dataset = slot.name, "bodies compressed at the final level");
                        slot.snapshot = Some(new);
                        self.publish();
                    }
                }
            }
        }
        for s in &self.slots {
            s.remote.stop();
        }
    }
}

impl Reloader<()> {
    /// Loads the whole catalogue as start-up does, remote sources fetched once, without
    /// rendering it: what `--config.check` and `export` read. A remote source that cannot be
    /// fetched is an error here, whatever its `on_start_failure`.
    pub async fn check(
        config_file: PathBuf,
        limits: Limits,
    ) -> Result<Vec<Arc<Dataset>>, Diagnostics> {
        // Nobody listens: the sources' refresh tasks end with the caller's runtime.
        let (tx, _) = mpsc::channel(1);
        let (files, telemetry) = (watch::channel(Watched::new()).0, Arc::new(Telemetry::new()));
        let web = Arc::new(());
        let r = Reloader::open(
            config_file,
            (limits, Shard::default()),
            web,
            telemetry,
            files,
            tx.downgrade(),
            false,
        )
        .await?;
        for s in &r.slots {
            s.remote.stop();
        }
        Ok(r.slots.iter().filter_map(|s| s.dataset.clone()).collect())
    }
}

/// What a dataset's load task needs to fetch its remote sources.
struct Fetching {
    key: String,
    name: String,
    telemetry: Arc<Telemetry>,
    triggers: mpsc::WeakSender<Trigger>,
    /// `--storage.path`, where sources kept on disk are written.
    storage: Option<PathBuf>,
}

impl Fetching {
    /// Fetches the dataset's remote sources that have no body yet; a source that cannot be
    /// fetched, or whose options are wrong, fails the load.
    async fn prepare(
        &self,
        remote: &mut refresh::Sources,
        parsed: Parsed,
    ) -> Result<(Parsed, Arc<RemoteBodies>), Diagnostics> {
        let fetched = remote
            .prepare(
                &parsed.remote,
                &self.key,
                &self.name,
                &self.telemetry,
                &self.triggers,
                self.storage.as_deref(),
            )
            .await;
        let mut errors = parsed.fetch_errors.clone();
        match fetched {
            Ok(bodies) if errors.is_empty() => Ok((parsed, bodies)),
            Ok(_) => Err(Diagnostics::new(errors)),
            Err(e) => {
                errors.extend(e.0);
                Err(Diagnostics::new(errors))
            }
        }
    }
}

/// The catalogue's entries, read off the async threads.
async fn plan(config_file: &Path, limits: &Limits) -> Result<catalog::Plan, Diagnostics> {
    let (path, max) = (config_file.to_path_buf(), limits.max_file_size);
    match off_thread(limits, move || catalog::plan(&path, max)).await {
        Ok(r) => r,
        Err(stuck) => Err(Diagnostics::one(Diagnostic::file(
            config_file,
            stuck.message(limits),
        ))),
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

/// Forwards the watcher's changes to the load task as [`Trigger::Files`].
pub async fn forward_changes(
    mut changed: mpsc::Receiver<Vec<String>>,
    triggers: mpsc::Sender<Trigger>,
) {
    while let Some(keys) = changed.recv().await {
        if triggers.send(Trigger::Files(keys)).await.is_err() {
            return;
        }
    }
}

/// A load task that panicked, as the error of its dataset.
fn internal(e: tokio::task::JoinError) -> Diagnostics {
    let d = Diagnostic::file(Path::new(""), format!("loading failed internally: {e}"));
    Diagnostics::one(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(name: &str, prefix: &str, value: &str) -> String {
        format!(
            "[dataset]\nname = \"{name}\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2026-01-01\"\nmetric_prefix = \"{prefix}\"\n\n[[metric]]\nname = \"rate\"\nunit = \"percent\"\nhelp = \"h\"\nlabels = [\"k\"]\nsamples = [{{ labels = {{ k = \"x\" }}, value = {value} }}]\n"
        )
    }

    /// A catalogue of `a.toml` and `b.toml` in a temporary directory, loaded.
    async fn catalogue() -> (tempfile::TempDir, Reloader<()>, mpsc::Sender<Trigger>) {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.toml");
        std::fs::write(&main, "[catalog]\ndatasets = [\"a.toml\", \"b.toml\"]\n").unwrap();
        std::fs::write(dir.path().join("a.toml"), dataset("a", "a_", "10")).unwrap();
        std::fs::write(dir.path().join("b.toml"), dataset("b", "b_", "20")).unwrap();
        let (tx, _) = mpsc::channel(8);
        let r = Reloader::start(
            main,
            Limits::default(),
            Shard::default(),
            Arc::new(()),
            Arc::new(Telemetry::new()),
            watch::channel(Watched::new()).0,
            tx.downgrade(),
        )
        .await
        .expect("the catalogue loads");
        (dir, r, tx)
    }

    /// Each served dataset's name and the value of its one series.
    fn served(r: &Reloader<()>) -> Vec<(String, f64)> {
        let served = r.store.load();
        served
            .datasets
            .iter()
            .map(|s| (s.dataset.info.name.clone(), s.dataset.metrics[0].value(0)))
            .collect()
    }

    fn attempt(r: &Reloader<()>, i: usize) -> (String, bool) {
        let a = r.slots[i].status.last_attempt.clone().unwrap();
        (a.trigger, a.ok)
    }

    #[tokio::test]
    async fn a_broken_dataset_keeps_its_last_good_version_and_the_others_reload() {
        let (dir, mut r, _tx) = catalogue().await;
        assert_eq!(served(&r), [("a".into(), 0.1), ("b".into(), 0.2)]);
        std::fs::write(dir.path().join("a.toml"), dataset("a", "a_", "11")).unwrap();
        std::fs::write(dir.path().join("b.toml"), "[dataset\n").unwrap();
        let e = r.reload_all("signal").await.unwrap_err();
        let b = dir.path().join("b.toml").display().to_string();
        assert!(
            !e.0.is_empty() && e.0.iter().all(|d| d.path.display().to_string() == b),
            "{e}"
        );
        assert_eq!(served(&r), [("a".into(), 0.11), ("b".into(), 0.2)]);
        assert_eq!(attempt(&r, 0), ("signal".into(), true));
        assert_eq!(attempt(&r, 1), ("signal".into(), false));
        assert!(
            r.slots[1].status.ready,
            "b still serves its last good version"
        );
        assert_eq!(r.slots[1].status.errors.len(), e.0.len());
        // Fixed, it comes back; the summary names both.
        std::fs::write(dir.path().join("b.toml"), dataset("b", "b_", "21")).unwrap();
        assert_eq!(
            r.reload_all("http").await.unwrap(),
            "loaded 2 datasets: dataset a, 1 metrics, 1 series; dataset b, 1 metrics, 1 series"
        );
        assert_eq!(served(&r), [("a".into(), 0.11), ("b".into(), 0.21)]);
    }

    #[tokio::test]
    async fn a_shard_reads_only_the_configs_of_other_shards_datasets() {
        // FNV-1a 64 puts `a` on shard 0 of 2 and `b`, `d` on shard 1.
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.toml");
        std::fs::write(&main, "[catalog]\ndatasets = [\"a.toml\", \"b.toml\"]\n").unwrap();
        std::fs::write(dir.path().join("a.toml"), dataset("a", "a_", "10")).unwrap();
        // b's data file does not exist: shard 0 never looks for it.
        let b = dataset("b", "b_", "20").replace(
            "samples = [{ labels = { k = \"x\" }, value = 20 }]",
            "samples_file = \"missing.csv\"",
        );
        std::fs::write(dir.path().join("b.toml"), b).unwrap();
        let (tx, _) = mpsc::channel(8);
        let telemetry = Arc::new(Telemetry::new());
        let mut r = Reloader::start(
            main,
            Limits::default(),
            Shard::new(0, 2).unwrap(),
            Arc::new(()),
            telemetry.clone(),
            watch::channel(Watched::new()).0,
            tx.downgrade(),
        )
        .await
        .expect("shard 0 loads");
        assert_eq!(served(&r), [("a".into(), 0.1)]);
        let status: Vec<String> = r
            .status
            .lock()
            .unwrap()
            .datasets
            .iter()
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(
            status,
            ["a"],
            "only its own datasets in /-/ready and the pages"
        );
        let m = String::from_utf8(telemetry.render(crate::expose::encode::Format::Text)).unwrap();
        assert!(
            m.contains("indicator_exporter_catalog_datasets{assignment=\"skipped\"} 1\n"),
            "{m}"
        );
        assert!(!m.contains("dataset=\"b\""), "no self-metrics for b: {m}");
        // Renamed to `d`, a moves to shard 1: no longer served here, its self-metrics gone.
        std::fs::write(dir.path().join("a.toml"), dataset("d", "a_", "10")).unwrap();
        r.reload_all("signal").await.unwrap();
        assert_eq!(served(&r), []);
        let m = String::from_utf8(telemetry.render(crate::expose::encode::Format::Text)).unwrap();
        assert!(
            m.contains("indicator_exporter_catalog_datasets{assignment=\"served\"} 0\n"),
            "{m}"
        );
        assert!(
            !m.contains("dataset=\"a\""),
            "a's self-metrics removed: {m}"
        );
    }

    #[tokio::test]
    async fn a_file_change_reloads_its_dataset_alone() {
        let (dir, mut r, _tx) = catalogue().await;
        std::fs::write(dir.path().join("a.toml"), dataset("a", "a_", "12")).unwrap();
        std::fs::write(dir.path().join("b.toml"), dataset("b", "b_", "22")).unwrap();
        let key = r.slots[0].key.clone();
        r.reload_files(&[key]).await;
        assert_eq!(served(&r), [("a".into(), 0.12), ("b".into(), 0.2)]);
        assert_eq!(attempt(&r, 0), ("file".into(), true));
        assert_eq!(attempt(&r, 1), ("start".into(), true));
    }

    #[tokio::test]
    async fn a_dataset_that_changes_into_a_clash_is_refused_and_keeps_its_version() {
        let (dir, mut r, _tx) = catalogue().await;
        // b takes a's prefix: its family `a_rate_ratio` is a's.
        std::fs::write(dir.path().join("b.toml"), dataset("b", "a_", "23")).unwrap();
        let key = r.slots[1].key.clone();
        r.reload_files(&[key]).await;
        assert_eq!(served(&r), [("a".into(), 0.1), ("b".into(), 0.2)]);
        assert_eq!(attempt(&r, 1), ("file".into(), false));
        let errors = &r.slots[1].status.errors;
        let b = dir.path().join("b.toml").display().to_string();
        let a = dir.path().join("a.toml").display().to_string();
        assert!(
            errors.contains(&format!("{b}:10:8: `a_rate_ratio` (metric `rate`) of dataset `b` is also served by dataset `a` (metric `rate` at {a}:10:8), expected metric names unique across datasets (another metric_prefix?)")),
            "{errors:#?}"
        );
    }

    #[tokio::test]
    async fn a_recompressed_snapshot_is_taken_only_if_it_is_still_the_one_served() {
        let (_dir, r, _tx) = catalogue().await;
        let (triggers, rx) = mpsc::channel(4);
        let key = r.slots[0].key.clone();
        let old = r.slots[0].snapshot.clone().unwrap();
        let rebuilt = || Arc::new(Snapshot::build(old.dataset.clone()));
        let (stale, from_stale, new) = (rebuilt(), rebuilt(), rebuilt());
        // One for a snapshot since replaced, then one for the snapshot in service.
        for (old, new) in [(stale, from_stale), (old.clone(), new.clone())] {
            let key = key.clone();
            triggers
                .send(Trigger::Recompressed { key, old, new })
                .await
                .unwrap();
        }
        drop(triggers);
        let store = r.store.clone();
        r.run(rx).await;
        let served = store.load();
        assert!(
            Arc::ptr_eq(&served.datasets[0], &new),
            "the current one is swapped in, the stale one ignored"
        );
    }
}
