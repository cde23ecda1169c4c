//! Stage 3 of the pipeline: a validated dataset -> the bytes a scrape is answered with,
//! encoded ([`encode`]), rendered once per load ([`render`]), compressed ([`gzip`]) and kept
//! immutable in a [`snapshot::Snapshot`] that the server only reads.

pub mod encode;
pub mod gzip;
pub mod render;
pub mod snapshot;
