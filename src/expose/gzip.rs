//! gzip for bodies compressed once per load and served many times with a small per-response
//! tail.
//!
//! A body is stored as raw DEFLATE pieces, each ending in a sync flush (byte-aligned, not
//! final), so pieces, bodies and datasets concatenate. A response is the gzip header, those
//! pieces, the tail compressed as the final blocks, and a trailer whose CRC-32 is combined from
//! the parts: one gzip stream, readable by every client (curl, for one, stops after the first
//! member of a multi-member file).
//!
//! Bodies are cut into pieces of about [`PIECE`] bytes compressed on every core at once. Each
//! piece is primed with the 32 KiB that precede it in its body, as the decoder will have them,
//! so cutting costs nothing in size (the pieces of a body are no larger than one stream of it).
//! The OpenMetrics body repeats the text body's sample lines: [`compress_formats`] compresses
//! those once and both bodies share the pieces.
//!
//! What makes a body larger than a level-9 gzip of it is the level alone. A body is first
//! compressed at [`LEVEL`] (or [`FAST`] when large), on the path that puts a load in service,
//! then again at [`SETTLED`] off that path (`Snapshot::recompressed`).

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// Level for bodies compressed on the load path: a 10,000-series body in a few milliseconds,
/// a third of the time of [`SETTLED`].
pub const LEVEL: Compression = Compression::new(5);

/// Level for a large load's first compression (`Snapshot::build`).
pub const FAST: Compression = Compression::fast();

/// Level a body settles at, compressed again off the load path (`Snapshot::recompressed`):
/// the smallest bodies, as small as a level-9 gzip of the same exposition (with zlib-rs,
/// 0.98x to 1.00x from 10,000 to 1,000,000 series, where level 5 is 1.04x to 1.08x). Level 8
/// is 1.5 % smaller still and takes up to twice as long.
pub const SETTLED: Compression = Compression::best();

/// Level for the per-response tail: small, compressed on every scrape.
const TAIL_LEVEL: Compression = Compression::fast();

/// Bytes of input per piece: large enough that the sync flush and the new block header cost
/// nothing, small enough that a large body keeps every core busy.
pub const PIECE: usize = 1 << 20;

/// A sample range shorter than this is compressed within each body, with the context before
/// it, rather than once for both: sharing starts a piece without context, which costs some
/// bytes, and saves no time worth having on a small range.
const SHARE_MIN: usize = 64 * 1024;

/// How far back DEFLATE refers: the context a piece is primed with.
const WINDOW: usize = 32 * 1024;

/// The 10-byte gzip header: deflate, no name or time, unknown OS.
const HEADER: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One body compressed, open: its DEFLATE pieces end byte-aligned on a non-final block, to be
/// followed by other bodies and a [`Tail`].
#[derive(Debug, Clone)]
pub struct OpenGzip {
    pieces: Vec<Bytes>,
    crc: u32,
    len: u64,
}

impl OpenGzip {
    /// Compresses `parts` (one body, in order) for later completion by [`OpenGzip::finish`].
    pub fn new<T: AsRef<[u8]>>(parts: &[T]) -> OpenGzip {
        OpenGzip::at(LEVEL, parts)
    }

    /// [`OpenGzip::new`] at another level.
    pub fn at<T: AsRef<[u8]>>(level: Compression, parts: &[T]) -> OpenGzip {
        let body: Vec<&[u8]> = parts.iter().map(AsRef::as_ref).collect();
        let mut plan = Plan::default();
        let regions = own_regions(&body);
        let ids = plan.add_body(&regions, &[]);
        let out = plan.run(level);
        assemble(&out, &ids)
    }

    /// Bytes of the compressed body, without header, tail and trailer (pieces it shares with
    /// the other format's body counted here too).
    pub fn compressed_len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// Length of the body before compression.
    pub fn plain_len(&self) -> u64 {
        self.len
    }

    /// The complete gzip stream of the body followed by `tail`, as chunks to send in order.
    pub fn finish(&self, tail: &Tail) -> Vec<Bytes> {
        join([self], tail)
    }
}

