//! What protects the HTTP server from slow, idle, stalled, greedy and hostile clients: a
//! deadline for each request head, an idle keep-alive timeout, a write timeout for responses
//! the client does not read, a cap on connections (oldest idle ones closed first) and one on
//! concurrent scrapes, and a panic in a handler answered 500 for that request alone.
//!
//! Each connection has a [`Conn`], shared by its I/O ([`Tracked`]), its requests
//! ([`Request`]) and a [`watchdog`] that closes it when the deadline of its current phase
//! passes: waiting for a request head, idle between requests, or writing a response. A scrape
//! that finds every `/metrics` permit taken closes the connection of the holder whose client
//! has stopped reading longest, and takes its permit.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a client has to send a whole request head (request line and headers), from the
/// connection's start (after the TLS handshake) or from the first byte of a later request.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request: above the 1 minute scrape
/// interval most Prometheus servers use, so scrapes reuse their connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the client has to read a whole response once it is ready: three times
/// Prometheus's default scrape timeout.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent `/metrics` requests, as node_exporter's `--web.max-requests`.
pub const DEFAULT_MAX_REQUESTS: usize = 40;
/// Open connections; beyond it the oldest connection with no request in progress is closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Largest request head (request line and headers): room for long bearer tokens and cookies,
/// as HTTP/2's 16 KiB header list.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// File descriptors kept out of the connection cap: listeners, the runtime, config and data
/// files read by a reload, certificate files, the watcher, `/proc` for the process metrics.
pub const RESERVED_FDS: usize = 128;
/// Concurrent streams on one HTTP/2 connection.
pub const H2_MAX_STREAMS: u32 = 100;
/// A `/metrics` response whose client has taken nothing for this long, while the socket is
/// full, gives up its permit to a new scrape that finds none left: a reading client empties
/// its socket within a round trip.
pub const STALLED_AFTER: Duration = Duration::from_secs(2);
/// How long a scrape waits for the permit of the stalled response it closed.
const TAKEOVER_WAIT: Duration = Duration::from_millis(500);

/// The server's limits, as the flags set them; `None` turns a timeout off.
#[derive(Debug, Clone)]
pub struct Limits {
    pub read_header_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    /// Concurrent `/metrics` requests; 0: no limit.
    pub max_requests: usize,
    /// Open connections, lowered to what the open files limit allows.
    pub max_connections: usize,
}

impl Limits {
    /// The shortest of the connection timeouts that are on.
    fn shortest(&self) -> Option<Duration> {
        [
            self.read_header_timeout,
            self.idle_timeout,
            self.write_timeout,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_header_timeout: Some(DEFAULT_READ_HEADER_TIMEOUT),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
            max_requests: DEFAULT_MAX_REQUESTS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// A flag's duration: Go's syntax (`10s`, `2m`, `500ms`); `0` turns the timeout off.
pub fn parse_timeout(s: &str) -> Result<Option<Duration>, String> {
    match crate::read::parse_go_duration(s) {
        Some(d) if d.is_zero() => Ok(None),
        Some(d) => Ok(Some(d)),
        None => Err(format!(
            "invalid duration `{s}`, expected a number and a unit such as 10s, 2m or 500ms (0 turns it off)"
        )),
    }
}

/// The soft limit on open files, when the platform has one.
pub fn open_files_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct passed.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            return Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX));
        }
    }
    None
}

/// The connection cap the open files limit allows: each connection is a descriptor, and
/// [`RESERVED_FDS`] stay free for everything else.
pub fn connection_cap(wanted: usize, open_files: Option<usize>) -> usize {
    match open_files {
        Some(n) => wanted.min(n.saturating_sub(RESERVED_FDS).max(16)),
        None => wanted,
    }
}

/// Locks, ignoring poison: every state here stays consistent between statements, so a panic
/// elsewhere while a lock was held leaves nothing half-done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a connection was closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The request head did not arrive within the read header timeout.
    Head,
    /// No new request within the idle timeout.
    Idle,
    /// A response was not read within the write timeout.
    Write,
    /// Closed to make room for a new connection at the connection cap.
    Evicted,
    /// Its response was not being read, and its `/metrics` permit went to another scrape.
    TakenOver,
}

