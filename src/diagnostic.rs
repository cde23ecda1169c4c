//! Positioned error messages for everything a user writes: the config file and the data
//! files it names. Every load error ends up as a sorted list of these, bounded whatever the
//! input: at most [`MAX_ERRORS_PER_FILE`] per file, each at most [`MAX_MESSAGE_CHARS`] long.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// At most this many problems are listed per file; the rest are counted in one closing note.
pub const MAX_ERRORS_PER_FILE: usize = 100;

/// Longest message kept whole; a longer one keeps its start and its end (where "expected …"
/// is), so input pasted into a message cannot flood the log, the reload answer or the page.
pub const MAX_MESSAGE_CHARS: usize = 480;

/// One problem in one input file, with a 1-based line and column where known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Diagnostic {
    /// A problem with the file as a whole (missing, unreadable, empty).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: 0,
            col: 0,
            message: bounded(message.into()),
        }
    }

    pub fn at(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line,
            col,
            message: bounded(message.into()),
        }
    }

    /// The note that closes a file's list when `n` of its problems were left out. It sorts
    /// after the file's other problems (line `usize::MAX`) and carries `n` in `col`, so lists
    /// merged later still count every problem once.
    pub fn omitted(path: &Path, n: usize) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: usize::MAX,
            col: n,
            message: format!("… and {n} more problems in this file"),
        }
    }

    fn is_omitted(&self) -> bool {
        self.line == usize::MAX
    }
}

/// A message on one line and at most [`MAX_MESSAGE_CHARS`] long: control characters become
/// U+FFFD, and the middle of a long message gives way to `…`.
pub fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE_CHARS && !message.chars().any(char::is_control) {
        return message;
    }
    let clean = |c: char| if c.is_control() { '\u{fffd}' } else { c };
    let n = message.chars().count();
    if n <= MAX_MESSAGE_CHARS {
        return message.chars().map(clean).collect();
    }
    // The start says what and where, the end what was expected.
    let tail = MAX_MESSAGE_CHARS / 4;
    let head = MAX_MESSAGE_CHARS - tail - 1;
    let mut out: String = message.chars().take(head).map(clean).collect();
    out.push('…');
    out.extend(message.chars().skip(n - tail).map(clean));
    out
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // usize::MAX sorts a file-wide note after the file's positioned problems.
        if self.line == 0 || self.is_omitted() {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

/// Maps byte offsets of one source text to line:column (both 1-based, column in characters).
pub struct SourceMap<'a> {
    path: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    /// The file the text is of.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn new(path: &'a Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap {
            path,
            text,
            line_starts,
        }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    pub fn diag(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.line_col(span.start);
        Diagnostic::at(self.path, line, col, message)
    }
}

