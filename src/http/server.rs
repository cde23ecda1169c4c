//! Stage 5: HTTP. An accept loop over the bound listeners, TLS and basic auth as the web
//! config says, the limits of [`crate::http::limits`] on every connection and request, routes,
//! content negotiation and graceful shutdown. It knows nothing of TOML: it serves whatever
//! snapshot the store holds.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING,
    CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::expose::encode::{Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use crate::expose::snapshot::Store;
use crate::http::limits::{
    self, Acquired, Chunk, Connections, Limits, Permit, Reason, RequestLimit, Throttle,
};
use crate::http::web::{Web, TLS_HANDSHAKE_TIMEOUT};
use crate::reload::Trigger;
use crate::telemetry::Telemetry;

/// How long open connections may take to finish after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything a request handler reads.
pub struct AppState {
    pub store: Store,
    /// Each dataset's status, for the pages and `/-/ready`.
    pub status: crate::reload::Status,
    pub telemetry: Arc<Telemetry>,
    pub telemetry_path: String,
    pub enable_lifecycle: bool,
    pub reload: mpsc::Sender<Trigger>,
    /// TLS, basic auth, headers and rate limit (`--web.config.file`).
    pub web: Arc<Web>,
    /// Timeouts and caps on connections and requests.
    pub limits: Limits,
}

/// The limits' shared state: the `/metrics` permits and the throttles of their warnings.
struct Gate {
    limits: Limits,
    requests: RequestLimit,
    busy: Throttle,
    refused: Throttle,
    stalled: Throttle,
}

/// How often each kind of limit warning may be logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A response of a few pre-made chunks: the dataset's bytes are shared, never copied; and
/// the `/metrics` permit, which the response holds until it is sent.
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    permit: Option<Permit>,
}

impl Chunks {
    fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Chunks {
            chunks: chunks.into_iter().filter(|b| !b.is_empty()).collect(),
            permit: None,
        }
    }
    fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// The body as sent: each chunk keeps its request in progress until hyper has written it,
/// so the write timeout and the `/metrics` permit cover the response to its last byte.
pub struct Body {
    chunks: VecDeque<Bytes>,
    request: Arc<limits::Request>,
    /// The request counts as in flight until hyper drops its body, after the last chunk.
    _in_flight: crate::telemetry::InFlight,
}

impl http_body::Body for Body {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        let this = self.get_mut();
        let request = &this.request;
        Poll::Ready(
            this.chunks
                .pop_front()
                .map(|b| Ok(Frame::data(Chunk::new(b, request.clone())))),
        )
    }
    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.chunks.iter().map(Bytes::len).sum::<usize>() as u64)
    }
}

/// The HTTP/1.1 and HTTP/2 connection settings, shared by every connection.
struct Protocols {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

/// Serves on every listener until `shutdown` resolves, then lets open connections finish
/// within the grace. Each connection uses the web config in service when it was accepted
/// (TLS or not); each request, the one in service when it arrives (users, headers).
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let protocols = Arc::new(Protocols::new());
    let (connections, gate) = gate(state.limits.clone());
    // Handshakes in progress end at shutdown: they have no request to finish.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    let mut next = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept_any(&listeners, &mut next) => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let active = state.web.current();
        let Some(admitted) = connections.admit(active.tls.is_some()) else {
            // Every connection is busy: refused at once rather than left waiting.
            state.telemetry.connection_closed("max_connections_refused");
            if let Some(n) = gate.refused.hit() {
                warn!(
                    refused = n,
                    max_connections = connections.cap(),
                    "connection limit reached and every connection busy, closing new connections"
                );
            }
            drop(stream);
            continue;
        };
        if admitted.evicted_another {
            debug!(%peer, max_connections = connections.cap(), "connection limit reached, closing the longest idle connection");
        }
        let _ = stream.set_nodelay(true);
        let accepted = Accepted {
            stream,
            peer,
            active,
            admitted,
            watcher: graceful.watcher(),
            stop: stop.clone(),
        };
        tokio::spawn(connection(
            accepted,
            state.clone(),
            protocols.clone(),
            gate.clone(),
        ));
    }
    drop(listeners);
    let _ = stopping.send(true);
    info!("shutting down, waiting for open connections");
    tokio::select! {
        _ = graceful.shutdown() => {},
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => warn!("grace period over, closing remaining connections"),
    }
}

