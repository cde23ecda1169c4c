//! Every stage after validation takes the families it serves from the dataset's one list: a
//! family added to the list, and only there, is rendered on `/metrics`, exported with the
//! history, and shown on the dataset's page; one taken out of it is gone from all three.

use std::time::SystemTime;

use indicator_exporter::dataset::families::{Declared, Family, Kind, Series};
use indicator_exporter::dataset::Dataset;
use indicator_exporter::expose::encode::Format;
use indicator_exporter::http::pages::{self, Page};
use indicator_exporter::reload::status::DatasetStatus;

fn bundled() -> Dataset {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    indicator_exporter::check(&path).expect("the bundled config loads")
}

/// `/metrics`, the export and the page of `d`.
fn outputs(d: &Dataset) -> (String, String, String) {
    let rendered = indicator_exporter::expose::render::render(d);
    let text = String::from_utf8(rendered.text).unwrap();
    let mut export = Vec::new();
    indicator_exporter::export::write(d, Format::OpenMetrics, &mut export);
    let page = Page {
        telemetry_path: "/metrics",
        now: SystemTime::now(),
        version: "test",
        reload_failed: None,
    };
    let status = DatasetStatus {
        name: d.info.name.clone(),
        ready: true,
        serving_since: None,
        last_attempt: None,
        errors: Vec::new(),
        sources: Vec::new(),
        revisions: Default::default(),
    };
    let html = pages::dataset(&page, &status, Some(d));
    (text, String::from_utf8(export).unwrap(), html)
}

#[test]
fn a_family_added_to_the_list_is_rendered_exported_and_paged() {
    let mut d = bundled();
    let metric = d
        .families
        .iter()
        .position(|f| f.kind == Kind::Value)
        .expect("a declared metric");
    let served = d.families[metric].clone();
    let Series::Metric(i) = served.series else {
        panic!("a value family serves a metric")
    };
    let name = "cnipa_copy_of_first_metric_ratio";
    let (text, export, html) = outputs(&d);
    assert!(!text.contains(name) && !export.contains(name) && !html.contains(name));

    // One edit: the list gains a family serving the same series under another name.
    d.families.push(Family {
        name: name.into(),
        family: name.into(),
        kind: Kind::Value,
        help: "A copy.".into(),
        unit: Some("ratio".into()),
        series: Series::Metric(i),
        declared: Declared::Metric(i),
        what: "a test".into(),
        line: 1,
        col: 1,
    });
    d.families.sort_by(|a, b| a.name.cmp(&b.name));
    let (text, export, html) = outputs(&d);

    let series = d.metrics[i].len();
    assert!(text.contains(&format!("# HELP {name} A copy.\n# TYPE {name} gauge\n")));
    let rendered = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .count();
    assert_eq!(
        rendered, series,
        "every series of the metric, under the new name"
    );
    assert!(export.contains(&format!("# TYPE {name} gauge\n# UNIT {name} ratio\n")));
    let exported = export
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .count();
    assert_eq!(exported, series, "every figure, timestamped");
    assert!(
        html.contains(&format!("data-family=\"{name}\"")),
        "the page names it"
    );

    // And out of the list, the metric's own family is gone from all three.
    let own = served.name.clone();
    d.families.retain(|f| f.name != own);
    let (text, export, html) = outputs(&d);
    assert!(!text.contains(&format!("# TYPE {own} ")));
    assert!(!export.contains(&format!("# TYPE {own} ")));
    assert!(!html.contains(&format!("data-family=\"{own}\"")));
}

#[test]
fn the_list_names_every_family_served_with_its_kind() {
    let d = bundled();
    let (text, _, _) = outputs(&d);
    let typed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let listed: Vec<&str> = d.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(typed, listed, "the exposition is the list, in its order");
    let kind = |name: &str| d.families.iter().find(|f| f.name == name).map(|f| f.kind);
    let m = "cnipa_enterprise_invention_patent_industrialization";
    assert_eq!(kind(&format!("{m}_ratio")), Some(Kind::Value));
    assert_eq!(kind(&format!("{m}_latest_ratio")), Some(Kind::Latest));
    assert_eq!(kind(&format!("{m}_latest_year")), Some(Kind::LatestPeriod));
    assert_eq!(kind(&format!("{m}_change_ratio")), Some(Kind::Change));
    assert_eq!(kind("cnipa_dataset_info"), Some(Kind::Info));
    assert_eq!(
        kind("cnipa_next_release_expected_timestamp_seconds"),
        Some(Kind::Calendar)
    );
}
