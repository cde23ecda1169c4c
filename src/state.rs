//! What survives a restart (`--storage.path`): each dataset's last served figures and every
//! value each series has had (its vintages), in `DIR/state/`, one file per dataset.
//!
//! Start-up compares the first load of a dataset with its stored figures as reloads compare
//! two loads (`dataset::changes::compare`), so a revision published while the
//! exporter was down is counted, logged and alerted on like any other.
//!
//! A file is written whole after each load that changed something: to a temporary file in the
//! same directory, synced, renamed over the old one, and the directory synced, so a crash at
//! any moment leaves either the old file or the new one. Its layout (little-endian):
//! `MAGIC`, version (u32), payload length (u64), payload, CRC-32 of everything before it.
//! A file that is missing, cut short, damaged, of another version or of another dataset is a
//! warning and a fresh start, never a reason not to serve.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::dataset::changes::{Figures, Series};
use crate::dataset::Dataset;

const MAGIC: &[u8; 8] = b"IXSTATE\0";
const VERSION: u32 = 1;
/// Magic, version and payload length.
const HEADER: usize = 8 + 4 + 8;
/// What state files end with; the temporary file of a write ends with `.tmp` instead.
const EXTENSION: &str = "state";

/// One value of a series, from the load that first served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vintage {
    pub value: f64,
    /// When a load first served it, in Unix milliseconds.
    pub seen_ms: i64,
    /// The dataset's `published` date at that load.
    pub published: String,
}

/// One series: its label values (in the metric's sorted label-name order), its status flag,
/// and its vintages, oldest first; the last is the value served.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    pub labels: Vec<String>,
    pub status: Option<String>,
    pub vintages: Vec<Vintage>,
}

/// One declared metric: its exposed name, its label names sorted, its series sorted by label
/// values, as [`crate::dataset::Metric`] orders them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMetric {
    pub name: String,
    pub label_names: Vec<String>,
    pub series: Vec<StoredSeries>,
}

/// What is kept of one dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub dataset: String,
    pub metrics: Vec<StoredMetric>,
}

/// How many vintages each series keeps (`--storage.vintages.*`). The value served is always
/// kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub max_per_series: usize,
    /// Vintages first seen longer ago are dropped; zero keeps them.
    pub max_age: Duration,
}

/// Why a state file could not be used: the `reason` label of
/// `indicator_exporter_storage_state_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Unreadable,
    Truncated,
    Corrupt,
    Version,
    Foreign,
    Write,
}

impl Problem {
    pub fn reason(self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::Unreadable => "unreadable",
            Problem::Truncated => "truncated",
            Problem::Corrupt => "corrupt",
            Problem::Version => "version",
            Problem::Foreign => "foreign",
            Problem::Write => "write",
        }
    }
}

/// Why a state file is not used, and the details for the log.
pub type Unusable = (Problem, String);

/// A series with more than one vintage: (metric, `a="x",b="y"`, vintages oldest first).
pub type Revised = (String, String, Vec<Vintage>);

/// The state directory and the retention of vintages.
#[derive(Debug, Clone)]
pub struct Storage {
    /// `--storage.path` itself, whose `structures/` keeps copies of remote structures.
    pub root: PathBuf,
    pub dir: PathBuf,
    pub retention: Retention,
}

impl Storage {
    /// `DIR/state` of `--storage.path=DIR`.
    pub fn new(path: &Path, retention: Retention) -> Storage {
        Storage {
            root: path.to_path_buf(),
            dir: path.join("state"),
            retention,
        }
    }

    pub fn file(&self, dataset: &str) -> PathBuf {
        self.dir.join(file_name(dataset))
    }

    /// The stored state of `dataset`, or why there is none usable.
    pub fn read(&self, dataset: &str) -> Result<State, Unusable> {
        let path = self.file(dataset);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err((
                    Problem::Missing,
                    format!("{}: no stored state", path.display()),
                ))
            }
            Err(e) => return Err((Problem::Unreadable, format!("{}: {e}", path.display()))),
        };
        let state = decode(&bytes).map_err(|(p, m)| (p, format!("{}: {m}", path.display())))?;
        if state.dataset != dataset {
            let m = format!(
                "{}: the state of dataset `{}`, not `{dataset}`",
                path.display(),
                state.dataset
            );
            return Err((Problem::Foreign, m));
        }
        Ok(state)
    }

    /// Replaces the state file of `state.dataset` so that a crash at any moment leaves the old
    /// one or the new one whole.
    pub fn write(&self, state: &State) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.file(&state.dataset);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp)?;
        f.write_all(&encode(state))?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        // The rename is durable once the directory is.
        File::open(&self.dir)?.sync_all()
    }

    /// Deletes the state files (and leftover temporary files) of datasets not in `keep`;
    /// returns the files deleted.
    pub fn prune(&self, keep: &[&str]) -> std::io::Result<Vec<PathBuf>> {
        let kept: Vec<String> = keep.iter().map(|d| file_name(d)).collect();
        let mut deleted = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(deleted),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stem = name.strip_suffix(".tmp").unwrap_or(name);
            let ours = stem.ends_with(&format!(".{EXTENSION}"));
            if ours && !kept.iter().any(|k| k == stem) {
                std::fs::remove_file(&path)?;
                deleted.push(path);
            }
        }
        Ok(deleted)
    }

    /// Every state file in the directory, read: what `export --vintages` writes out.
    pub fn read_all(&self) -> std::io::Result<Vec<(PathBuf, Result<State, Unusable>)>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == EXTENSION))
            .collect();
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|p| {
                let read = std::fs::read(&p)
                    .map_err(|e| (Problem::Unreadable, e.to_string()))
                    .and_then(|b| decode(&b));
                (p, read)
            })
            .collect())
    }
}

