//! The deployment files say what the code needs, no more: schedule expressions
//! EventBridge accepts (cfn-lint does not check them), RBAC and IAM limited
//! to the calls the functions make, and environment variables the code
//! declares, with values in their declared ranges.

use std::collections::BTreeSet;

use flink_job_sync::config::declared::{Kind, SETTINGS};
use serde::Deserialize;
use serde_yaml::Value;
use test_kit::lambda::workspace_root;
use test_kit::schedule::validate;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn template() -> Value {
    serde_yaml::from_str(&read("infra/template.yaml"))
        .unwrap_or_else(|e| panic!("infra/template.yaml: {e}"))
}

/// Every string under a key named `key`, anywhere in the document.
fn strings_under(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                // Literal strings only: `!Ref X` is a tagged value, not the string "X".
                if k.as_str() == Some(key) {
                    match child {
                        Value::String(s) => out.push(s.clone()),
                        Value::Sequence(items) => {
                            out.extend(items.iter().filter_map(|i| match i {
                                Value::String(s) => Some(s.clone()),
                                _ => None,
                            }))
                        }
                        _ => {}
                    }
                }
                strings_under(child, key, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| strings_under(i, key, out)),
        Value::Tagged(t) => strings_under(&t.value, key, out),
        _ => {}
    }
}

#[test]
fn every_schedule_expression_in_the_template_is_valid_for_eventbridge() {
    let t = template();
    let params = &t["Parameters"];
    let mut exprs = Vec::new();
    for p in ["SyncSchedule", "CleanupSchedule"] {
        strings_under(&params[p], "Default", &mut exprs);
        strings_under(&params[p], "AllowedValues", &mut exprs);
    }
    strings_under(&t["Resources"], "ScheduleExpression", &mut exprs);
    assert!(
        exprs.len() >= 5,
        "expected the defaults and allowed values, found {exprs:?}"
    );
    for e in &exprs {
        assert_eq!(validate(e), Ok(()), "{e}");
    }
    assert_eq!(
        params["SyncSchedule"]["Default"].as_str(),
        Some("rate(3 minutes)")
    );
    assert_eq!(
        params["CleanupSchedule"]["Default"].as_str(),
        Some("cron(0 2 * * ? *)")
    );
}

#[test]
fn sync_timeout_is_below_its_shortest_schedule_period_and_runs_alone() {
    let t = template();
    let sync = &t["Resources"]["SyncFunction"]["Properties"];
    let timeout = sync["Timeout"].as_u64().unwrap_or(u64::MAX);
    assert!(
        timeout < 60,
        "sync may run every minute; its timeout is {timeout}s"
    );
    // One run at a time by default; one per cluster-scoped schedule.
    assert_eq!(
        sync["ReservedConcurrentExecutions"].as_str(),
        Some("SyncConcurrency")
    );
    assert_eq!(
        t["Parameters"]["SyncConcurrency"]["Default"].as_u64(),
        Some(1)
    );
    // Deployed on arm64; `Architecture=x86_64` builds and invokes locally.
    assert_eq!(
        t["Globals"]["Function"]["Architectures"][0].as_str(),
        Some("Architecture"),
        "the architecture is the template's parameter"
    );
    let arch = &t["Parameters"]["Architecture"];
    assert_eq!(arch["Default"].as_str(), Some("arm64"));
    let allowed: Vec<&str> = arch["AllowedValues"]
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(allowed, ["arm64", "x86_64"]);
    assert_eq!(
        t["Globals"]["Function"]["Runtime"].as_str(),
        Some("provided.al2023")
    );
}

/// The Kubernetes calls the code makes, as (API group, resource, verb).
const CALLS: [(&str, &str, &str); 4] = [
    ("batch", "jobs", "list"),
    ("", "pods", "list"),
    ("", "pods/log", "get"),
    ("batch", "jobs", "delete"),
];
/// Granted for an operator's `kubectl get` with the same account, not called.
const OPERATOR_READS: [(&str, &str, &str); 2] = [("batch", "jobs", "get"), ("", "pods", "get")];

