//! A real Prometheus scrapes the exporter through its web config, as it would node_exporter:
//! HTTPS with a client certificate, an allowed SAN and basic auth. Needs `prometheus` and
//! `promtool` on PATH (`scripts/install-deps`).

mod common;
mod web_support;

use common::e2e::*;
use common::Exporter;
use web_support::Ca;

#[test]
fn prometheus_scrapes_over_tls_with_a_client_certificate_and_basic_auth() {
    require_tool("prometheus");
    require_tool("promtool");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("scrape CA");
    ca.server(1).write(d, "server");
    ca.client("prometheus.example.org").write(d, "scraper");
    std::fs::write(d.join("ca.crt"), ca.pem()).unwrap();
    let hash = bcrypt::hash("scrape-secret", 4).unwrap();
    let web = d.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example.org]\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
    )
    .unwrap();
    let config = std::path::Path::new(ROOT).join("config.toml");
    let web_arg = format!("--web.config.file={}", web.display());
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap(), &web_arg]);
    let target = exporter.addr().to_string();
    let p = |f: &str| d.join(f).display().to_string();
    let (_prometheus, prom) = start_prometheus_config(
        d,
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: indicator_exporter\n    scheme: https\n    tls_config:\n      ca_file: {}\n      cert_file: {}\n      key_file: {}\n    basic_auth:\n      username: prometheus\n      password: scrape-secret\n    static_configs:\n      - targets: ['{target}']\n",
            p("ca.crt"),
            p("scraper.crt"),
            p("scraper.key")
        ),
    );
    let agent = agent();
    let log = d.join("prometheus.log");
    wait_target_up(&agent, &prom, &|last| {
        format!(
            "{last}\nprometheus.log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let v = poll("a scraped dataset value", || {
        let r = query(
            &agent,
            &prom,
            "cnipa_enterprise_invention_patent_industrialization_ratio{size=\"all\",sector=\"all\",year=\"2024\"}",
        )?;
        r.first()
            .map(prom_value)
            .ok_or_else(|| format!("no sample yet: {r:?}"))
    });
    assert_eq!(v, 0.533);
}
