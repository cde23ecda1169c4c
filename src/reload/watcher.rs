//! Watches the files each dataset was read from and says which datasets changed. Only events
//! that name those files, or a symlink or directory their paths go through, count; nothing is
//! ever opened, so an idle daemon reads no file at all.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch as channel};
use tokio::time::Instant;
use tracing::{debug, warn};

/// What to watch: per dataset name, the files it was read from (config file first). A path
/// that is a directory (a catalogue's directory of dataset files) counts the creation, removal
/// or renaming of a `*.toml` file in it, not what is written to its files.
pub type Watched = Vec<(String, Vec<PathBuf>)>;

/// How long a dataset's files must be quiet before their events count as one change.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Symlinks followed per path before giving up, as the kernel does (ELOOP).
const MAX_SYMLINKS: usize = 40;

/// Starts watching; the watches are in place when it returns. The future sends, for each
/// quiet burst of relevant events, the names of the datasets whose files changed (sorted,
/// deduplicated). It ends when `files` or `changed` closes.
///
/// Directories are watched, not files: editors save by renaming over a file and Kubernetes
/// swaps a ConfigMap by renaming a symlink, which a watch on the file itself would miss. The
/// parent of each such directory is watched too, so a directory removed and created again is
/// watched again. While the receiver is busy, later changes wait here and are merged.
pub async fn watch(
    mut files: channel::Receiver<Watched>,
    changed: mpsc::Sender<Vec<String>>,
) -> Result<impl Future<Output = ()> + Send, notify::Error> {
    let (tx, events) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Some(notice) = Notice::from_event(res) {
            let _ = tx.send(notice);
        }
    })?;
    let current = files.borrow_and_update().clone();
    let core = Core::new(watcher, current);
    Ok(run(core, files, events, changed))
}

/// A file system event reduced to what reloading needs. Built on the watcher's own thread, so
/// reads, opens and metadata changes are dropped before they wake the runtime.
#[derive(Debug)]
enum Notice {
    /// `paths` were created, renamed or removed (`structure`), or written to.
    Paths {
        structure: bool,
        paths: Vec<PathBuf>,
        kind: EventKind,
    },
    /// The kernel's queue overflowed: any file may have changed.
    Rescan,
    Failed(notify::Error),
}

impl Notice {
    fn from_event(res: notify::Result<notify::Event>) -> Option<Notice> {
        let event = match res {
            Ok(event) => event,
            Err(e) => return Some(Notice::Failed(e)),
        };
        if event.need_rescan() {
            return Some(Notice::Rescan);
        }
        let structure = match event.kind {
            EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_)) => true,
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Other)
            | EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
            _ => return None,
        };
        Some(Notice::Paths {
            structure,
            paths: event.paths,
            kind: event.kind,
        })
    }
}

/// The paths whose events count, with the datasets each belongs to, and the directories to
/// watch to see them. Computed with `lstat` and `readlink` only.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    relevant: HashMap<PathBuf, BTreeSet<String>>,
    /// Directories whose `*.toml` entries count, as they come and go.
    entries: HashMap<PathBuf, BTreeSet<String>>,
    dirs: BTreeSet<PathBuf>,
}

impl Plan {
    fn new(files: &Watched) -> Plan {
        // Relative paths are relative to the process's directory, as the loader reads them.
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut plan = Plan::default();
        for (name, paths) in files {
            for file in paths {
                let chain = resolution(&cwd.join(file));
                if let Some(dir) = chain.last().filter(|d| is_dir(d)) {
                    plan.entries
                        .entry(dir.clone())
                        .or_default()
                        .insert(name.to_string());
                }
                for path in chain {
                    plan.add(name, path);
                }
            }
        }
        plan
    }

