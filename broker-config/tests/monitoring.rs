//! k8s/monitoring/: the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`, Debian's `prometheus` package), every alert has a case that fires and
//! one that does not, the PrometheusRule carries exactly the rule file's groups, and the rules and
//! the Grafana dashboard use only the series of the metrics contract (k8s/monitoring/README.md).

use std::collections::BTreeSet;
use std::process::Command;

use podperf_broker_tests::{read, workspace_dir};
use serde_yaml::Value;

const RULES: &str = "k8s/monitoring/rules/podperf.rules.yaml";
const RULE_TESTS: &str = "k8s/monitoring/rules/podperf.rules.test.yaml";

fn yaml(relative: &str) -> Value {
    serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Runs promtool with `args` (paths relative to the workspace); panics with its output on failure.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool cannot be run ({e}): install Debian's `prometheus` package \
                 (scripts/install-deps.sh does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

fn rules() -> Vec<Value> {
    yaml(RULES)["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").clone())
        .collect()
}

fn alert_names() -> BTreeSet<String> {
    rules()
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_rules_are_valid_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", RULES]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_has_a_case_that_fires_and_one_that_does_not() {
    let tests = yaml(RULE_TESTS);
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests["tests"].as_sequence().expect("tests") {
        for t in case["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = t["alertname"].as_str().expect("alertname").to_string();
            let expected = t["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                fires.insert(name);
            } else {
                quiet.insert(name);
            }
        }
    }
    for alert in alert_names() {
        assert!(fires.contains(&alert), "no test case where {alert} fires");
        assert!(
            quiet.contains(&alert),
            "no test case where {alert} stays quiet"
        );
    }
}

#[test]
fn the_prometheus_rule_carries_the_rule_file() {
    let manifest = yaml("k8s/monitoring/prometheusrule.yaml");
    assert_eq!(manifest["kind"], "PrometheusRule");
    assert_eq!(
        manifest["spec"],
        yaml(RULES),
        "k8s/monitoring/prometheusrule.yaml spec differs from {RULES}"
    );
}

/// The series names in the contract table of k8s/monitoring/README.md.
fn contract() -> BTreeSet<String> {
    let readme = read("k8s/monitoring/README.md");
    let names: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `podperf_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|n| format!("podperf_{n}"))
        .collect();
    assert!(
        names.len() >= 10,
        "the contract table was not found: {names:?}"
    );
    names
}

/// Every `podperf_…` / `podperf:…` identifier in `text`.
fn series_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("podperf") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if name.starts_with("podperf_") || name.starts_with("podperf:") {
            found.insert(name.to_string());
        }
        rest = &tail[end.max(1)..];
    }
    found
}

/// A series name as the contract writes it: histograms without their `_bucket/_sum/_count`.
fn base_name(series: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| series.strip_suffix(s))
        .unwrap_or(series)
}

#[test]
fn rules_and_dashboard_use_only_the_contract_series() {
    let contract = contract();
    let recorded: BTreeSet<String> = rules()
        .iter()
        .filter_map(|r| r["record"].as_str().map(str::to_string))
        .collect();
    let mut exprs: Vec<(String, String)> = rules()
        .iter()
        .filter_map(|r| Some(("rule".to_string(), r["expr"].as_str()?.to_string())))
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("k8s/monitoring/grafana/podperf.json")).expect("dashboard JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for t in targets {
            exprs.push((title.to_string(), t["expr"].as_str().expect("expr").into()));
        }
    }
    let mut used = BTreeSet::new();
    for (whose, expr) in &exprs {
        for s in series_in(expr) {
            let known = contract.contains(base_name(&s)) || recorded.contains(&s);
            assert!(
                known,
                "{whose}: `{s}` is neither in the contract nor recorded: {expr}"
            );
            used.insert(base_name(&s).to_string());
        }
    }
    // Recording rules must be used (by an alert or a panel), not left behind.
    for r in &recorded {
        let users = exprs
            .iter()
            .filter(|(_, e)| series_in(e).contains(r))
            .count();
        assert!(users > 0, "recording rule {r} is used by nothing");
    }
    assert!(used.contains("podperf_rtt_seconds"), "{used:?}");
}