/// A file name for any dataset name: letters, digits, `_` and `-` as they are, every other
/// byte as `%XX`; a long name cut, with the CRC-32 of the whole so two stay apart.
pub fn file_name(dataset: &str) -> String {
    let mut out = String::new();
    for b in dataset.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 200 {
        out.truncate(200);
        out.push_str(&format!("-{:08x}", crc32fast::hash(dataset.as_bytes())));
    }
    format!("{out}.{EXTENSION}")
}

pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl State {
    /// The state after a load of `dataset` at `now`: each series of its declared metrics with
    /// the vintages it had in `self` (same metric, label names and label values), and a new
    /// vintage where its value changed; series no longer served are dropped.
    pub fn advance(&self, dataset: &Dataset, now: SystemTime, retention: Retention) -> State {
        let now_ms = unix_ms(now);
        let metrics = dataset
            .metrics
            .iter()
            .map(|m| {
                let served = dataset.metric(&m.name).expect("the dataset's own metric");
                let label_names: Vec<String> =
                    served.names().into_iter().map(String::from).collect();
                let old = self
                    .metrics
                    .iter()
                    .find(|o| o.name == m.name && o.label_names == label_names);
                let series = (0..m.len())
                    .map(|i| {
                        let labels: Vec<String> = (0..label_names.len())
                            .map(|k| served.key(i, k).to_string())
                            .collect();
                        let mut vintages = old
                            .and_then(|o| o.find(&labels))
                            .map(|s| s.vintages.clone())
                            .unwrap_or_default();
                        let value = m.value(i);
                        if vintages
                            .last()
                            .is_none_or(|v| v.value.to_bits() != value.to_bits())
                        {
                            vintages.push(Vintage {
                                value,
                                seen_ms: now_ms,
                                published: dataset.info.published.clone(),
                            });
                        }
                        retention.apply(&mut vintages, now_ms);
                        let status = m.status(i).map(|s| dataset.symbol(s).to_string());
                        StoredSeries {
                            labels,
                            status,
                            vintages,
                        }
                    })
                    .collect();
                StoredMetric {
                    name: m.name.clone(),
                    label_names,
                    series,
                }
            })
            .collect();
        State {
            dataset: dataset.info.name.clone(),
            metrics,
        }
    }

    /// Every series with more than one vintage.
    pub fn revised(&self) -> Vec<Revised> {
        self.metrics
            .iter()
            .flat_map(|m| {
                m.series
                    .iter()
                    .filter(|s| s.vintages.len() > 1)
                    .map(|s| (m.name.clone(), m.text(s), s.vintages.clone()))
            })
            .collect()
    }
}

impl Retention {
    /// Drops the oldest vintages beyond the count, and those older than the age; never the
    /// last.
    fn apply(&self, vintages: &mut Vec<Vintage>, now_ms: i64) {
        let keep_from = vintages.len().saturating_sub(self.max_per_series.max(1));
        let mut drop = keep_from;
        if !self.max_age.is_zero() {
            let age = i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
            let oldest = now_ms.saturating_sub(age);
            let too_old = vintages[..vintages.len() - 1]
                .iter()
                .take_while(|v| v.seen_ms < oldest)
                .count();
            drop = drop.max(too_old);
        }
        vintages.drain(..drop);
    }
}

impl StoredMetric {
    fn find(&self, labels: &[String]) -> Option<&StoredSeries> {
        let i = self
            .series
            .binary_search_by(|s| s.labels.as_slice().cmp(labels))
            .ok()?;
        Some(&self.series[i])
    }

    /// `a="x",b="y"` of a series, as the exposition writes its labels.
    pub fn text(&self, s: &StoredSeries) -> String {
        let pairs: Vec<String> = self
            .label_names
            .iter()
            .zip(&s.labels)
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        pairs.join(",")
    }
}

