//! The records of a CSV text after its header, for the CSV and SDMX-CSV readers. A large text
//! is cut at record boundaries into pieces tokenised by the csv crate on worker threads, and
//! the records are handed over in file order with their positions in the whole text, so a
//! reader does the same with them, and reports the same problems at the same places, as from
//! one sequential pass.

use std::ops::{Index, Range};
use std::sync::mpsc;

/// Below this many bytes of records a text is read in one pass: threads would cost more
/// than they save.
const PARALLEL_FROM: usize = 1 << 20;

/// About how many bytes of text each piece holds: big enough that handing one over is
/// cheap, small enough that the pieces in flight cost little memory.
const PIECE: usize = 256 << 10;

/// One record: its fields, and where the csv reader started reading it.
pub struct Record<'a> {
    /// The fields, one after the other.
    data: &'a str,
    /// Where each field ends in `data`.
    ends: &'a [u32],
    /// Byte offset in the text (before any blank lines the reader skipped).
    pub byte: u64,
    /// 1-based line of `byte`.
    pub line: u64,
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, j: usize) -> Option<&'a str> {
        let end = *self.ends.get(j)? as usize;
        let start = if j == 0 { 0 } else { self.ends[j - 1] as usize };
        Some(&self.data[start..end])
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).map(|j| self.get(j).expect("in range"))
    }
}

impl Index<usize> for Record<'_> {
    type Output = str;

    fn index(&self, j: usize) -> &str {
        self.get(j).expect("field index in range")
    }
}

/// Calls `each` with every record `rdr` has left to read in `text` (the bytes `rdr` reads,
/// read up to the start of a record), in order. Stops at the first unreadable record and
/// returns its error, as `rdr` reports it.
pub fn for_each(
    rdr: &mut csv::Reader<&[u8]>,
    text: &str,
    delim: u8,
    each: &mut dyn FnMut(&Record),
) -> Option<csv::Error> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(test)]
    if let Some(piece) = TEST_PIECE.get() {
        return for_each_in(rdr, text, delim, 0, piece, 3, each);
    }
    for_each_in(rdr, text, delim, PARALLEL_FROM, PIECE, cpus, each)
}

#[cfg(test)]
thread_local! {
    /// Pieces of this many bytes whatever the size of the text, in tests of this thread.
    static TEST_PIECE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with texts read in pieces of `piece` bytes on two workers, however small, so
/// tests compare a parallel read with a sequential one.
#[cfg(test)]
pub fn in_pieces<T>(piece: usize, f: impl FnOnce() -> T) -> T {
    TEST_PIECE.set(Some(piece));
    let out = f();
    TEST_PIECE.set(None);
    out
}

/// [`for_each`] with the threshold, the piece size and the number of CPUs as parameters, so
/// tests can cut small texts.
fn for_each_in(
    rdr: &mut csv::Reader<&[u8]>,
    text: &str,
    delim: u8,
    parallel_from: usize,
    piece: usize,
    cpus: usize,
    each: &mut dyn FnMut(&Record),
) -> Option<csv::Error> {
    let from = rdr.position().byte() as usize;
    if cpus < 2 || text.len().saturating_sub(from) < parallel_from {
        return sequential(rdr, each);
    }
    let starts = cuts(text, from, delim, piece);
    if starts.len() < 2 {
        return sequential(rdr, each);
    }
    let mut pieces: Vec<Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();
    pieces.push(starts[starts.len() - 1]..text.len());
    let line = rdr.position().line();
    if parallel(text, delim, &pieces, line, cpus - 1, each) {
        // A piece was unreadable: the error as the reader of the whole text words it (its
        // record number and position), from a pass up to it.
        return sequential(rdr, &mut |_| {});
    }
    None
}

/// The records read by `rdr` itself, one by one.
fn sequential(rdr: &mut csv::Reader<&[u8]>, each: &mut dyn FnMut(&Record)) -> Option<csv::Error> {
    let mut record = csv::StringRecord::new();
    let mut ends = Vec::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(e),
        }
        ends.clear();
        let mut end = 0;
        for field in record.iter() {
            end += field.len();
            ends.push(end as u32);
        }
        let (byte, line) = record.position().map_or((0, 1), |p| (p.byte(), p.line()));
        each(&Record {
            data: record.as_slice(),
            ends: &ends,
            byte,
            line,
        });
    }
}