#[test]
fn kubernetes_role_grants_exactly_the_calls_the_code_makes() {
    let mut granted = BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&read("infra/k8s-rbac.yaml")) {
        let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("infra/k8s-rbac.yaml: {e}"));
        if v["kind"].as_str() != Some("Role") {
            continue;
        }
        for rule in v["rules"].as_sequence().into_iter().flatten() {
            let strs = |k: &str| -> Vec<String> {
                rule[k]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            };
            for g in strs("apiGroups") {
                for r in strs("resources") {
                    for verb in strs("verbs") {
                        granted.insert((g.clone(), r.clone(), verb));
                    }
                }
            }
        }
    }
    let owned = |xs: &[(&str, &str, &str)]| -> BTreeSet<(String, String, String)> {
        xs.iter()
            .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
            .collect()
    };
    let needed = owned(&CALLS);
    assert!(
        needed.is_subset(&granted),
        "missing: {:?}",
        needed.difference(&granted).collect::<Vec<_>>()
    );
    let allowed: BTreeSet<_> = needed.union(&owned(&OPERATOR_READS)).cloned().collect();
    assert!(
        granted.is_subset(&allowed),
        "more than needed: {:?}",
        granted.difference(&allowed).collect::<Vec<_>>()
    );
}

#[test]
fn iam_policies_grant_only_the_two_secrets_and_putevents_on_one_bus() {
    let t = template();
    let mut actions = Vec::new();
    strings_under(&t["Resources"], "Action", &mut actions);
    actions.sort();
    actions.dedup();
    assert_eq!(
        actions,
        ["events:PutEvents", "secretsmanager:GetSecretValue"]
    );
    let mut cleanup_actions = Vec::new();
    strings_under(
        &t["Resources"]["CleanupFunction"],
        "Action",
        &mut cleanup_actions,
    );
    assert_eq!(
        cleanup_actions,
        ["secretsmanager:GetSecretValue"],
        "cleanup publishes nothing"
    );
    let text = read("infra/template.yaml");
    assert!(
        text.contains(":event-bus/${EventBusName}"),
        "PutEvents is limited to the configured bus"
    );
}

/// Every variable the template's `Variables` mappings and `infra/local-env.json`
/// set, with its value when it is a literal string (not `!Ref`).
fn deployed_variables() -> Vec<(String, Option<String>)> {
    fn walk(v: &Value, out: &mut Vec<(String, Option<String>)>) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    if k.as_str() == Some("Variables")
                        && let Value::Mapping(vars) = child
                    {
                        out.extend(vars.iter().filter_map(|(name, value)| {
                            Some((
                                name.as_str()?.to_string(),
                                value.as_str().map(str::to_string),
                            ))
                        }));
                    }
                    walk(child, out);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Tagged(t) => walk(&t.value, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&template(), &mut out);
    let local: serde_json::Value = serde_json::from_str(&read("infra/local-env.json"))
        .unwrap_or_else(|e| panic!("infra/local-env.json: {e}"));
    for (name, value) in local["Parameters"].as_object().into_iter().flatten() {
        out.push((name.clone(), value.as_str().map(str::to_string)));
    }
    out
}

#[test]
fn every_variable_the_deployment_sets_is_declared_and_within_its_range() {
    let vars = deployed_variables();
    assert!(
        vars.iter().any(|(n, _)| n == "CLEANUP_MIN_AGE_HOURS") && vars.len() >= 13,
        "the template's and local-env.json's variables: {vars:?}"
    );
    let mut wrong = Vec::new();
    for (name, value) in &vars {
        let Some(setting) = SETTINGS.iter().find(|s| s.name == name) else {
            wrong.push(format!("{name}: set, and not declared in config::declared"));
            continue;
        };
        let (Kind::Number(n), Some(v)) = (setting.kind, value.as_deref().filter(|v| !v.is_empty()))
        else {
            continue;
        };
        if !v.parse().is_ok_and(|v: u64| (n.min..=n.max).contains(&v)) {
            wrong.push(format!("{name}: {v:?} is not in {} to {}", n.min, n.max));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
