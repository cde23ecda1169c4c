//! A loopback HTTP server standing for a publisher's remote source: it serves a body the test
//! sets, with an ETag, and can fail, hang, redirect or fail one request, counting requests.
//! Stopped on drop.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;

use super::loopback::Loopback;

/// What the source answers, changed by the test while the exporter runs.
#[derive(Clone)]
pub struct Behaviour {
    pub body: String,
    /// Send an ETag and answer 304 to a matching If-None-Match.
    pub etag: bool,
    /// Answer this status with an empty body instead.
    pub status: Option<u16>,
    /// Accept the request and never answer.
    pub hang: bool,
    /// Redirects before the data: `/data.csv` -> `/hop/1` -> … -> `/hop/N` (the data).
    pub hops: u32,
    /// Answer this request (counting from 1) `503 Service Unavailable`, once.
    pub fail_request: Option<u64>,
}

#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub requests: u64,
    /// Requests that carried If-None-Match.
    pub conditional: u64,
}

/// A loopback HTTP server playing [`Behaviour`], stopped on drop.
pub struct Source {
    /// Handlers that hang on purpose are not waited for when it stops.
    server: Loopback,
    behaviour: Arc<Mutex<Behaviour>>,
    stats: Arc<Mutex<Stats>>,
}

fn etag_of(body: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

fn answer(b: &Behaviour, req: &http::Request<Bytes>) -> http::Response<Full<Bytes>> {
    let path = req.uri().path();
    let hop = match path {
        "/data.csv" => Some(0),
        _ => path
            .strip_prefix("/hop/")
            .and_then(|n| n.parse::<u32>().ok()),
    };
    let Some(hop) = hop else {
        return status(404);
    };
    if hop < b.hops {
        return http::Response::builder()
            .status(302)
            .header("Location", format!("/hop/{}", hop + 1))
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    if let Some(s) = b.status {
        return status(s);
    }
    let mut resp = http::Response::builder().status(200);
    if b.etag {
        let tag = etag_of(&b.body);
        if req
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v.as_bytes() == tag.as_bytes())
        {
            return status(304);
        }
        resp = resp.header("ETag", tag);
    }
    resp.body(Full::new(Bytes::from(b.body.clone()))).unwrap()
}

fn status(s: u16) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(s)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

impl Source {
    pub fn start(body: &str) -> Source {
        let behaviour = Arc::new(Mutex::new(Behaviour {
            body: body.to_string(),
            etag: true,
            status: None,
            hang: false,
            hops: 0,
            fail_request: None,
        }));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let (b, s) = (behaviour.clone(), stats.clone());
        let server = Loopback::start(move |req| {
            let now = b.lock().unwrap().clone();
            let n = {
                let mut s = s.lock().unwrap();
                s.requests += 1;
                s.conditional += u64::from(req.headers().contains_key("if-none-match"));
                s.requests
            };
            let resp = if now.fail_request == Some(n) {
                status(503)
            } else {
                answer(&now, &req)
            };
            async move {
                if now.hang {
                    std::future::pending::<()>().await;
                }
                resp
            }
        });
        Source {
            server,
            behaviour,
            stats,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/data.csv", self.server.addr())
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }

    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap()
    }
}