/// Compresses the text body and the OpenMetrics body of one snapshot at the final level,
/// [`SETTLED`], on every core. A part of `openmetrics` that is a slice of a part of `text` (the
/// sample lines both formats share) is compressed once and its pieces serve both bodies.
pub fn compress_formats(text: &[Bytes], openmetrics: &[Bytes]) -> (OpenGzip, OpenGzip) {
    compress_formats_at(SETTLED, text, openmetrics)
}

/// [`compress_formats`] at another level, to measure what the level buys.
pub fn compress_formats_at(
    level: Compression,
    text: &[Bytes],
    openmetrics: &[Bytes],
) -> (OpenGzip, OpenGzip) {
    let text: Vec<&[u8]> = text.iter().map(|b| &b[..]).collect();
    let om: Vec<&[u8]> = openmetrics.iter().map(|b| &b[..]).collect();
    let shared = shared_ranges(&text, &om);
    let mut plan = Plan::default();
    let shared_ids: Vec<Vec<usize>> = shared.iter().map(|s| plan.add_shared(s)).collect();
    let text_ids = plan.add_body(&split_regions(&text, &shared), &shared_ids);
    let om_ids = plan.add_body(&split_regions(&om, &shared), &shared_ids);
    let out = plan.run(level);
    (assemble(&out, &text_ids), assemble(&out, &om_ids))
}

/// One gzip stream of every segment in order, then `tail`, as chunks to send in order. Each
/// segment ends byte-aligned on a non-final block, so their DEFLATE data can follow one
/// another; only the trailer, whose CRC-32 is combined from the parts, is made per response.
pub fn join<'a>(segments: impl IntoIterator<Item = &'a OpenGzip>, tail: &Tail) -> Vec<Bytes> {
    let mut chunks = vec![Bytes::from_static(HEADER)];
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    for s in segments {
        crc.combine(&crc32fast::Hasher::new_with_initial_len(s.crc, s.len));
        len += s.len;
        chunks.extend(s.pieces.iter().cloned());
    }
    crc.combine(&crc32fast::Hasher::new_with_initial_len(tail.crc, tail.len));
    len += tail.len;
    let mut trailer = Vec::with_capacity(8);
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952).
    trailer.extend_from_slice(&(len as u32).to_le_bytes());
    chunks.push(tail.deflate.clone());
    chunks.push(Bytes::from(trailer));
    chunks
}

/// Chunks as one, copied.
pub fn concat(chunks: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
    for c in chunks {
        out.extend_from_slice(c);
    }
    Bytes::from(out)
}

/// The end of a gzip stream: final DEFLATE blocks and what the trailer needs to know of them.
#[derive(Debug, Clone)]
pub struct Tail {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

impl Tail {
    pub fn new(data: &[u8]) -> Tail {
        let mut c = Compress::new(TAIL_LEVEL, false);
        let mut deflate_out = Vec::with_capacity(data.len() / 2 + 64);
        deflate(&mut c, data, &mut deflate_out, FlushCompress::Finish);
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        Tail {
            deflate: Bytes::from(deflate_out),
            crc: crc.finalize(),
            len: data.len() as u64,
        }
    }
}

/// A stretch of one body: bytes of its own, or a range that both bodies contain.
enum Region<'a> {
    Own(Vec<&'a [u8]>),
    Shared(usize),
}

/// A piece to compress: its bytes, and the bytes that precede it in every body it is part of.
struct Job<'a> {
    window: Vec<u8>,
    data: Vec<&'a [u8]>,
}

/// What a piece became.
struct Piece {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

/// Every piece to compress, and for each body the order of its pieces.
#[derive(Default)]
struct Plan<'a> {
    jobs: Vec<Job<'a>>,
}

impl<'a> Plan<'a> {
    /// Cuts a range both bodies contain into pieces; the first one starts without context,
    /// since what precedes the range differs between the bodies.
    fn add_shared(&mut self, range: &'a [u8]) -> Vec<usize> {
        let mut ids = Vec::new();
        let mut at = 0;
        while at < range.len() {
            let end = (at + PIECE).min(range.len());
            ids.push(self.jobs.len());
            self.jobs.push(Job {
                window: range[at.saturating_sub(WINDOW)..at].to_vec(),
                data: vec![&range[at..end]],
            });
            at = end;
        }
        ids
    }

