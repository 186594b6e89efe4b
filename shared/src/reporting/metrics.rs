//! Run metrics as CloudWatch Embedded Metric Format: one JSON line on stdout
//! per run, which Lambda's log pipeline turns into metrics (no API calls).
//! Namespace `FlinkJobSync`; metric names are listed in the README.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::reporting::summary::Summary;
use crate::rules::model::{Status, System};

/// The CloudWatch namespace of the run metrics.
pub const NAMESPACE: &str = "FlinkJobSync";

/// Errors of a run by the system that caused them: (Flink, Kubernetes, MongoDB).
pub fn errors_by_kind(summary: &Summary) -> (usize, usize, usize) {
    let count = |system: System| summary.errors.iter().filter(|e| e.system == system).count();
    (
        count(System::Flink),
        count(System::Kubernetes),
        count(System::MongoDb),
    )
}

/// Metric values with their definitions, in the order they are put.
#[derive(Default)]
struct Emf {
    fields: Map<String, Value>,
    metrics: Vec<Value>,
}

impl Emf {
    fn put(&mut self, name: &str, unit: &str, value: f64) {
        self.metrics.push(json!({"Name": name, "Unit": unit}));
        self.fields.insert(name.to_string(), json!(value));
    }

    fn count(&mut self, name: &str, n: usize) {
        self.put(name, "Count", n as f64);
    }
}

/// The EMF document for a run. `lag_seconds`: time since the start of the
/// last complete run over every non-final record (this one, if it was).
pub fn emf(summary: &Summary, lag_seconds: Option<f64>, now: DateTime<Utc>) -> Value {
    let mut e = Emf::default();
    e.count("RecordsChecked", summary.records_checked);
    e.count("RecordsChanged", summary.records_changed);
    e.count("Transitions", summary.transitions.values().sum());
    for status in Status::ALL {
        let to = format!("->{status}");
        let n = summary
            .transitions
            .iter()
            .filter(|(k, _)| k.ends_with(&to))
            .map(|(_, v)| v)
            .sum();
        e.count(&format!("TransitionsTo{}", title(status.as_str())), n);
    }
    let (flink, kube, mongo) = errors_by_kind(summary);
    e.count("Conflicts", summary.conflicts);
    e.count("MalformedRecords", summary.malformed.len());
    e.count("FlinkErrors", flink);
    e.count("KubernetesErrors", kube);
    e.count("MongoDBErrors", mongo);
    e.count("EventsPending", summary.events_pending);
    e.count("UntrackedJobs", summary.untracked_count);
    e.count("HealthChecked", summary.health_checked);
    e.count("HealthChanges", summary.health_changes);
    e.count("DegradedJobs", summary.degraded_jobs);
    for code in HEALTH_REASONS {
        let n = summary.degraded.get(code).copied().unwrap_or(0);
        e.count(&format!("Degraded_{code}"), n);
    }
    e.put("RunDuration", "Milliseconds", summary.elapsed_ms as f64);
    e.count("RunComplete", usize::from(summary.complete));
    if let Some(lag) = lag_seconds {
        e.put("SyncLag", "Seconds", lag);
    }
    let Emf {
        mut fields,
        metrics,
    } = e;
    fields.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": metrics}]
        }),
    );
    fields.insert("Function".to_string(), json!("sync"));
    fields.insert("run_id".to_string(), json!(summary.run_id));
    Value::Object(fields)
}

/// The reason codes a job can be degraded for: one metric each, so a
/// dashboard or alarm has a series even while it is zero.
pub const HEALTH_REASONS: [&str; 5] = [
    "restart_loop",
    "checkpoints_failing",
    "tasks_not_running",
    "stuck_starting",
    "submitter_restarting",
];

fn title(status: &str) -> String {
    let lower = status.to_ascii_lowercase();
    let mut c = lower.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reporting::summary::RecordError;
    use std::collections::BTreeMap;

    const README: &str = include_str!("../../../README.md");

    /// `Degraded_{a,b}` → `Degraded_a`, `Degraded_b`.
    fn expand(name: &str) -> Vec<String> {
        match (name.find('{'), name.find('}')) {
            (Some(open), Some(close)) if open < close => name[open + 1..close]
                .split(',')
                .flat_map(|alt| expand(&format!("{}{alt}{}", &name[..open], &name[close + 1..])))
                .collect(),
            _ => vec![name.to_string()],
        }
    }

    /// The README's metrics table: each metric it names, with its unit.
    fn readme_metrics() -> BTreeMap<String, String> {
        let table = README
            .split_once("| metric | unit | meaning |")
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("the README has no metrics table"));
        let mut out = BTreeMap::new();
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (names, unit) = (cells[1], cells[2]);
            for name in names.split('`').skip(1).step_by(2) {
                for n in expand(name) {
                    assert!(
                        out.insert(n.clone(), unit.to_string()).is_none(),
                        "{n} twice in the README"
                    );
                }
            }
        }
        out
    }

    #[test]
    fn the_readme_names_every_metric_emitted_with_its_unit_and_no_other() {
        let v = emf(&Summary::default(), Some(1.0), Utc::now());
        let emitted: BTreeMap<String, String> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let field = |k: &str| m[k].as_str().unwrap_or_default().to_string();
                (field("Name"), field("Unit"))
            })
            .collect();
        let readme = readme_metrics();
        assert!(readme.len() >= 25, "the README's table read: {readme:?}");
        for (name, unit) in &readme {
            assert_eq!(
                emitted.get(name),
                Some(unit),
                "{name} (README: {unit}) as emitted"
            );
        }
        for (name, unit) in &emitted {
            assert_eq!(
                readme.get(name),
                Some(unit),
                "{name} ({unit}) in the README"
            );
        }
    }

    #[test]
    fn emf_line_declares_every_value_it_carries() {
        let mut s = Summary {
            records_checked: 7,
            records_changed: 2,
            complete: true,
            elapsed_ms: 120,
            ..Default::default()
        };
        s.transitions.insert("CREATED->FAILED".into(), 1);
        s.transitions.insert("RUNNING->FAILED".into(), 2);
        s.errors.push(RecordError {
            job_id: "a".into(),
            system: System::Flink,
            error: "flink: HTTP 503".into(),
        });
        s.errors.push(RecordError {
            job_id: "b".into(),
            system: System::Kubernetes,
            // The text does not decide the count: the system does.
            error: "HTTP 503 from somewhere".into(),
        });
        let v = emf(&s, Some(180.0), Utc::now());
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(v["TransitionsToFailed"], 3.0);
        assert_eq!(v["Transitions"], 3.0);
        assert_eq!(
            (
                v["FlinkErrors"].clone(),
                v["KubernetesErrors"].clone(),
                v["MongoDBErrors"].clone()
            ),
            (json!(1.0), json!(1.0), json!(0.0))
        );
        assert_eq!(v["SyncLag"], 180.0);
        assert_eq!(v["RunComplete"], 1.0);
        for m in v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = m["Name"].as_str().unwrap_or_default();
            assert!(v[name].is_number(), "{name} declared without a value");
        }
    }
}