    /// The datasets of a catalogue directory that gained or lost a dataset file among `paths`
    /// (hidden files, such as a ConfigMap's `..data`, are not dataset files). A file already
    /// read that is saved again (renamed over) is its own dataset's change, not the
    /// catalogue's; it leaving is the catalogue's.
    fn entries<'a>(
        &'a self,
        paths: &'a [PathBuf],
        kind: EventKind,
    ) -> impl Iterator<Item = &'a String> + 'a {
        use notify::event::RenameMode;
        paths
            .iter()
            .enumerate()
            .filter(move |(i, p)| {
                // A rename names where from, then where to.
                let leaving = match kind {
                    EventKind::Remove(_) => true,
                    EventKind::Modify(ModifyKind::Name(RenameMode::From)) => true,
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => *i == 0,
                    _ => false,
                };
                leaving || !self.relevant.contains_key(*p)
            })
            .map(|(_, p)| p)
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".toml") && !n.starts_with('.'))
            })
            .filter_map(|p| self.entries.get(p.parent()?))
            .flatten()
    }

    /// Counts `path` for dataset `name`, with the directories above it up to the first that
    /// exists: their creation, removal or renaming changes what `path` is. That directory and
    /// its parent are watched.
    fn add(&mut self, name: &str, path: PathBuf) {
        let mut dir = path.parent().map(Path::to_path_buf);
        self.relevant
            .entry(path)
            .or_default()
            .insert(name.to_string());
        while let Some(d) = dir {
            self.relevant
                .entry(d.clone())
                .or_default()
                .insert(name.to_string());
            if is_dir(&d) {
                if let Some(parent) = d.parent().filter(|p| is_dir(p)) {
                    self.dirs.insert(parent.to_path_buf());
                }
                self.dirs.insert(d);
                return;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
    }

    /// The datasets any of `paths` belongs to.
    fn datasets<'a>(&'a self, paths: &'a [PathBuf]) -> impl Iterator<Item = &'a String> + 'a {
        paths.iter().filter_map(|p| self.relevant.get(p)).flatten()
    }
}

fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Identity of a watched directory: a directory removed and created again under the same
/// name is a new one, whose watch must be added again.
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_dir().then(|| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<(u64, u64)> {
    is_dir(path).then_some((0, 0))
}

/// One part of a path still to resolve.
enum Part {
    Root,
    Up,
    Name(OsString),
}

fn push_front(queue: &mut VecDeque<Part>, path: &Path) {
    for c in path.components().rev() {
        queue.push_front(match c {
            Component::Prefix(_) | Component::RootDir => Part::Root,
            Component::CurDir => continue,
            Component::ParentDir => Part::Up,
            Component::Normal(n) => Part::Name(n.to_os_string()),
        });
    }
}

/// The paths the resolution of `path` goes through, as `realpath` walks it: each symlink met
/// (e.g. `config.toml`, then a ConfigMap's `..data`) and the final path. Every directory in
/// them is free of symlinks, so they are the paths events of a directory watch carry. A part
/// that does not exist ends nothing: the rest is taken as written.
fn resolution(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut queue = VecDeque::new();
    push_front(&mut queue, path);
    let mut resolved = PathBuf::new();
    while let Some(part) = queue.pop_front() {
        match part {
            Part::Root => resolved = PathBuf::from(std::path::MAIN_SEPARATOR_STR),
            // `resolved` holds no symlink, so going up is going to its parent.
            Part::Up => {
                resolved.pop();
            }
            Part::Name(name) => {
                let candidate = resolved.join(name);
                let target = std::fs::symlink_metadata(&candidate)
                    .ok()
                    .filter(|m| m.file_type().is_symlink() && out.len() < MAX_SYMLINKS)
                    .and_then(|_| std::fs::read_link(&candidate).ok());
                match target {
                    Some(target) => {
                        out.push(candidate);
                        push_front(&mut queue, &target);
                    }
                    None => resolved = candidate,
                }
            }
        }
    }
    out.push(resolved);
    out
}

/// Per-dataset quiet windows: an event pushes back only its own dataset's deadline.
#[derive(Debug, Default)]
struct Debounce {
    due: HashMap<String, Instant>,
}

impl Debounce {
    fn touch<'a>(&mut self, names: impl IntoIterator<Item = &'a String>, now: Instant) {
        for name in names {
            self.due.insert(name.clone(), now + DEBOUNCE);
        }
    }

    fn next(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    /// Removes and returns the datasets whose window has closed by `now`.
    fn take_due(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        self.due.retain(|name, due| {
            let keep = *due > now;
            if !keep {
                out.push(name.clone());
            }
            keep
        });
        out
    }
}

/// The watcher's state: what to watch, what is watched, and changes not yet sent.
struct Core<W> {
    watcher: W,
    files: Watched,
    plan: Plan,
    /// Watched directories and the identity each had when its watch was added.
    watches: HashMap<PathBuf, (u64, u64)>,
    debounce: Debounce,
    /// Datasets whose window closed while the receiver had no room: sent together next.
    pending: BTreeSet<String>,
}

impl<W: Watcher> Core<W> {
    fn new(watcher: W, files: Watched) -> Core<W> {
        let mut core = Core {
            watcher,
            files,
            plan: Plan::default(),
            watches: HashMap::new(),
            debounce: Debounce::default(),
            pending: BTreeSet::new(),
        };
        core.replan();
        core
    }

    /// Recomputes the plan and brings the watches in line with it.
    fn replan(&mut self) {
        self.plan = Plan::new(&self.files);
        let stale: Vec<PathBuf> = self
            .watches
            .keys()
            .filter(|d| !self.plan.dirs.contains(*d))
            .cloned()
            .collect();
        for d in stale {
            self.watches.remove(&d);
            // Fails when the directory is gone, which removed its watch already.
            let _ = self.watcher.unwatch(&d);
        }
        for d in &self.plan.dirs {
            let Some(id) = identity(d) else {
                continue;
            };
            match self.watches.get(d) {
                Some(had) if *had == id => continue,
                Some(_) => {
                    let _ = self.watcher.unwatch(d);
                }
                None => {}
            }
            match self.watcher.watch(d, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    debug!(dir = %d.display(), "watching directory");
                    self.watches.insert(d.clone(), id);
                }
                Err(e) => {
                    // Removed meanwhile: its parent's watch reports when it comes back.
                    warn!(dir = %d.display(), error = %e, "cannot watch directory");
                    self.watches.remove(d);
                }
            }
        }
    }

    fn set_files(&mut self, files: Watched) {
        if files != self.files {
            self.files = files;
            self.replan();
        }
    }

    fn notice(&mut self, notice: Notice, now: Instant) {
        match notice {
            Notice::Paths {
                structure,
                paths,
                kind,
            } => {
                // The watch of a directory removed or renamed is gone, or follows it
                // elsewhere: dropped here, added again by the replan if the name exists.
                // notify drops it on its own thread before it handles this unwatch.
                let mut lost = false;
                if structure {
                    for p in &paths {
                        if self.watches.remove(p).is_some() {
                            let _ = self.watcher.unwatch(p);
                            lost = true;
                        }
                    }
                }
                let mut names: BTreeSet<String> = self.plan.datasets(&paths).cloned().collect();
                if structure {
                    names.extend(self.plan.entries(&paths, kind).cloned());
                }
                if !names.is_empty() {
                    debug!(paths = ?paths, kind = ?kind, datasets = ?names, "dataset file event");
                }
                // A new file, directory or symlink target may need a watch before it is
                // written to, so this cannot wait for the quiet window.
                if structure && (lost || !names.is_empty()) {
                    self.replan();
                }
                self.debounce.touch(&names, now);
            }
            Notice::Rescan => {
                warn!("file events were lost; every dataset counts as changed");
                self.replan();
                let names: Vec<String> = self.files.iter().map(|(n, _)| n.clone()).collect();
                self.debounce.touch(&names, now);
            }
            Notice::Failed(e) => warn!(error = %e, "file watcher error"),
        }
    }

    fn close_windows(&mut self, now: Instant) {
        self.pending.extend(self.debounce.take_due(now));
    }
}

