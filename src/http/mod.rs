//! The end of the pipeline: serving snapshots over HTTP(S). The accept loop and routes
//! ([`server`]), connection and request limits ([`limits`]), the pages ([`pages`]), and
//! exporter-toolkit's web config ([`web`], [`web_config`]: TLS, basic auth, headers).

pub mod auth;
pub mod limits;
pub mod listen;
pub mod pages;
pub mod server;
pub mod tls;
pub mod web;
pub mod web_config;
pub mod yaml;
