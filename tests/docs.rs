//! The documentation holds together: the README stays a short first page, every page of
//! docs/ is on its map, every relative link and anchor leads somewhere, and every TOML or YAML
//! example is a file of the repository (whole or a contiguous part of it) that a test loads:
//! every example dataset or catalogue passes `--config.check`, the remote ones against a
//! loopback server standing for their publisher.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::docs::{blocks, page, pages};
use common::loopback::Loopback;
use common::publisher::{Answer, Publisher};
use http_body_util::Full;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The README's ceiling: 15 KiB.
const README_MAX: usize = 15 * 1024;

#[test]
fn the_readme_is_under_15_kib() {
    let size = page("README.md").len();
    assert!(
        size < README_MAX,
        "README.md is {size} bytes, expected under {README_MAX}: move reference text into docs/"
    );
}

#[test]
fn every_docs_page_is_on_the_readme_map() {
    let readme = page("README.md");
    let missing: Vec<String> = pages()
        .into_iter()
        .skip(1)
        .map(|(name, _)| name)
        .filter(|name| !readme.contains(&format!("]({name})")))
        .collect();
    assert!(
        missing.is_empty(),
        "pages the README's map does not link: {missing:?}"
    );
}

/// A heading's anchor as GitHub makes it: lower case; letters, digits, spaces, `-` and `_`
/// kept, everything else dropped; spaces become `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn slugs_follow_githubs_rules() {
    for (heading, want) in [
        (
            "SDMX-CSV 2.0, labels=name (Eurostat)",
            "sdmx-csv-20-labelsname-eurostat",
        ),
        (
            "Scaling out: replicas and remote_write",
            "scaling-out-replicas-and-remote_write",
        ),
        ("`[[input]]`: a publisher file", "input-a-publisher-file"),
        (
            "Security: TLS and basic auth",
            "security-tls-and-basic-auth",
        ),
        (
            "JSON-stat 1.x bundle (CSO Ireland)",
            "json-stat-1x-bundle-cso-ireland",
        ),
    ] {
        assert_eq!(slug(heading), want, "{heading}");
    }
    let page = "# Title\n## Limits\n```sh\n# Limits (a comment, not a heading)\n```\n## Limits\n### Limits\n";
    assert_eq!(
        anchors(page),
        ["title", "limits", "limits-1", "limits-2"]
            .map(String::from)
            .into()
    );
}

/// Every anchor of a page: its headings' slugs, duplicates numbered -1, -2 … in order.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if in_code || hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The text of a page without its code blocks and inline code, where links are not links.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Drop `code spans` (a span does not cross a line here).
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            }
        }
        out.push('\n');
    }
    out
}

/// Every `[text](target)` of a page's prose: its targets.
fn link_targets(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            let target = &rest[..end];
            if !target.contains(char::is_whitespace) {
                out.push(target.to_string());
            }
        }
    }
    out
}

/// What is wrong with `target`, a link of `page` (a path relative to the repository).
fn broken(
    page: &str,
    target: &str,
    anchors_of: &dyn Fn(&Path) -> BTreeSet<String>,
) -> Option<String> {
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|s| target.starts_with(s))
    {
        return None;
    }
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let dir = Path::new(ROOT).join(page);
    let file = if path.is_empty() {
        dir.clone()
    } else {
        dir.parent().expect("a folder").join(path)
    };
    if !file.exists() {
        return Some(format!("{page}: ({target}): no such file or directory"));
    }
    if anchor.is_empty() {
        return None;
    }
    if file.extension().is_none_or(|e| e != "md") {
        return Some(format!(
            "{page}: ({target}): an anchor into a file that is not a page"
        ));
    }
    let have = anchors_of(&file);
    (!have.contains(anchor)).then(|| {
        format!(
            "{page}: ({target}): no heading of {} has the anchor `{anchor}`",
            file.display()
        )
    })
}

