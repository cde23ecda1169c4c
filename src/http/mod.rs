//! The end of the pipeline: serving snapshots over HTTP(S). The accept loop and routes
//! (`server`), connection and request limits ([`limits`]), the pages ([`pages`]), and
//! exporter-toolkit's web config ([`web`], `web_config`: TLS, basic auth, headers).

pub(crate) mod auth;
pub mod limits;
pub mod listen;
pub(crate) mod lockout;
pub mod pages;
pub(crate) mod server;
pub(crate) mod tls;
pub mod web;
pub(crate) mod web_config;
pub(crate) mod yaml;