impl Reason {
    /// The `reason` label of `indicator_exporter_http_connections_closed_total`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Head => "read_header_timeout",
            Reason::Idle => "idle_timeout",
            Reason::Write => "write_timeout",
            Reason::Evicted => "max_connections_evicted",
            Reason::TakenOver => "stalled_permit_taken",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Head => "request head not received in time",
            Reason::Idle => "idle",
            Reason::Write => "response not read in time",
            Reason::Evicted => "idle, closed to make room at the connection limit",
            Reason::TakenOver => {
                "response not being read, its scrape permit given to another scrape"
            }
        }
    }
}

/// One connection's phase, guarded by [`Conn::phase`].
#[derive(Debug)]
struct Phase {
    /// Requests received and not yet answered to the last byte.
    requests: u32,
    /// When the current wait began: the connection's start, the first byte of a head, or
    /// the end of the last response.
    since: Instant,
    /// In the TLS handshake, which has its own deadline.
    handshaking: bool,
    /// No request yet: the head deadline runs from the start.
    first: bool,
    /// Bytes of a new request head arrived after the connection went idle.
    reading_head: bool,
    /// Deadlines of the responses being written, by request id.
    writes: Vec<(u64, Instant)>,
    /// Told to close, and why.
    evicted: Option<Reason>,
    next_request: u64,
    /// When the watchdog wakes next (see [`Conn::arm`]); None while it waits for news alone.
    /// Only a deadline sooner than this wakes it early.
    armed: Option<Instant>,
}

impl Phase {
    /// When the connection must be closed next, and why; None while nothing bounds it (a
    /// handler at work, a TLS handshake under its own deadline).
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Reason)> {
        if let Some(reason) = self.evicted {
            return Some((Instant::now(), reason));
        }
        if self.handshaking {
            return None;
        }
        if self.requests == 0 {
            if self.first || self.reading_head {
                limits
                    .read_header_timeout
                    .map(|t| (self.since + t, Reason::Head))
            } else {
                limits.idle_timeout.map(|t| (self.since + t, Reason::Idle))
            }
        } else {
            let first = self.writes.iter().map(|(_, d)| *d).min();
            first.map(|d| (d, Reason::Write))
        }
    }
}

/// The state one connection's I/O, requests and watchdog share.
#[derive(Debug)]
pub struct Conn {
    phase: Mutex<Phase>,
    limits: Limits,
    /// Set while idle between requests, so the read path checks one atomic, not a lock.
    idle: AtomicBool,
    /// Since when writes have found the socket full ([`millis`] + 1); 0 while they do not.
    blocked_since: AtomicU64,
    /// Bytes in the socket's send queue as last seen, and since when it has held that many:
    /// unchanged, the client has acknowledged nothing, so it is not reading.
    queued: Mutex<Option<(u64, Instant)>>,
    /// The socket, while the connection's I/O holds it open (cleared before it is closed).
    fd: Mutex<Option<i32>>,
    wake: Notify,
}

/// Bytes in the send queue of socket `fd`, not yet acknowledged by the peer (Linux).
fn send_queue(fd: i32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ on a socket) writes one int; the caller holds the lock
        // that keeps `fd` open.
        if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) } == 0 {
            return u64::try_from(n).ok();
        }
    }
    let _ = fd;
    None
}

/// Milliseconds on the runtime's clock since the first call, for atomics.
fn millis() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    Instant::now().saturating_duration_since(epoch).as_millis() as u64
}

impl Conn {
    fn new(handshaking: bool, limits: Limits) -> Conn {
        Conn {
            limits,
            phase: Mutex::new(Phase {
                requests: 0,
                since: Instant::now(),
                handshaking,
                first: true,
                reading_head: false,
                writes: Vec::new(),
                evicted: None,
                next_request: 0,
                armed: None,
            }),
            idle: AtomicBool::new(false),
            blocked_since: AtomicU64::new(0),
            queued: Mutex::new(None),
            fd: Mutex::new(None),
            wake: Notify::new(),
        }
    }

    /// The send queue of the connection's socket, while it is open.
    fn send_queue(&self) -> Option<u64> {
        let fd = lock(&self.fd);
        fd.and_then(send_queue)
    }

