//! A loopback HTTP server standing for an SDMX publisher: it answers each request with what
//! the test's script returns for its path and query, after an optional delay, and records
//! every request (when it came, what it asked, its Accept and Accept-Encoding headers).
//! Stopped on drop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use super::loopback::Loopback;

/// One request as the publisher saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    /// Path and query, as sent.
    pub target: String,
    pub accept: String,
    pub accept_encoding: String,
}

/// An answer: status, headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// The script: the answer to the `n`th request (from 1) of `target`.
type Script = dyn Fn(&str, usize) -> Answer + Send + Sync;

pub struct Publisher {
    server: Loopback,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Publisher {
    /// Serves `script`, each answer `delay` after its request came.
    pub fn start(
        delay: Duration,
        script: impl Fn(&str, usize) -> Answer + Send + Sync + 'static,
    ) -> Publisher {
        let script: Arc<Script> = Arc::new(script);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let server = Loopback::start(move |req| {
            let answer = record(script.as_ref(), &log, &req);
            async move {
                tokio::time::sleep(delay).await;
                answer
            }
        });
        Publisher { server, seen }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Notes the request and makes its answer.
fn record(
    script: &Script,
    log: &Mutex<Vec<Seen>>,
    req: &http::Request<Bytes>,
) -> http::Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_string());
    let n = {
        let mut log = log.lock().unwrap();
        log.push(Seen {
            at: Instant::now(),
            target: target.clone(),
            accept: header("accept"),
            accept_encoding: header("accept-encoding"),
        });
        log.iter().filter(|s| s.target == target).count()
    };
    let a = script(&target, n);
    let mut resp = http::Response::builder().status(a.status);
    for (name, value) in a.headers {
        resp = resp.header(name, value);
    }
    resp.body(Full::new(Bytes::from(a.body))).unwrap()
}
