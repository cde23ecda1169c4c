//! The fastest a `/metrics` endpoint can be on this machine: a text-format exposition read
//! from a file, gzipped once at start-up at level 9 (the bytes the exporter's settle near),
//! and served from memory with no per-request work besides HTTP.
//!
//! ```sh
//! cargo run --release --example static_server -- FILE.prom 127.0.0.1:18990
//! ```
//!
//! `GET /metrics` answers with the file's bytes, gzip-compressed when `Accept-Encoding`
//! allows it; any other path is 404. Only loopback addresses are accepted.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Bodies {
    plain: Bytes,
    gzip: Bytes,
}

/// Whether an `Accept-Encoding` value allows gzip (`gzip` or `*`, without `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        (name == "gzip" || name == "x-gzip" || name == "*") && q > 0.0
    })
}

fn respond(bodies: &Bodies, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"Not found.\n")))
            .expect("static response");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "GET, HEAD")
            .body(Full::new(Bytes::new()))
            .expect("static response");
    }
    let gz = req
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let body = if gz { &bodies.gzip } else { &bodies.plain };
    let mut resp = Response::new(Full::new(body.clone()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if gz {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, address] = args.as_slice() else {
        return Err("usage: static_server FILE.prom 127.0.0.1:PORT".into());
    };
    let address: SocketAddr = address.parse()?;
    if !address.ip().is_loopback() {
        return Err(format!("{address}: only loopback addresses are served").into());
    }
    let plain = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let mut enc = GzEncoder::new(
        Vec::with_capacity(plain.len() / 8 + 64),
        Compression::best(),
    );
    enc.write_all(&plain)?;
    let gzip = enc.finish()?;
    eprintln!(
        "static_server: {file}: {} bytes, {} gzipped; listening on {address}",
        plain.len(),
        gzip.len()
    );
    let bodies = Arc::new(Bodies {
        plain: Bytes::from(plain),
        gzip: Bytes::from(gzip),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(address).await?;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("static_server: accept failed: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let bodies = bodies.clone();
            let svc = service_fn(move |req| {
                let resp = respond(&bodies, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
