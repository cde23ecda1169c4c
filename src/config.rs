//! Stage 1 of the pipeline: the text of `config.toml` -> typed [`Config`].
//!
//! Only syntax and shape are checked here (toml stops at its first error); every field that a
//! later stage checks keeps its position through `toml::Spanned`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub dataset: Spanned<DatasetConfig>,
    /// Publications the samples cite, by id.
    #[serde(default, rename = "source")]
    pub sources: Vec<Spanned<SourceConfig>>,
    /// Display names of label values, exposed as `<prefix><label>_info`.
    #[serde(default, rename = "label")]
    pub labels: Vec<Spanned<LabelConfig>>,
    #[serde(default, rename = "metric")]
    pub metrics: Vec<Spanned<MetricConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Short stable identifier, used as the `dataset` label of the exporter's own metrics.
    pub name: Spanned<String>,
    pub title: String,
    pub publisher: String,
    pub source_url: String,
    /// Publication date of the latest figures, `YYYY-MM-DD`.
    pub published: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// Prepended to every metric name of the dataset, e.g. `cnipa_`.
    pub metric_prefix: Spanned<String>,
    pub period: Option<Spanned<PeriodConfig>>,
}

/// Which label carries the reporting period, and the release calendar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    pub label: Spanned<String>,
    /// `annual`, `quarterly` or `monthly`.
    pub cadence: Spanned<String>,
    /// Days after a period ends by which its figures are usually published.
    pub expected_release_lag_days: Option<Spanned<i64>>,
    /// Days after a period ends after which its figures count as overdue.
    pub overdue_release_lag_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub url: String,
    /// `YYYY-MM-DD`.
    pub published: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConfig {
    pub name: Spanned<String>,
    #[serde(default)]
    pub help: String,
    pub values: Vec<Spanned<LabelValueConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelValueConfig {
    pub code: Spanned<String>,
    /// Display name by language code, e.g. `{ en = "Medium-sized enterprises", zh = "中型企业" }`.
    pub names: Spanned<BTreeMap<Spanned<String>, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Name without prefix and unit suffix; both are added by the exporter.
    pub name: Spanned<String>,
    pub help: Spanned<String>,
    pub unit: Spanned<String>,
    pub labels: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub samples: Vec<Spanned<SampleConfig>>,
    /// A CSV file of samples: a header with the label names and `value` (and optionally
    /// `source`, `basis`), relative to the config file.
    pub samples_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    pub labels: Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
    /// Optional here so that a missing value is reported with all other errors.
    pub value: Option<Spanned<f64>>,
    /// Id of a `[[source]]`.
    pub source: Option<Spanned<String>>,
    /// How the figure was published (as reported, rounded, derived …); documentation only.
    pub basis: Option<String>,
}

/// Parses the config text. toml reports one error at a time, with its position.
pub fn parse(path: &Path, text: &str) -> Result<Config, Diagnostics> {
    toml::from_str(text).map_err(|e| {
        let map = SourceMap::new(path, text);
        let message = e.message().trim_end().replace('\n', " ");
        let d = match e.span() {
            Some(span) => map.diag(span, message),
            None => Diagnostic::file(path, message),
        };
        Diagnostics::one(d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("c.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("[dataset]\nname = \"x\n");
        assert!(e.starts_with("c.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_key_is_named_with_position() {
        let e = err("[dataset]\nnme = \"x\"\n");
        assert!(
            e.starts_with("c.toml:2:1: unknown field `nme`, expected one of"),
            "{e}"
        );
    }

    #[test]
    fn integer_value_reads_as_float() {
        let text = r#"
[dataset]
name = "d"
title = "t"
publisher = "p"
source_url = "u"
published = "2025-01-01"
metric_prefix = "x_"
[[metric]]
name = "m"
help = "h"
unit = "count"
labels = ["a"]
samples = [{ labels = { a = "1" }, value = 1908000 }]
"#;
        let c = parse(Path::new("c.toml"), text).unwrap();
        let v = c.metrics[0].get_ref().samples[0]
            .get_ref()
            .value
            .as_ref()
            .unwrap();
        assert_eq!(*v.get_ref(), 1_908_000.0);
    }
}
