//! Stage 4 of the pipeline: the immutable [`Snapshot`] a scrape serves, and the shared store
//! that a reload swaps atomically. A scrape only picks bytes out of it.

use std::sync::Arc;
use std::time::SystemTime;

use crate::dataset::{Dataset, DatasetInfo};
use crate::encode::Format;
use crate::gzip::OpenGzip;
use crate::render::render;
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

#[derive(Debug)]
pub struct Snapshot {
    /// The dataset the bodies were rendered from, for the pages and the next reload's diff.
    pub dataset: Arc<Dataset>,
    pub summary: Summary,
    pub loaded_at: SystemTime,
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
        let (text_gz, om_gz) =
            crate::gzip::compress_formats(std::slice::from_ref(&text), &om_parts);
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
            dataset,
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