    fn write_blocked(&self) {
        let began = self
            .blocked_since
            .compare_exchange(0, millis() + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if began {
            *lock(&self.queued) = self.send_queue().map(|q| (q, Instant::now()));
        }
    }

    fn wrote(&self) {
        if self.blocked_since.load(Ordering::Relaxed) != 0 {
            self.blocked_since.store(0, Ordering::Relaxed);
        }
    }

    /// How long writes have found the socket full and the client has acknowledged nothing
    /// (where the send queue can be read; else how long writes have found it full). A slow
    /// reader drains the queue, if not enough for the socket to wake the writer.
    fn stalled_for(&self) -> Option<Duration> {
        let since = match self.blocked_since.load(Ordering::Relaxed) {
            0 => return None,
            since => since,
        };
        let blocked = Duration::from_millis((millis() + 1).saturating_sub(since));
        let Some(now) = self.send_queue() else {
            return Some(blocked);
        };
        let mut queued = lock(&self.queued);
        match *queued {
            Some((q, at)) if q == now => Some(blocked.min(at.elapsed())),
            _ => {
                *queued = Some((now, Instant::now()));
                None
            }
        }
    }

    /// The TLS handshake is over (or there was none): the head deadline starts now.
    pub fn start(&self) {
        let mut p = lock(&self.phase);
        p.handshaking = false;
        p.since = Instant::now();
        self.changed(p);
    }

    /// Wakes the watchdog if the phase just changed to one with a sooner deadline than the
    /// one it sleeps until.
    fn changed(&self, p: MutexGuard<'_, Phase>) {
        let sooner = match (p.deadline(&self.limits), p.armed) {
            (Some((at, _)), Some(armed)) => at < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        drop(p);
        if sooner {
            self.wake.notify_one();
        }
    }

    /// Bytes arrived: on an idle HTTP/1 connection they begin a request head.
    fn bytes_arrived(&self) {
        if !self.idle.load(Ordering::Relaxed) {
            return;
        }
        let mut p = lock(&self.phase);
        if p.requests == 0 && !p.reading_head {
            p.reading_head = true;
            p.since = Instant::now();
        }
        self.idle.store(false, Ordering::Relaxed);
        self.changed(p);
    }

    /// A request head was read: the request is in progress until [`Request`] is dropped.
    pub fn begin(self: &Arc<Self>) -> Request {
        let mut p = lock(&self.phase);
        p.requests += 1;
        p.first = false;
        p.reading_head = false;
        p.next_request += 1;
        let id = p.next_request;
        self.idle.store(false, Ordering::Relaxed);
        Request {
            conn: self.clone(),
            id,
            permit: None,
        }
    }

    fn respond(&self, id: u64) {
        if let Some(t) = self.limits.write_timeout {
            let mut p = lock(&self.phase);
            p.writes.push((id, Instant::now() + t));
            self.changed(p);
        }
    }

    fn end(&self, id: u64) {
        let mut p = lock(&self.phase);
        p.requests = p.requests.saturating_sub(1);
        p.writes.retain(|(i, _)| *i != id);
        if p.requests == 0 {
            p.since = Instant::now();
            self.idle.store(true, Ordering::Relaxed);
        }
        self.changed(p);
    }

    /// When the connection must be closed next, and why (see [`Phase::deadline`]).
    #[cfg(test)]
    fn deadline(&self) -> Option<(Instant, Reason)> {
        lock(&self.phase).deadline(&self.limits)
    }

    /// The deadline, and when the watchdog wakes next: at the deadline, or sooner, within the
    /// shortest timeout from now. Any phase the connection enters later has its deadline at
    /// least that far off, so no change of phase needs to wake the watchdog early, and the
    /// requests of a keep-alive connection wake no other task; the watchdog looks again by
    /// itself and so still closes the connection at its deadline exactly.
    fn arm(&self) -> (Option<(Instant, Reason)>, Option<Instant>) {
        let mut p = lock(&self.phase);
        let next = p.deadline(&self.limits);
        let horizon = self.limits.shortest().map(|t| Instant::now() + t);
        p.armed = match (next, horizon) {
            (Some((at, _)), Some(h)) => Some(at.min(h)),
            (next, h) => next.map(|(at, _)| at).or(h),
        };
        (next, p.armed)
    }

    /// Oldest wait first, for the connections with no request in progress.
    fn evictable_since(&self) -> Option<Instant> {
        let p = lock(&self.phase);
        (p.requests == 0 && p.evicted.is_none()).then_some(p.since)
    }

    fn evict(&self, reason: Reason) {
        lock(&self.phase).evicted.get_or_insert(reason);
        self.wake.notify_one();
    }
}

/// Resolves when `conn` must be closed: its request head, idle time or response write is
/// overdue, or it was evicted. Run beside the connection; dropping the connection closes it.
pub async fn watchdog(conn: &Conn) -> Reason {
    loop {
        // A notification sent after `arm` is kept by the Notify for the wait below.
        let (next, wake_at) = conn.arm();
        if let Some((at, reason)) = next {
            if at <= Instant::now() {
                return reason;
            }
        }
        match wake_at {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = conn.wake.notified() => {}
                }
            }
            None => conn.wake.notified().await,
        }
    }
}

