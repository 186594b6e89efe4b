//! The deployment files say what the code needs, no more: schedule expressions
//! EventBridge accepts (cfn-lint does not check them), IAM statements that
//! grant the functions' calls on the named secrets and bus only, and
//! environment variables the code declares, with values in their declared
//! ranges. (The Kubernetes Role is held to the requests sync and cleanup
//! really make in the stack suite's `rbac`.)

use flink_job_sync::config::declared::{Kind, SETTINGS};
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

/// A template value as text, element by element: a literal as it is, an
/// intrinsic function as its tag and argument (`!Ref MongoDbUriSecretArn`).
fn rendered(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(rendered).collect(),
        Value::Tagged(t) => match &t.value {
            Value::String(s) => vec![format!("{} {s}", t.tag)],
            other => vec![format!("{} {other:?}", t.tag)],
        },
        other => vec![format!("{other:?}")],
    }
}

/// One IAM statement, as (effect, actions, resources).
type Statement = (String, Vec<String>, Vec<String>);

/// Each function's inline policy statements. Anything else a function's
/// `Policies` could hold (a managed policy's name or ARN, a SAM policy
/// template) or a statement key beyond Effect, Action and Resource
/// (`NotAction`, `NotResource`, ...) fails the test: it would grant more
/// than the statements say.
fn policy_statements(t: &Value) -> Vec<(String, Vec<Statement>)> {
    let mut out = Vec::new();
    for (name, resource) in t["Resources"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default().to_string();
        let kind = resource["Type"].as_str().unwrap_or_default();
        assert!(
            !kind.starts_with("AWS::IAM::"),
            "{name}: an IAM resource ({kind}) grants beyond the functions' policies"
        );
        if kind != "AWS::Serverless::Function" {
            continue;
        }
        let props = &resource["Properties"];
        assert!(
            props.get("Role").is_none(),
            "{name}: a role of its own escapes the policies here"
        );
        let mut statements = Vec::new();
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            let keys: Vec<&str> = policy
                .as_mapping()
                .map(|m| m.keys().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert_eq!(
                keys,
                ["Statement"],
                "{name}: a policy that is not inline statements: {policy:?}"
            );
            for st in policy["Statement"].as_sequence().into_iter().flatten() {
                let mut keys: Vec<&str> = st
                    .as_mapping()
                    .map(|m| m.keys().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                keys.sort_unstable();
                assert_eq!(keys, ["Action", "Effect", "Resource"], "{name}: {st:?}");
                statements.push((
                    st["Effect"].as_str().unwrap_or_default().to_string(),
                    rendered(&st["Action"]),
                    rendered(&st["Resource"]),
                ));
            }
        }
        out.push((name, statements));
    }
    out.sort();
    out
}

#[test]
fn iam_policies_grant_getsecretvalue_on_the_two_secrets_and_putevents_on_the_one_bus_only() {
    let statement = |action: &str, resources: &[&str]| -> Statement {
        (
            "Allow".to_string(),
            vec![action.to_string()],
            resources.iter().map(|r| r.to_string()).collect(),
        )
    };
    let secrets = statement(
        "secretsmanager:GetSecretValue",
        &["!Ref MongoDbUriSecretArn", "!Ref KubeconfigSecretArn"],
    );
    let bus = statement(
        "events:PutEvents",
        &[
            "!Sub arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
        ],
    );
    let found = policy_statements(&template());
    for (function, statements) in &found {
        for (_, actions, resources) in statements {
            for granted in actions.iter().chain(resources) {
                assert!(
                    !granted.contains('*') && !granted.contains('?'),
                    "{function}: a wildcard grants more than one thing: {granted}"
                );
            }
        }
    }
    assert_eq!(
        found,
        [
            ("CleanupFunction".to_string(), vec![secrets.clone()]),
            ("SyncFunction".to_string(), vec![secrets, bus]),
        ],
        "cleanup reads the two secrets; sync reads them and publishes to the one bus"
    );
}

/// A template parameter's `AllowedPattern`, anchored as CloudFormation
/// matches it (the whole value).
fn allowed_pattern(t: &Value, parameter: &str) -> regex::Regex {
    let pattern = t["Parameters"][parameter]["AllowedPattern"]
        .as_str()
        .unwrap_or_else(|| {
            panic!("{parameter} has no AllowedPattern: any value, `*` too, would be granted")
        });
    regex::Regex::new(&format!("^(?:{pattern})$")).unwrap_or_else(|e| panic!("{parameter}: {e}"))
}

#[test]
fn the_granted_secret_arns_and_bus_name_cannot_be_iam_wildcards() {
    let t = template();
    for parameter in ["MongoDbUriSecretArn", "KubeconfigSecretArn"] {
        let allowed = allowed_pattern(&t, parameter);
        for arn in [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:flink-job-sync/prod/mongodb-uri-AbC123",
            "arn:aws-cn:secretsmanager:cn-north-1:000000000000:secret:flink-job-sync/dev/kubeconfig",
        ] {
            assert!(
                allowed.is_match(arn),
                "{parameter} refuses a secret's ARN: {arn}"
            );
        }
        for wildcard in [
            "*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:flink-job-sync/*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mongodb-uri-??????",
            "arn:aws:secretsmanager:*:123456789012:secret:mongodb-uri",
        ] {
            assert!(
                !allowed.is_match(wildcard),
                "{parameter} lets {wildcard} through"
            );
        }
    }
    let bus = allowed_pattern(&t, "EventBusName");
    assert_eq!(
        t["Parameters"]["EventBusName"]["Default"].as_str(),
        Some("default")
    );
    for name in ["default", "flink-jobs", "data.platform_events"] {
        assert!(bus.is_match(name), "EventBusName refuses {name}");
    }
    for wildcard in ["*", "flink-*", "bus?", ""] {
        assert!(
            !bus.is_match(wildcard),
            "EventBusName lets {wildcard:?} through"
        );
    }
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
