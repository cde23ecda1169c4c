//! Config loading never panics, and every error it reports has a position: thousands of
//! mutations of the bundled config (deterministic, seeded) through the whole load pipeline.

use std::path::Path;

/// xorshift64*: enough randomness for mutations, and reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "\"",
    "=",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "nan",
    "-1e999",
    "101",
    "__x",
    "[[metric]]",
    "value = ",
    "labels = { }",
    "unit = \"yuan\"",
    "中",
    "\\",
    "'",
    "year",
    "0",
    "samples_file = \"x.csv\"",
];

#[test]
fn mutated_configs_never_panic_and_every_error_has_a_position() {
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..1500 {
        let mut text = original.clone();
        for _ in 0..1 + rng.below(3) {
            let mut at = rng.below(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(20)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => {
                    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                    let line = text[line_start..line_end].to_string();
                    text.insert_str(line_end, &format!("\n{line}"));
                }
            }
        }
        std::fs::write(&path, &text).unwrap();
        match indicator_exporter::check(Path::new(&path)) {
            Ok(_) => accepted += 1,
            Err(errors) => {
                rejected += 1;
                assert!(!errors.is_empty());
                for d in errors.iter() {
                    assert!(!d.message.is_empty());
                    let file_level = d.message.starts_with("empty dataset")
                        || d.message.starts_with("cannot read");
                    if d.line == usize::MAX {
                        assert!(d.message.starts_with("… and "), "{d}");
                        continue;
                    }
                    assert!(
                        d.line > 0 || file_level,
                        "no position: {d}\n--- config ---\n{text}"
                    );
                    if d.line > 0 {
                        assert!(d.line <= text.lines().count() + 1, "line out of range: {d}");
                    }
                }
            }
        }
    }
    eprintln!("{accepted} mutations accepted, {rejected} rejected");
    assert!(
        rejected > 500,
        "the mutations should mostly break the config"
    );
}