    /// Cuts a body's own bytes into pieces primed with what precedes them; returns the body's
    /// pieces in order, shared ones included.
    fn add_body(&mut self, regions: &[Region<'a>], shared: &[Vec<usize>]) -> Vec<usize> {
        let mut ids = Vec::new();
        // Every slice of the body so far, for the window of the next piece.
        let mut before: Vec<&'a [u8]> = Vec::new();
        for region in regions {
            match region {
                Region::Shared(i) => {
                    ids.extend_from_slice(&shared[*i]);
                    for &id in &shared[*i] {
                        before.extend_from_slice(&self.jobs[id].data);
                    }
                }
                Region::Own(parts) => {
                    for data in cut(parts, PIECE) {
                        ids.push(self.jobs.len());
                        self.jobs.push(Job {
                            window: last_bytes(&before, WINDOW),
                            data: data.clone(),
                        });
                        before.extend(data);
                    }
                }
            }
        }
        ids
    }

    /// Compresses every piece, on as many threads as there are cores (and pieces).
    fn run(self, level: Compression) -> Vec<Piece> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.jobs.len());
        if threads <= 1 {
            let mut c = Compress::new(level, false);
            return self
                .jobs
                .iter()
                .map(|j| compress_piece(&mut c, j))
                .collect();
        }
        let next = AtomicUsize::new(0);
        let jobs = &self.jobs;
        let mut done: Vec<(usize, Piece)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut c = Compress::new(level, false);
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            mine.push((i, compress_piece(&mut c, job)));
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("compressing does not panic"))
                .collect()
        });
        done.sort_unstable_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, p)| p).collect()
    }
}

/// One body from its pieces, in order.
fn assemble(pieces: &[Piece], ids: &[usize]) -> OpenGzip {
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let p = &pieces[id];
        crc.combine(&crc32fast::Hasher::new_with_initial_len(p.crc, p.len));
        len += p.len;
        out.push(p.deflate.clone());
    }
    OpenGzip {
        pieces: out,
        crc: crc.finalize(),
        len,
    }
}

fn compress_piece(c: &mut Compress, job: &Job) -> Piece {
    c.reset();
    if !job.window.is_empty() {
        c.set_dictionary(&job.window)
            .expect("a raw deflate stream takes a dictionary before its first byte");
    }
    let len: usize = job.data.iter().map(|d| d.len()).sum();
    let mut out = Vec::with_capacity(len / 6 + 1024);
    let mut crc = crc32fast::Hasher::new();
    for d in &job.data {
        crc.update(d);
        deflate(c, d, &mut out, FlushCompress::None);
    }
    deflate(c, &[], &mut out, FlushCompress::Sync);
    out.shrink_to_fit();
    Piece {
        deflate: Bytes::from(out),
        crc: crc.finalize(),
        len: len as u64,
    }
}

/// The ranges of `om` parts (at least [`SHARE_MIN`] long) that lie within a part of `text`,
/// in `text` order and not overlapping.
fn shared_ranges<'a>(text: &[&'a [u8]], om: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut found: Vec<(usize, usize, &'a [u8])> = Vec::new();
    for &o in om.iter().filter(|o| o.len() >= SHARE_MIN) {
        let start = o.as_ptr() as usize;
        if let Some(t) = text.iter().position(|t| {
            let t0 = t.as_ptr() as usize;
            t0 <= start && start + o.len() <= t0 + t.len()
        }) {
            found.push((t, start, o));
        }
    }
    found.sort_unstable_by_key(|&(t, start, _)| (t, start));
    let mut out: Vec<&'a [u8]> = Vec::new();
    let mut last: Option<(usize, usize)> = None;
    for (t, start, o) in found {
        if let Some((lt, end)) = last {
            if lt == t && start < end {
                continue; // overlaps the previous range: leave it to each body
            }
        }
        last = Some((t, start + o.len()));
        out.push(o);
    }
    out
}