impl Protocols {
    fn new() -> Protocols {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        // The head deadline is the watchdog's: hyper's would also cut idle keep-alive
        // connections.
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_header_size(limits::MAX_HEADER_BYTES)
            .max_buf_size(4 * limits::MAX_HEADER_BYTES);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits::H2_MAX_STREAMS)
            .max_header_list_size(limits::MAX_HEADER_BYTES as u32);
        Protocols { http1, http2 }
    }
}

/// The open connections, capped by `--web.max-connections` and the open files limit, and the
/// limits' shared state.
fn gate(l: Limits) -> (Arc<Connections>, Arc<Gate>) {
    let open_files = limits::open_files_limit();
    let cap = limits::connection_cap(l.max_connections, open_files);
    if cap < l.max_connections {
        warn!(
            max_connections = l.max_connections,
            open_files = open_files.unwrap_or(0),
            lowered_to = cap,
            "the open files limit allows fewer connections than --web.max-connections"
        );
    }
    let gate = Arc::new(Gate {
        requests: RequestLimit::new(l.max_requests),
        limits: l,
        busy: Throttle::new(WARN_EVERY),
        refused: Throttle::new(WARN_EVERY),
        stalled: Throttle::new(WARN_EVERY),
    });
    (Connections::new(cap, gate.limits.clone()), gate)
}

/// A connection just accepted, and what it is served with.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    /// The web config in service when it was accepted: TLS or not.
    active: Arc<crate::http::web::Active>,
    admitted: limits::Admitted,
    watcher: hyper_util::server::graceful::Watcher,
    /// Says when the server is shutting down.
    stop: tokio::sync::watch::Receiver<bool>,
}

/// Serves one connection (after its TLS handshake, if any) until it ends or its watchdog
/// closes it.
async fn connection(a: Accepted, state: Arc<AppState>, protocols: Arc<Protocols>, gate: Arc<Gate>) {
    let Accepted {
        stream,
        peer,
        active,
        admitted,
        watcher,
        mut stop,
    } = a;
    let conn = admitted.conn.clone();
    let telemetry = state.telemetry.clone();
    let work = async {
        let Some(tls) = &active.tls else {
            conn.start();
            let fd = raw_fd(&stream);
            let io = TokioIo::new(limits::Tracked::new(stream, conn.clone(), true, fd));
            let c = conn.clone();
            return serve_connection(io, false, peer, state, &gate, c, &protocols, watcher).await;
        };
        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, accept_tls(stream, tls));
        let handshake = tokio::select! {
            h = handshake => h,
            _ = stop.wait_for(|s| *s) => return,
        };
        match handshake {
            Ok(Ok(Some(tls_stream))) => {
                let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
                conn.start();
                let fd = raw_fd(tls_stream.get_ref().0);
                let io = TokioIo::new(limits::Tracked::new(tls_stream, conn.clone(), !h2, fd));
                let c = conn.clone();
                serve_connection(io, h2, peer, state, &gate, c, &protocols, watcher).await;
            }
            Ok(Ok(None)) => {
                debug!(%peer, "plain HTTP request on the TLS port, answered 400")
            }
            Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => {
                debug!(%peer, timeout = ?TLS_HANDSHAKE_TIMEOUT, "TLS handshake not completed in time, connection dropped")
            }
        }
    };
    // The watchdog is a task of its own: it sleeps until a deadline and is rarely woken, so
    // the connection's task, woken several times per request, polls only a join handle.
    let mut watchdog = tokio::spawn({
        let conn = conn.clone();
        async move { limits::watchdog(&conn).await }
    });
    tokio::select! {
        biased;
        _ = work => watchdog.abort(),
        reason = &mut watchdog => {
            // It cannot panic or be aborted while the connection is served.
            let Ok(reason) = reason else { return };
            debug!(%peer, reason = reason.as_str(), "connection closed by the server");
            telemetry.connection_closed(reason.label());
            if matches!(reason, Reason::Write | Reason::TakenOver) {
                if let Some(n) = gate.stalled.hit() {
                    warn!(connections = n, write_timeout = ?gate.limits.write_timeout, "clients did not read their responses, connections closed");
                }
            }
        }
    }
    drop(admitted);
}

