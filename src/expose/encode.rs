//! The two exposition formats Prometheus scrapes: text 0.0.4 and OpenMetrics 1.0.0. One writer
//! serves both the pre-rendered dataset and the per-scrape self-metrics, so the formats can
//! never drift apart.

use std::io::Write;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    OpenMetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    /// A gauge of constant 1 whose labels carry the information; `info` in OpenMetrics.
    Info,
}

/// Appends families and samples in one format to a buffer.
pub struct Encoder<'a> {
    pub format: Format,
    pub out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    /// `name` is the sample name as in the text format (`…_total`, `…_info` included).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind, unit: Option<&str>) {
        let out = &mut *self.out;
        match self.format {
            Format::Text => {
                out.extend_from_slice(b"# HELP ");
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                escape(out, help, false);
                out.extend_from_slice(b"\n# TYPE ");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(match kind {
                    Kind::Counter => b" counter\n",
                    Kind::Gauge | Kind::Info => b" gauge\n",
                });
            }
            Format::OpenMetrics => {
                let family = om_family_name(name, kind);
                let _ = write!(out, "# HELP {family} ");
                escape(out, help, true);
                let _ = write!(
                    out,
                    "\n# TYPE {family} {}\n",
                    match kind {
                        Kind::Counter => "counter",
                        Kind::Gauge => "gauge",
                        Kind::Info => "info",
                    }
                );
                if let Some(u) = unit {
                    if family.ends_with(&format!("_{u}")) {
                        let _ = writeln!(out, "# UNIT {family} {u}");
                    }
                }
            }
        }
    }

    /// One sample. Label pairs are written in the order given.
    pub fn sample<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
    ) {
        self.sample_at(name, labels, value, None);
    }

    /// One sample with an optional timestamp in Unix seconds, written as each format wants it:
    /// milliseconds in the text format, seconds in OpenMetrics.
    pub fn sample_at<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
        timestamp: Option<i64>,
    ) {
        self.series_value(name, labels, value);
        let out = &mut *self.out;
        match (timestamp, self.format) {
            (None, _) => {}
            (Some(t), Format::Text) => {
                let _ = write!(out, " {}", t * 1000);
            }
            (Some(t), Format::OpenMetrics) => {
                let _ = write!(out, " {t}");
            }
        }
        out.push(b'\n');
    }

    /// A sample at `ms` Unix milliseconds (not negative): seconds with three decimals in
    /// OpenMetrics, milliseconds in the text format.
    pub fn sample_at_ms<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
        ms: i64,
    ) {
        self.series_value(name, labels, value);
        let out = &mut *self.out;
        let _ = match self.format {
            Format::Text => writeln!(out, " {ms}"),
            Format::OpenMetrics => writeln!(out, " {}.{:03}", ms / 1000, ms % 1000),
        };
    }

    /// A sample's name, labels and value, without its timestamp and newline.
    fn series_value<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
    ) {
        let out = &mut *self.out;
        out.extend_from_slice(name.as_bytes());
        let mut first = true;
        for (k, v) in labels {
            out.push(if first { b'{' } else { b',' });
            first = false;
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            escape(out, v, true);
            out.push(b'"');
        }
        if !first {
            out.push(b'}');
        }
        out.push(b' ');
        write_value(out, value);
    }
}

/// OpenMetrics names a family without the `_total` / `_info` suffix its samples carry.
fn om_family_name(name: &str, kind: Kind) -> &str {
    match kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        Kind::Info => name.strip_suffix("_info").unwrap_or(name),
        Kind::Gauge => name,
    }
}

pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        // Display prints the shortest text that reads back as the same double.
        let _ = write!(out, "{v}");
    }
}

/// Escapes `\` and newline (and `"` in label values and OpenMetrics help).
fn escape(out: &mut Vec<u8>, s: &str, quote: bool) {
    if !s
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
    {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '"' if quote => out.extend_from_slice(b"\\\""),
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(format: Format, kind: Kind, name: &str) -> String {
        let mut out = Vec::new();
        let mut e = Encoder {
            format,
            out: &mut out,
        };
        e.family(name, "Says \"hi\"\\ now\nthen.", kind, Some("ratio"));
        e.sample(name, [("a", "x\"y\\z\nw"), ("b", "2")], 0.533);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_gauge() {
        assert_eq!(
            enc(Format::Text, Kind::Gauge, "m_ratio"),
            "# HELP m_ratio Says \"hi\"\\\\ now\\nthen.\n# TYPE m_ratio gauge\nm_ratio{a=\"x\\\"y\\\\z\\nw\",b=\"2\"} 0.533\n"
        );
    }

    #[test]
    fn openmetrics_gauge_has_unit() {
        assert_eq!(
            enc(Format::OpenMetrics, Kind::Gauge, "m_ratio"),
            "# HELP m_ratio Says \\\"hi\\\"\\\\ now\\nthen.\n# TYPE m_ratio gauge\n# UNIT m_ratio ratio\nm_ratio{a=\"x\\\"y\\\\z\\nw\",b=\"2\"} 0.533\n"
        );
    }

    #[test]
    fn openmetrics_counter_and_info_families() {
        let c = enc(Format::OpenMetrics, Kind::Counter, "x_total");
        assert!(
            c.contains("# TYPE x counter\n") && c.contains("\nx_total{"),
            "{c}"
        );
        let i = enc(Format::OpenMetrics, Kind::Info, "y_info");
        assert!(
            i.contains("# TYPE y info\n") && i.contains("\ny_info{"),
            "{i}"
        );
        assert!(!i.contains("# UNIT"), "{i}");
    }

    #[test]
    fn timestamps_in_each_format() {
        for (format, want) in [
            (Format::Text, "m{a=\"1\"} 0.5 1735689599000\n"),
            (Format::OpenMetrics, "m{a=\"1\"} 0.5 1735689599\n"),
        ] {
            let mut out = Vec::new();
            Encoder {
                format,
                out: &mut out,
            }
            .sample_at("m", [("a", "1")], 0.5, Some(1_735_689_599));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn values() {
        let mut out = Vec::new();
        for v in [3_506_000.0, 0.007, f64::INFINITY, -0.5] {
            write_value(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(String::from_utf8(out).unwrap(), "3506000 0.007 +Inf -0.5 ");
    }
}