/// A body as its own bytes and the shared ranges it contains (a part equal to one, or a part
/// one lies within).
fn split_regions<'a>(body: &[&'a [u8]], shared: &[&'a [u8]]) -> Vec<Region<'a>> {
    let mut regions = Vec::new();
    let mut own: Vec<&'a [u8]> = Vec::new();
    for &part in body {
        let p0 = part.as_ptr() as usize;
        let mut inside: Vec<(usize, usize)> = shared
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_ptr() as usize, i))
            .filter(|&(s0, i)| p0 <= s0 && s0 + shared[i].len() <= p0 + part.len())
            .collect();
        inside.sort_unstable();
        let mut at = 0;
        for (s0, i) in inside {
            let off = s0 - p0;
            if off < at {
                continue; // overlaps an earlier range of this part
            }
            if off > at {
                own.push(&part[at..off]);
            }
            if !own.is_empty() {
                regions.push(Region::Own(std::mem::take(&mut own)));
            }
            regions.push(Region::Shared(i));
            at = off + shared[i].len();
        }
        if at < part.len() {
            own.push(&part[at..]);
        }
    }
    if !own.is_empty() {
        regions.push(Region::Own(own));
    }
    regions
}

/// A body with nothing shared: all its own bytes.
fn own_regions<'a>(body: &[&'a [u8]]) -> Vec<Region<'a>> {
    let parts: Vec<&'a [u8]> = body.iter().copied().filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        Vec::new()
    } else {
        vec![Region::Own(parts)]
    }
}