impl Series for &StoredMetric {
    fn names(&self) -> Vec<&str> {
        self.label_names.iter().map(String::as_str).collect()
    }
    fn len(&self) -> usize {
        self.series.len()
    }
    fn key(&self, i: usize, k: usize) -> &str {
        &self.series[i].labels[k]
    }
    fn value(&self, i: usize) -> f64 {
        self.series[i].vintages.last().map_or(f64::NAN, |v| v.value)
    }
    fn text(&self, i: usize) -> String {
        StoredMetric::text(self, &self.series[i])
    }
}

impl Figures for State {
    type Metric<'a> = &'a StoredMetric;
    fn metric_names(&self) -> Vec<&str> {
        self.metrics.iter().map(|m| m.name.as_str()).collect()
    }
    fn metric(&self, name: &str) -> Option<&StoredMetric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// The file's bytes.
pub fn encode(state: &State) -> Vec<u8> {
    let mut p = Payload(Vec::new());
    p.str(&state.dataset);
    p.len(state.metrics.len());
    for m in &state.metrics {
        p.str(&m.name);
        p.len(m.label_names.len());
        for l in &m.label_names {
            p.str(l);
        }
        p.len(m.series.len());
        for s in &m.series {
            for l in &s.labels {
                p.str(l);
            }
            match &s.status {
                Some(st) => {
                    p.0.push(1);
                    p.str(st);
                }
                None => p.0.push(0),
            }
            p.len(s.vintages.len());
            for v in &s.vintages {
                p.0.extend_from_slice(&v.value.to_bits().to_le_bytes());
                p.0.extend_from_slice(&v.seen_ms.to_le_bytes());
                p.str(&v.published);
            }
        }
    }
    let mut out = Vec::with_capacity(HEADER + p.0.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(p.0.len() as u64).to_le_bytes());
    out.extend_from_slice(&p.0);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Payload(Vec<u8>);

impl Payload {
    fn len(&mut self, n: usize) {
        self.0
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads a file's bytes back, checking its magic, version, length and checksum first.
pub fn decode(bytes: &[u8]) -> Result<State, Unusable> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        let p = if MAGIC.starts_with(bytes) {
            Problem::Truncated
        } else {
            Problem::Corrupt
        };
        return Err((p, "not a state file".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        let m = format!("state file version {version}, expected {VERSION}");
        return Err((Problem::Version, m));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER))
        .unwrap_or(usize::MAX);
    if bytes.len() < end.saturating_add(4) {
        let m = format!("{} bytes, expected {}", bytes.len(), end.saturating_add(4));
        return Err((Problem::Truncated, m));
    }
    if bytes.len() > end + 4 {
        return Err((Problem::Corrupt, "bytes after the checksum".into()));
    }
    let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..end]) != crc {
        return Err((Problem::Corrupt, "checksum mismatch".into()));
    }
    let mut r = Reader(&bytes[HEADER..end]);
    read_state(&mut r)
        .filter(|_| r.0.is_empty())
        .ok_or((Problem::Corrupt, "malformed payload".into()))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn len(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.take()?)).ok()
    }
    /// A count of items of at least `min` bytes each: never more than the bytes left allow,
    /// so a damaged count cannot make us allocate much.
    fn count(&mut self, min: usize) -> Option<usize> {
        self.len()
            .filter(|&n| n.saturating_mul(min) <= self.0.len())
    }
    fn str(&mut self) -> Option<String> {
        let n = self.len()?;
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        String::from_utf8(head.to_vec()).ok()
    }
}

