//! The documentation as tests read it: README.md and every page of docs/, their fenced code
//! blocks with the file each names, and their sections.

use std::path::Path;

/// The line before a code block that names the file the block shows (whole or in part).
pub const FILE_MARKER: &str = "<!-- file: ";

/// One fenced code block of a page.
pub struct Block {
    /// The page, relative to the repository (`docs/formats.md`).
    pub page: String,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The info string: `toml`, `yaml`, `sh`, or empty.
    pub lang: String,
    /// The file named by a `<!-- file: PATH -->` line right before the block.
    pub file: Option<String>,
    /// The lines between the fences, each ending with `\n`.
    pub body: String,
}

/// README.md, then every `docs/*.md` in name order: (path relative to the repository, text).
pub fn pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    names.sort();
    names.insert(0, "README.md".to_string());
    names
        .into_iter()
        .map(|n| {
            let text =
                std::fs::read_to_string(root.join(&n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, text)
        })
        .collect()
}

/// The text of one page.
pub fn page(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every fenced code block of `text`, the page `page`.
pub fn blocks(page: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match open.take() {
            Some(b) if fence => out.push(b),
            Some(mut b) => {
                b.body.push_str(line);
                b.body.push('\n');
                open = Some(b);
            }
            None if fence => {
                let file = previous
                    .trim()
                    .strip_prefix(FILE_MARKER)
                    .and_then(|r| r.strip_suffix(" -->"))
                    .map(str::to_string);
                open = Some(Block {
                    page: page.to_string(),
                    line: i + 1,
                    lang: line.trim().trim_start_matches('`').trim().to_string(),
                    file,
                    body: String::new(),
                });
            }
            None => {}
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    out
}

/// The section of `text` that starts at the heading line `heading` (written whole, `## Name`)
/// and ends before the next heading of the same or a higher level.
pub fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = text
        .match_indices(heading)
        .find(|(i, _)| {
            (*i == 0 || text[..*i].ends_with('\n')) && text[i + heading.len()..].starts_with('\n')
        })?
        .0;
    let rest = &text[start + heading.len()..];
    let mut in_code = false;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        offset += line.len();
    }
    Some(&text[start..start + heading.len() + offset])
}