/// The socket's descriptor, where there is one.
fn raw_fd(stream: &TcpStream) -> Option<i32> {
    #[cfg(unix)]
    return Some(std::os::fd::AsRawFd::as_raw_fd(stream));
    #[cfg(not(unix))]
    None
}

/// The next connection on any listener, taking the listeners in turn so none is starved.
async fn accept_any(
    listeners: &[TcpListener],
    next: &mut usize,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        let n = listeners.len();
        for i in 0..n {
            let at = (*next + i) % n;
            if let Poll::Ready(r) = listeners[at].poll_accept(cx) {
                *next = at + 1;
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    })
    .await
}

/// The TLS handshake; `None` when the client spoke plain HTTP, which is answered with a 400
/// saying so (as Go's servers do) and closed.
async fn accept_tls(
    stream: TcpStream,
    tls: &crate::http::tls::Tls,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    // Every TLS connection opens with a handshake record (content type 22).
    if n == 1 && first[0] != 0x16 && first[0].is_ascii_alphabetic() {
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            .await?;
        let _ = stream.shutdown().await;
        return Ok(None);
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    acceptor.accept(stream).await.map(Some)
}

/// HTTP/1.1 or HTTP/2 (negotiated by ALPN) on one connection, watched for graceful shutdown.
/// Each request is in progress on `conn` from its head to its response's last byte.
#[allow(clippy::too_many_arguments)]
async fn serve_connection<I>(
    io: I,
    h2: bool,
    peer: SocketAddr,
    state: Arc<AppState>,
    gate: &Arc<Gate>,
    conn: Arc<limits::Conn>,
    protocols: &Protocols,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let gate = gate.clone();
    let svc = service_fn(move |req| {
        let (state, gate, conn) = (state.clone(), gate.clone(), conn.clone());
        async move {
            let request = conn.begin();
            let in_flight = state.telemetry.request_started();
            let (parts, mut chunks) = answer(&state, &gate, &conn, peer, req).await.into_parts();
            let request = request.respond(chunks.permit.take());
            let body = Body {
                chunks: chunks.chunks,
                request,
                _in_flight: in_flight,
            };
            Ok::<_, Infallible>(Response::from_parts(parts, body))
        }
    });
    let result = if h2 {
        watcher
            .watch(protocols.http2.serve_connection(io, svc))
            .await
    } else {
        watcher
            .watch(protocols.http1.serve_connection(io, svc))
            .await
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// [`handle`], with a panic anywhere in it answered 500 for this request alone.
async fn answer(
    state: &AppState,
    gate: &Gate,
    conn: &Arc<limits::Conn>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Chunks> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    match limits::catch_unwind(handle(state, gate, conn, peer, req)).await {
        Ok(resp) => resp,
        Err(payload) => {
            error!(%method, path = uri.path(), panic = limits::panic_message(&*payload), "request handler panicked, answered 500");
            let mut resp = plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
            for (name, value) in &state.web.current().headers {
                resp.headers_mut().insert(name.clone(), value.clone());
            }
            resp
        }
    }
}

/// How long a body of unknown length may take to show that it is empty: some clients send
/// every POST with a chunked body, and its last chunk at once when there is nothing in it.
const EMPTY_BODY_WAIT: Duration = Duration::from_secs(1);

/// Whether the request carries a body. A declared length says so without reading; a body of
/// unknown length (chunked) is empty only if it ends at once, before any data.
async fn has_body(body: &mut Incoming) -> bool {
    use http_body::Body as _;
    if body.is_end_stream() {
        return false;
    }
    if body.size_hint().exact().is_some_and(|n| n > 0) {
        return true;
    }
    let first = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx));
    !matches!(tokio::time::timeout(EMPTY_BODY_WAIT, first).await, Ok(None))
}

/// The web config's part of every request, as exporter-toolkit wraps the whole handler: the
/// rate limit, then basic auth (every path), then the route; the configured headers on every
/// response. A request with a body is refused first, its body unread: no endpoint takes one.
/// `peer` is the client's address, which failed logins are limited by.
async fn handle(
    state: &AppState,
    gate: &Gate,
    conn: &Arc<limits::Conn>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Chunks> {
    let web = state.web.current();
    let mut resp = if has_body(req.body_mut()).await {
        let mut r = plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body not accepted.\n",
        );
        // The unread body would be taken for the next request: HTTP/1 closes instead.
        if req.version() < Version::HTTP_2 {
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        r
    } else if web.rate_limit.as_ref().is_some_and(|r| !r.allow()) {
        plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
    } else if let Some(refused) = login(state, &web.users, peer, &req).await {
        refused
    } else {
        route(state, gate, conn, req).await
    };
    for (name, value) in &web.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// Basic auth, when the web config has users: None when the request may go on, else its
/// answer, 401 or 429 (counted, and logged at most once a minute).
async fn login(
    state: &AppState,
    users: &[(String, String)],
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Option<Response<Chunks>> {
    use crate::http::{auth::Outcome, lockout::Client};
    if users.is_empty() {
        return None;
    }
    let verifier = &state.web.verifier;
    let client = Client::of(peer.ip());
    let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    match verifier.login(users, header, client).await {
        Outcome::Passed => None,
        Outcome::Throttled(retry) => {
            state.telemetry.login_refused(true);
            if let Some(n) = verifier.throttled_log.hit() {
                warn!(%client, throttled = n, "logins answered 429 without a password check: the address failed too often, or has too many logins waiting");
            }
            let mut r = plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
            let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
            Some(r)
        }
        outcome => {
            if let Outcome::Failed(lockout) = outcome {
                state.telemetry.login_refused(false);
                if let Some(n) = verifier.failed_log.hit() {
                    warn!(%client, failed = n, locked_out_for = ?lockout, "failed logins (unknown user or wrong password)");
                }
            }
            let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            Some(r)
        }
    }
}

/// The answer of a request that passed the web config's checks; `conn` is its connection,
/// which a `/metrics` permit is held for.
async fn route(
    state: &AppState,
    gate: &Gate,
    conn: &Arc<limits::Conn>,
    req: Request<Incoming>,
) -> Response<Chunks> {
    let path = req.uri().path();
    let method = req.method();
    let read = method == Method::GET || method == Method::HEAD;
    if path == state.telemetry_path {
        if !read {
            return not_allowed("GET, HEAD");
        }
        // As node_exporter: only scrapes count, so health checks always get through.
        let acquired = gate.requests.acquire(conn).await;
        if let Ok(Acquired::TakenOver(_, stalled_for)) = &acquired {
            debug!(?stalled_for, "every scrape permit taken, closed the response stalled longest and took its permit");
        }
        let Ok(acquired) = acquired else {
            state.telemetry.request_refused();
            if let Some(n) = gate.busy.hit() {
                warn!(
                    answered_503 = n,
                    max_requests = gate.requests.max(),
                    "too many concurrent scrapes"
                );
            }
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "Limit of concurrent requests reached ({}), try again later.\n",
                    gate.requests.max()
                ),
            );
        };
        let mut resp = metrics(state, &req);
        resp.body_mut().permit = acquired.into_permit();
        return resp;
    }
    #[cfg(test)]
    if path == tests::PANIC_PATH {
        panic!("a test panic in a handler");
    }
    match path {
        "/" if read => html(StatusCode::OK, index(state)),
        "/-/healthy" if read => plain(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if read => ready(state),
        "/-/reload" if method == Method::POST || method == Method::PUT => reload(state).await,
        "/" | "/-/healthy" | "/-/ready" => not_allowed("GET, HEAD"),
        "/-/reload" => not_allowed("POST, PUT"),
        _ => match path.strip_prefix("/datasets/") {
            Some(name) if read => dataset_page(state, name),
            Some(_) => not_allowed("GET, HEAD"),
            None => plain(StatusCode::NOT_FOUND, "Not found.\n"),
        },
    }
}

fn page(state: &AppState) -> crate::http::pages::Page<'_> {
    crate::http::pages::Page {
        telemetry_path: &state.telemetry_path,
        now: SystemTime::now(),
        version: crate::telemetry::VERSION,
        reload_failed: None,
    }
}

fn index(state: &AppState) -> String {
    let served = state.store.load();
    let (status, failed) = {
        let s = state
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (s.datasets.clone(), s.reload_failed.clone())
    };
    let datasets: Vec<_> = status
        .iter()
        .map(|st| (st, served.get(&st.name).map(|s| &*s.dataset)))
        .collect();
    let page = crate::http::pages::Page {
        reload_failed: failed.as_ref().map(|(at, e)| (*at, &e[..])),
        ..page(state)
    };
    crate::http::pages::index(&page, &datasets)
}

fn dataset_page(state: &AppState, name: &str) -> Response<Chunks> {
    let served = state.store.load();
    let status = state
        .status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .datasets
        .iter()
        .find(|s| crate::http::pages::dataset_path(&s.name) == format!("/datasets/{name}"))
        .cloned();
    match status {
        Some(st) => {
            let d = served.get(&st.name).map(|s| &*s.dataset);
            html(
                StatusCode::OK,
                crate::http::pages::dataset(&page(state), &st, d),
            )
        }
        None => plain(StatusCode::NOT_FOUND, "No such dataset.\n"),
    }
}

/// Ready when every dataset of the catalogue is served; else 503 naming those that are not.
fn ready(state: &AppState) -> Response<Chunks> {
    let status = state
        .status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .datasets
        .clone();
    let waiting: Vec<String> = status
        .iter()
        .filter(|s| !s.ready)
        .map(|s| {
            let why = s.errors.first().map_or("not loaded yet", String::as_str);
            format!("dataset {}: {why}", s.name)
        })
        .collect();
    if waiting.is_empty() {
        plain(StatusCode::OK, "Ready.\n")
    } else {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Not ready:\n{}\n", waiting.join("\n")),
        )
    }
}

fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Chunks> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
    };
    let (format, content_type) = negotiate(header(ACCEPT));
    let gz = accepts_gzip(header(ACCEPT_ENCODING));
    let served = state.store.load();
    #[cfg(test)]
    if req.headers().contains_key(tests::PANIC_HEADER) {
        panic!("a test panic while rendering the self-metrics");
    }
    // Each dataset's body was rendered and compressed once at its load, the self-metrics
    // when they changed; a scrape only joins them.
    let chunks = if gz {
        Chunks::new(state.telemetry.gzip_response(format, &served))
    } else {
        let tail = state.telemetry.tail(format);
        let plain = served
            .datasets
            .iter()
            .flat_map(|s| s.body(format).plain.iter().cloned());
        Chunks::new(plain.chain(tail.plain.iter().cloned()))
    };
    let mut resp = respond(StatusCode::OK, content_type, chunks);
    let h = resp.headers_mut();
    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if gz {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// Picks OpenMetrics when the client weighs it at least as high as the text format, as
/// Prometheus's scrape Accept header does; text 0.0.4 otherwise.
pub fn negotiate(accept: &str) -> (Format, &'static str) {
    let (mut om, mut om_version, mut text) = (0.0f32, "1.0.0", 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0f32, None);
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if q > om => {
                om = q;
                om_version = if version.as_deref() == Some("0.0.1") {
                    "0.0.1"
                } else {
                    "1.0.0"
                };
            }
            "text/plain" | "*/*" | "text/*" if q > text => text = q,
            _ => {}
        }
    }
    if om > 0.0 && om >= text {
        let ct = if om_version == "0.0.1" {
            "application/openmetrics-text; version=0.0.1; charset=utf-8"
        } else {
            OPENMETRICS_CONTENT_TYPE
        };
        (Format::OpenMetrics, ct)
    } else {
        (Format::Text, TEXT_CONTENT_TYPE)
    }
}

pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|e| {
        let mut parts = e.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .map_or(1.0, |q| q.trim().parse().unwrap_or(0.0));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
    })
}

async fn reload(state: &AppState) -> Response<Chunks> {
    if !state.enable_lifecycle {
        return plain(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
    }
    let (tx, rx) = oneshot::channel();
    if state.reload.send(Trigger::Http(tx)).await.is_err() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Reloading is not available (shutting down).\n",
        );
    }
    match rx.await {
        Ok(Ok(summary)) => plain(StatusCode::OK, &format!("{summary}\n")),
        Ok(Err(errors)) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed to reload config: {errors}\n"),
        ),
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Reloading is not available (shutting down).\n",
        ),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Chunks) -> Response<Chunks> {
    let len = body.len();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

fn plain(status: StatusCode, text: &str) -> Response<Chunks> {
    respond(
        status,
        "text/plain; charset=utf-8",
        Chunks::new([Bytes::from(text.to_string())]),
    )
}

fn html(status: StatusCode, page: String) -> Response<Chunks> {
    respond(
        status,
        "text/html; charset=utf-8",
        Chunks::new([Bytes::from(page)]),
    )
}

fn not_allowed(allow: &'static str) -> Response<Chunks> {
    let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n");
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths and headers that make a handler panic, in unit tests only.
    pub(super) const PANIC_PATH: &str = "/-/test-panic";
    pub(super) const PANIC_HEADER: &str = "x-test-panic";

    /// The bundled dataset served on 127.0.0.1:0 until the sender is dropped.
    async fn start() -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (addr, stop, server, _) = start_with_state().await;
        (addr, stop, server)
    }

    /// [`start`], and the state the server reads.
    async fn start_with_state() -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
        Arc<AppState>,
    ) {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let dataset = crate::reload::load::load(&config).expect("the bundled config loads");
        let (reload, _) = mpsc::channel(1);
        let snapshot = crate::expose::snapshot::Snapshot::build(Arc::new(dataset));
        let state = Arc::new(AppState {
            store: crate::expose::snapshot::store(crate::expose::snapshot::Served {
                datasets: vec![Arc::new(snapshot)],
            }),
            status: Default::default(),
            telemetry: Arc::new(Telemetry::new()),
            telemetry_path: "/metrics".into(),
            enable_lifecycle: false,
            reload,
            web: Arc::new(Web::load(None).expect("no web config")),
            limits: Limits::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(vec![listener], state.clone(), async {
            let _ = rx.await;
        }));
        (addr, tx, server, state)
    }

    /// One response read off `stream`: status line and body, by its Content-Length.
    async fn response(stream: &mut TcpStream) -> (String, String) {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let read = async {
            loop {
                let mut chunk = [0u8; 65536];
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(
                    n > 0,
                    "closed mid-response: {:?}",
                    String::from_utf8_lossy(&buf)
                );
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() >= end + 4 + len {
                        let status = text.lines().next().unwrap().to_string();
                        return (status, text[end + 4..end + 4 + len].to_string());
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("a response within 20 s")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_answers_500_for_that_request_alone() {
        let (addr, stop, server) = start().await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let get =
            |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        for round in 0..3 {
            s.write_all(get(PANIC_PATH, "").as_bytes()).await.unwrap();
            let (status, body) = response(&mut s).await;
            assert_eq!(
                (status.as_str(), body.as_str()),
                (
                    "HTTP/1.1 500 Internal Server Error",
                    "Internal Server Error\n"
                ),
                "round {round}"
            );
            s.write_all(get("/metrics", &format!("{PANIC_HEADER}: 1\r\n")).as_bytes())
                .await
                .unwrap();
            assert_eq!(
                response(&mut s).await.0,
                "HTTP/1.1 500 Internal Server Error"
            );
            // The same connection, and the locks the panics crossed, still serve.
            s.write_all(get("/metrics", "").as_bytes()).await.unwrap();
            let (status, body) = response(&mut s).await;
            assert_eq!(status, "HTTP/1.1 200 OK");
            assert!(body.contains("cnipa_enterprise_invention_patent_industrialization_ratio"));
            assert!(body.contains("indicator_exporter_build_info"));
        }
        let mut other = TcpStream::connect(addr).await.unwrap();
        other
            .write_all(get("/-/healthy", "").as_bytes())
            .await
            .unwrap();
        assert_eq!(response(&mut other).await.1, "Healthy.\n");
        drop(stop);
        server.await.unwrap();
    }

    /// One gzip response's body read off `stream`, decompressed, without the process metrics
    /// (read again when older than a second).
    async fn gunzipped(stream: &mut TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let body = loop {
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed mid-response");
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
            assert!(head.contains("content-encoding: gzip"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                break buf[end + 4..end + 4 + len].to_vec();
            }
        };
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .unwrap();
        out.lines()
            .filter(|l| !l.contains("process_"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_reuse_the_self_metrics_until_an_event() {
        let (addr, stop, server, state) = start_with_state().await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut scrape = async |accept: &str| {
            let get = format!(
                "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nAccept: {accept}\r\n\r\n"
            );
            s.write_all(get.as_bytes()).await.unwrap();
            gunzipped(&mut s).await
        };
        let om = "application/openmetrics-text;version=1.0.0";
        let (first, first_om) = (scrape("*/*").await, scrape(om).await);
        assert!(first_om.ends_with("# EOF\n"));
        let renders = state.telemetry.tail_renders();
        assert_eq!(renders, 2, "once per format");
        for _ in 0..3 {
            assert_eq!(scrape("*/*").await, first);
            assert_eq!(scrape(om).await, first_om);
        }
        assert_eq!(state.telemetry.tail_renders(), renders);
        // A reload is an event: the next scrape of each format renders the self-metrics.
        state.telemetry.config_loaded(true, true);
        let reloaded = "indicator_exporter_config_reloads_total{result=\"success\"} 1\n";
        let (after, after_om) = (scrape("*/*").await, scrape(om).await);
        assert!(!first.contains(reloaded) && after.contains(reloaded));
        assert!(!first_om.contains(reloaded) && after_om.contains(reloaded));
        assert_eq!(state.telemetry.tail_renders(), renders + 2);
        drop(stop);
        server.await.unwrap();
    }

    #[test]
    fn prometheus_accept_headers_get_openmetrics() {
        let p2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            negotiate(p2),
            (Format::OpenMetrics, OPENMETRICS_CONTENT_TYPE)
        );
        let p3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(negotiate(p3).0, Format::OpenMetrics);
        assert_eq!(
            negotiate("application/openmetrics-text; version=0.0.1").1,
            "application/openmetrics-text; version=0.0.1; charset=utf-8"
        );
    }

    #[test]
    fn everything_else_gets_text() {
        for a in [
            "",
            "*/*",
            "text/plain",
            "text/html,application/xhtml+xml",
            "application/openmetrics-text;q=0.1,text/plain",
        ] {
            assert_eq!(negotiate(a), (Format::Text, TEXT_CONTENT_TYPE), "{a}");
        }
    }

    #[test]
    fn gzip_acceptance() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn prometheus_gets_openmetrics_and_anything_else_text() {
        let prometheus =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(negotiate(prometheus).0, Format::OpenMetrics);
        assert_eq!(
            negotiate("*/*"),
            (Format::Text, "text/plain; version=0.0.4; charset=utf-8")
        );
    }
}
