//! Stage 4 of the pipeline: the immutable [`Snapshot`] a scrape serves, and the shared store
//! that a reload swaps atomically. A scrape only picks bytes out of it.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::dataset::{Dataset, DatasetInfo};
use crate::expose::encode::Format;
use crate::expose::gzip::{self, OpenGzip};
use crate::expose::render::render;
use arc_swap::ArcSwap;
use bytes::Bytes;

/// The bytes of one format: the plain body as chunks (the OpenMetrics one shares its sample
/// lines with the text one), and the body gzip-compressed, open for the self-metrics.
#[derive(Debug, Clone)]
pub struct Body {
    pub plain: Vec<Bytes>,
    pub gzip: OpenGzip,
}

/// What the landing page shows of the dataset.
#[derive(Debug, Clone)]
pub struct Summary {
    pub info: DatasetInfo,
    pub metrics: usize,
    pub series: usize,
}

/// From this many series on, a load compresses fast to serve sooner (below it, at
/// [`gzip::LEVEL`]): at a million series the load-path level would add a third of a second to
/// the load. Either way the bodies are compressed again at [`gzip::SETTLED`] right after (see
/// [`Snapshot::recompressed`]).
pub const COMPRESS_LATER_FROM: usize = 250_000;

/// A text body shorter than this is compressed at [`gzip::SETTLED`] on the load path, in a
/// millisecond or two, rather than twice.
pub const SETTLE_AT_LOAD_BELOW: usize = 64 * 1024;

/// One recompression at a time: each already runs on every core, and a catalogue loaded at
/// start-up would otherwise start one per dataset at once.
static RECOMPRESSING: Mutex<()> = Mutex::new(());

#[derive(Debug)]
pub struct Snapshot {
    /// The dataset the bodies were rendered from, for the pages and the next reload's diff.
    pub dataset: Arc<Dataset>,
    pub summary: Summary,
    pub loaded_at: SystemTime,
    /// Whether the gzip bodies are at the final level, [`gzip::SETTLED`], or at a load-path
    /// level for now.
    pub final_gzip: bool,
    text: Body,
    openmetrics: Body,
}

impl Snapshot {
    /// Renders the dataset, then compresses both formats on every core; the sample lines
    /// they share are compressed once.
    pub fn build(dataset: Arc<Dataset>) -> Snapshot {
        let rendered = render(&dataset);
        // Bytes keeps a Vec's spare capacity: give it back, it can be a third of the body.
        let mut body = rendered.text;
        body.shrink_to_fit();
        let text = Bytes::from(body);
        let om_parts: Vec<Bytes> = rendered
            .families
            .into_iter()
            .flat_map(|(meta, samples)| [Bytes::from(meta), text.slice(samples)])
            .filter(|b| !b.is_empty())
            .collect();
        let final_gzip = text.len() < SETTLE_AT_LOAD_BELOW;
        let level = if final_gzip {
            gzip::SETTLED
        } else if dataset.series_count() < COMPRESS_LATER_FROM {
            gzip::LEVEL
        } else {
            gzip::FAST
        };
        let (text_gz, om_gz) =
            gzip::compress_formats_at(level, std::slice::from_ref(&text), &om_parts);
        let text = Body {
            plain: vec![text],
            gzip: text_gz,
        };
        let openmetrics = Body {
            plain: om_parts,
            gzip: om_gz,
        };
        Snapshot {
            summary: Summary {
                info: dataset.info.clone(),
                metrics: dataset.metrics.len(),
                series: dataset.series_count(),
            },
            loaded_at: SystemTime::now(),
            final_gzip,
            dataset,
            text,
            openmetrics,
        }
    }

    /// The same snapshot with its bodies compressed at the final level, [`gzip::SETTLED`];
    /// `None` when they already are. Runs on every core, off the path that puts a load in
    /// service, one snapshot at a time.
    pub fn recompressed(&self) -> Option<Snapshot> {
        if self.final_gzip {
            return None;
        }
        let _one_at_a_time = RECOMPRESSING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (text, om) = gzip::compress_formats(&self.text.plain, &self.openmetrics.plain);
        Some(Snapshot {
            dataset: self.dataset.clone(),
            summary: self.summary.clone(),
            loaded_at: self.loaded_at,
            final_gzip: true,
            text: Body {
                plain: self.text.plain.clone(),
                gzip: text,
            },
            openmetrics: Body {
                plain: self.openmetrics.plain.clone(),
                gzip: om,
            },
        })
    }

    pub fn body(&self, format: Format) -> &Body {
        match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }
}

/// What `/metrics` serves: the snapshot of every dataset in service, in catalogue order. A
/// reload of one dataset swaps in a new list that shares every other snapshot.
#[derive(Debug, Default)]
pub struct Served {
    pub datasets: Vec<Arc<Snapshot>>,
}

impl Served {
    pub fn get(&self, name: &str) -> Option<&Arc<Snapshot>> {
        self.datasets.iter().find(|s| s.summary.info.name == name)
    }
}

/// The one place the snapshots in service live; readers never block writers.
pub type Store = Arc<ArcSwap<Served>>;

pub fn store(served: Served) -> Store {
    Arc::new(ArcSwap::from_pointee(served))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DataFile, DataFiles};
    use std::io::Read;
    use std::path::{Path, PathBuf};

    fn dataset(series: usize) -> Dataset {
        let text = "[dataset]\nname = \"d\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2024-01-01\"\nmetric_prefix = \"p_\"\n\n[dataset.period]\nlabel = \"year\"\n\n[[metric]]\nname = \"a\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"k\", \"year\"]\nsamples_file = \"a.csv\"\n";
        let mut csv = String::from("k,year,value\n");
        for i in 0..series {
            csv.push_str(&format!("k{i},2024,{}\n", i % 1000));
        }
        let mut files = DataFiles::new();
        files.insert(
            "a.csv".into(),
            DataFile {
                path: PathBuf::from("a.csv"),
                bytes: Ok(csv.into()),
            },
        );
        let path = Path::new("c.toml");
        let config = crate::config::parse(path, text).unwrap();
        crate::dataset::build(path, text, &config, &files).unwrap()
    }

    fn gunzip(body: &Body) -> Vec<u8> {
        let chunks = body.gzip.finish(&crate::expose::gzip::Tail::new(b""));
        let all: Vec<u8> = chunks.iter().flat_map(|b| b.iter().copied()).collect();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&all[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_load_is_served_then_compressed_again_smaller() {
        let small = Snapshot::build(Arc::new(dataset(200)));
        assert!(small.body(Format::Text).plain[0].len() < SETTLE_AT_LOAD_BELOW);
        assert!(small.final_gzip && small.recompressed().is_none());

        for series in [10_000, COMPRESS_LATER_FROM] {
            let first = Snapshot::build(Arc::new(dataset(series)));
            assert!(!first.final_gzip, "{series} series");
            let again = first.recompressed().expect("compressed again");
            assert!(again.final_gzip && again.recompressed().is_none());
            for format in [Format::Text, Format::OpenMetrics] {
                let (fast, last) = (first.body(format), again.body(format));
                assert!(
                    last.gzip.compressed_len() < fast.gzip.compressed_len(),
                    "{series} series: {} >= {}",
                    last.gzip.compressed_len(),
                    fast.gzip.compressed_len()
                );
                let plain: Vec<u8> = last.plain.iter().flat_map(|b| b.iter().copied()).collect();
                assert!(gunzip(fast) == plain && gunzip(last) == plain);
            }
            assert!(Arc::ptr_eq(&first.dataset, &again.dataset));
        }
    }
}