/// The records of one piece, tokenised by a worker.
#[derive(Default)]
struct Batch {
    /// The fields of every record, one after the other.
    data: String,
    /// Where each field ends, from the start of its record.
    ends: Vec<u32>,
    /// Per record: the end of its fields in `ends` and of its text in `data`, and its byte
    /// and line in the piece.
    records: Vec<(usize, usize, u64, u64)>,
    /// Line ends in the piece, to number the lines of the next.
    lines: u64,
    /// The piece has an unreadable record (after those in `records`).
    failed: bool,
}

/// Tokenises `text[piece]`, a whole number of records, into `b` (emptied first: batches are
/// handed back and refilled, so their buffers are allocated once per worker, not per piece).
fn tokenise(text: &str, delim: u8, piece: Range<usize>, b: &mut Batch) {
    b.data.clear();
    b.ends.clear();
    b.records.clear();
    b.failed = false;
    let mut rdr = reader(delim, text[piece].as_bytes());
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                b.failed = true;
                break;
            }
        }
        b.data.push_str(record.as_slice());
        let mut end = 0;
        for field in record.iter() {
            end += field.len();
            b.ends.push(end as u32);
        }
        let (byte, line) = record.position().map_or((0, 1), |p| (p.byte(), p.line()));
        b.records.push((b.ends.len(), b.data.len(), byte, line));
    }
    b.lines = rdr.position().line() - 1;
}

