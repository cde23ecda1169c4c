//! gzip for bodies compressed once and served many times with a small per-response tail.
//!
//! The body is stored as raw DEFLATE ending in a sync flush (byte-aligned, not final). A
//! response is the gzip header, that shared stream, the tail compressed as the final blocks,
//! and a trailer whose CRC-32 is combined from the two parts: one gzip stream, readable by
//! every client (curl, for one, stops after the first member of a multi-member file).

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// Fastest level: bodies are compressed once per load, and level 1 keeps a million-series load
/// within its time budget at a small cost in size.
const LEVEL: Compression = Compression::fast();

/// The 10-byte gzip header: deflate, no name or time, unknown OS.
const HEADER: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

#[derive(Debug, Clone)]
pub struct OpenGzip {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

impl OpenGzip {
    /// Compresses `parts` (one body, in order) for later completion by [`OpenGzip::finish`].
    pub fn new<T: AsRef<[u8]>>(parts: &[T]) -> OpenGzip {
        let len: u64 = parts.iter().map(|p| p.as_ref().len() as u64).sum();
        let mut c = Compress::new(LEVEL, false);
        let mut out = Vec::with_capacity(len as usize / 8 + 1024);
        let mut crc = crc32fast::Hasher::new();
        for p in parts {
            crc.update(p.as_ref());
            deflate(&mut c, p.as_ref(), &mut out, FlushCompress::None);
        }
        deflate(&mut c, &[], &mut out, FlushCompress::Sync);
        OpenGzip {
            deflate: Bytes::from(out),
            crc: crc.finalize(),
            len,
        }
    }

    /// Size of the shared compressed part.
    pub fn compressed_len(&self) -> usize {
        self.deflate.len()
    }

    /// The complete gzip stream of the body followed by `tail`, as chunks to send in order.
    pub fn finish(&self, tail: &Tail) -> Vec<Bytes> {
        join([self], tail)
    }
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
        chunks.push(s.deflate.clone());
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

/// The end of a gzip stream: final DEFLATE blocks and what the trailer needs to know of them.
#[derive(Debug, Clone)]
pub struct Tail {
    deflate: Bytes,
    crc: u32,
    len: u64,
}

impl Tail {
    pub fn new(data: &[u8]) -> Tail {
        let mut c = Compress::new(LEVEL, false);
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
    use std::io::Read;

    fn gunzip_single_member(chunks: &[Bytes]) -> Vec<u8> {
        let all: Vec<u8> = chunks.iter().flat_map(|b| b.iter().copied()).collect();
        let mut d = flate2::read::GzDecoder::new(&all[..]);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn body_and_tail_are_one_gzip_stream() {
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("m{{i=\"{i}\"}} {}\n", i % 7).into_bytes())
            .collect();
        let parts = [&body[..1000], &body[1000..]];
        let open = OpenGzip::new(&parts);
        assert!(
            open.compressed_len() < body.len() / 2,
            "{} of {}",
            open.compressed_len(),
            body.len()
        );
        let out = gunzip_single_member(&open.finish(&Tail::new(b"tail 1\n# EOF\n")));
        assert_eq!(out.len(), body.len() + 13);
        assert!(out.starts_with(&body) && out.ends_with(b"tail 1\n# EOF\n"));
        // The shared part is reusable: a second response with another tail.
        assert!(gunzip_single_member(&open.finish(&Tail::new(b"x\n"))).ends_with(b"\nx\n"));
    }

    #[test]
    fn segments_join_into_one_stream() {
        let a: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("a{i} 1\n").into_bytes())
            .collect();
        let b = b"b 2\n".repeat(10_000);
        let (ga, gb, empty) = (
            OpenGzip::new(&[&a]),
            OpenGzip::new(&[&b]),
            OpenGzip::new::<&[u8]>(&[]),
        );
        let out = gunzip_single_member(&join([&ga, &empty, &gb], &Tail::new(b"# EOF\n")));
        assert_eq!(out, [&a[..], &b[..], b"# EOF\n"].concat());
    }

    #[test]
    fn empty_body() {
        let open = OpenGzip::new::<&[u8]>(&[]);
        assert_eq!(
            gunzip_single_member(&open.finish(&Tail::new(b"only\n"))),
            b"only\n"
        );
    }
}
