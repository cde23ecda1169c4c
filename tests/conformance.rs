//! The dataset's text exposition is written by our own encoder (it runs once per load over up
//! to millions of series); the `prometheus` crate's `GaugeVec` + `TextEncoder` is the oracle it
//! must match byte for byte, family by family.

mod common;

use indicator_exporter::expose::render::render;
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

#[test]
fn dataset_metrics_match_the_prometheus_crate_encoder() {
    let dataset = indicator_exporter::check(&common::repo("config.toml")).unwrap();
    let registry = Registry::new();
    let mut names = Vec::new();
    for m in dataset.metrics.iter().chain(&dataset.derived) {
        let labels: Vec<&str> = m.label_names.iter().map(String::as_str).collect();
        let vec = GaugeVec::new(Opts::new(m.name.clone(), m.help.clone()), &labels).unwrap();
        for i in 0..m.len() {
            let values: Vec<&str> = m.labels(i).iter().map(|&id| dataset.symbol(id)).collect();
            vec.get_metric_with_label_values(&values)
                .unwrap()
                .set(m.value(i));
        }
        registry.register(Box::new(vec)).unwrap();
        names.push(m.name.clone());
    }
    let mut oracle = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut oracle)
        .unwrap();
    let oracle = String::from_utf8(oracle).unwrap();

    let ours = String::from_utf8(render(&dataset).text).unwrap();
    // Keep only the families the oracle has (ours adds info metrics and the release calendar).
    let mut kept = String::new();
    let mut keep = false;
    for line in ours.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            keep = names
                .iter()
                .any(|n| rest.split(' ').next() == Some(n.as_str()));
        }
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    assert!(names.len() > 20 && kept.lines().count() > 100);
    assert_eq!(kept, oracle);
}
