//! The tests' own reader of the exposition formats (tests/common/exposition.rs), on small
//! bodies: what it reads, and what its strict mode refuses.

mod common;

use std::collections::BTreeMap;

use common::exposition::{check, parse};

const TEXT: &str = r#"# HELP a_ratio A "quoted" \\ help\nover two lines.
# TYPE a_ratio gauge
a_ratio{k="q\"b\\s\nn",region="north"} 0.5
a_ratio{k="",region="south"} +Inf
a_ratio{k="x",region="west"} -Inf
a_ratio{k="y",region="east"} NaN
# A free comment.
b_total 1e3 1700000000000
"#;

#[test]
fn reads_samples_with_escaped_label_values_special_values_and_timestamps() {
    let e = parse(TEXT);
    assert!(!e.eof);
    assert_eq!(e.samples.len(), 5);
    let first = &e.samples[0];
    assert_eq!(first.name, "a_ratio");
    assert_eq!(
        first.labels,
        [
            ("k".to_string(), "q\"b\\s\nn".to_string()),
            ("region".to_string(), "north".to_string())
        ]
    );
    assert_eq!(first.series, r#"a_ratio{k="q\"b\\s\nn",region="north"}"#);
    assert_eq!((first.text.as_str(), first.value), ("0.5", 0.5));
    assert_eq!(first.timestamp, None);
    assert_eq!(
        e.value("a_ratio", &[("region", "south"), ("k", "")]),
        Some(f64::INFINITY)
    );
    assert_eq!(
        e.value("a_ratio", &[("k", "x"), ("region", "west")]),
        Some(f64::NEG_INFINITY)
    );
    let nan = e.get("a_ratio", &[("k", "y"), ("region", "east")]).unwrap();
    assert!(nan.value.is_nan());
    assert_eq!(nan.text, "NaN");
    // Only all the labels find a sample.
    assert_eq!(e.value("a_ratio", &[("region", "north")]), None);
    let b = e.series("b_total").unwrap();
    assert_eq!((b.value, b.timestamp), (1000.0, Some(1_700_000_000_000)));
    // Prometheus keeps no label with an empty value.
    let (name, labels) = e.samples[1].key();
    assert_eq!(name, "a_ratio");
    assert_eq!(
        labels,
        BTreeMap::from([("region".to_string(), "south".to_string())])
    );
    assert_eq!(e.by_name()["a_ratio"].len(), 4);
}

#[test]
fn reads_family_metadata_with_help_unescaped() {
    let e = parse(TEXT);
    let a = e.family("a_ratio").unwrap();
    assert_eq!(a.kind.as_deref(), Some("gauge"));
    assert_eq!(
        a.help.as_deref(),
        Some("A \"quoted\" \\ help\nover two lines.")
    );
    assert_eq!(a.unit, None);
    assert!(e.family("b_total").is_none(), "a free comment is no family");
}

#[test]
fn reads_openmetrics_to_its_eof() {
    let body = "# TYPE a_ratio gauge\n# UNIT a_ratio ratio\n# HELP a_ratio A \\\"b\\\".\na_ratio{k=\"v\"} 0.25\n# TYPE c counter\nc_total 2 1700000000\n# EOF\n";
    let e = parse(body);
    assert!(e.eof);
    let a = e.family("a_ratio").unwrap();
    assert_eq!(a.unit.as_deref(), Some("ratio"));
    assert_eq!(a.help.as_deref(), Some("A \"b\"."));
    assert_eq!(e.family("c").unwrap().kind.as_deref(), Some("counter"));
    assert_eq!(e.series("c_total").unwrap().timestamp, Some(1_700_000_000));
    assert!(check(body, true).is_err(), "no timestamps in a served body");
    let served = body.replace(" 1700000000", "");
    let strict = check(&served, true).unwrap();
    assert_eq!(strict.samples.len(), 2);
    assert_eq!(strict.value("a_ratio", &[("k", "v")]), Some(0.25));
}

#[test]
#[should_panic(expected = "line 2: content after `# EOF`")]
fn nothing_is_read_after_eof() {
    parse("# EOF\na 1\n");
}

#[test]
#[should_panic(expected = "invalid escape")]
fn an_unknown_escape_is_refused() {
    parse("a{k=\"x\\y\"} 1\n");
}

#[test]
#[should_panic(expected = "invalid value `one`")]
fn a_value_that_is_no_number_is_refused() {
    parse("a one\n");
}

#[test]
fn the_strict_parser_refuses_what_prometheus_would_misread() {
    let good = "# HELP a_ratio A \\\"b\\\" \\\\ c\\nd.\n# TYPE a_ratio gauge\n# UNIT a_ratio ratio\na_ratio{k=\"q\\\"b\\\\s\\nn\"} 0.5\n# HELP s Info.\n# TYPE s info\ns_info{k=\"x\"} 1\n# EOF\n";
    let samples = check(good, true).unwrap().samples;
    assert_eq!(
        samples[0].labels,
        [("k".to_string(), "q\"b\\s\nn".to_string())]
    );
    for (bad, why) in [
        ("# TYPE a gauge\na{k=\"x\ny\"} 1\n# EOF\n", "unterminated"),
        ("# TYPE a gauge\na{k=\"x\\y\"} 1\n# EOF\n", "invalid escape"),
        (
            "# TYPE a gauge\na{k=\"x\"} 1\n",
            "does not end with `# EOF`",
        ),
        // A gauge `a` and an info `a_info` are one family `a`, twice.
        (
            "# TYPE a gauge\na 1\n# TYPE a info\na_info 1\n# EOF\n",
            "TYPE after samples",
        ),
        ("# TYPE a_info gauge\na_info 1\n# EOF\n", "ends in `_info`"),
        (
            "# TYPE a gauge\n# TYPE a info\na_info 1\n# EOF\n",
            "second TYPE",
        ),
        (
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n# EOF\n",
            "appears again",
        ),
        (
            "# TYPE a_total gauge\na_total 1\n# EOF\n",
            "ends in `_total`",
        ),
        ("# TYPE a gauge\na{k=\"1\",k=\"2\"} 1\n# EOF\n", "twice"),
        (
            "# TYPE a gauge\na{k=\"1\"} 1\na{k=\"1\"} 2\n# EOF\n",
            "duplicate series",
        ),
        ("# TYPE a info\na_info{k=\"1\"} 2\n# EOF\n", "other than 1"),
        (
            "# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n",
            "is not the end",
        ),
        ("# TYPE a gauge\na 1\n# EOF\nb 1\n# EOF\n", "after `# EOF`"),
    ] {
        let e = check(bad, true).expect_err(bad);
        assert!(e.contains(why), "{bad:?}: {e}");
    }
}