/// Cuts a sequence of slices into runs of `size` bytes (the last one shorter), skipping empty
/// slices.
fn cut<'a>(parts: &[&'a [u8]], size: usize) -> Vec<Vec<&'a [u8]>> {
    let mut runs = Vec::new();
    let mut run: Vec<&'a [u8]> = Vec::new();
    let mut room = size;
    for &part in parts {
        let mut rest = part;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(rest.len().min(room));
            run.push(head);
            room -= head.len();
            rest = tail;
            if room == 0 {
                runs.push(std::mem::take(&mut run));
                room = size;
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// The last `n` bytes of a sequence of slices (all of them if shorter), copied.
fn last_bytes(parts: &[&[u8]], n: usize) -> Vec<u8> {
    let mut taken: Vec<&[u8]> = Vec::new();
    let mut need = n;
    for part in parts.iter().rev() {
        if need == 0 {
            break;
        }
        let take = part.len().min(need);
        taken.push(&part[part.len() - take..]);
        need -= take;
    }
    taken.iter().rev().flat_map(|s| s.iter().copied()).collect()
}

/// Runs the compressor over all of `input` and, for a flush, until it has emitted everything.
fn deflate(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) {
    loop {
        out.reserve(64 * 1024);
        let before = c.total_in();
        c.compress_vec(input, out, flush)
            .expect("deflating in memory cannot fail");
        input = &input[(c.total_in() - before) as usize..];
        // Output space left over means the compressor had nothing more to write.
        if input.is_empty() && (matches!(flush, FlushCompress::None) || out.len() < out.capacity())
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|b| b.iter().copied()).collect()
    }

    /// Decodes exactly one gzip member, and checks nothing follows it.
    fn gunzip_single_member(chunks: &[Bytes]) -> Vec<u8> {
        let all = concat(chunks);
        let mut d = flate2::read::GzDecoder::new(&all[..]);
        let mut out = Vec::new();
        d.read_to_end(&mut out).expect("valid gzip");
        assert!(d.into_inner().is_empty(), "bytes after the gzip member");
        out
    }

    /// Decodes with the system's `gzip -d`, which checks the CRC and length in the trailer.
    fn system_gunzip(chunks: &[Bytes]) -> Vec<u8> {
        let mut child = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gzip binary is installed (Debian package gzip)");
        let all = concat(chunks);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&all));
        let out = child.wait_with_output().expect("gzip runs");
        writer
            .join()
            .expect("writer")
            .expect("gzip reads its input");
        assert!(
            out.status.success(),
            "gzip -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Exposition-like lines with values that vary like real figures.
    fn exposition(lines: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        let mut out = Vec::new();
        for i in 0..lines {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            writeln!(
                out,
                "bench_turnover{{industry=\"C{:02}\",region=\"{}\",year=\"{}\"}} {}.{:02}",
                i % 43,
                110000 + (i / 43) % 3000,
                2010 + i % 16,
                (x >> 40) % 100_000,
                (x >> 20) % 100
            )
            .expect("writing to a Vec");
        }
        out
    }

    fn both_ways(chunks: &[Bytes], expected: &[u8]) {
        assert!(
            gunzip_single_member(chunks) == expected,
            "flate2 round trip"
        );
        assert!(system_gunzip(chunks) == expected, "gzip -d round trip");
    }

    /// A text body of families and the OpenMetrics body sharing its sample ranges, as
    /// `Snapshot::build` makes them.
    fn formats(samples: &[usize]) -> (Vec<Bytes>, Vec<Bytes>, Vec<u8>, Vec<u8>) {
        let mut text = Vec::new();
        let mut ranges = Vec::new();
        for (f, &n) in samples.iter().enumerate() {
            writeln!(text, "# HELP m{f} Family {f}.\n# TYPE m{f} gauge").expect("Vec");
            let at = text.len();
            text.extend_from_slice(&exposition(n, f as u64)[..]);
            ranges.push(at..text.len());
        }
        let text = Bytes::from(text);
        let mut om = Vec::new();
        for (f, r) in ranges.iter().enumerate() {
            om.push(Bytes::from(format!(
                "# TYPE m{f} gauge\n# HELP m{f} Family {f}.\n"
            )));
            om.push(text.slice(r.clone()));
        }
        om.push(Bytes::from_static(b"# EOF\n"));
        let om_plain = concat(&om);
        (vec![text.clone()], om, text.to_vec(), om_plain)
    }

    #[test]
    fn body_and_tail_are_one_gzip_stream() {
        let body = exposition(40_000, 1);
        let parts = [&body[..1000], &body[1000..]];
        let open = OpenGzip::new(&parts);
        assert!(
            open.compressed_len() < body.len() / 4,
            "{} of {}",
            open.compressed_len(),
            body.len()
        );
        assert!(open.pieces.len() > 2, "a body of several pieces");
        let out = gunzip_single_member(&open.finish(&Tail::new(b"tail 1\n# EOF\n")));
        assert_eq!(out.len(), body.len() + 13);
        assert!(out.starts_with(&body) && out.ends_with(b"tail 1\n# EOF\n"));
        // The shared part is reusable: a second response with another tail.
        assert!(gunzip_single_member(&open.finish(&Tail::new(b"x\n"))).ends_with(b"\nx\n"));
    }

    #[test]
    fn formats_round_trip_and_share_sample_pieces() {
        // Families of one line, of a few pieces, and below and above the sharing threshold.
        let (text, om, text_plain, om_plain) = formats(&[1, 40_000, 700, 12_000, 20]);
        let (text_gz, om_gz) = compress_formats(&text, &om);
        let tail = Tail::new(b"indicator_exporter_up 1\n");
        both_ways(
            &text_gz.finish(&tail),
            &[&text_plain[..], b"indicator_exporter_up 1\n"].concat(),
        );
        both_ways(
            &om_gz.finish(&tail),
            &[&om_plain[..], b"indicator_exporter_up 1\n"].concat(),
        );
        assert_eq!(text_gz.plain_len(), text_plain.len() as u64);
        assert_eq!(om_gz.plain_len(), om_plain.len() as u64);
        // The pieces of the two large sample ranges are the same memory in both bodies.
        let shared = om_gz
            .pieces
            .iter()
            .filter(|p| text_gz.pieces.iter().any(|t| t.as_ptr() == p.as_ptr()))
            .count();
        let large = [40_000usize, 12_000]
            .iter()
            .map(|&n| exposition(n, 0).len().div_ceil(PIECE))
            .sum::<usize>();
        assert_eq!(shared, large, "pieces shared between the formats");
    }

    #[test]
    fn pieces_cost_little_next_to_one_stream() {
        let body = exposition(60_000, 7);
        assert!(body.len() > 3 * PIECE);
        let pieces = OpenGzip::new(&[&body]);
        let mut c = Compress::new(LEVEL, false);
        let mut whole = Vec::new();
        deflate(&mut c, &body, &mut whole, FlushCompress::Sync);
        let (a, b) = (pieces.compressed_len(), whole.len());
        // Primed pieces lose only their block boundaries (0.01 % here); unprimed ones, which
        // start without the 32 KiB before them, lose 0.1 %.
        assert!(
            a as f64 <= b as f64 * 1.0004,
            "{a} bytes in pieces, {b} in one stream"
        );
        assert_eq!(pieces.plain_len(), body.len() as u64);
    }

    #[test]
    fn bodies_at_piece_boundaries() {
        let long = exposition(60_000, 3);
        for n in [PIECE - 1, PIECE, PIECE + 1, 2 * PIECE, 2 * PIECE + 1] {
            let body = &long[..n];
            // One part, and the same bytes cut exactly at the piece boundary.
            let cut_at = PIECE.min(n);
            for parts in [vec![body], vec![&body[..cut_at], &body[cut_at..]]] {
                let open = OpenGzip::new(&parts);
                assert_eq!(open.pieces.len(), n.div_ceil(PIECE), "{n} bytes");
                both_ways(&open.finish(&Tail::new(b"")), body);
            }
        }
    }

    #[test]
    fn shared_ranges_at_the_threshold_and_the_edges() {
        let long = Bytes::from(exposition(40_000, 5));
        let cases: Vec<(&str, Vec<Bytes>, bool)> = vec![
            ("whole text", vec![long.clone()], true),
            ("just below", vec![long.slice(..SHARE_MIN - 1)], false),
            ("exactly", vec![long.slice(..SHARE_MIN)], true),
            (
                "at the end",
                vec![
                    Bytes::from_static(b"x\n"),
                    long.slice(long.len() - SHARE_MIN..),
                ],
                true,
            ),
            (
                "two adjacent",
                vec![long.slice(..PIECE + 3), long.slice(PIECE + 3..)],
                true,
            ),
            (
                "not a slice of the text",
                vec![Bytes::from(long.to_vec())],
                false,
            ),
        ];
        for (what, om, shares) in cases {
            let (text_gz, om_gz) = compress_formats(std::slice::from_ref(&long), &om);
            both_ways(&text_gz.finish(&Tail::new(b"")), &long);
            both_ways(
                &om_gz.finish(&Tail::new(b"# EOF\n")),
                &[&concat(&om)[..], b"# EOF\n"].concat(),
            );
            let shared = om_gz
                .pieces
                .iter()
                .any(|p| text_gz.pieces.iter().any(|t| t.as_ptr() == p.as_ptr()));
            assert_eq!(shared, shares, "{what}");
        }
    }

    #[test]
    fn empty_bodies() {
        let open = OpenGzip::new::<&[u8]>(&[]);
        assert_eq!(open.compressed_len(), 0);
        both_ways(&open.finish(&Tail::new(b"only\n")), b"only\n");
        both_ways(&open.finish(&Tail::new(b"")), b"");
        let empty_parts = OpenGzip::new(&[&b""[..], &b""[..]]);
        both_ways(&empty_parts.finish(&Tail::new(b"t\n")), b"t\n");
        let (t, o) = compress_formats(&[], &[]);
        both_ways(&join([&t, &o], &Tail::new(b"")), b"");
        let (t, o) = compress_formats(&[Bytes::new()], &[Bytes::from_static(b"# EOF\n")]);
        both_ways(&t.finish(&Tail::new(b"")), b"");
        both_ways(&o.finish(&Tail::new(b"")), b"# EOF\n");
    }

    #[test]
    fn segments_join_into_one_stream() {
        let a = exposition(30_000, 11);
        let b = b"b 2\n".repeat(10_000);
        let (text, om, text_plain, om_plain) = formats(&[9_000, 30]);
        let (gt, go) = compress_formats(&text, &om);
        let (ga, gb, empty) = (
            OpenGzip::new(&[&a]),
            OpenGzip::new(&[&b]),
            OpenGzip::new::<&[u8]>(&[]),
        );
        let chunks = join([&ga, &empty, &gt, &gb, &go], &Tail::new(b"# EOF\n"));
        let expected = [&a[..], &text_plain, &b[..], &om_plain, b"# EOF\n"].concat();
        both_ways(&chunks, &expected);
    }

    #[test]
    fn compression_is_deterministic() {
        let (text, om, _, _) = formats(&[30_000, 10]);
        let (t1, o1) = compress_formats(&text, &om);
        let (t2, o2) = compress_formats(&text, &om);
        assert_eq!(concat(&t1.pieces), concat(&t2.pieces));
        assert_eq!(concat(&o1.pieces), concat(&o2.pieces));
    }
}