#[test]
fn every_relative_link_and_anchor_leads_somewhere() {
    let anchors_of = |file: &Path| {
        anchors(
            &std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
        )
    };
    let mut problems = Vec::new();
    let mut count = 0;
    for (name, text) in pages() {
        for target in link_targets(&text) {
            count += 1;
            problems.extend(broken(&name, &target, &anchors_of));
        }
    }
    assert!(count > 40, "only {count} links in the documentation");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_broken_link_or_anchor_is_found() {
    let anchors_of = |_: &Path| anchors("# Page\n## Limits\n");
    let page = "docs/operations.md";
    let problems: Vec<String> = [
        "nothing-here.md",
        "security.md#no-such-heading",
        "#not-on-this-page",
        "../Cargo.toml#a",
    ]
    .iter()
    .filter_map(|t| broken(page, t, &anchors_of))
    .collect();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(
        problems[0].ends_with("no such file or directory"),
        "{problems:?}"
    );
    assert!(
        problems[1].ends_with("the anchor `no-such-heading`"),
        "{problems:?}"
    );
    for fine in [
        "security.md#limits",
        "../examples/",
        "https://example.org/#x",
        "#limits",
    ] {
        assert_eq!(broken(page, fine, &anchors_of), None, "{fine}");
    }
}

/// Where `block` sits in `file`: the index of the file's line it starts at, allowing the block
/// to drop an indentation every line of that part of the file has.
fn excerpt_at(block: &str, file: &str) -> Option<usize> {
    let want: Vec<&str> = block.lines().collect();
    let have: Vec<&str> = file.lines().collect();
    let first = *want.first()?;
    (0..have.len()).find(|&i| {
        let Some(indent) = have[i].strip_suffix(first) else {
            return false;
        };
        indent.trim().is_empty()
            && have.len() >= i + want.len()
            && want.iter().zip(&have[i..]).all(|(w, h)| {
                if w.is_empty() {
                    h.trim().is_empty()
                } else {
                    h.strip_prefix(indent) == Some(*w)
                }
            })
    })
}

#[test]
fn excerpts_are_found_only_where_they_are() {
    let file = "a = 1\n[t]\n  b = 2\n\n  c = 3\nd = 4\n";
    assert_eq!(excerpt_at("a = 1\n[t]\n", file), Some(0));
    assert_eq!(excerpt_at("b = 2\n\nc = 3\n", file), Some(2));
    assert_eq!(excerpt_at("b = 2\nc = 3\n", file), None, "not contiguous");
    assert_eq!(
        excerpt_at("[t]\nb = 2\n", file),
        None,
        "an indentation not every line has"
    );
    assert_eq!(excerpt_at("d = 4\ne = 5\n", file), None, "past the end");
}

#[test]
fn every_toml_and_yaml_example_is_a_file_of_the_repository() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, text) in pages() {
        for b in blocks(&name, &text) {
            if !matches!(b.lang.as_str(), "toml" | "yaml") {
                continue;
            }
            checked += 1;
            let at = format!("{}:{}", b.page, b.line);
            let Some(file) = b.file else {
                problems.push(format!(
                    "{at}: a {} block without `<!-- file: PATH -->` before it",
                    b.lang
                ));
                continue;
            };
            match std::fs::read_to_string(Path::new(ROOT).join(&file)) {
                Err(e) => problems.push(format!("{at}: {file}: {e}")),
                Ok(text) if excerpt_at(&b.body, &text).is_none() => problems.push(format!(
                    "{at}: the block is not {file}, nor a contiguous part of it"
                )),
                Ok(_) => {}
            }
        }
    }
    assert!(checked >= 25, "only {checked} TOML and YAML blocks");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every example config under examples/ (a dataset or a catalogue), relative to the repository.
fn example_configs() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("examples/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("example");
                if text
                    .lines()
                    .any(|l| l.starts_with("[dataset]") || l.starts_with("[catalog]"))
                {
                    let rel = path.strip_prefix(ROOT).expect("in the repository");
                    out.push(rel.display().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(ROOT).join("examples"), &mut out);
    out.sort();
    out
}

/// Whether a config fetches anything: a URL as a file, an SDMX query or a PxWeb table.
fn is_remote(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("[input.query]")
            || l.starts_with("[input.pxweb]")
            || ["file", "structure", "samples_file"].iter().any(|k| {
                l.strip_prefix(k)
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .is_some_and(|v| v.trim_start().starts_with("\"http"))
            })
    })
}

/// Remote examples whose service another test stands for, and that test.
const CHECKED_ELSEWHERE: &[(&str, &str)] = &[
    ("examples/sdmx-query-ecb.toml", "tests/sdmx_query.rs"),
    ("examples/remote/pxweb-scb-cpi.toml", "tests/pxweb.rs"),
];

/// Runs `--config.check` on `config`; Err with what it printed unless it succeeds.
fn config_check(config: &Path) -> Result<String, String> {
    let out = common::exporter::command()
        .arg("--config.check")
        .arg("--config.file")
        .arg(config)
        .output()
        .expect("run the binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains(": OK: dataset ") {
        Ok(text)
    } else {
        Err(format!("{}: {}\n{text}", config.display(), out.status))
    }
}