/// A request in progress: from its head until the last byte of its response has left the
/// server (or the connection closed). Its response's chunks each hold it, so it ends when
/// hyper (or HTTP/2's flow control) releases the last of them, and with it the snapshot
/// bytes they share and the `/metrics` permit.
#[derive(Debug)]
pub struct Request {
    conn: Arc<Conn>,
    id: u64,
    permit: Option<Permit>,
}

impl Request {
    /// The response is ready: from now on it has `write_timeout` to be read, and it holds
    /// `permit` until then.
    pub fn respond(mut self, permit: Option<Permit>) -> Arc<Request> {
        self.permit = permit;
        self.conn.respond(self.id);
        Arc::new(self)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.conn.end(self.id);
    }
}

/// A response body's chunk that keeps its [`Request`] in progress while it is unsent.
pub struct Chunk {
    bytes: Bytes,
    _request: Arc<Request>,
}

impl Chunk {
    pub fn new(bytes: Bytes, request: Arc<Request>) -> Chunk {
        Chunk {
            bytes,
            _request: request,
        }
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        self.bytes.remaining()
    }
    fn chunk(&self) -> &[u8] {
        self.bytes.chunk()
    }
    fn advance(&mut self, n: usize) {
        self.bytes.advance(n)
    }
}

/// A connection's I/O, noticing the first bytes of each HTTP/1 request head.
pub struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
    /// HTTP/1 only: HTTP/2 sends frames between requests (window updates, pings), so its
    /// idle time is bounded by the idle timeout alone.
    heads: bool,
}

impl<S> Tracked<S> {
    /// `fd` is the socket under `inner`, for reading its send queue.
    pub fn new(inner: S, conn: Arc<Conn>, heads: bool, fd: Option<i32>) -> Tracked<S> {
        *lock(&conn.fd) = fd;
        Tracked { inner, conn, heads }
    }
}

impl<S> Drop for Tracked<S> {
    // Before `inner` closes the socket: nobody reads a descriptor that may be reused.
    fn drop(&mut self) {
        *lock(&self.conn.fd) = None;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.heads && buf.filled().len() > before {
            self.conn.bytes_arrived();
        }
        r
    }
}

