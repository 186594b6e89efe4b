//! Run metrics as CloudWatch Embedded Metric Format: one JSON line on stdout
//! per run, which Lambda's log pipeline turns into metrics (no API calls).
//! Namespace `FlinkJobSync`; metric names are listed in the README.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::reporting::summary::Summary;
use crate::rules::model::System;

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

/// The EMF document for a run. `lag_seconds`: time since the start of the
/// last complete run over every non-final record (this one, if it was).
pub fn emf(summary: &Summary, lag_seconds: Option<f64>, now: DateTime<Utc>) -> Value {
    let (flink, kube, mongo) = errors_by_kind(summary);
    let mut fields = Map::new();
    let mut metrics = Vec::new();
    let mut put = |name: &str, unit: &str, value: f64| {
        metrics.push(json!({"Name": name, "Unit": unit}));
        fields.insert(name.to_string(), json!(value));
    };
    put("RecordsChecked", "Count", summary.records_checked as f64);
    put("RecordsChanged", "Count", summary.records_changed as f64);
    put(
        "Transitions",
        "Count",
        summary.transitions.values().sum::<usize>() as f64,
    );
    for status in [
        "CREATED",
        "RUNNING",
        "SUSPENDED",
        "FINISHED",
        "FAILED",
        "CANCELLED",
    ] {
        let n: usize = summary
            .transitions
            .iter()
            .filter(|(k, _)| k.ends_with(&format!("->{status}")))
            .map(|(_, v)| v)
            .sum();
        put(
            &format!("TransitionsTo{}", title(status)),
            "Count",
            n as f64,
        );
    }
    put("Conflicts", "Count", summary.conflicts as f64);
    put("MalformedRecords", "Count", summary.malformed.len() as f64);
    put("FlinkErrors", "Count", flink as f64);
    put("KubernetesErrors", "Count", kube as f64);
    put("MongoDBErrors", "Count", mongo as f64);
    put("EventsPending", "Count", summary.events_pending as f64);
    put("UntrackedJobs", "Count", summary.untracked_count as f64);
    put("HealthChecked", "Count", summary.health_checked as f64);
    put("HealthChanges", "Count", summary.health_changes as f64);
    put("DegradedJobs", "Count", summary.degraded_jobs as f64);
    for code in HEALTH_REASONS {
        let n = summary.degraded.get(code).copied().unwrap_or(0);
        put(&format!("Degraded_{code}"), "Count", n as f64);
    }
    put("RunDuration", "Milliseconds", summary.elapsed_ms as f64);
    put(
        "RunComplete",
        "Count",
        if summary.complete { 1.0 } else { 0.0 },
    );
    if let Some(lag) = lag_seconds {
        put("SyncLag", "Seconds", lag);
    }
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