#[test]
fn every_local_example_config_passes_config_check() {
    let mut local = 0;
    let mut failures = Vec::new();
    for name in example_configs() {
        let text = std::fs::read_to_string(Path::new(ROOT).join(&name)).expect("example");
        if is_remote(&text) {
            continue;
        }
        local += 1;
        failures.extend(config_check(&Path::new(ROOT).join(&name)).err());
    }
    assert!(local >= 20, "only {local} local example configs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Remote examples are each loaded against a stand-in for their publisher: here, or by the
/// test named in [`CHECKED_ELSEWHERE`], which must load that very file.
#[test]
fn every_remote_example_config_has_a_test_that_loads_it() {
    let here = [
        "examples/remote/jsonstat-eurostat-url.toml",
        "examples/remote/sdmx-services.toml",
    ];
    for name in example_configs() {
        let text = std::fs::read_to_string(Path::new(ROOT).join(&name)).expect("example");
        if !is_remote(&text) || here.contains(&name.as_str()) {
            continue;
        }
        let (_, test) = CHECKED_ELSEWHERE
            .iter()
            .find(|(example, _)| *example == name)
            .unwrap_or_else(|| panic!("{name} fetches a remote source and no test loads it"));
        let test_text = std::fs::read_to_string(Path::new(ROOT).join(test)).expect("the test");
        assert!(
            test_text.contains(&format!("\"{name}\"")),
            "{test} does not load {name}"
        );
    }
}

/// The remote source example of docs/remote-sources.md, its host moved to a loopback server
/// that answers with Eurostat's JSON-stat file and notes the API key header it was sent.
#[test]
fn the_remote_source_example_loads_from_its_publisher() {
    let name = "examples/remote/jsonstat-eurostat-url.toml";
    let body = std::fs::read(format!(
        "{ROOT}/tests/fixtures/publishers/jsonstat/estat_une_rt_m_DE_since_2024-01.json"
    ))
    .expect("fixture");
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = keys.clone();
    let server = Loopback::start(move |req| {
        let key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
        seen.lock().unwrap().push(key.unwrap_or("").to_string());
        let ok = req.uri().path() == "/api/v1/une_rt_m";
        let reply = http::Response::builder()
            .status(if ok { 200 } else { 404 })
            .body(Full::new(Bytes::from(if ok {
                body.clone()
            } else {
                Vec::new()
            })))
            .expect("reply");
        async move { reply }
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(
        format!("{ROOT}/tests/fixtures/web/ca.crt"),
        dir.path().join("ca.pem"),
    )
    .expect("a CA certificate as ca.pem");
    let key_file = dir.path().join("api-key");
    std::fs::write(&key_file, "k-123\n").expect("key file");
    let text = std::fs::read_to_string(format!("{ROOT}/{name}")).expect("example");
    assert!(text.contains("https://data.example.org/") && text.contains("/run/secrets/api-key"));
    let moved = text
        .replace(
            "https://data.example.org",
            &format!("http://{}", server.addr()),
        )
        .replace("/run/secrets/api-key", &key_file.display().to_string());
    let config = dir.path().join("remote.toml");
    std::fs::write(&config, moved).expect("config");
    let out = config_check(&config).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("estat_unemployment_rate_ratio  31 series"),
        "{out}"
    );
    assert_eq!(
        *keys.lock().unwrap(),
        ["k-123"],
        "the key from header_file, once"
    );
}

/// The `[sdmx.services]` example: its query goes to the mirror it names, not to the ECB.
#[test]
fn the_sdmx_services_example_sends_its_query_to_the_mirror() {
    let name = "examples/remote/sdmx-services.toml";
    let publisher = Publisher::start(Duration::ZERO, |target, _| {
        if target == "/service/data/EXR/M.USD+JPY.EUR.SP00.A?startPeriod=2020" {
            Answer::ok(
                "DATAFLOW,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n\
                 ECB:EXR(1.0),M,USD,EUR,SP00,A,2024-01,1.0905\n",
            )
        } else {
            Answer::status(404)
        }
    });
    let text = std::fs::read_to_string(format!("{ROOT}/{name}")).expect("example");
    assert!(text.contains("https://ecb-mirror.example.org"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("services.toml");
    std::fs::write(
        &config,
        text.replace("https://ecb-mirror.example.org", &publisher.base()),
    )
    .expect("config");
    let out = config_check(&config).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("ecb_exchange_rate_ratio  1 series"), "{out}");
    assert_eq!(publisher.seen().len(), 1, "one request, to the mirror");
}

/// The YAML examples load in the programs that read them: a web config in the exporter
/// (`--web.config.file`, with the test certificates beside it as the example says), a scrape
/// config in promtool (its paths moved to a folder of the test's own).
#[test]
fn every_yaml_example_loads_where_it_is_used() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["server.crt", "server.key", "ca.crt"] {
        std::fs::copy(
            common::repo("tests/fixtures/web").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let mut web = 0;
    for entry in std::fs::read_dir(common::repo("examples/web")).unwrap() {
        let src = entry.unwrap().path();
        let copy = dir.path().join(src.file_name().unwrap());
        std::fs::copy(&src, &copy).unwrap();
        let out = common::exporter::run(&[
            "--config.check",
            "--config.file",
            common::repo("config.toml").to_str().unwrap(),
            "--web.config.file",
            copy.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK: web config"),
            "{}: {stdout}{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        web += 1;
    }
    assert!(web >= 2, "the web config examples were found");
    let promtool = common::require_tool("promtool");
    for f in [
        "indicator_exporter-ca.crt",
        "scraper.crt",
        "scraper.key",
        "indicator_exporter.password",
    ] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let mut scrape = 0;
    for entry in std::fs::read_dir(common::repo("examples/prometheus")).unwrap() {
        let src = entry.unwrap().path();
        let text = std::fs::read_to_string(&src).unwrap();
        let moved = text.replace("/etc/prometheus/", &format!("{}/", dir.path().display()));
        let copy = dir.path().join(src.file_name().unwrap());
        std::fs::write(&copy, moved).unwrap();
        let out = std::process::Command::new(&promtool)
            .args(["check", "config"])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            src.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        scrape += 1;
    }
    assert!(scrape >= 2, "the scrape config examples were found");
}