async fn run<W: Watcher + Send>(
    mut core: Core<W>,
    mut files: channel::Receiver<Watched>,
    mut events: mpsc::UnboundedReceiver<Notice>,
    changed: mpsc::Sender<Vec<String>>,
) {
    loop {
        let next = core.debounce.next();
        tokio::select! {
            r = files.changed() => {
                if r.is_err() {
                    return;
                }
                let files = files.borrow_and_update().clone();
                core.set_files(files);
            }
            notice = events.recv() => match notice {
                Some(n) => core.notice(n, Instant::now()),
                None => return,
            },
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                core.close_windows(Instant::now());
            }
            permit = changed.reserve(), if !core.pending.is_empty() => match permit {
                Ok(permit) => {
                    let names: Vec<String> = std::mem::take(&mut core.pending).into_iter().collect();
                    debug!(datasets = ?names, "dataset files changed");
                    permit.send(names);
                }
                Err(_) => return,
            },
            () = changed.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use tokio::time::timeout;

    #[tokio::test]
    async fn a_catalogue_directory_reports_dataset_files_coming_and_going() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("datasets.d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("a.toml"), "a").unwrap();
        let mut w = Running::start(watched(&[("", &[&d]), ("a", &[&d.join("a.toml")])])).await;
        // Written to: the dataset's own key, not the catalogue's.
        let within = Duration::from_secs(5);
        fs::write(d.join("a.toml"), "a2").unwrap();
        assert_eq!(w.next(within).await, Some(vec!["a".to_string()]));
        fs::write(d.join("b.toml"), "b").unwrap();
        assert_eq!(w.next(within).await, Some(vec!["".to_string()]));
        // Not dataset files.
        fs::write(d.join(".hidden.toml"), "x").unwrap();
        fs::write(d.join("notes.txt"), "x").unwrap();
        assert_eq!(w.next(Duration::from_millis(600)).await, None);
        fs::remove_file(d.join("b.toml")).unwrap();
        assert_eq!(w.next(within).await, Some(vec!["".to_string()]));
    }

    fn watched(sets: &[(&str, &[&Path])]) -> Watched {
        sets.iter()
            .map(|(n, ps)| (n.to_string(), ps.iter().map(|p| p.to_path_buf()).collect()))
            .collect()
    }

    /// A running watcher: its files channel, what it sends, and the task.
    struct Running {
        _files: channel::Sender<Watched>,
        rx: mpsc::Receiver<Vec<String>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        async fn start(w: Watched) -> Running {
            let (files_tx, files_rx) = channel::channel(w);
            let (tx, rx) = mpsc::channel(4);
            let fut = watch(files_rx, tx).await.expect("watcher starts");
            Running {
                _files: files_tx,
                rx,
                task: tokio::spawn(fut),
            }
        }

        /// The next message, if one comes within `within`.
        async fn next(&mut self, within: Duration) -> Option<Vec<String>> {
            timeout(within, self.rx.recv()).await.ok().flatten()
        }

        /// The next message, which must come within 5 s.
        async fn expect(&mut self, what: &str) -> Vec<String> {
            self.next(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("no change reported after {what}"))
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// The canonical form of a temporary directory (it may sit behind a symlink, as on macOS).
    fn tempdir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = fs::canonicalize(dir.path()).expect("canonical path");
        (dir, path)
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn a_write_reports_its_dataset_only() {
        let (_t, dir) = tempdir();
        fs::create_dir(dir.join("a")).unwrap();
        fs::create_dir(dir.join("b")).unwrap();
        let (a, b) = (dir.join("a/a.toml"), dir.join("b/b.toml"));
        fs::write(&a, "1").unwrap();
        fs::write(&b, "1").unwrap();
        let mut w = Running::start(watched(&[("a", &[&a]), ("b", &[&b])])).await;
        fs::write(&b, "2").unwrap();
        assert_eq!(w.expect("writing b").await, names(&["b"]));
        assert_eq!(w.next(Duration::from_millis(600)).await, None);
    }

    #[tokio::test]
    async fn reading_the_files_reports_nothing() {
        let (_t, dir) = tempdir();
        let a = dir.join("a.toml");
        let data = dir.join("a.csv");
        fs::write(&a, "1").unwrap();
        fs::write(&data, "x").unwrap();
        let mut w = Running::start(watched(&[("a", &[&a, &data])])).await;
        for _ in 0..100 {
            assert_eq!(fs::read(&a).unwrap(), b"1");
            assert_eq!(fs::read(&data).unwrap(), b"x");
        }
        // The measurement: a report, if any, would come 250 ms after the last read.
        assert_eq!(w.next(Duration::from_secs(1)).await, None);
        // The watcher is alive: a write after the reads is reported.
        fs::write(&data, "y").unwrap();
        assert_eq!(w.expect("writing a.csv").await, names(&["a"]));
    }

    #[tokio::test]
    async fn a_busy_unrelated_file_does_not_delay_the_report() {
        let (_t, dir) = tempdir();
        let a = dir.join("a.toml");
        fs::write(&a, "1").unwrap();
        let mut w = Running::start(watched(&[("a", &[&a])])).await;
        let log = dir.join("exporter.log");
        let start = std::time::Instant::now();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::File::create(&log).unwrap();
            for i in 0..30 {
                writeln!(f, "line {i}").unwrap();
                // Rewritten whole too, as a log rotation does.
                fs::write(log.with_extension("log.1"), format!("{i}")).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        fs::write(&a, "2").unwrap();
        let changed_at = std::time::Instant::now();
        assert_eq!(w.expect("writing a.toml").await, names(&["a"]));
        let after_change = changed_at.elapsed();
        let after_start = start.elapsed();
        assert!(
            after_change < Duration::from_secs(1),
            "reported {after_change:?} after the change"
        );
        assert!(
            !writer.is_finished() && after_start < Duration::from_secs(3),
            "reported only when the log stopped ({after_start:?})"
        );
        writer.join().unwrap();
        assert_eq!(w.next(Duration::from_millis(500)).await, None);
    }

    #[tokio::test]
    async fn a_save_by_rename_is_reported_and_the_new_file_watched() {
        let (_t, dir) = tempdir();
        let a = dir.join("a.toml");
        fs::write(&a, "1").unwrap();
        let mut w = Running::start(watched(&[("a", &[&a])])).await;
        for text in ["2", "3"] {
            let tmp = dir.join("a.toml.tmp");
            fs::write(&tmp, text).unwrap();
            fs::rename(&tmp, &a).unwrap();
            assert_eq!(w.expect("rename over a.toml").await, names(&["a"]));
        }
        fs::write(&a, "4").unwrap();
        assert_eq!(w.expect("writing the renamed file").await, names(&["a"]));
    }

    /// The layout Kubernetes gives a ConfigMap volume.
    fn configmap_swap(dir: &Path, version: &str, text: &str) {
        let v = dir.join(version);
        fs::create_dir(&v).unwrap();
        fs::write(v.join("x.toml"), text).unwrap();
        std::os::unix::fs::symlink(version, dir.join("..data_tmp")).unwrap();
        fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    }

    #[tokio::test]
    async fn a_configmap_symlink_swap_is_reported_every_time() {
        let (_t, dir) = tempdir();
        let v1 = dir.join("..2026_1");
        fs::create_dir(&v1).unwrap();
        fs::write(v1.join("x.toml"), "1").unwrap();
        std::os::unix::fs::symlink("..2026_1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/x.toml", dir.join("x.toml")).unwrap();
        let x = dir.join("x.toml");
        let mut w = Running::start(watched(&[("x", &[&x])])).await;

        configmap_swap(&dir, "..2026_2", "2");
        assert_eq!(w.expect("the first swap").await, names(&["x"]));
        // Kubernetes then removes the old version: not a change of what x.toml is.
        fs::remove_dir_all(&v1).unwrap();
        assert_eq!(w.next(Duration::from_millis(600)).await, None);

        configmap_swap(&dir, "..2026_3", "3");
        assert_eq!(w.expect("the second swap").await, names(&["x"]));
        // The version now in use is watched: an edit in place is seen.
        fs::write(dir.join("..2026_3/x.toml"), "4").unwrap();
        assert_eq!(w.expect("writing the target").await, names(&["x"]));
    }

    #[tokio::test]
    async fn a_directory_removed_and_created_again_is_watched_again() {
        let (_t, dir) = tempdir();
        let d = dir.join("conf");
        fs::create_dir(&d).unwrap();
        let a = d.join("a.toml");
        fs::write(&a, "1").unwrap();
        let mut w = Running::start(watched(&[("a", &[&a])])).await;
        fs::remove_dir_all(&d).unwrap();
        fs::create_dir(&d).unwrap();
        fs::write(&a, "2").unwrap();
        assert_eq!(w.expect("the directory coming back").await, names(&["a"]));
        fs::write(&a, "3").unwrap();
        assert_eq!(
            w.expect("a write in the new directory").await,
            names(&["a"])
        );
    }

    #[tokio::test]
    async fn a_file_and_its_directory_missing_at_start_are_picked_up() {
        let (_t, dir) = tempdir();
        let a = dir.join("a.toml");
        let data = dir.join("data/a.csv");
        fs::write(&a, "1").unwrap();
        let mut w = Running::start(watched(&[("a", &[&a, &data])])).await;
        fs::create_dir(dir.join("data")).unwrap();
        assert_eq!(w.expect("creating data/").await, names(&["a"]));
        fs::write(&data, "x").unwrap();
        assert_eq!(w.expect("creating data/a.csv").await, names(&["a"]));
        fs::write(&data, "y").unwrap();
        assert_eq!(w.expect("writing data/a.csv").await, names(&["a"]));
    }

    #[tokio::test]
    async fn two_datasets_in_one_directory_only_the_changed_one() {
        let (_t, dir) = tempdir();
        let (a, b) = (dir.join("a.toml"), dir.join("b.toml"));
        let shared = dir.join("shared.csv");
        for f in [&a, &b, &shared] {
            fs::write(f, "1").unwrap();
        }
        let mut w = Running::start(watched(&[("a", &[&a, &shared]), ("b", &[&b, &shared])])).await;
        fs::write(&a, "2").unwrap();
        assert_eq!(w.expect("writing a.toml").await, names(&["a"]));
        fs::write(&b, "2").unwrap();
        assert_eq!(w.expect("writing b.toml").await, names(&["b"]));
        fs::write(&shared, "2").unwrap();
        assert_eq!(w.expect("writing shared.csv").await, names(&["a", "b"]));
        // A metadata change alone is not a change.
        let mut perms = fs::metadata(&a).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&a, perms).unwrap();
        assert_eq!(w.next(Duration::from_millis(600)).await, None);
    }

    #[tokio::test]
    async fn a_relative_path_is_watched_from_the_current_directory() {
        let (_t, dir) = tempdir();
        let a = dir.join("a.toml");
        fs::write(&a, "1").unwrap();
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(&a, &cwd);
        let mut w = Running::start(watched(&[("a", &[&relative])])).await;
        fs::write(&a, "2").unwrap();
        assert_eq!(w.expect("writing a.toml").await, names(&["a"]));
    }

    /// `to` as a path relative to `from` (both absolute, `from` free of symlinks).
    fn pathdiff(to: &Path, from: &Path) -> PathBuf {
        let from: Vec<_> = from.components().collect();
        let to_c: Vec<_> = to.components().collect();
        let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
        let mut out = PathBuf::new();
        for _ in common..from.len() {
            out.push("..");
        }
        for c in &to_c[common..] {
            out.push(c);
        }
        out
    }

    #[test]
    fn the_resolution_of_a_configmap_file_names_each_symlink_and_the_target() {
        let (_t, dir) = tempdir();
        fs::create_dir(dir.join("..2026_1")).unwrap();
        fs::write(dir.join("..2026_1/x.toml"), "1").unwrap();
        std::os::unix::fs::symlink("..2026_1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/x.toml", dir.join("x.toml")).unwrap();
        assert_eq!(
            resolution(&dir.join("x.toml")),
            vec![
                dir.join("x.toml"),
                dir.join("..data"),
                dir.join("..2026_1/x.toml")
            ]
        );
        // `..` after a symlink goes up from its target, as the kernel does.
        fs::create_dir(dir.join("..2026_1/sub")).unwrap();
        std::os::unix::fs::symlink("..2026_1/sub", dir.join("s")).unwrap();
        assert_eq!(
            resolution(&dir.join("s/../x.toml")),
            vec![dir.join("s"), dir.join("..2026_1/x.toml")]
        );
        // A loop ends instead of spinning.
        std::os::unix::fs::symlink("loop", dir.join("loop")).unwrap();
        assert_eq!(resolution(&dir.join("loop")).len(), MAX_SYMLINKS + 1);
        // A missing path is taken as written.
        assert_eq!(
            resolution(&dir.join("none/./y.toml")),
            vec![dir.join("none/y.toml")]
        );
    }

    #[test]
    fn the_plan_watches_the_directory_and_its_parent() {
        let (_t, dir) = tempdir();
        fs::create_dir(dir.join("conf")).unwrap();
        let plan = Plan::new(&watched(&[
            ("a", &[&dir.join("conf/a.toml")]),
            ("b", &[&dir.join("conf/missing/b.csv")]),
        ]));
        assert_eq!(plan.dirs, BTreeSet::from([dir.clone(), dir.join("conf")]));
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let of = |p: &str| plan.relevant.get(&dir.join(p)).cloned().unwrap_or_default();
        assert_eq!(of("conf/a.toml"), set(&["a"]));
        assert_eq!(of("conf/missing/b.csv"), set(&["b"]));
        assert_eq!(of("conf/missing"), set(&["b"]));
        assert_eq!(of("conf"), set(&["a", "b"]));
        assert_eq!(of("conf/other.toml"), set(&[]));
    }

    #[test]
    fn reads_and_metadata_changes_are_dropped_before_the_runtime() {
        use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind, RenameMode};
        let ev = |kind| Notice::from_event(Ok(notify::Event::new(kind).add_path("/x".into())));
        let structure = |n: Option<Notice>| match n {
            Some(Notice::Paths { structure, .. }) => Some(structure),
            _ => None,
        };
        assert_eq!(structure(ev(EventKind::Access(AccessKind::Read))), None);
        assert_eq!(
            structure(ev(EventKind::Access(AccessKind::Open(AccessMode::Any)))),
            None
        );
        assert_eq!(
            structure(ev(EventKind::Access(AccessKind::Close(AccessMode::Read)))),
            None
        );
        assert_eq!(
            structure(ev(EventKind::Modify(ModifyKind::Metadata(
                MetadataKind::Any
            )))),
            None
        );
        assert_eq!(
            structure(ev(EventKind::Access(AccessKind::Close(AccessMode::Write)))),
            Some(false)
        );
        assert_eq!(
            structure(ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)))),
            Some(false)
        );
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::Folder),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        ] {
            assert_eq!(structure(ev(kind)), Some(true));
        }
        let rescan = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(matches!(
            Notice::from_event(Ok(rescan)),
            Some(Notice::Rescan)
        ));
    }

    fn write(path: &str) -> Notice {
        Notice::Paths {
            structure: false,
            paths: vec![PathBuf::from(path)],
            kind: EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
        }
    }

    /// A watcher fed by hand, on paused time: `/d/a.toml`, `/d/b.toml`, `/d/c.toml`.
    fn fed(
        capacity: usize,
    ) -> (
        mpsc::UnboundedSender<Notice>,
        mpsc::Receiver<Vec<String>>,
        channel::Sender<Watched>,
    ) {
        let files = watched(&[
            ("a", &[Path::new("/d/a.toml")]),
            ("b", &[Path::new("/d/b.toml")]),
            ("c", &[Path::new("/d/c.toml")]),
        ]);
        let (files_tx, files_rx) = channel::channel(files.clone());
        let (events_tx, events) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(capacity);
        let core = Core::new(notify::NullWatcher, files);
        tokio::spawn(run(core, files_rx, events, tx));
        (events_tx, rx, files_tx)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_report_after_its_own_quiet_window() {
        let (events, mut rx, _files) = fed(4);
        let start = Instant::now();
        // a is written every 100 ms for 1 s; b once at 200 ms.
        tokio::spawn(async move {
            for i in 0..10 {
                events.send(write("/d/a.toml")).unwrap();
                events.send(write("/d/unrelated.log")).unwrap();
                if i == 2 {
                    events.send(write("/d/b.toml")).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            std::future::pending::<()>().await;
        });
        assert_eq!(rx.recv().await, Some(names(&["b"])));
        assert_eq!(start.elapsed(), Duration::from_millis(200) + DEBOUNCE);
        assert_eq!(rx.recv().await, Some(names(&["a"])));
        assert_eq!(start.elapsed(), Duration::from_millis(900) + DEBOUNCE);
        assert!(timeout(Duration::from_secs(60), rx.recv()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn changes_while_the_receiver_is_busy_are_kept_and_merged() {
        let (events, mut rx, _files) = fed(1);
        events.send(write("/d/a.toml")).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The receiver is busy (a reload running): the channel holds [a], b and c wait.
        events.send(write("/d/b.toml")).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        events.send(write("/d/c.toml")).unwrap();
        events.send(write("/d/b.toml")).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(rx.recv().await, Some(names(&["a"])));
        assert_eq!(rx.recv().await, Some(names(&["b", "c"])));
        assert!(timeout(Duration::from_secs(60), rx.recv()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watcher_ends_when_either_channel_closes() {
        let (events, rx, files) = fed(1);
        let (events2, rx2, files2) = fed(1);
        drop(rx);
        drop(files2);
        // Both ended: their event receivers are dropped.
        timeout(Duration::from_secs(1), events.closed())
            .await
            .expect("ends when the receiver closes");
        timeout(Duration::from_secs(1), events2.closed())
            .await
            .expect("ends when the files channel closes");
        drop((files, rx2));
    }
}