/// A non-empty, sorted list of diagnostics: the error of a failed load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts, drops repeats, and keeps the first [`MAX_ERRORS_PER_FILE`] problems of each
    /// file, counting the rest in one closing note ([`Diagnostic::omitted`]).
    pub fn new(mut list: Vec<Diagnostic>) -> Self {
        for d in &mut list {
            if !d.is_omitted() {
                d.message = bounded(std::mem::take(&mut d.message));
            }
        }
        list.sort();
        list.dedup();
        let list = condense(list);
        let mut out: Vec<Diagnostic> = Vec::with_capacity(list.len().min(4 * MAX_ERRORS_PER_FILE));
        let mut list = list.into_iter().peekable();
        while let Some(first) = list.next() {
            let path = first.path.clone();
            let (mut kept, mut omitted) = (0, 0);
            for d in std::iter::once(first)
                .chain(std::iter::from_fn(|| list.next_if(|d| d.path == path)))
            {
                if d.is_omitted() {
                    omitted += d.col;
                } else if kept < MAX_ERRORS_PER_FILE {
                    kept += 1;
                    out.push(d);
                } else {
                    omitted += 1;
                }
            }
            if omitted > 0 {
                out.push(Diagnostic::omitted(&path, omitted));
            }
        }
        Diagnostics(out)
    }

    pub fn one(d: Diagnostic) -> Self {
        Diagnostics::new(vec![d])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Positions listed in a condensed problem; the rest are counted.
const REPEATS_LISTED: usize = 3;

/// Identical positioned problems of one file (a bad token on thousands of rows) become one,
/// at the first place, saying how many more places have it and the first few of them.
fn condense(list: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::with_capacity(list.len());
    // Index in `out` of each message of the current file, and the places it repeats at.
    let mut first: std::collections::HashMap<String, usize> = Default::default();
    let mut repeats: Vec<Vec<(usize, usize)>> = Vec::new();
    for d in list {
        if out.last().is_some_and(|l| l.path != d.path) {
            first.clear();
        }
        let positioned = d.line > 0 && !d.is_omitted();
        match first.get(&d.message).filter(|_| positioned) {
            Some(&i) => repeats[i].push((d.line, d.col)),
            None => {
                if positioned {
                    first.insert(d.message.clone(), out.len());
                }
                out.push(d);
                repeats.push(Vec::new());
            }
        }
    }
    for (d, more) in out.iter_mut().zip(repeats) {
        if more.is_empty() {
            continue;
        }
        let listed: Vec<String> = more
            .iter()
            .take(REPEATS_LISTED)
            .map(|(l, c)| format!("{l}:{c}"))
            .collect();
        let rest = if more.len() > REPEATS_LISTED {
            " …"
        } else {
            ""
        };
        d.message = format!(
            "{} (the same at {} more place{}: {}{rest})",
            d.message,
            more.len(),
            if more.len() == 1 { "" } else { "s" },
            listed.join(", ")
        );
    }
    out
}

/// A short excerpt of input for a message: a pasted megabyte stays out of the log.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .take(MAX + 1)
        .collect();
    if clean.chars().count() > MAX {
        let cut: String = clean.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let text = "a = 1\nb = \"中文\" x\n";
        let map = SourceMap::new(Path::new("c.toml"), text);
        assert_eq!(map.line_col(0), (1, 1));
        assert_eq!(map.line_col(6), (2, 1));
        let x = text.find('x').unwrap();
        assert_eq!(map.line_col(x), (2, 10));
    }

    #[test]
    fn display_sorts_and_formats() {
        let p = Path::new("c.toml");
        let d = Diagnostics::new(vec![
            Diagnostic::at(p, 3, 1, "later"),
            Diagnostic::at(p, 1, 5, "first"),
        ]);
        assert_eq!(d.to_string(), "c.toml:1:5: first\nc.toml:3:1: later");
        assert_eq!(Diagnostic::file(p, "gone").to_string(), "c.toml: gone");
    }

    #[test]
    fn identical_problems_on_many_rows_are_said_once_with_a_count() {
        let (a, b) = (Path::new("a.csv"), Path::new("b.csv"));
        let mut list: Vec<Diagnostic> = (2..=500)
            .map(|i| Diagnostic::at(a, i, 9, "invalid value `x`, expected a number"))
            .collect();
        list.push(Diagnostic::at(a, 7, 3, "invalid period `20x`"));
        list.push(Diagnostic::at(a, 9, 3, "invalid period `20x`"));
        list.push(Diagnostic::at(
            b,
            4,
            9,
            "invalid value `x`, expected a number",
        ));
        let d = Diagnostics::new(list).to_string();
        assert_eq!(
            d,
            "a.csv:2:9: invalid value `x`, expected a number (the same at 498 more places: 3:9, 4:9, 5:9 …)\n\
             a.csv:7:3: invalid period `20x` (the same at 1 more place: 9:3)\n\
             b.csv:4:9: invalid value `x`, expected a number"
        );
    }

    #[test]
    fn each_file_lists_at_most_the_cap_and_counts_the_rest() {
        let (a, b) = (Path::new("a.csv"), Path::new("b.csv"));
        let mut list: Vec<Diagnostic> = (1..=150)
            .map(|i| Diagnostic::at(a, i, 1, format!("bad row {i}")))
            .collect();
        // A list capped earlier (by the validator) merges with later problems of the file.
        list.push(Diagnostic::omitted(a, 1000));
        list.push(Diagnostic::at(b, 2, 1, "bad row 1"));
        let d = Diagnostics::new(list);
        assert_eq!(d.len(), MAX_ERRORS_PER_FILE + 2);
        assert_eq!(d.0[MAX_ERRORS_PER_FILE - 1].line, MAX_ERRORS_PER_FILE);
        assert_eq!(
            d.0[MAX_ERRORS_PER_FILE].to_string(),
            "a.csv: … and 1050 more problems in this file"
        );
        assert_eq!(
            d.0[MAX_ERRORS_PER_FILE + 1].to_string(),
            "b.csv:2:1: bad row 1"
        );
        // Capping again changes nothing.
        assert_eq!(Diagnostics::new(d.0.clone()), d);
    }

    #[test]
    fn long_messages_keep_their_start_and_end_on_one_line() {
        let p = Path::new("c.toml");
        let pasted = "x\n\0".repeat(100_000);
        let d = Diagnostic::at(p, 1, 1, format!("bad `{pasted}`, expected a number"));
        assert_eq!(d.message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(
            d.message.starts_with("bad `x\u{fffd}\u{fffd}x"),
            "{}",
            d.message
        );
        assert!(d.message.ends_with("`, expected a number"), "{}", d.message);
        assert!(d.message.contains('…') && !d.message.contains('\n'));
        assert_eq!(bounded("short".into()), "short");
        assert_eq!(bounded("a\tb".into()), "a\u{fffd}b");
    }
}
