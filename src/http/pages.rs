//! The HTML pages: `/` lists the datasets with their status, `/datasets/NAME` shows one.
//! Rendered per request from the dataset in service and its status; plain HTML and inline SVG
//! with inline CSS, no script and no external asset, bounded in size however large the dataset.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::dataset::calendar::{civil_from_days, rfc3339, Cadence, Period};
use crate::dataset::families::{Kind, Series};
use crate::dataset::units::{scale_pow10, Base};
use crate::dataset::{Dataset, Metric, ReleaseSchedule};
use crate::reload::status::{Attempt, DatasetStatus, SourceStatus};

/// Label sets shown per metric; the rest are counted.
pub const MAX_SERIES_PER_METRIC: usize = 200;
/// Label sets shown on one dataset page, over all its metrics.
pub const MAX_SERIES_PER_PAGE: usize = 1000;
/// Periods drawn in one chart: the latest ones.
pub const MAX_CHART_POINTS: usize = 120;
/// Up to this many periods, each is drawn as a dot with its value as a tooltip.
const MAX_CHART_DOTS: usize = 24;
/// Diagnostics shown per dataset on the index page and on the dataset page.
const MAX_ERRORS_INDEX: usize = 10;
const MAX_ERRORS_PAGE: usize = 200;

/// What every page shows besides the datasets.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub telemetry_path: &'a str,
    pub now: SystemTime,
    pub version: &'a str,
    /// The last reload of the whole configuration, when it failed before any dataset was
    /// loaded (the main config, the catalogue or the web config): when, and every error.
    pub reload_failed: Option<(SystemTime, &'a [String])>,
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The path of a dataset's page, its name percent-encoded as one path segment.
pub fn dataset_path(name: &str) -> String {
    let mut out = String::from("/datasets/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.45;color:#1f2328;background:#fff}\
a{color:#0550ae}\
h1{font-size:1.6em;margin:.2em 0 .3em}h2{margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}\
h3{margin:1.4em 0 .3em}\
nav{font-size:.95em}td.size{white-space:nowrap}abbr{text-decoration:none}time{white-space:nowrap}a.ds{font-weight:bold}nav a{margin-right:.2em}\
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.25em 1em}dt{font-weight:bold}dd{margin:0;min-width:0}\
code{font-size:.92em;overflow-wrap:anywhere}\
pre.error{background:#ffebe9;border-left:4px solid #cf222e;padding:.8em 1em;white-space:pre-wrap;overflow-wrap:anywhere;margin:.4em 0}\
.muted{color:#59636e}.small{font-size:.88em}\
.wrap{overflow-wrap:anywhere}\
.badge{display:inline-block;padding:0 .45em;border-radius:.8em;font-size:.85em;font-weight:bold;white-space:nowrap;margin:.1em .2em .1em 0}\
.ok{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}.warn{background:#fff8c5;color:#7d4e00}.idle{background:#eaeef2;color:#424a53}\
.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;width:100%;margin:.4em 0}\
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #d8dee4;vertical-align:top}\
th{background:#f6f8fa;font-size:.9em}\
tr.problem td{background:#fff5f5}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.v{font-weight:bold;overflow-wrap:anywhere}.u{color:#59636e;font-size:.9em}\
.up{color:#116329}.down{color:#a40e26}\
.names span+span::before{content:' · ';color:#8c959f}\
.lbl{display:block}\
svg.spark{display:block;overflow:visible}\
section.metric{margin-top:2em}\
table.series{table-layout:fixed}\
table.series th:nth-child(2){width:6em}table.series th:nth-child(3),table.series th:nth-child(4){width:10.5em}table.series th:nth-child(5){width:11.5em}\
table.names code{white-space:nowrap;overflow-wrap:normal}\
@media (max-width:52em){\
body{margin:1em auto}\
dl{grid-template-columns:minmax(0,1fr)}dd{margin-bottom:.4em}\
table.stack thead{display:none}\
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}\
table.stack tr{border-bottom:1px solid #d0d7de;padding:.4em 0}\
table.stack td{border:0;padding:.1em 0;text-align:left}\
table.stack td[data-label]::before{content:attr(data-label) ': ';color:#59636e;font-weight:normal}\
table.stack td.name::before{content:none}\
table.series tr{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:0 1em}\
table.series td.series{grid-column:1/-1}\
table.series td.period{order:1}table.series td.chart{order:2}table.series td.latest{order:3}table.series td.change{order:4}\
table.series td[data-label]::before{display:block;content:attr(data-label);font-size:.85em}\
table.series td.series::before,table.series td.chart::before{content:none}\
}";

fn head(out: &mut String, title: &str) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    push_escaped(out, title);
    out.push_str("</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style></head>\n<body>\n");
}

fn nav(out: &mut String, page: &Page, index_link: bool) {
    let path = escape_html(page.telemetry_path);
    out.push_str("<nav>");
    if index_link {
        out.push_str("<a href=\"/\">All datasets</a> · ");
    }
    let _ = writeln!(
        out,
        "<a href=\"{path}\">Metrics ({path})</a> · <a href=\"/-/healthy\">Health</a> · <a href=\"/-/ready\">Readiness</a></nav>"
    );
}

fn foot(out: &mut String, page: &Page) {
    let _ = write!(
        out,
        "<footer><p class=\"muted small\">indicator_exporter {} · page rendered at {}</p></footer>\n</body>\n</html>\n",
        escape_html(page.version),
        rfc3339(secs(page.now))
    );
}

/// The landing page: every dataset with its status, those with errors first. Costs nothing
/// per series.
pub fn index(page: &Page, datasets: &[(&DatasetStatus, Option<&Dataset>)]) -> String {
    let mut out = String::with_capacity(8192);
    head(&mut out, "indicator_exporter");
    out.push_str("<header>\n<h1>indicator_exporter</h1>\n");
    let path = escape_html(page.telemetry_path);
    let _ = writeln!(
        out,
        "<p>Serves official indicator datasets as Prometheus metrics on <a href=\"{path}\">{path}</a>.</p>"
    );
    nav(&mut out, page, false);
    out.push_str("</header>\n");
    if let Some((at, errs)) = page.reload_failed {
        let _ = write!(
            out,
            "<h2>Last reload failed</h2>\n<p>{}: every dataset is still served as it was.</p>\n",
            when(page, secs(at))
        );
        errors(&mut out, errs, MAX_ERRORS_PAGE, None);
        out.push('\n');
    }

    let mut order: Vec<(Health, usize)> = datasets
        .iter()
        .enumerate()
        .map(|(i, (s, d))| (health(page, s, *d), i))
        .collect();
    order.sort();
    let failing = order.iter().filter(|(h, _)| *h == Health::Error).count();
    let warned = order.iter().filter(|(h, _)| *h == Health::Warning).count();
    let _ = write!(
        out,
        "<h2>Datasets</h2>\n<p>{}",
        plural(datasets.len(), "dataset")
    );
    if failing > 0 {
        let _ = write!(
            out,
            " · <span class=\"badge fail\">{failing} with errors</span>"
        );
    }
    if warned > 0 {
        let _ = write!(
            out,
            " · <span class=\"badge warn\">{warned} with warnings</span>"
        );
    }
    out.push_str("</p>\n");
    if datasets.is_empty() {
        out.push_str("<p>No dataset is configured.</p>\n");
    } else {
        out.push_str("<table class=\"stack\">\n<thead><tr><th>Dataset</th><th>Status</th><th>Serving since</th><th>Last load</th><th>Next release</th><th>Size</th></tr></thead>\n<tbody>\n");
        for &(h, i) in &order {
            let (s, d) = datasets[i];
            index_row(&mut out, page, s, d, h);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    foot(&mut out, page);
    out
}

/// How a dataset fares, in the order the index lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    /// Not served, or its last load failed.
    Error,
    /// Served and loaded, but a remote source fails or a release is overdue.
    Warning,
    Ok,
}

fn health(page: &Page, s: &DatasetStatus, d: Option<&Dataset>) -> Health {
    let failed = s.last_attempt.as_ref().is_some_and(|a| !a.ok);
    if !s.ready || failed || !s.errors.is_empty() {
        Health::Error
    } else if s.sources.iter().any(source_failing) || d.is_some_and(|d| overdue(page, d) > 0) {
        Health::Warning
    } else {
        Health::Ok
    }
}

fn source_failing(s: &SourceStatus) -> bool {
    s.last_result.starts_with("failed")
}

/// Release calendars (the dataset's and its metrics') whose next period is overdue.
fn overdue(page: &Page, d: &Dataset) -> usize {
    let now = secs(page.now);
    d.release
        .iter()
        .chain(d.metric_releases.iter().map(|(_, r)| r))
        .filter(|r| r.overdue_timestamp.is_some_and(|t| t <= now))
        .count()
}

fn index_row(out: &mut String, page: &Page, s: &DatasetStatus, d: Option<&Dataset>, h: Health) {
    let class = if h == Health::Error {
        " class=\"problem\""
    } else {
        ""
    };
    let _ = write!(
        out,
        "<tr{class} data-dataset=\"{}\"><td data-label=\"Dataset\" class=\"name\"><a href=\"{}\" class=\"ds\">{}</a>",
        escape_html(&s.name),
        escape_html(&dataset_path(&s.name)),
        escape_html(d.map_or(s.name.as_str(), |d| d.info.title.as_str()))
    );
    let _ = write!(
        out,
        "<br><code class=\"small\">{}</code>",
        escape_html(&s.name)
    );
    if let Some(d) = d {
        let _ = write!(
            out,
            "<br><span class=\"muted small\">{}</span>",
            escape_html(&d.info.publisher)
        );
    }
    out.push_str("</td><td data-label=\"Status\">");
    badges(out, page, s, d);
    out.push_str("</td><td data-label=\"Serving since\">");
    match s.serving_since {
        Some(t) => out.push_str(&when(page, secs(t))),
        None => out.push_str("<span class=\"muted\">not serving</span>"),
    }
    out.push_str("</td><td data-label=\"Last load\">");
    attempt(out, page, s.last_attempt.as_ref(), !s.errors.is_empty());
    out.push_str("</td><td data-label=\"Next release\">");
    match d.and_then(|d| d.release.as_ref()) {
        Some(r) => release(out, page, r),
        None => out.push_str("<span class=\"muted\">no calendar</span>"),
    }
    out.push_str("</td><td data-label=\"Size\" class=\"num size\">");
    match d {
        Some(d) => {
            let _ = write!(
                out,
                "{}<br>{}",
                plural(d.metrics.len(), "metric"),
                plural(d.series_count(), "series")
            );
        }
        None => out.push_str("<span class=\"muted\">not loaded</span>"),
    }
    out.push_str("</td></tr>\n");
    if !s.errors.is_empty() {
        out.push_str("<tr class=\"problem errors\"><td colspan=\"6\">");
        errors(out, &s.errors, MAX_ERRORS_INDEX, Some(&s.name));
        out.push_str("</td></tr>\n");
    }
}

fn badges(out: &mut String, page: &Page, s: &DatasetStatus, d: Option<&Dataset>) {
    if s.ready {
        out.push_str("<span class=\"badge ok\">ready</span>");
    } else {
        out.push_str("<span class=\"badge fail\">not ready</span>");
    }
    if s.last_attempt.as_ref().is_some_and(|a| !a.ok) || !s.errors.is_empty() {
        out.push_str("<span class=\"badge fail\">last load failed</span>");
    }
    let failing = s.sources.iter().filter(|s| source_failing(s)).count();
    if failing > 0 {
        let _ = write!(
            out,
            "<span class=\"badge warn\">{} failing</span>",
            plural(failing, "source")
        );
    }
    if let Some(n) = d.map(|d| overdue(page, d)).filter(|&n| n > 0) {
        let _ = write!(
            out,
            "<span class=\"badge warn\">{} overdue</span>",
            plural(n, "release")
        );
    }
}

/// The last attempt: when, what started it, and its message unless the errors are listed
/// beside it (`errors_shown`).
fn attempt(out: &mut String, page: &Page, a: Option<&Attempt>, errors_shown: bool) {
    let Some(a) = a else {
        out.push_str("<span class=\"muted\">none yet</span>");
        return;
    };
    let (class, word) = if a.ok {
        ("ok", "ok")
    } else {
        ("fail", "failed")
    };
    let _ = write!(
        out,
        "<span class=\"badge {class}\">{word}</span> {} <span class=\"muted small\">· {}</span>",
        when(page, secs(a.at)),
        escape_html(&a.trigger)
    );
    if !a.message.is_empty() && (a.ok || !errors_shown) {
        let _ = write!(
            out,
            "<br><span class=\"small wrap\">{}</span>",
            escape_html(&a.message)
        );
    }
}

fn release(out: &mut String, page: &Page, r: &ReleaseSchedule) {
    let now = secs(page.now);
    let _ = write!(
        out,
        "{} <code>{}</code>",
        escape_html(&r.period_label),
        r.next_period
    );
    match (r.expected_timestamp, r.overdue_timestamp) {
        (_, Some(o)) if o <= now => {
            let _ = write!(
                out,
                "<br><span class=\"badge warn\">overdue</span> since {}",
                when(page, o)
            );
        }
        (Some(e), o) => {
            let word = if e <= now {
                "expected since"
            } else {
                "expected by"
            };
            let _ = write!(out, "<br>{word} {}", when(page, e));
            if let Some(o) = o {
                let _ = write!(
                    out,
                    "<br><span class=\"muted small\">overdue after {}</span>",
                    date(o)
                );
            }
        }
        (None, Some(o)) => {
            let _ = write!(out, "<br>overdue after {}", when(page, o));
        }
        (None, None) => {}
    }
}

/// A list of diagnostics, at most `max` of them; the rest counted (and linked, on the index).
fn errors(out: &mut String, errs: &[String], max: usize, link: Option<&str>) {
    out.push_str("<pre class=\"error\">");
    for e in errs.iter().take(max) {
        push_escaped(out, e);
        out.push('\n');
    }
    out.push_str("</pre>");
    if errs.len() > max {
        let more = plural(errs.len() - max, "more error");
        match link {
            Some(name) => {
                let _ = write!(
                    out,
                    "<p class=\"small\">and {more}: see <a href=\"{}\">the dataset page</a>.</p>",
                    escape_html(&dataset_path(name))
                );
            }
            None => {
                let _ = write!(out, "<p class=\"small\">and {more}, not shown.</p>");
            }
        }
    }
}

/// One dataset: status, provenance, each metric's series with its latest value and a chart,
/// display names. Without a dataset (not loaded yet), status and errors only.
pub fn dataset(page: &Page, status: &DatasetStatus, dataset: Option<&Dataset>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = dataset.map_or(status.name.as_str(), |d| d.info.title.as_str());
    head(&mut out, &format!("{title} · indicator_exporter"));
    out.push_str("<header>\n");
    nav(&mut out, page, true);
    let _ = writeln!(out, "<h1>{}</h1>", escape_html(title));
    let _ = write!(
        out,
        "<p>Dataset <code>{}</code> ",
        escape_html(&status.name)
    );
    badges(&mut out, page, status, dataset);
    out.push_str("</p>\n</header>\n");

    status_section(&mut out, page, status, dataset);
    match dataset {
        Some(d) => {
            provenance(&mut out, d);
            revisions(&mut out, status);
            metrics(&mut out, page, d);
            labels(&mut out, d);
        }
        None => out.push_str(
            "<p>The dataset is not loaded yet: its metrics appear here once a load succeeds.</p>\n",
        ),
    }
    foot(&mut out, page);
    out
}

fn status_section(out: &mut String, page: &Page, s: &DatasetStatus, d: Option<&Dataset>) {
    out.push_str("<h2>Status</h2>\n<dl>\n<dt>Serving since</dt><dd>");
    match s.serving_since {
        Some(t) => out.push_str(&when(page, secs(t))),
        None => out.push_str("not serving"),
    }
    out.push_str("</dd>\n<dt>Last load</dt><dd>");
    attempt(out, page, s.last_attempt.as_ref(), !s.errors.is_empty());
    out.push_str("</dd>\n");
    if let Some(d) = d {
        if let Some(r) = &d.release {
            out.push_str("<dt>Next release</dt><dd>");
            release(out, page, r);
            out.push_str("</dd>\n");
        }
    }
    out.push_str("</dl>\n");
    if !s.errors.is_empty() {
        let _ = writeln!(out, "<h3>Errors of the last load ({})</h3>", s.errors.len());
        if s.ready {
            out.push_str("<p>The dataset loaded before is still served.</p>\n");
        }
        errors(out, &s.errors, MAX_ERRORS_PAGE, None);
        out.push('\n');
    }
    if !s.sources.is_empty() {
        out.push_str("<h3>Remote sources</h3>\n<table class=\"stack\">\n<thead><tr><th>URL</th><th>Last success</th><th>Last attempt</th><th>Last result</th><th>Failures</th><th>Fetched</th></tr></thead>\n<tbody>\n");
        for src in &s.sources {
            let url = escape_html(&src.url);
            let _ = write!(
                out,
                "<tr><td data-label=\"URL\" class=\"wrap\"><a href=\"{url}\">{url}</a></td><td data-label=\"Last success\">{}</td><td data-label=\"Last attempt\">{}</td><td data-label=\"Last result\">",
                src.last_success.map_or("never".into(), |t| when(page, secs(t))),
                src.last_attempt.map_or("never".into(), |t| when(page, secs(t))),
            );
            let class = if source_failing(src) {
                "fail"
            } else if src.last_result.is_empty() {
                "idle"
            } else {
                "ok"
            };
            let result = if src.last_result.is_empty() {
                "none yet"
            } else {
                &src.last_result
            };
            let _ = writeln!(
                out,
                "<span class=\"badge {class}\">{}</span></td><td data-label=\"Failures\" class=\"num\">{}</td><td data-label=\"Fetched\" class=\"num\">{}</td></tr>",
                escape_html(result),
                src.failures,
                bytes(src.bytes)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
}

/// The series revised since they were first stored (`--storage.path`): every value each has
/// had, when the exporter first served it, and the dataset's `published` date then.
fn revisions(out: &mut String, s: &DatasetStatus) {
    if s.revisions.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h2>Revisions</h2>\n<p>{} revised since first stored; every value each has had, oldest first.</p>",
        plural(s.revisions.len(), "series")
    );
    out.push_str("<table class=\"stack revisions\">\n<thead><tr><th>Series</th><th class=\"num\">Value</th><th>First seen</th><th>Published</th></tr></thead>\n<tbody>\n");
    for (metric, labels, vintages) in s.revisions.iter().take(MAX_SERIES_PER_PAGE) {
        let series = escape_html(&format!("{metric}{{{labels}}}"));
        for (k, v) in vintages.iter().enumerate() {
            let name = if k == 0 { series.as_str() } else { "" };
            let mut value = Vec::new();
            crate::expose::encode::write_value(&mut value, v.value);
            let _ = writeln!(
                out,
                "<tr><td data-label=\"Series\"><code>{name}</code></td><td data-label=\"Value\" class=\"num\">{}</td><td data-label=\"First seen\">{}</td><td data-label=\"Published\">{}</td></tr>",
                escape_html(&String::from_utf8_lossy(&value)),
                rfc3339(v.seen_ms.div_euclid(1000)),
                escape_html(&v.published)
            );
        }
    }
    out.push_str("</tbody>\n</table>\n");
    if s.revisions.len() > MAX_SERIES_PER_PAGE {
        let more = s.revisions.len() - MAX_SERIES_PER_PAGE;
        let _ = writeln!(out, "<p class=\"small\">and {more} more, not shown.</p>");
    }
}

fn provenance(out: &mut String, d: &Dataset) {
    let i = &d.info;
    let url = escape_html(&i.source_url);
    let _ = write!(
        out,
        "<h2>Provenance</h2>\n<dl>\n<dt>Publisher</dt><dd>{}</dd>\n<dt>Source</dt><dd class=\"wrap\"><a href=\"{url}\">{url}</a></dd>\n<dt>Published</dt><dd>{}</dd>\n<dt>Size</dt><dd>{}, {}</dd>\n</dl>\n",
        escape_html(&i.publisher),
        escape_html(&i.published),
        plural(d.metrics.len(), "metric"),
        plural(d.series_count(), "series"),
    );
    for p in i.description.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let _ = writeln!(out, "<p>{}</p>", escape_html(p.trim()));
    }
    if !d.sources.is_empty() {
        out.push_str("<h3>Cited sources</h3>\n<table class=\"stack\">\n<thead><tr><th>Id</th><th>Title</th><th>Published</th></tr></thead>\n<tbody>\n");
        for s in &d.sources {
            let _ = write!(
                out,
                "<tr><td data-label=\"Id\"><code>{}</code></td><td data-label=\"Title\" class=\"wrap\">",
                escape_html(&s.id)
            );
            if s.url.is_empty() {
                push_escaped(out, &s.title);
            } else {
                let _ = write!(
                    out,
                    "<a href=\"{}\">{}</a>",
                    escape_html(&s.url),
                    escape_html(&s.title)
                );
            }
            let _ = writeln!(
                out,
                "</td><td data-label=\"Published\">{}</td></tr>",
                escape_html(&s.published)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
}

/// A label's languages, and its display names by code (one per language).
type LabelNames<'a> = (&'a [String], HashMap<&'a str, &'a [String]>);

/// Display names by label and code: the names in each of the label's languages.
struct Names<'a> {
    by_label: HashMap<&'a str, LabelNames<'a>>,
}

impl<'a> Names<'a> {
    fn new(d: &'a Dataset) -> Names<'a> {
        let by_label = d
            .labels
            .iter()
            .map(|l| {
                let codes = l
                    .values
                    .iter()
                    .map(|(c, n)| (c.as_str(), n.as_slice()))
                    .collect();
                (l.name.as_str(), (l.languages.as_slice(), codes))
            })
            .collect();
        Names { by_label }
    }

    /// `<span lang=…>` per language that has a name for `code` of `label`.
    fn write(&self, out: &mut String, label: &str, code: &str) {
        let Some((langs, codes)) = self.by_label.get(label) else {
            return;
        };
        let Some(names) = codes.get(code) else { return };
        let mut any = false;
        for (lang, name) in langs.iter().zip(names.iter()) {
            if name.is_empty() {
                continue;
            }
            if !any {
                out.push_str(" <span class=\"names\">");
                any = true;
            }
            let _ = write!(
                out,
                "<span lang=\"{}\" title=\"{}\">{}</span>",
                escape_html(lang),
                escape_html(lang),
                escape_html(name)
            );
        }
        if any {
            out.push_str("</span>");
        }
    }
}

fn metrics(out: &mut String, page: &Page, d: &Dataset) {
    let names = Names::new(d);
    let _ = writeln!(out, "<h2>Metrics ({})</h2>", d.metrics.len());
    out.push_str("<ul>\n");
    for m in &d.metrics {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\"><code>{}</code></a> <span class=\"muted small\">{}</span></li>",
            escape_html(&m.name),
            breakable(&m.name),
            plural(m.len(), "series")
        );
    }
    out.push_str("</ul>\n");
    let mut budget = MAX_SERIES_PER_PAGE;
    for i in 0..d.metrics.len() {
        metric(out, page, d, &names, i, &mut budget);
    }
}

/// The series of one metric that share every label but the period, as indices into the
/// metric, oldest period first.
struct Group {
    points: Vec<usize>,
}

/// The first `cap` label sets of `m` (ignoring the period label `pi`) in series order, and how
/// many there are in all. One pass over the series; only the shown sets keep their points.
fn groups(d: &Dataset, i: usize, pi: Option<usize>, cap: usize) -> (Vec<Group>, usize) {
    let m = &d.metrics[i];
    let Some(pi) = pi else {
        let shown = (0..m.len().min(cap))
            .map(|i| Group { points: vec![i] })
            .collect();
        return (shown, m.len());
    };
    // The derived latest values have one series per label set: their number is the count,
    // without hashing every label set of a large metric.
    let known = latest_of(d, i).map(Metric::len);
    if let (0, Some(total)) = (cap, known) {
        return (Vec::new(), total);
    }
    let mut index: FxHashMap<Vec<u32>, usize> = FxHashMap::default();
    let mut shown: Vec<Group> = Vec::new();
    let mut others: FxHashSet<u64> = FxHashSet::default();
    let mut key: Vec<u32> = Vec::with_capacity(m.label_names.len());
    for i in 0..m.len() {
        key.clear();
        key.extend(
            m.labels(i)
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != pi)
                .map(|(_, &id)| id),
        );
        if let Some(&g) = index.get(key.as_slice()) {
            shown[g].points.push(i);
        } else if shown.len() < cap {
            index.insert(key.clone(), shown.len());
            shown.push(Group { points: vec![i] });
        } else if known.is_none() {
            // Counted by hash: only the number of label sets not shown is needed.
            others.insert(FxBuildHasher.hash_one(&key));
        }
    }
    for g in &mut shown {
        g.points.sort_by_cached_key(|&i| {
            let p = d.symbol(m.labels(i)[pi]);
            (Period::parse(p), p.to_string())
        });
    }
    let total = known.unwrap_or(shown.len() + others.len());
    (shown, total)
}

/// The series derived from `m` that hold its latest value per label set, if `m` has them.
fn latest_of(d: &Dataset, i: usize) -> Option<&Metric> {
    d.families
        .iter()
        .filter(|f| f.metric() == Some(i) && f.kind == Kind::Latest)
        .find_map(|f| match f.series {
            Series::Derived(j) => d.derived.get(j),
            _ => None,
        })
}

/// The families served for metric `i`, each with what it is: its values, the series derived
/// from it, its status flags.
fn served_as(out: &mut String, d: &Dataset, i: usize) {
    let mut first = true;
    for f in d.families.iter().filter(|f| f.metric() == Some(i)) {
        let what = match f.kind {
            Kind::Value => "values",
            Kind::Latest => "latest value",
            Kind::LatestPeriod => "latest period",
            Kind::Change => "change",
            Kind::YearOnYear => "year-on-year change",
            Kind::Status => "status flags",
            Kind::Info | Kind::Calendar => "",
        };
        out.push_str(if first {
            "<p class=\"small muted wrap families\">Served as: "
        } else {
            " · "
        });
        first = false;
        let _ = write!(
            out,
            "<code data-family=\"{}\">{}</code>",
            escape_html(&f.name),
            breakable(&f.name)
        );
        if !what.is_empty() {
            let _ = write!(out, " ({what})");
        }
    }
    if !first {
        out.push_str("</p>\n");
    }
}

/// The points of a group that its chart draws: the latest ones.
fn charted(g: &Group) -> &[usize] {
    &g.points[g.points.len().saturating_sub(MAX_CHART_POINTS)..]
}

fn metric(out: &mut String, page: &Page, d: &Dataset, names: &Names, i: usize, budget: &mut usize) {
    let m = &d.metrics[i];
    let pi = m.label_names.iter().position(|l| *l == d.period_label);
    metric_head(out, page, d, i);

    let cap = MAX_SERIES_PER_METRIC.min(*budget);
    let (shown, total) = groups(d, i, pi, cap);
    *budget -= shown.len();
    if shown.is_empty() {
        if total > 0 {
            let _ = writeln!(
                out,
                "<p class=\"small\">{} not shown: the page shows at most {MAX_SERIES_PER_PAGE}.</p>\n</section>",
                plural(total, "label set")
            );
        } else {
            out.push_str("</section>\n");
        }
        return;
    }

    // One time axis for every chart of the metric, so that charts line up.
    let span = time_span(d, m, pi, &shown);
    let chart_head = match span {
        Some((_, _, a, b)) if a != b => format!("Chart, {a} to {b}"),
        _ => "Chart".to_string(),
    };
    let period_head = match &pi {
        Some(pi) => capitalize(&m.label_names[*pi]),
        None => "Period".into(),
    };
    let _ = write!(
        out,
        "<table class=\"stack series\">\n<thead><tr><th>Series</th><th>{}</th><th class=\"num\">Latest</th><th class=\"num\">Change</th><th>{}</th></tr></thead>\n<tbody>\n",
        escape_html(&period_head),
        escape_html(&chart_head)
    );
    for g in &shown {
        series_row(
            out,
            d,
            names,
            m,
            pi,
            g,
            charted(g),
            span.map(|s| (s.0, s.1)),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if total > shown.len() {
        let _ = writeln!(
            out,
            "<p class=\"small\">and {}, not shown: see <a href=\"{}\">the metrics</a>.</p>",
            plural(total - shown.len(), "more label set"),
            escape_html(page.telemetry_path)
        );
    }
    out.push_str("</section>\n");
}

/// The metric's section opening: name, help, unit line with what is missing, where it is
/// served and its next release.
fn metric_head(out: &mut String, page: &Page, d: &Dataset, i: usize) {
    let m = &d.metrics[i];
    let _ = write!(
        out,
        "<section class=\"metric\" id=\"{name}\" data-metric=\"{name}\">\n<h3><code>{}</code></h3>\n<p class=\"wrap\">{}</p>\n<p class=\"small muted\">Unit: {}",
        breakable(&m.name),
        escape_html(&m.help),
        unit_text(m),
        name = escape_html(&m.name),
    );
    if let Some(c) = m.cadence {
        let _ = write!(out, " · cadence: {}", c.name());
    }
    let _ = write!(out, " · {}", plural(m.len(), "series"));
    for (metric, reason, n) in &d.missing {
        if *metric == m.name {
            let _ = write!(
                out,
                " · {} without a figure ({reason})",
                plural(*n as usize, "observation")
            );
        }
    }
    out.push_str("</p>\n");
    served_as(out, d, i);
    if let Some((_, r)) = d.metric_releases.iter().find(|(n, _)| *n == m.name) {
        out.push_str("<p class=\"small\">Next release: ");
        release(out, page, r);
        out.push_str("</p>\n");
    }
}

/// The periods the charts of `shown` cover: first and last position on the time axis, and
/// the periods there. None when no charted series has a period.
fn time_span(
    d: &Dataset,
    m: &Metric,
    pi: Option<usize>,
    shown: &[Group],
) -> Option<(i64, i64, Period, Period)> {
    let period_of = |i: usize| pi.and_then(|pi| Period::parse(d.symbol(m.labels(i)[pi])));
    let mut span: Option<(i64, i64, Period, Period)> = None;
    for g in shown {
        for &i in charted(g) {
            if let Some(p) = period_of(i) {
                let o = p.ordinal();
                span = Some(match span {
                    None => (o, o, p, p),
                    Some((lo, hi, a, b)) => (
                        lo.min(o),
                        hi.max(o),
                        if o < lo { p } else { a },
                        if o > hi { p } else { b },
                    ),
                });
            }
        }
    }
    span
}

#[allow(clippy::too_many_arguments)]
fn series_row(
    out: &mut String,
    d: &Dataset,
    names: &Names,
    m: &Metric,
    pi: Option<usize>,
    g: &Group,
    charted: &[usize],
    span: Option<(i64, i64)>,
) {
    let last = *g.points.last().expect("a group has a series");
    let ids = m.labels(last);
    let _ = write!(
        out,
        "<tr data-labels=\"{}\"><td data-label=\"Series\" class=\"series\">",
        escape_html(&exposed_labels(d, m, pi, ids))
    );
    series_labels(out, d, names, m, pi, ids);
    let period = pi.map_or("", |pi| d.symbol(ids[pi]));
    let _ = write!(
        out,
        "</td><td data-label=\"{}\" class=\"period\"><span class=\"p\">{}</span>",
        escape_html(&pi.map_or("Period".into(), |pi| capitalize(&m.label_names[pi]))),
        escape_html(period)
    );
    if g.points.len() > 1 {
        let _ = write!(
            out,
            "<br><span class=\"muted small\">{}</span>",
            plural(g.points.len(), "period")
        );
    }
    out.push_str("</td><td data-label=\"Latest\" class=\"num latest\">");
    latest(out, d, m, last);
    out.push_str("</td><td data-label=\"Change\" class=\"num change\">");
    change(out, d, m, pi, &g.points);
    out.push_str("</td><td data-label=\"Chart\" class=\"chart\">");
    if let (Some(pi), Some(span)) = (pi, span) {
        chart(out, d, m, pi, charted, span);
        if charted.len() < g.points.len() {
            let _ = write!(
                out,
                "<span class=\"muted small\">latest {} of {}</span>",
                charted.len(),
                g.points.len()
            );
        }
    }
    out.push_str("</td></tr>\n");
}

/// The labels as the exposition writes them, without the period: what `_latest` carries.
fn exposed_labels(d: &Dataset, m: &Metric, pi: Option<usize>, ids: &[u32]) -> String {
    let mut exposed = String::new();
    for &j in m.order.iter().filter(|&&j| Some(j) != pi) {
        if !exposed.is_empty() {
            exposed.push(',');
        }
        let _ = write!(
            exposed,
            "{}=\"{}\"",
            m.label_names[j],
            exposition_escape(d.symbol(ids[j]))
        );
    }
    exposed
}

/// The Series cell's content: each label but the period with its code's name, if any.
fn series_labels(
    out: &mut String,
    d: &Dataset,
    names: &Names,
    m: &Metric,
    pi: Option<usize>,
    ids: &[u32],
) {
    let mut any = false;
    for &j in m.order.iter().filter(|&&j| Some(j) != pi) {
        any = true;
        let label = &m.label_names[j];
        let code = d.symbol(ids[j]);
        let _ = write!(
            out,
            "<span class=\"lbl\"><code>{}=\"{}\"</code>",
            escape_html(label),
            escape_html(code)
        );
        names.write(out, label, code);
        out.push_str("</span>");
    }
    if !any {
        out.push_str("<span class=\"muted\">(no labels)</span>");
    }
}

/// The Latest cell's content: the value of series `last`, and its status flag when it has one.
fn latest(out: &mut String, d: &Dataset, m: &Metric, last: usize) {
    value(out, m, m.value(last), false);
    if let Some(s) = m.status(last) {
        let code = d.symbol(s);
        let _ = write!(
            out,
            "<br><span class=\"badge warn\" title=\"status {}\">{}</span>",
            escape_html(code),
            escape_html(&crate::dataset::status_flag(code).replace(',', ", "))
        );
    }
}

/// The Change cell's content: the change from the period before (or a dash), then the change
/// over a year when there is a series a year earlier.
fn change(out: &mut String, d: &Dataset, m: &Metric, pi: Option<usize>, points: &[usize]) {
    let Some(&last) = points.last() else { return };
    if points.len() >= 2 {
        let prev = points[points.len() - 2];
        let change = crate::dataset::units::decimal_sub(m.value(last), m.value(prev));
        out.push_str(change_arrow(change));
        value(out, m, change, true);
        if let Some(pi) = pi {
            let _ = write!(
                out,
                "<br><span class=\"muted small\">on {}</span>",
                escape_html(d.symbol(m.labels(prev)[pi]))
            );
        }
    } else {
        out.push_str("<span class=\"muted\">—</span>");
    }
    if let Some(earlier) = pi.and_then(|pi| year_earlier(d, m, pi, points)) {
        let mut v = Vec::new();
        crate::expose::encode::write_value(
            &mut v,
            crate::dataset::units::decimal_sub(m.value(last), m.value(earlier)),
        );
        let _ = write!(
            out,
            "<br><span class=\"muted small\">year on year: <span class=\"yoy\">{}</span></span>",
            String::from_utf8_lossy(&v)
        );
    }
}

/// The arrow before a change: up for a rise, down for a fall, none when flat (or NaN).
fn change_arrow(change: f64) -> &'static str {
    if change > 0.0 {
        "<span class=\"up\" aria-hidden=\"true\">▲</span> "
    } else if change < 0.0 {
        "<span class=\"down\" aria-hidden=\"true\">▼</span> "
    } else {
        ""
    }
}

/// For the cadences the exposition derives a year-on-year change for, the series of the
/// same period a year before the latest, when there is one.
fn year_earlier(d: &Dataset, m: &Metric, pi: usize, points: &[usize]) -> Option<usize> {
    if !m.cadence.is_some_and(Cadence::has_year_on_year) {
        return None;
    }
    let period = |i: usize| Period::parse(d.symbol(m.labels(i)[pi]));
    let (&last, before) = points.split_last()?;
    let target = period(last)?.year_earlier();
    before
        .iter()
        .rev()
        .copied()
        .find(|&i| period(i) == Some(target))
}

/// A value as the exposition writes it, its unit beside it, and a percentage as published
/// (a change of percentages in percentage points).
fn value(out: &mut String, m: &Metric, v: f64, change: bool) {
    let mut text = Vec::new();
    crate::expose::encode::write_value(&mut text, v);
    let _ = write!(
        out,
        "<span class=\"v\">{}</span>",
        String::from_utf8_lossy(&text)
    );
    if let Some(s) = m.unit.suffix() {
        let _ = write!(out, " <span class=\"u\">{}</span>", escape_html(s));
    }
    if m.unit.base == Base::Ratio && m.unit.exponent == -2 && v.is_finite() {
        let unit = if change {
            "<abbr title=\"percentage points\">pp</abbr>"
        } else {
            "%"
        };
        let _ = write!(
            out,
            "<br><span class=\"muted small\">{} {unit}</span>",
            scale_pow10(v, 2)
        );
    }
}

fn unit_text(m: &Metric) -> String {
    let exposed = m.unit.suffix().unwrap_or("count");
    let published = m.unit.to_string();
    if published == exposed {
        exposed.to_string()
    } else {
        format!("{exposed} (published in {published})")
    }
}

const CHART_W: f64 = 160.0;
const CHART_H: f64 = 40.0;
const CHART_PAD: f64 = 4.0;

/// A small line chart of `points` (series indices, oldest first) over the time span `span`
/// (ordinals of the first and last periods of the metric's charts).
fn chart(out: &mut String, d: &Dataset, m: &Metric, pi: usize, points: &[usize], span: (i64, i64)) {
    let period = |i: usize| d.symbol(m.labels(i)[pi]);
    // (position among the points, series) of the points with a finite value.
    let finite: Vec<(usize, usize)> = points
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, i)| m.value(i).is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .map(|&(_, i)| m.value(i))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let x = |n: usize, i: usize| -> f64 {
        let frac = match Period::parse(period(i)) {
            Some(p) if span.1 > span.0 => (p.ordinal() - span.0) as f64 / (span.1 - span.0) as f64,
            Some(_) => 0.5,
            // Not a period after all: evenly spaced, in series order.
            None if points.len() > 1 => n as f64 / (points.len() - 1) as f64,
            None => 0.5,
        };
        CHART_PAD + frac * (CHART_W - 2.0 * CHART_PAD)
    };
    let y = |v: f64| -> f64 {
        let frac = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        CHART_H - CHART_PAD - frac * (CHART_H - 2.0 * CHART_PAD)
    };
    let (first, last) = match (points.first(), points.last()) {
        (Some(&a), Some(&b)) => (period(a), period(b)),
        _ => return,
    };
    let _ = write!(
        out,
        "<svg class=\"spark\" width=\"{CHART_W}\" height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"{} values, {} to {}\" data-points=\"{}\">",
        points.len(),
        escape_html(first),
        escape_html(last),
        points.len()
    );
    let coords: Vec<(f64, f64, usize)> = finite
        .iter()
        .map(|&(n, i)| (x(n, i), y(m.value(i)), i))
        .collect();
    if coords.len() > 1 {
        out.push_str("<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"");
        for (n, (cx, cy, _)) in coords.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{cx:.1},{cy:.1}");
        }
        out.push_str("\"/>");
    }
    // Dots for short series; for long ones only the latest, or the page grows with the data.
    let dots = if coords.len() <= MAX_CHART_DOTS {
        &coords[..]
    } else {
        &coords[coords.len() - 1..]
    };
    for (n, &(cx, cy, i)) in dots.iter().enumerate() {
        let latest = n + 1 == dots.len();
        let mut v = Vec::new();
        crate::expose::encode::write_value(&mut v, m.value(i));
        let _ = write!(
            out,
            "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{}\" fill=\"{}\"><title>{}: {}</title></circle>",
            if latest { 3 } else { 2 },
            if latest { "#0550ae" } else { "#54aeff" },
            escape_html(period(i)),
            String::from_utf8_lossy(&v)
        );
    }
    out.push_str("</svg>");
}

fn labels(out: &mut String, d: &Dataset) {
    if d.labels.is_empty() {
        return;
    }
    out.push_str("<h2>Labels</h2>\n");
    for l in &d.labels {
        let _ = write!(
            out,
            "<h3><code>{}</code></h3>\n<p>{}</p>\n<div class=\"scroll\"><table class=\"names\">\n<thead><tr><th>Code</th>",
            escape_html(&l.name),
            escape_html(&l.help)
        );
        for lang in &l.languages {
            let _ = write!(out, "<th>{}</th>", escape_html(lang));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for (code, names) in &l.values {
            let _ = write!(out, "<tr><td><code>{}</code></td>", escape_html(code));
            for (lang, name) in l.languages.iter().zip(names) {
                let _ = write!(
                    out,
                    "<td lang=\"{}\">{}</td>",
                    escape_html(lang),
                    escape_html(name)
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table></div>\n");
    }
}

/// A label value as the exposition writes it between quotes.
fn exposition_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// A long name escaped, with a line break opportunity after each underscore.
fn breakable(name: &str) -> String {
    escape_html(name).replace('_', "_<wbr>")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 || word.ends_with("series") {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{n} bytes ({v:.1} {})", UNITS[u])
}

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn date(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A moment as UTC date and time, and how long ago (or how far ahead) it is.
fn when(page: &Page, t: i64) -> String {
    let stamp = rfc3339(t);
    let shown = if t.rem_euclid(86_400) == 0 {
        date(t)
    } else {
        format!("{} {} UTC", &stamp[..10], &stamp[11..19])
    };
    let delta = secs(page.now) - t;
    let span = |s: i64| -> String {
        match s {
            0..60 => plural(s as usize, "second"),
            60..3600 => plural((s / 60) as usize, "minute"),
            3600..86_400 => plural((s / 3600) as usize, "hour"),
            _ => plural((s / 86_400) as usize, "day"),
        }
    };
    let rel = if delta >= 0 {
        format!("{} ago", span(delta))
    } else {
        format!("in {}", span(-delta))
    };
    format!("<time datetime=\"{stamp}\">{shown}</time> <span class=\"muted small\">({rel})</span>")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    const HEAD: &str = "[dataset]\nname = \"t\"\ntitle = \"T\"\npublisher = \"P\"\nsource_url = \"https://example.org/t\"\npublished = \"2024-01-01\"\nmetric_prefix = \"t_\"\n";

    /// A dataset from a config written after [`HEAD`] and its data files, loaded as the
    /// exporter loads one.
    fn load(body: &str, files: &[(&str, &str)]) -> Dataset {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write data file");
        }
        let config = dir.path().join("config.toml");
        std::fs::write(&config, format!("{HEAD}{body}")).expect("write config");
        crate::check(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bundled() -> Dataset {
        crate::check(Path::new("config.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(s: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s as u64)
    }

    /// 2026-03-01T12:00:00Z: after the bundled dataset's next release is expected, before it
    /// is overdue.
    const NOW: i64 = 1_772_366_400;

    fn page() -> Page<'static> {
        Page {
            telemetry_path: "/metrics",
            now: at(NOW),
            version: "1.2.3",
            reload_failed: None,
        }
    }

    fn ready(name: &str) -> DatasetStatus {
        DatasetStatus {
            name: name.into(),
            ready: true,
            serving_since: Some(at(NOW - 3600)),
            last_attempt: Some(Attempt {
                at: at(NOW - 3600),
                trigger: "start".into(),
                ok: true,
                message: "loaded".into(),
            }),
            errors: vec![],
            sources: vec![],
            revisions: Default::default(),
        }
    }

    fn failed(name: &str) -> DatasetStatus {
        DatasetStatus {
            name: name.into(),
            ready: false,
            serving_since: None,
            last_attempt: Some(Attempt {
                at: at(NOW - 60),
                trigger: "refresh".into(),
                ok: false,
                message: "c.toml:3:1: bad".into(),
            }),
            errors: vec!["c.toml:3:1: bad <thing>".into(), "c.toml:9:2: worse".into()],
            sources: vec![],
            revisions: Default::default(),
        }
    }

    /// The table row of the series whose exposed labels (without the period) are `labels`.
    fn row<'a>(html: &'a str, metric: &str, labels: &str) -> &'a str {
        let section = html
            .split("<section ")
            .find(|s| s.contains(&format!("data-metric=\"{metric}\"")))
            .unwrap_or_else(|| panic!("no section for {metric}"));
        let start = section
            .find(&format!("<tr data-labels=\"{}\">", escape_html(labels)))
            .unwrap_or_else(|| panic!("no row {labels} in {metric}"));
        let rest = &section[start..];
        &rest[..rest.find("</tr>").expect("row end")]
    }

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape_html("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(dataset_path("oecd_gdp"), "/datasets/oecd_gdp");
        assert_eq!(dataset_path("a b/<c>"), "/datasets/a%20b%2F%3Cc%3E");
    }

    #[test]
    fn every_text_from_the_config_is_escaped() {
        let body = "description = \"<script>alert(1)</script>\"\n\n[[source]]\nid = \"S1\"\ntitle = \"A & B\"\nurl = \"https://e.org/?a=1&b=\\\"2\\\"\"\npublished = \"2024\"\n\n[[label]]\nname = \"k\"\nhelp = \"<i>k</i>\"\nvalues = [{ code = \"<x>\", names = { en = \"X & Y\" } }]\n\n[[metric]]\nname = \"m\"\nunit = \"count\"\nhelp = \"Say \\\"hi\\\" <b>\"\nlabels = [\"k\", \"period\"]\nsamples = [{ labels = { k = \"<x>\", period = \"2024\" }, value = 1, source = \"S1\" }]\n";
        let d = load(body, &[]);
        let mut st = ready("t");
        st.errors = vec!["<b>bad</b>".into()];
        let html = dataset(&page(), &st, Some(&d));
        for raw in ["<script>", "<b>", "<i>k", "<x>", "A & B", "X & Y", "&b="] {
            assert!(!html.contains(raw), "unescaped {raw}");
        }
        for escaped in [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "Say &quot;hi&quot; &lt;b&gt;",
            "<code>k=\"&lt;x&gt;\"</code>",
            "<span lang=\"en\" title=\"en\">X &amp; Y</span>",
            "<a href=\"https://e.org/?a=1&amp;b=&quot;2&quot;\">A &amp; B</a>",
            "&lt;b&gt;bad&lt;/b&gt;",
            "<tr data-labels=\"k=&quot;&lt;x&gt;&quot;\">",
        ] {
            assert!(html.contains(escaped), "missing {escaped}");
        }
    }

    #[test]
    fn the_bundled_dataset_shows_latest_values_changes_and_a_dot_per_period() {
        let d = bundled();
        let html = dataset(&page(), &ready(&d.info.name), Some(&d));
        let m = "cnipa_enterprise_invention_patent_industrialization_ratio";
        let r = row(&html, m, "sector=\"all\",size=\"all\"");
        // 2025: 54 %, exactly as the exposition prints it, beside the unit; 2024: 53.3 %.
        assert!(r.contains("<td data-label=\"Year\" class=\"period\"><span class=\"p\">2025</span><br><span class=\"muted small\">6 periods</span>"), "{r}");
        assert!(r.contains("<span class=\"v\">0.54</span> <span class=\"u\">ratio</span><br><span class=\"muted small\">54 %</span>"), "{r}");
        assert!(r.contains("<span class=\"up\" aria-hidden=\"true\">▲</span> <span class=\"v\">0.007</span> <span class=\"u\">ratio</span><br><span class=\"muted small\">0.7 <abbr title=\"percentage points\">pp</abbr></span><br><span class=\"muted small\">on 2024</span>"), "{r}");
        assert!(r.contains("data-points=\"6\""), "{r}");
        assert_eq!(r.matches("<circle ").count(), 6, "{r}");
        for (year, v) in [("2020", "0.449"), ("2023", "0.513"), ("2025", "0.54")] {
            assert!(r.contains(&format!("<title>{year}: {v}</title>")), "{r}");
        }
        // A series with one period: no change, one dot.
        let one = row(
            &html,
            "cnipa_industrialization_income_premium_vs_average_enterprise_ratio",
            "sector=\"future_industries\",size=\"all\"",
        );
        assert!(one.contains("<span class=\"v\">0.303</span>"), "{one}");
        assert!(one.contains("<span class=\"muted\">—</span>"), "{one}");
        assert_eq!(one.matches("<circle ").count(), 1, "{one}");
        // 万元 exposed as yuan, the count without a unit.
        let yuan = row(
            &html,
            "cnipa_average_income_per_industrialized_enterprise_invention_patent_yuan",
            "sector=\"all\",size=\"all\"",
        );
        assert!(
            yuan.contains("<span class=\"v\">8296000</span> <span class=\"u\">yuan</span>"),
            "{yuan}"
        );
        assert!(html.contains("Unit: yuan (published in yuan ×10^4)"));
        let count = row(
            &html,
            "cnipa_domestic_enterprise_valid_invention_patents",
            "sector=\"all\",size=\"all\"",
        );
        assert!(
            count.contains("<span class=\"v\">3506000</span></td>"),
            "{count}"
        );
        // Provenance and cited sources.
        for fragment in [
            "<h1>China invention patent industrialization indicators (CNIPA China Patent Survey)</h1>",
            "<dt>Publisher</dt><dd>China National Intellectual Property Administration (CNIPA)</dd>",
            "<dt>Published</dt><dd>2026-01-23</dd>",
            "<td data-label=\"Id\"><code>S2</code></td>",
            "<a href=\"/\">All datasets</a>",
            "<a href=\"/metrics\">Metrics (/metrics)</a>",
            "<a href=\"/-/healthy\">Health</a>",
            "<a href=\"/-/ready\">Readiness</a>",
        ] {
            assert!(html.contains(fragment), "missing {fragment}");
        }
        // The next release (2026 figures): expected by 2027-02-01, not yet overdue.
        assert!(html.contains("<dt>Next release</dt><dd>year <code>2026</code><br>expected by <time datetime=\"2027-02-01T00:00:00Z\">2027-02-01</time>"), "release");
        assert!(!html.contains("overdue</span>"));
        // No script at all, no external asset.
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    }

    #[test]
    fn display_names_in_every_language_of_the_label() {
        let d = bundled();
        let html = dataset(&page(), &ready(&d.info.name), Some(&d));
        let r = row(
            &html,
            "cnipa_enterprise_invention_patent_industrialization_ratio",
            "sector=\"all\",size=\"medium\"",
        );
        assert!(r.contains("<span class=\"lbl\"><code>size=\"medium\"</code> <span class=\"names\"><span lang=\"en\" title=\"en\">Medium-sized enterprises</span><span lang=\"zh\" title=\"zh\">中型企业</span></span></span>"), "{r}");
        assert!(html.contains("<thead><tr><th>Code</th><th>en</th><th>zh</th></tr></thead>"));
        assert!(html.contains("<tr><td><code>high_tech</code></td><td lang=\"en\">National high-tech enterprises</td><td lang=\"zh\">国家高新技术企业</td></tr>"));
    }

    #[test]
    fn a_failed_reload_of_the_whole_config_is_shown_first_on_the_index() {
        let errs = vec!["main.toml:2:1: unknown field `catalogue`".to_string()];
        let p = Page {
            reload_failed: Some((at(NOW - 60), &errs)),
            ..page()
        };
        let html = index(&p, &[(&ready("a"), None)]);
        let at_error = html.find("Last reload failed").expect("the section");
        assert!(at_error < html.find("<h2>Datasets</h2>").unwrap());
        assert!(html.contains("main.toml:2:1: unknown field `catalogue`"));
        assert!(html.contains("1 minute ago"));
        assert!(!index(&page(), &[(&ready("a"), None)]).contains("Last reload failed"));
    }

    #[test]
    fn the_index_lists_datasets_with_errors_first() {
        let d = bundled();
        let good = ready(&d.info.name);
        let bad = failed("broken");
        let html = index(&page(), &[(&good, Some(&d)), (&bad, None)]);
        let bad_at = html.find("data-dataset=\"broken\"").expect("broken listed");
        let good_at = html
            .find(&format!("data-dataset=\"{}\"", d.info.name))
            .expect("good listed");
        assert!(bad_at < good_at, "errors first");
        assert!(html.contains("<span class=\"badge fail\">1 with errors</span>"));
        assert!(html.contains(
            "<pre class=\"error\">c.toml:3:1: bad &lt;thing&gt;\nc.toml:9:2: worse\n</pre>"
        ));
        assert!(html.contains("<span class=\"badge fail\">not ready</span><span class=\"badge fail\">last load failed</span>"));
        assert!(html.contains(&format!(
            "<a href=\"/datasets/{}\" class=\"ds\">{}</a><br><code class=\"small\">{}</code>",
            d.info.name, d.info.title, d.info.name
        )));
        assert!(html.contains("<span class=\"badge ok\">ready</span>"));
        assert!(html.contains("6 metrics<br>37 series"), "sizes");
        assert!(html.contains("<span class=\"badge ok\">ok</span> <time datetime=\"2026-03-01T11:00:00Z\">2026-03-01 11:00:00 UTC</time> <span class=\"muted small\">(1 hour ago)</span>"));
        // All fine: no error badge, in the given order.
        let other = ready("other");
        let html = index(&page(), &[(&good, Some(&d)), (&other, None)]);
        assert!(!html.contains("with errors"));
        assert!(
            html.find(&format!("data-dataset=\"{}\"", d.info.name))
                < html.find("data-dataset=\"other\"")
        );
    }

    #[test]
    fn a_dataset_not_loaded_yet_shows_its_status_and_errors_only() {
        let html = dataset(&page(), &failed("broken"), None);
        assert!(html.contains("<h1>broken</h1>"));
        assert!(html.contains("<span class=\"badge fail\">not ready</span>"));
        assert!(html.contains("<h3>Errors of the last load (2)</h3>\n<pre class=\"error\">c.toml:3:1: bad &lt;thing&gt;\nc.toml:9:2: worse\n</pre>"));
        assert!(html.contains("<dt>Serving since</dt><dd>not serving</dd>"));
        assert!(html.contains("The dataset is not loaded yet"));
        // The failed attempt's message is the first error: listed once.
        assert_eq!(html.matches("c.toml:3:1: bad").count(), 1);
        assert!(!html.contains("<h2>Metrics"));
        assert!(!html.contains("still served"));
    }

    #[test]
    fn revised_series_list_their_vintages_escaped_oldest_first() {
        let vintage = |value: f64, seen_ms: i64, published: &str| crate::state::Vintage {
            value,
            seen_ms,
            published: published.into(),
        };
        let mut status = ready("t");
        status.revisions = std::sync::Arc::new(vec![(
            "t_a".into(),
            r#"geo="<DE>",year="2024""#.into(),
            vec![
                vintage(0.5, 1_735_689_600_000, "2025-01-01"),
                vintage(0.51, 1_738_368_000_500, "2025-02-01"),
            ],
        )]);
        let html = dataset(&page(), &status, Some(&bundled()));
        let section = html
            .split("<h2>Revisions</h2>")
            .nth(1)
            .expect("the section");
        assert!(section.starts_with("\n<p>1 series revised since first stored"));
        assert!(section.contains("<code>t_a{geo=&quot;&lt;DE&gt;&quot;,year=&quot;2024&quot;}</code></td><td data-label=\"Value\" class=\"num\">0.5</td><td data-label=\"First seen\">2025-01-01T00:00:00Z</td><td data-label=\"Published\">2025-01-01</td>"), "{section}");
        assert!(section.contains("<tr><td data-label=\"Series\"><code></code></td><td data-label=\"Value\" class=\"num\">0.51</td><td data-label=\"First seen\">2025-02-01T00:00:00Z</td>"), "{section}");
        // Without revisions, no section.
        assert!(!dataset(&page(), &ready("t"), Some(&bundled())).contains("<h2>Revisions"));
    }

    #[test]
    fn remote_sources_and_an_overdue_release() {
        let d = bundled();
        let mut st = ready(&d.info.name);
        st.sources = vec![
            SourceStatus {
                url: "https://stats.example/a.csv".into(),
                last_success: Some(at(NOW - 7200)),
                last_attempt: Some(at(NOW - 60)),
                last_result: "failed".into(),
                failures: 3,
                bytes: 1_572_864,
            },
            SourceStatus {
                url: "https://stats.example/b.csv".into(),
                ..SourceStatus::default()
            },
        ];
        // 2027-10-01: the 2026 figures are overdue since 2027-09-01.
        let later = Page {
            now: at(1_822_348_800),
            ..page()
        };
        let html = dataset(&later, &st, Some(&d));
        assert!(html.contains("<span class=\"badge fail\">failed</span></td><td data-label=\"Failures\" class=\"num\">3</td><td data-label=\"Fetched\" class=\"num\">1572864 bytes (1.5 MiB)</td>"));
        assert!(html.contains("<td data-label=\"Last success\">never</td>"));
        assert!(html.contains("<span class=\"badge idle\">none yet</span>"));
        assert!(html.contains("<span class=\"badge warn\">1 source failing</span>"));
        assert!(html.contains("<br><span class=\"badge warn\">overdue</span> since <time datetime=\"2027-09-01T00:00:00Z\">2027-09-01</time> <span class=\"muted small\">(30 days ago)</span>"));
        // On the index, warnings come after errors and before datasets that are fine.
        let fine = ready("fine");
        let bad = failed("broken");
        let html = index(&later, &[(&fine, None), (&st, Some(&d)), (&bad, None)]);
        let pos = |n: &str| html.find(&format!("data-dataset=\"{n}\"")).expect(n);
        assert!(pos("broken") < pos(&d.info.name) && pos(&d.info.name) < pos("fine"));
        assert!(html.contains("<span class=\"badge warn\">1 with warnings</span>"));
        assert!(html.contains("<span class=\"badge warn\">1 release overdue</span>"));
    }

    #[test]
    fn quarterly_charts_share_one_time_axis_and_leave_gaps() {
        let body = "[[metric]]\nname = \"m\"\nunit = \"percent_change\"\nhelp = \"h\"\nlabels = [\"area\", \"period\"]\nsamples = [\n  { labels = { area = \"a\", period = \"2023-Q4\" }, value = 1.5 },\n  { labels = { area = \"a\", period = \"2024-Q1\" }, value = -0.25 },\n  { labels = { area = \"b\", period = \"2023-Q3\" }, value = 2 },\n  { labels = { area = \"b\", period = \"2024-Q2\" }, value = 2 },\n]\n";
        let d = load(body, &[]);
        let html = dataset(&page(), &ready("t"), Some(&d));
        assert!(html.contains("<th>Chart, 2023-Q3 to 2024-Q2</th>"), "axis");
        let a = row(&html, "t_m_ratio", "area=\"a\"");
        // -0.25 % is -0.0025, and the change from 0.015 is exactly -0.0175.
        assert!(a.contains("<span class=\"v\">-0.0025</span> <span class=\"u\">ratio</span><br><span class=\"muted small\">-0.25 %</span>"), "{a}");
        assert!(a.contains("<span class=\"down\" aria-hidden=\"true\">▼</span> <span class=\"v\">-0.0175</span>"), "{a}");
        // Q4 and Q1 are the 2nd and 3rd of four quarters on the axis: x = 4 + 152 * 1/3, 2/3.
        assert!(a.contains("points=\"54.7,4.0 105.3,36.0\""), "{a}");
        assert!(!a.contains("year on year"), "no 2023-Q1: {a}");
        let b = row(&html, "t_m_ratio", "area=\"b\"");
        // An unchanged value: no arrow; a flat line in the middle, across the whole axis.
        assert!(
            b.contains("class=\"num change\"><span class=\"v\">0</span>"),
            "{b}"
        );
        assert!(b.contains("points=\"4.0,20.0 156.0,20.0\""), "{b}");
    }

    #[test]
    fn monthly_series_show_the_change_on_a_year_earlier() {
        let body = "[[metric]]\nname = \"m\"\nunit = \"percent\"\nhelp = \"h\"\nlabels = [\"period\"]\nsamples = [\n  { labels = { period = \"2023-05\" }, value = 2.5 },\n  { labels = { period = \"2024-04\" }, value = 2.7 },\n  { labels = { period = \"2024-05\" }, value = 3.1 },\n]\n";
        let d = load(body, &[]);
        let html = dataset(&page(), &ready("t"), Some(&d));
        let r = row(&html, "t_m_ratio", "");
        assert!(r.contains("<span class=\"p\">2024-05</span>"), "{r}");
        assert!(r.contains("<span class=\"v\">0.004</span>"), "{r}");
        assert!(r.contains("<br><span class=\"muted small\">on 2024-04</span><br><span class=\"muted small\">year on year: <span class=\"yoy\">0.006</span></span>"), "{r}");
    }

    #[test]
    fn a_change_is_marked_up_down_or_not_at_all() {
        assert_eq!(
            change_arrow(0.5),
            "<span class=\"up\" aria-hidden=\"true\">▲</span> "
        );
        assert_eq!(
            change_arrow(-1e-9),
            "<span class=\"down\" aria-hidden=\"true\">▼</span> "
        );
        for flat in [0.0, -0.0, f64::NAN] {
            assert_eq!(change_arrow(flat), "", "{flat}");
        }
    }

    #[test]
    fn a_large_dataset_page_stays_small() {
        // 3,000 label sets of two years, and a second metric: the page shows 200 of the
        // first, 200 of the second, and says how many more there are.
        let mut csv = String::from("k,period,value\n");
        for k in 0..3000 {
            for y in [2023, 2024] {
                csv.push_str(&format!("k{k:04},{y},{k}.5\n"));
            }
        }
        let body = "[[metric]]\nname = \"a\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"k\", \"period\"]\nsamples_file = \"a.csv\"\n\n[[metric]]\nname = \"b\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"k\", \"period\"]\nsamples_file = \"a.csv\"\n";
        let d = load(body, &[("a.csv", &csv)]);
        assert_eq!(d.series_count(), 12_000);
        let html = dataset(&page(), &ready("t"), Some(&d));
        assert_eq!(html.matches("<tr data-labels=").count(), 400);
        assert_eq!(
            html.matches("<p class=\"small\">and 2800 more label sets, not shown: see <a href=\"/metrics\">the metrics</a>.</p>").count(),
            2
        );
        assert!(html.len() < 400_000, "{} bytes", html.len());
        // Without the derived series the label sets are counted one by one: the same count.
        let mut bare = d.clone();
        bare.derived.clear();
        let counted = dataset(&page(), &ready("t"), Some(&bare));
        assert_eq!(counted.matches("and 2800 more label sets").count(), 2);
        // The first label sets in series order, each with both years.
        let r = row(&html, "t_a", "k=\"k0000\"");
        assert!(r.contains("<span class=\"v\">0.5</span>") && r.contains("data-points=\"2\""));
        // The index does no per-series work and stays small whatever the size.
        let html = index(&page(), &[(&ready("t"), Some(&d))]);
        assert!(html.contains("2 metrics<br>12000 series") && html.len() < 10_000);
    }

    #[test]
    fn the_page_budget_caps_label_sets_over_all_metrics() {
        let mut body = String::new();
        let mut csv = String::from("k,period,value\n");
        for k in 0..(MAX_SERIES_PER_METRIC + 10) {
            csv.push_str(&format!("k{k:04},2024,1\n"));
        }
        for m in 0..6 {
            body.push_str(&format!("[[metric]]\nname = \"m{m}\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"k\", \"period\"]\nsamples_file = \"a.csv\"\n\n"));
        }
        let d = load(&body, &[("a.csv", &csv)]);
        let html = dataset(&page(), &ready("t"), Some(&d));
        assert_eq!(
            html.matches("<tr data-labels=").count(),
            MAX_SERIES_PER_PAGE
        );
        assert!(html.contains(
            "<p class=\"small\">210 label sets not shown: the page shows at most 1000.</p>"
        ));
    }

    #[test]
    fn a_flagged_latest_value_says_what_its_flag_means() {
        let body = "[[metric]]\nname = \"m\"\nunit = \"percent\"\nhelp = \"h\"\nlabels = [\"period\"]\n\n[[input]]\nfile = \"m.csv\"\nformat = \"csv\"\nmetric = \"m\"\n";
        let csv = "period,value,OBS_STATUS\n2024,10,\n2025,12.5,p\n";
        let d = load(body, &[("m.csv", csv)]);
        let html = dataset(&page(), &ready("t"), Some(&d));
        let r = row(&html, "t_m_ratio", "");
        assert!(r.contains("<span class=\"v\">0.125</span> <span class=\"u\">ratio</span><br><span class=\"muted small\">12.5 %</span><br><span class=\"badge warn\" title=\"status p\">provisional</span>"), "{r}");
        assert!(r.contains("<span class=\"v\">0.025</span> <span class=\"u\">ratio</span><br><span class=\"muted small\">2.5 <abbr title=\"percentage points\">pp</abbr></span>"), "{r}");
    }

    #[test]
    fn long_series_chart_their_latest_periods() {
        let mut csv = String::from("period,value\n");
        for m in 0..150 {
            csv.push_str(&format!("{}-{:02},{m}\n", 2000 + m / 12, m % 12 + 1));
        }
        let body = "[[metric]]\nname = \"m\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"period\"]\nsamples_file = \"m.csv\"\n";
        let d = load(body, &[("m.csv", &csv)]);
        let html = dataset(&page(), &ready("t"), Some(&d));
        let r = row(&html, "t_m", "");
        assert!(
            r.contains("<span class=\"muted\">(no labels)</span>"),
            "{r}"
        );
        assert!(
            r.contains("2012-06</span><br><span class=\"muted small\">150 periods</span>"),
            "{r}"
        );
        assert!(
            r.contains("data-points=\"120\"") && r.contains("latest 120 of 150"),
            "{r}"
        );
        // Past 24 periods only the latest is a dot.
        assert_eq!(r.matches("<circle ").count(), 1, "{r}");
        assert!(r.contains("<title>2012-06: 149</title>"), "{r}");
    }
}