fn read_state(r: &mut Reader) -> Option<State> {
    let dataset = r.str()?;
    let n = r.count(12)?;
    let mut metrics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?;
        let k = r.count(4)?;
        let label_names = (0..k).map(|_| r.str()).collect::<Option<Vec<_>>>()?;
        let n = r.count(5 + 4 * k)?;
        let mut series = Vec::with_capacity(n);
        for _ in 0..n {
            let labels = (0..k).map(|_| r.str()).collect::<Option<Vec<_>>>()?;
            let status = match r.take::<1>()? {
                [0] => None,
                [1] => Some(r.str()?),
                _ => return None,
            };
            let v = r.count(20)?;
            let mut vintages = Vec::with_capacity(v);
            for _ in 0..v {
                vintages.push(Vintage {
                    value: f64::from_bits(u64::from_le_bytes(r.take()?)),
                    seen_ms: i64::from_le_bytes(r.take()?),
                    published: r.str()?,
                });
            }
            series.push(StoredSeries {
                labels,
                status,
                vintages,
            });
        }
        metrics.push(StoredMetric {
            name,
            label_names,
            series,
        });
    }
    Some(State { dataset, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::changes::compare;
    use crate::dataset::{build, DataFiles};

    fn dataset(published: &str, values: [f64; 2]) -> Dataset {
        let text = format!(
            "[dataset]\nname = \"t\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"{published}\"\nmetric_prefix = \"t_\"\n[[metric]]\nname = \"a\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"year\", \"geo\"]\nsamples = [\n  {{ labels = {{ year = \"2024\", geo = \"DE\" }}, value = {} }},\n  {{ labels = {{ year = \"2024\", geo = \"FR\" }}, value = {} }},\n]\n",
            values[0], values[1]
        );
        let path = Path::new("t.toml");
        let config = crate::config::parse(path, &text).unwrap();
        build(path, &text, &config, &DataFiles::new()).unwrap()
    }

    const KEEP: Retention = Retention {
        max_per_series: 3,
        max_age: Duration::ZERO,
    };

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn vintages_accumulate_and_the_stored_figures_compare_like_a_reload() {
        let first = dataset("2025-01-01", [1.0, 2.0]);
        let s1 = State::default().advance(&first, at(100), KEEP);
        let second = dataset("2025-02-01", [1.5, 2.0]);
        assert_eq!(
            compare(&s1, &second),
            crate::dataset::changes::diff(&first, &second)
        );
        let s2 = s1.advance(&second, at(200), KEEP);
        let revised = s2.revised();
        assert_eq!(revised.len(), 1);
        assert_eq!(revised[0].0, "t_a");
        assert_eq!(revised[0].1, "geo=\"DE\",year=\"2024\"");
        let seen: Vec<(f64, i64, &str)> = revised[0]
            .2
            .iter()
            .map(|v| (v.value, v.seen_ms, v.published.as_str()))
            .collect();
        assert_eq!(
            seen,
            [(1.0, 100_000, "2025-01-01"), (1.5, 200_000, "2025-02-01")]
        );
        // Back and forth: each value is a vintage again, the oldest dropped beyond three.
        let s3 = s2
            .advance(&first, at(300), KEEP)
            .advance(&second, at(400), KEEP);
        let v: Vec<i64> = s3.revised()[0].2.iter().map(|v| v.seen_ms).collect();
        assert_eq!(v, [200_000, 300_000, 400_000]);
        let aged = Retention {
            max_per_series: 10,
            max_age: Duration::from_secs(150),
        };
        let s4 = s3.advance(&second, at(500), aged);
        let v: Vec<i64> = s4.metrics[0].series[0]
            .vintages
            .iter()
            .map(|v| v.seen_ms)
            .collect();
        assert_eq!(v, [400_000], "the value served stays, however old");
    }

    #[test]
    fn encoding_round_trips_and_damage_is_named() {
        let mut s = State::default().advance(&dataset("2025-01-01", [1.0, 2.0]), at(1), KEEP);
        s.metrics[0].series[1].vintages[0].value = f64::NAN;
        let bytes = encode(&s);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.metrics[0].series[0], s.metrics[0].series[0]);
        assert!(back.metrics[0].series[1].vintages[0].value.is_nan());
        let reason = |b: &[u8]| decode(b).unwrap_err().0;
        assert_eq!(reason(&bytes[..bytes.len() - 1]), Problem::Truncated);
        assert_eq!(reason(&bytes[..5]), Problem::Truncated);
        assert_eq!(
            reason(b"garbage, not a state file at all"),
            Problem::Corrupt
        );
        let mut flipped = bytes.clone();
        flipped[HEADER + 3] ^= 1;
        assert_eq!(reason(&flipped), Problem::Corrupt);
        let mut other = bytes.clone();
        other[8] = 2;
        assert_eq!(reason(&other), Problem::Version);
    }

    #[test]
    fn file_names_are_safe_for_any_dataset_name() {
        assert_eq!(file_name("estat_une-rt"), "estat_une-rt.state");
        assert_eq!(file_name("../a b"), "%2E%2E%2Fa%20b.state");
        let long = file_name(&"x".repeat(300));
        assert!(long.len() < 255 && long != file_name(&"x".repeat(301)));
    }

    #[test]
    fn writes_replace_reads_check_the_dataset_and_prune_keeps_the_catalogue() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), KEEP);
        assert_eq!(storage.read("t").unwrap_err().0, Problem::Missing);
        let s = State::default().advance(&dataset("2025-01-01", [1.0, 2.0]), at(1), KEEP);
        storage.write(&s).unwrap();
        assert_eq!(storage.read("t").unwrap(), s);
        std::fs::copy(storage.file("t"), storage.file("u")).unwrap();
        assert_eq!(storage.read("u").unwrap_err().0, Problem::Foreign);
        std::fs::write(storage.dir.join("v.state.tmp"), b"half").unwrap();
        let mut deleted = storage.prune(&["t"]).unwrap();
        deleted.sort();
        assert_eq!(
            deleted,
            [storage.file("u"), storage.dir.join("v.state.tmp")]
        );
        assert!(storage.read("t").is_ok());
    }
}
