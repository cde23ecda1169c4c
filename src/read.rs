//! Reading what the operator names: files, safely and within a size, and the sizes and
//! durations that flags and configs write. Every stage that reads a file reads it here.
//!
//! Files are read defensively, since a path in a config can name anything: only regular files
//! are opened (a FIFO, a device or a directory is refused before it can block or stream
//! forever), and no file is read beyond the limit (`--config.max-file-size`), whatever its
//! size said.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Default of `--config.max-file-size`: 256 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// A file as text: UTF-8 and free of NUL bytes (no text format has them; a binary file or
/// UTF-16 text does), checked here so that every reader gets text.
pub fn read_text(p: &Path, max_file_size: u64) -> Result<String, String> {
    let bytes = read_file(p, max_file_size)?;
    as_text(&bytes)?;
    // Checked just above (configs are small: the second check costs little).
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Bytes as text: UTF-8 and free of NUL bytes (no text format has them; a binary file or
/// UTF-16 text does). Text formats' readers take their bytes through this; binary formats and
/// those that name their own encoding do not.
pub fn as_text(bytes: &[u8]) -> Result<&str, String> {
    let line_of = |at: usize| bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
    if utf16 {
        return Err("UTF-16 text (byte order mark at byte 0), expected UTF-8 text".into());
    }
    // `contains` on bytes is a memchr: fast on the common path of a file without NUL.
    if bytes.contains(&0) {
        let at = bytes.iter().position(|&b| b == 0).unwrap_or(0);
        return Err(format!(
            "NUL byte at byte {at} (line {}), expected text (is this a binary file?)",
            line_of(at)
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        format!(
            "invalid UTF-8 at byte {at} (line {}), expected UTF-8 text",
            line_of(at)
        )
    })
}

/// The bytes of a regular file of at most `max` bytes. What the path is (a FIFO, a device, a
/// directory) is checked before it is opened, so opening never blocks; it is opened
/// non-blocking all the same and checked again, in case it was replaced in between; and at
/// most `max + 1` bytes are read, so a file that grows while read, or whose size lies, is cut
/// off with an error.
pub fn read_file(p: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(p).map_err(|e| io_reason(&e))?;
    regular(&meta)?;
    too_large(meta.len(), max)?;
    let mut file = open(p).map_err(|e| io_reason(&e))?;
    let meta = file.metadata().map_err(|e| io_reason(&e))?;
    regular(&meta)?;
    too_large(meta.len(), max)?;
    // Sized from the file, never beyond the limit: a size that lies allocates nothing extra.
    let mut buf = Vec::with_capacity(meta.len().min(max) as usize + 1);
    (&mut file)
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| io_reason(&e))?;
    if buf.len() as u64 > max {
        return Err(format!(
            "grew beyond {} while being read, expected at most {} (--config.max-file-size)",
            size(max),
            size(max)
        ));
    }
    // At debug level, one line per file read: what a load costs, and that each file is read once.
    tracing::debug!(file = %p.display(), bytes = buf.len(), "read file");
    Ok(buf)
}

#[cfg(unix)]
fn open(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a FIFO swapped in after the check must not block the open. No
    // controlling terminal, should the path turn out to be one.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
}

#[cfg(not(unix))]
fn open(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(p)
}

/// Refuses anything but a regular file, saying what it is.
fn regular(meta: &std::fs::Metadata) -> Result<(), String> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let what = if t.is_dir() {
        "a directory"
    } else {
        special_kind(&t)
    };
    Err(format!("is {what}, expected a regular file"))
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "not a regular file"
}

fn too_large(len: u64, max: u64) -> Result<(), String> {
    if len > max {
        return Err(format!(
            "is {}, expected at most {} (--config.max-file-size)",
            size(len),
            size(max)
        ));
    }
    Ok(())
}

/// `123 bytes`, or in binary units with the exact count when that is not round.
fn size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (u, name) in UNITS {
        if n >= u {
            return if n % u == 0 {
                format!("{} {name}", n / u)
            } else {
                format!("{:.1} {name} ({n} bytes)", n as f64 / u as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// The OS error without Rust's "(os error 2)" tail.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses a size as `--config.max-file-size` takes it: bytes, or a number with a unit (`KiB`,
/// `MiB`, `GiB`, `TiB`, or decimal `KB`, `MB`, `GB`, `TB`; `B` alone is bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = (&s[..split], s[split..].trim());
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`, expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ))
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{s}` is not a whole number of bytes with an optional unit, expected e.g. 256MiB")
    })?;
    match n.checked_mul(factor) {
        Some(0) => Err("a size of 0 reads nothing, expected at least 1 byte".into()),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

/// Go's `time.ParseDuration`: `300ms`, `1.5h`, `2h45m`; units ns, us (µs), ms, s, m, h.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos;
        rest = tail;
    }
    (total.is_finite() && total < u64::MAX as f64).then(|| Duration::from_nanos(total as u64))
}

/// A duration as Go writes it (`500ms`, `30s`, `10m`, `1h30m`), optionally after whole days
/// (`1d`, `1d12h`): publishers update daily at most, so a day is a natural refresh.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("invalid duration `{s}`, expected a number and a unit such as 30s, 10m, 1h or 1d")
    };
    let (days, rest) = match s.find('d') {
        Some(i) if i > 0 && s[..i].bytes().all(|b| b.is_ascii_digit()) => {
            let days: u64 = s[..i].parse().map_err(|_| invalid())?;
            (days, &s[i + 1..])
        }
        _ => (0, s),
    };
    let rest = if rest.is_empty() && days > 0 {
        Duration::ZERO
    } else {
        parse_go_duration(rest).ok_or_else(invalid)?
    };
    days.checked_mul(86_400)
        .and_then(|secs| Duration::from_secs(secs).checked_add(rest))
        .ok_or_else(|| format!("duration `{s}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "year,value\n2024,1\n").unwrap();
        assert_eq!(read_text(&p, 1 << 20).unwrap(), "year,value\n2024,1\n");
        assert_eq!(read_file(&p, 18).unwrap().len(), 18);
        assert_eq!(
            read_file(&p, 17).unwrap_err(),
            "is 18 bytes, expected at most 17 bytes (--config.max-file-size)"
        );
    }

    #[test]
    fn directories_and_devices_are_refused_by_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_file(dir.path(), 1 << 20).unwrap_err(),
            "is a directory, expected a regular file"
        );
        #[cfg(unix)]
        {
            let started = Instant::now();
            assert_eq!(
                read_file(Path::new("/dev/zero"), 1 << 20).unwrap_err(),
                "is a character device, expected a regular file"
            );
            // A symlink is followed to what it names.
            let link = dir.path().join("zero.csv");
            std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
            assert_eq!(
                read_file(&link, 1 << 20).unwrap_err(),
                "is a character device, expected a regular file"
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("data.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        assert_eq!(
            read_text(&fifo, 1 << 20).unwrap_err(),
            "is a FIFO (named pipe), expected a regular file"
        );
        // Opening it directly does not block either (no writer has it open).
        assert!(open(&fifo).is_ok());
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_whose_size_lies_is_cut_off_at_the_limit() {
        // /proc files say they are empty and have content.
        let p = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(p).unwrap().len(), 0);
        assert!(read_file(p, 1 << 20).unwrap().len() > 16);
        assert_eq!(
            read_file(p, 16).unwrap_err(),
            "grew beyond 16 bytes while being read, expected at most 16 bytes (--config.max-file-size)"
        );
    }

    #[test]
    fn binary_and_non_utf8_files_are_refused_with_their_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, b"year,value\n20\x0024,1\n").unwrap();
        assert_eq!(
            read_text(&p, 1 << 20).unwrap_err(),
            "NUL byte at byte 13 (line 2), expected text (is this a binary file?)"
        );
        std::fs::write(&p, b"year\n\n\xff").unwrap();
        assert_eq!(
            read_text(&p, 1 << 20).unwrap_err(),
            "invalid UTF-8 at byte 6 (line 3), expected UTF-8 text"
        );
        std::fs::write(&p, b"\xff\xfey\x00e\x00").unwrap();
        assert_eq!(
            read_text(&p, 1 << 20).unwrap_err(),
            "UTF-16 text (byte order mark at byte 0), expected UTF-8 text"
        );
    }

    #[test]
    fn sizes_read_as_prometheus_flags_write_them() {
        assert_eq!(parse_size("256MiB"), Ok(DEFAULT_MAX_FILE_SIZE));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1.5MiB").is_err() && parse_size("0").is_err());
        assert_eq!(parse_size(" 2 KiB "), Ok(2048));
        assert_eq!(parse_size("3kB"), Ok(3000));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1PiB")
            .unwrap_err()
            .contains("unknown unit `PiB`"));
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(size(DEFAULT_MAX_FILE_SIZE), "256 MiB");
        assert_eq!(size(1536), "1.5 KiB (1536 bytes)");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "1", "s", "1x", "-1s", "1s2"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_take_go_units_and_days() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "d", "1", "1x", "-1s", "1dd", "d1h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("99999999999999999d").is_err());
    }
}
