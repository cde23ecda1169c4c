//! What the load task knows of each dataset and of the last reload, published for the pages
//! and `/-/ready` to read.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One load or refresh of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub at: SystemTime,
    /// What started it: `start`, `signal`, `http`, `file`, `refresh`, ...
    pub trigger: String,
    pub ok: bool,
    /// The summary of a success, or the first line of a failure.
    pub message: String,
}

/// One remote (http/https) data file of a dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceStatus {
    pub url: String,
    pub last_success: Option<SystemTime>,
    pub last_attempt: Option<SystemTime>,
    /// `changed`, `not_modified`, `unchanged` or `failed` (with its reason, when known).
    pub last_result: String,
    pub failures: u64,
    pub bytes: u64,
}

/// What the pages know of a dataset beyond its data.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetStatus {
    pub name: String,
    /// A snapshot of this dataset is being served.
    pub ready: bool,
    /// When the snapshot in service was loaded.
    pub serving_since: Option<SystemTime>,
    /// The last load or refresh of this dataset.
    pub last_attempt: Option<Attempt>,
    /// Diagnostics of the last failed attempt (empty when it succeeded).
    pub errors: Vec<String>,
    pub sources: Vec<SourceStatus>,
    /// Series whose value changed since they were first stored (`--storage.path`).
    pub revisions: Arc<Vec<crate::state::Revised>>,
}

/// The state of the catalogue that pages and `/-/ready` read.
#[derive(Debug, Default)]
pub struct CatalogStatus {
    /// One entry per dataset, in catalogue order.
    pub datasets: Vec<DatasetStatus>,
    /// The last reload of the whole configuration, when it failed before any dataset was
    /// loaded: when, and every error.
    pub reload_failed: Option<(SystemTime, Vec<String>)>,
}

pub type Status = Arc<Mutex<CatalogStatus>>;