impl<S> Tracked<S> {
    /// Notes whether the socket took the bytes or was full.
    fn written(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &r {
            Poll::Pending => self.conn.write_blocked(),
            Poll::Ready(Ok(n)) if *n > 0 => self.conn.wrote(),
            Poll::Ready(_) => {}
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(r)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(r)
    }
    // Vectored writes let hyper queue the snapshot's chunks instead of copying them.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections, and the cap on them.
pub struct Connections {
    cap: usize,
    limits: Limits,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

/// A connection's place among the open ones, given up on drop.
pub struct Admitted {
    pub conn: Arc<Conn>,
    id: u64,
    registry: Arc<Connections>,
    /// Whether another connection was closed to make room for this one.
    pub evicted_another: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.registry.open).remove(&self.id);
    }
}

impl Connections {
    pub fn new(cap: usize, limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            limits,
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn open(&self) -> usize {
        lock(&self.open).len()
    }

    /// Admits a new connection. At the cap, the connection with no request in progress that
    /// has waited longest is closed to make room; when every connection is busy, None: the
    /// new one is refused.
    pub fn admit(self: &Arc<Self>, handshaking: bool) -> Option<Admitted> {
        let mut open = lock(&self.open);
        let mut evicted_another = false;
        // Connections already evicted are on their way out and do not count.
        let full = open.len() >= self.cap
            && open
                .values()
                .filter(|c| lock(&c.phase).evicted.is_none())
                .count()
                >= self.cap;
        if full {
            let oldest = open
                .values()
                .filter_map(|c| c.evictable_since().map(|s| (s, c)))
                .min_by_key(|(s, _)| *s)
                .map(|(_, c)| c.clone());
            match oldest {
                Some(c) => {
                    c.evict(Reason::Evicted);
                    evicted_another = true;
                }
                None => return None,
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(handshaking, self.limits.clone()));
        open.insert(id, conn.clone());
        Some(Admitted {
            conn,
            id,
            registry: self.clone(),
            evicted_another,
        })
    }
}

/// `--web.max-requests`: a permit per `/metrics` request, held until its response is sent.
/// None left: the holder whose client has stopped reading longest (at least
/// [`STALLED_AFTER`]) is disconnected and its permit taken; else 503 at once, never a queue.
#[derive(Debug)]
pub struct RequestLimit {
    max: usize,
    semaphore: Option<Arc<Semaphore>>,
    holders: Arc<Holders>,
}

/// The connections holding permits, by permit.
#[derive(Debug, Default)]
struct Holders {
    by_permit: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

/// A `/metrics` permit, given back on drop.
#[derive(Debug)]
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    id: u64,
    holders: Arc<Holders>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        lock(&self.holders.by_permit).remove(&self.id);
    }
}

/// How a scrape got its permit.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquired {
    /// No limit.
    Unlimited,
    Free(Permit),
    /// From a response stalled for this long, whose connection was closed.
    TakenOver(Permit, Duration),
}

impl Acquired {
    pub fn into_permit(self) -> Option<Permit> {
        match self {
            Acquired::Unlimited => None,
            Acquired::Free(p) | Acquired::TakenOver(p, _) => Some(p),
        }
    }
}

impl PartialEq for Permit {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Permit {}

impl RequestLimit {
    pub fn new(max: usize) -> RequestLimit {
        RequestLimit {
            max,
            semaphore: (max > 0).then(|| Arc::new(Semaphore::new(max))),
            holders: Arc::default(),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    fn permit(&self, p: OwnedSemaphorePermit, conn: &Arc<Conn>) -> Permit {
        let id = self.holders.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.holders.by_permit).insert(id, conn.clone());
        Permit {
            _permit: p,
            id,
            holders: self.holders.clone(),
        }
    }

    /// A permit for a scrape on `conn`, taken over from a stalled response if none is free.
    pub async fn acquire(&self, conn: &Arc<Conn>) -> Result<Acquired, LimitReached> {
        let Some(semaphore) = &self.semaphore else {
            return Ok(Acquired::Unlimited);
        };
        if let Ok(p) = semaphore.clone().try_acquire_owned() {
            return Ok(Acquired::Free(self.permit(p, conn)));
        }
        let stalled = lock(&self.holders.by_permit)
            .values()
            .filter_map(|c| c.stalled_for().map(|d| (d, c.clone())))
            .filter(|(d, _)| *d >= STALLED_AFTER)
            .max_by_key(|(d, _)| *d);
        let Some((stalled_for, victim)) = stalled else {
            return Err(LimitReached);
        };
        victim.evict(Reason::TakenOver);
        match tokio::time::timeout(TAKEOVER_WAIT, semaphore.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(Acquired::TakenOver(self.permit(p, conn), stalled_for)),
            _ => Err(LimitReached),
        }
    }
}

/// Every `/metrics` permit is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReached;

/// Counts events and says when to log them again: at most once per period, with how many
/// happened since, so a flood of hostile clients cannot flood the log.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one event; Some(events since the last report, this one included) when it is
    /// time to report.
    pub fn hit(&self) -> Option<u64> {
        let mut s = lock(&self.state);
        s.1 += 1;
        let now = Instant::now();
        if s.0.is_some_and(|t| now.duration_since(t) < self.period) {
            return None;
        }
        s.0 = Some(now);
        Some(std::mem::take(&mut s.1))
    }
}

/// Runs `fut`, turning a panic into an error carrying the panic's payload. After a panic
/// the future is dropped, never polled again.
pub async fn catch_unwind<F: Future>(fut: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

/// A panic payload's message, when it is a string.
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_go_durations_and_zero_turns_them_off() {
        assert_eq!(parse_timeout("10s"), Ok(Some(Duration::from_secs(10))));
        assert_eq!(parse_timeout("1m30s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_timeout("250ms"), Ok(Some(Duration::from_millis(250))));
        assert_eq!(parse_timeout("0"), Ok(None));
        assert_eq!(parse_timeout("0s"), Ok(None));
        assert!(parse_timeout("10")
            .unwrap_err()
            .contains("expected a number and a unit"));
        assert!(parse_timeout("-1s").is_err());
    }

    #[test]
    fn the_connection_cap_leaves_room_for_other_files() {
        assert_eq!(connection_cap(4096, Some(1_048_576)), 4096);
        assert_eq!(connection_cap(4096, Some(1024)), 1024 - RESERVED_FDS);
        assert_eq!(connection_cap(4096, Some(100)), 16);
        assert_eq!(connection_cap(10, None), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_deadline() {
        let limits = Limits {
            read_header_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(120)),
            write_timeout: Some(Duration::from_secs(30)),
            ..Limits::default()
        };
        let conn = Arc::new(Conn::new(true, limits.clone()));
        assert_eq!(conn.deadline(), None, "the handshake has its own");
        let t0 = Instant::now();
        conn.start();
        assert_eq!(
            conn.deadline(),
            Some((t0 + Duration::from_secs(10), Reason::Head))
        );
        let request = conn.begin();
        assert_eq!(conn.deadline(), None, "a handler at work");
        tokio::time::advance(Duration::from_secs(5)).await;
        let request = request.respond(None);
        let t1 = Instant::now();
        assert_eq!(
            conn.deadline(),
            Some((t1 + Duration::from_secs(30), Reason::Write))
        );
        drop(request);
        assert_eq!(
            conn.deadline(),
            Some((t1 + Duration::from_secs(120), Reason::Idle))
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        conn.bytes_arrived();
        assert_eq!(
            conn.deadline(),
            Some((Instant::now() + Duration::from_secs(10), Reason::Head)),
            "a new head has the head deadline from its first byte"
        );
        // Further bytes of the same head do not move it.
        tokio::time::advance(Duration::from_secs(3)).await;
        conn.bytes_arrived();
        assert_eq!(
            conn.deadline().unwrap().0,
            Instant::now() + Duration::from_secs(7)
        );
        let watch = tokio::spawn({
            let conn = conn.clone();
            async move { watchdog(&conn).await }
        });
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(watch.await.unwrap(), Reason::Head);
    }

    /// Whether the watchdog was told of a change since it last looked (and forgets it).
    fn woken(conn: &Conn) -> bool {
        let n = std::pin::pin!(conn.wake.notified());
        n.enable()
    }

    #[tokio::test(start_paused = true)]
    async fn between_two_looks_of_the_watchdog_only_an_eviction_wakes_it() {
        let conn = Arc::new(Conn::new(false, Limits::default()));
        conn.start();
        assert!(woken(&conn), "a first deadline");
        // The watchdog looks: the head deadline, 10 s away, is when it wakes next.
        let t0 = Instant::now();
        assert_eq!(
            conn.arm(),
            (
                Some((t0 + Duration::from_secs(10), Reason::Head)),
                Some(t0 + Duration::from_secs(10))
            )
        );
        // Keep-alive scrapes (head 10 s, then none, write 30 s, idle 120 s): nothing wakes it.
        for _ in 0..3 {
            conn.bytes_arrived();
            drop(conn.begin().respond(None));
            assert!(!woken(&conn), "a scrape woke the watchdog");
            tokio::time::advance(Duration::from_secs(3)).await;
        }
        // Idle, 120 s away: it still wakes within the shortest timeout, so that a head that
        // begins later needs no wake-up.
        let t1 = Instant::now();
        assert_eq!(
            conn.arm(),
            (
                Some((
                    t1 - Duration::from_secs(3) + Duration::from_secs(120),
                    Reason::Idle
                )),
                Some(t1 + Duration::from_secs(10))
            )
        );
        tokio::time::advance(Duration::from_secs(9)).await;
        conn.bytes_arrived();
        assert!(!woken(&conn));
        conn.evict(Reason::Evicted);
        assert!(woken(&conn));
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_closes_at_the_deadline_exactly() {
        for (idle, after, reason) in [(false, 10, Reason::Head), (true, 120, Reason::Idle)] {
            let conn = Arc::new(Conn::new(false, Limits::default()));
            conn.start();
            let watch = tokio::spawn({
                let conn = conn.clone();
                async move { watchdog(&conn).await }
            });
            // A minute of keep-alive scrapes, every 5 s.
            for _ in 0..12 {
                conn.bytes_arrived();
                let request = conn.begin();
                tokio::time::advance(Duration::from_millis(10)).await;
                drop(request.respond(None));
                tokio::time::advance(Duration::from_secs(5)).await;
            }
            // Then a head that never ends, or nothing at all.
            if !idle {
                conn.bytes_arrived();
            }
            let from = Instant::now();
            let since = if idle {
                from - Duration::from_secs(5)
            } else {
                from
            };
            assert_eq!(watch.await.unwrap(), reason);
            assert_eq!(Instant::now() - since, Duration::from_secs(after));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_longest_idle_connection_makes_room() {
        let registry = Connections::new(2, Limits::default());
        let a = registry.admit(false).unwrap();
        a.conn.start();
        tokio::time::advance(Duration::from_secs(1)).await;
        let b = registry.admit(false).unwrap();
        b.conn.start();
        let c = registry.admit(false).unwrap();
        assert!(c.evicted_another);
        assert_eq!(a.conn.deadline().map(|d| d.1), Some(Reason::Evicted));
        assert_ne!(b.conn.deadline().map(|d| d.1), Some(Reason::Evicted));
        drop(a);
        // b and c busy: a new connection is refused.
        let _rb = b.conn.begin();
        let _rc = c.conn.begin();
        assert!(registry.admit(false).is_none());
        assert_eq!(registry.open(), 2);
    }

    #[tokio::test]
    async fn a_panic_becomes_an_error() {
        let ok = catch_unwind(async { 7 }).await;
        assert_eq!(ok.unwrap(), 7);
        let err = catch_unwind(async {
            tokio::task::yield_now().await;
            panic!("boom {}", 1)
        })
        .await
        .unwrap_err();
        assert_eq!(panic_message(&*err), "boom 1");
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_reports_count_what_they_skipped() {
        let t = Throttle::new(Duration::from_secs(60));
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit(), None);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(t.hit(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn request_limit_takes_over_from_a_stalled_response() {
        let l = RequestLimit::new(1);
        let (a, b) = (
            Arc::new(Conn::new(false, Limits::default())),
            Arc::new(Conn::new(false, Limits::default())),
        );
        let held = l.acquire(&a).await.unwrap().into_permit();
        assert!(held.is_some());
        assert_eq!(l.acquire(&b).await, Err(LimitReached));
        // The holder's socket fills up; not long enough yet.
        a.write_blocked();
        tokio::time::advance(STALLED_AFTER / 2).await;
        assert_eq!(l.acquire(&b).await, Err(LimitReached));
        // Its client takes a little: not stalled any more.
        a.wrote();
        tokio::time::advance(STALLED_AFTER).await;
        assert_eq!(l.acquire(&b).await, Err(LimitReached));
        a.write_blocked();
        tokio::time::advance(STALLED_AFTER).await;
        // Stalled long enough: its connection is told to close, and once it has (its
        // permit dropped with it) the new scrape gets the permit.
        let closing = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(held);
        });
        match l.acquire(&b).await {
            Ok(Acquired::TakenOver(_, d)) => assert!(d >= STALLED_AFTER, "{d:?}"),
            other => panic!("expected a takeover, got {other:?}"),
        }
        closing.await.unwrap();
        assert_eq!(a.deadline().map(|d| d.1), Some(Reason::TakenOver));
        assert_eq!(
            RequestLimit::new(0).acquire(&b).await,
            Ok(Acquired::Unlimited)
        );
    }
}
