//! Stage 4 of the pipeline: the immutable [`Snapshot`] a scrape serves, and the shared store
//! that a reload swaps atomically. A scrape only picks bytes out of it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::dataset::Dataset;
use crate::encode::Format;
use crate::render::render;

/// The bytes of one format, plain and gzip-compressed.
#[derive(Debug, Clone)]
pub struct Body {
    pub plain: Bytes,
    pub gzip: Bytes,
}

/// What the landing page shows of the dataset.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub title: String,
    pub publisher: String,
    pub source_url: String,
    pub published: String,
    pub description: String,
    pub files: Vec<PathBuf>,
    pub metrics: usize,
    pub series: usize,
}

#[derive(Debug)]
pub struct Snapshot {
    pub summary: Summary,
    pub loaded_at: SystemTime,
    text: Body,
    openmetrics: Body,
}

impl Snapshot {
    /// Renders both formats and compresses each, in parallel (two threads: the bodies are
    /// independent and a large dataset takes most of a second per body).
    pub fn build(dataset: &Dataset) -> Snapshot {
        let make = |format| {
            let plain = render(dataset, format);
            let gzip = gzip(&plain);
            Body {
                plain: Bytes::from(plain),
                gzip: Bytes::from(gzip),
            }
        };
        let (text, openmetrics) = std::thread::scope(|s| {
            let om = s.spawn(|| make(Format::OpenMetrics));
            let text = make(Format::Text);
            (text, om.join().expect("rendering does not panic"))
        });
        Snapshot {
            summary: Summary {
                name: dataset.info.name.clone(),
                title: dataset.info.title.clone(),
                publisher: dataset.info.publisher.clone(),
                source_url: dataset.info.source_url.clone(),
                published: dataset.info.published.clone(),
                description: dataset.info.description.clone(),
                files: dataset.files.clone(),
                metrics: dataset.metrics.len(),
                series: dataset.series_count(),
            },
            loaded_at: SystemTime::now(),
            text,
            openmetrics,
        }
    }

    pub fn body(&self, format: Format) -> &Body {
        match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }
}

/// gzip at the fastest level: bodies are compressed once per load, and level 1 keeps a
/// million-series load within its time budget at a small cost in size.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 8 + 64), Compression::fast());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// The one place the current snapshot lives; readers never block writers.
pub type Store = Arc<ArcSwap<Snapshot>>;

pub fn store(snapshot: Snapshot) -> Store {
    Arc::new(ArcSwap::from_pointee(snapshot))
}