/// A reader configured as the format readers configure theirs.
pub fn reader(delim: u8, bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// Tokenises `pieces` of `text` on `workers` threads (worker `w` takes pieces `w`, `w +
/// workers` …) and hands their records to `each` in order on this thread; `line` is the line
/// the first piece starts on. True when a piece was unreadable: its records before the bad one
/// were handed over, and none after.
fn parallel(
    text: &str,
    delim: u8,
    pieces: &[Range<usize>],
    line: u64,
    workers: usize,
    each: &mut dyn FnMut(&Record),
) -> bool {
    let workers = workers.clamp(1, pieces.len());
    std::thread::scope(|scope| {
        let channels: Vec<(mpsc::Receiver<Batch>, mpsc::Sender<Batch>)> = (0..workers)
            .map(|w| {
                // One batch waiting per worker: memory stays a few pieces whatever the size.
                let (tx, rx) = mpsc::sync_channel(1);
                // Batches handed over come back to be refilled.
                let (back_tx, back_rx) = mpsc::channel::<Batch>();
                scope.spawn(move || {
                    for piece in pieces.iter().skip(w).step_by(workers) {
                        let mut batch = back_rx.try_recv().unwrap_or_default();
                        tokenise(text, delim, piece.clone(), &mut batch);
                        let failed = batch.failed;
                        // The receiver is gone once a piece failed: nothing more is wanted.
                        if tx.send(batch).is_err() || failed {
                            break;
                        }
                    }
                });
                (rx, back_tx)
            })
            .collect();
        let mut line = line;
        for (k, piece) in pieces.iter().enumerate() {
            let (rx, back) = &channels[k % workers];
            let batch = rx.recv().expect("a worker sends every piece");
            hand_over(&batch, piece.start as u64, line, each);
            if batch.failed {
                return true;
            }
            line += batch.lines;
            // A worker done with its pieces has dropped its end: the batch is freed here.
            let _ = back.send(batch);
        }
        false
    })
}

/// Hands a batch's records to `each`, their positions moved from the piece to the text.
fn hand_over(batch: &Batch, start: u64, line: u64, each: &mut dyn FnMut(&Record)) {
    let (mut first, mut data_start) = (0, 0);
    for &(end, data_end, byte, l) in &batch.records {
        each(&Record {
            data: &batch.data[data_start..data_end],
            ends: &batch.ends[first..end],
            byte: start + byte,
            line: line + l - 1,
        });
        first = end;
        data_start = data_end;
    }
}

/// Where to cut `text[from..]` into pieces of about `size` bytes: the start of each piece,
/// `from` first. A cut is just after a line end outside quoted fields, where the csv reader
/// starts a record: a quote opens a quoted field only at the start of a field, and `""` in
/// one is a quote.
fn cuts(text: &str, from: usize, delim: u8, size: usize) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = vec![from];
    // `i` is outside quoted fields; the next cut is wanted at or after `want`.
    let mut i = from;
    let mut want = from + size;
    // The next quote at or after `i`, kept: searching again per cut would scan to the end of
    // a text without quotes for every piece.
    let mut next_quote: Option<usize> = None;
    while want < b.len() {
        let quote = match next_quote {
            Some(q) if q >= i => q,
            _ => text[i..].find('"').map_or(b.len(), |q| i + q),
        };
        next_quote = Some(quote);
        let at = want.max(i);
        if let Some(n) = b[at.min(quote)..quote].iter().position(|&c| c == b'\n') {
            let cut = at + n + 1;
            if cut == b.len() {
                break;
            }
            starts.push(cut);
            i = cut;
            want = cut + size;
            continue;
        }
        if quote == b.len() {
            break;
        }
        i = quote + 1;
        let opens = quote == from || matches!(b[quote - 1], b'\n' | b'\r') || b[quote - 1] == delim;
        if opens {
            // To the closing quote; none: the rest is one quoted field.
            loop {
                let Some(q) = text[i..].find('"').map(|q| i + q) else {
                    return starts;
                };
                if b.get(q + 1) == Some(&b'"') {
                    i = q + 2;
                } else {
                    i = q + 1;
                    break;
                }
            }
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's fields, byte and line.
    type Row = (Vec<String>, u64, u64);

    /// Every record as (fields, byte, line), read sequentially or cut into pieces of `piece`
    /// bytes, and the error's text.
    fn read(text: &str, piece: Option<usize>) -> (Vec<Row>, Option<String>) {
        let mut rdr = reader(b',', text.as_bytes());
        let mut header = csv::StringRecord::new();
        let _ = rdr.read_record(&mut header);
        let mut out = Vec::new();
        let mut each = |r: &Record| {
            out.push((r.iter().map(str::to_string).collect(), r.byte, r.line));
        };
        let err = match piece {
            None => sequential(&mut rdr, &mut each),
            Some(p) => for_each_in(&mut rdr, text, b',', 0, p, 3, &mut each),
        };
        (out, err.map(|e| e.to_string()))
    }

    /// Positions differ only before blank lines the reader skipped: the sequential reader
    /// starts a record where the last one ended. Normalised as the readers' locators do.
    fn normal(text: &str, rows: Vec<Row>) -> Vec<Row> {
        rows.into_iter()
            .map(|(f, mut byte, mut line)| {
                let b = text.as_bytes();
                while (byte as usize) < b.len() && matches!(b[byte as usize], b'\r' | b'\n') {
                    line += (b[byte as usize] == b'\n') as u64;
                    byte += 1;
                }
                (f, byte, line)
            })
            .collect()
    }

    fn same_in_pieces(text: &str) {
        let (want, want_err) = read(text, None);
        for piece in 1..text.len().max(2) {
            let (got, err) = read(text, Some(piece));
            assert_eq!(
                normal(text, got),
                normal(text, want.clone()),
                "pieces of {piece}"
            );
            assert_eq!(err, want_err, "pieces of {piece}");
        }
    }

    #[test]
    fn pieces_give_the_records_of_one_pass() {
        same_in_pieces("h,v\na,1\nb,2\n\nc,3\r\nd,4\re,5\n");
        same_in_pieces("h,v\r\n\"a\nb\",1\r\n\"x\"\"\ny\",2\nz\"q,3\n\"\",\"\n\"\nlast,9");
        same_in_pieces("h,v\nab\"c,1\n\"a\"b\nc,2\n\"open\n,3\n");
        same_in_pieces("h\n\n\n");
    }

    #[test]
    fn cuts_fall_after_record_ends_only() {
        let text = "h\n\"a\nb\"\nc\nd\n";
        // Pieces of one byte: a cut after every line end but the one in quotes.
        assert_eq!(cuts(text, 2, b',', 1), vec![2, 8, 10]);
        assert_eq!(cuts("h\nxy\"z\nw\n", 2, b',', 1), vec![2, 7]);
        assert_eq!(cuts("h\n\"open\nrest\n", 2, b',', 1), vec![2]);
    }
}
