//! Flink's REST answers read into the rules' types: the overview, a job's
//! details, its checkpoints and their config, a metric, the root cause of a
//! failure. Unknown fields and states pass through; entries whose `jid` is
//! not a JobID are dropped, so nothing else ever reaches a URL.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::Error;
use crate::rules::health::{Checkpoints, PointAt, Retention, Tasks, usable_path};
use crate::rules::model::{FlinkJobId, FlinkState};
use crate::rules::plan::FlinkJob;

/// `/jobs/overview`, deserialized straight into the map by JobID: at fleet
/// scale the overview is the largest answer a run reads, and no list of its
/// entries is ever held beside the map.
#[derive(Debug, Deserialize)]
struct Overview {
    #[serde(deserialize_with = "jobs_by_id")]
    jobs: HashMap<FlinkJobId, FlinkJob>,
}

fn jobs_by_id<'de, D>(d: D) -> Result<HashMap<FlinkJobId, FlinkJob>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Jobs;
    impl<'de> serde::de::Visitor<'de> for Jobs {
        type Value = HashMap<FlinkJobId, FlinkJob>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of jobs")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut map = HashMap::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(d) = seq.next_element::<JobDetails>()? {
                // Entries whose jid is not a JobID are dropped: nothing else
                // may ever reach a URL.
                if let Some(id) = FlinkJobId::parse(&d.jid) {
                    map.insert(id, FlinkJob::from(d));
                }
            }
            Ok(map)
        }
    }
    d.deserialize_seq(Jobs)
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobDetails {
    pub(crate) jid: String,
    state: String,
    #[serde(rename = "start-time", default = "minus_one")]
    start: i64,
    #[serde(rename = "end-time", default = "minus_one")]
    end: i64,
    /// Read leniently: a garbled value loses the counts, not the job.
    #[serde(default)]
    tasks: Option<serde_json::Value>,
    #[serde(rename = "last-modification", default)]
    last_modification: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<serde_json::Value>,
}

fn minus_one() -> i64 {
    -1
}

impl From<JobDetails> for FlinkJob {
    fn from(d: JobDetails) -> Self {
        FlinkJob {
            state: FlinkState::parse(&d.state),
            start_ms: d.start,
            end_ms: d.end,
            root_cause: None,
            tasks: d.tasks.as_ref().and_then(tasks_of),
            last_modification_ms: d
                .last_modification
                .as_ref()
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(-1),
            name: d
                .name
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .map(|n| crate::rules::model::truncate(n, 200).to_string())
                .unwrap_or_default(),
        }
    }
}

/// An overview entry's `tasks`: counts by task state; `None` unless the
/// three the health rule reads are whole numbers.
fn tasks_of(v: &serde_json::Value) -> Option<Tasks> {
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Some(Tasks {
        total: n("total")?,
        running: n("running")?,
        finished: n("finished").unwrap_or(0),
    })
}

/// The jobs of a `/jobs/overview` body by JobID. Unknown fields and states
/// pass through (the rule decides what a state means); entries whose `jid`
/// is not a JobID are dropped, so nothing else ever reaches a URL.
pub fn parse_overview(body: &[u8]) -> Result<HashMap<FlinkJobId, FlinkJob>, Error> {
    let overview: Overview = serde_json::from_slice(body)
        .map_err(|e| Error::flink("GET /jobs/overview: unreadable JSON", Some(Box::new(e))))?;
    Ok(overview.jobs)
}

/// `/jobs/{id}/checkpoints`: counts and the latest completed checkpoint,
/// savepoint and restore; `None` when Flink says checkpointing is not
/// enabled (the History Server serves that as a 200 `{"errors": [...]}`).
/// Unknown fields pass; a path that is Flink's placeholder, empty, huge or
/// discarded is none; an answer without counts is an error.
pub fn parse_checkpoints(body: &[u8]) -> Result<Option<Checkpoints>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable JSON ({e})"))?;
    if let Some(errors) = v.get("errors") {
        let text = errors.to_string();
        if text.contains("not been enabled") || text.contains("not enabled") {
            return Ok(None);
        }
        return Err(format!(
            "Flink answered errors: {}",
            crate::rules::model::truncate(&text, 120)
        ));
    }
    let n = |p: &str| v.pointer(p).and_then(serde_json::Value::as_u64);
    let (Some(completed), Some(failed)) = (n("/counts/completed"), n("/counts/failed")) else {
        return Err("an answer without counts".to_string());
    };
    let ms = |e: &serde_json::Value, k: &str| {
        e.get(k)
            .and_then(serde_json::Value::as_i64)
            .filter(|ms| *ms > 0)
            .and_then(|ms| chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, ms).single())
    };
    let point = |p: &str| {
        let entry = v.pointer(p).filter(|e| !e.is_null())?;
        // A checkpoint Flink already deleted (subsumed by a savepoint stop,
        // or a cancel without retention) is no place to resume from.
        if entry.get("discarded").and_then(serde_json::Value::as_bool) == Some(true) {
            return None;
        }
        let path = usable_path(entry.get("external_path")?.as_str()?)?;
        Some(PointAt {
            id: entry.get("id").and_then(serde_json::Value::as_u64),
            path,
            at: ms(entry, "latest_ack_timestamp"),
        })
    };
    Ok(Some(Checkpoints {
        completed,
        failed,
        last_completed_id: n("/latest/completed/id"),
        last_completed_at: v
            .pointer("/latest/completed")
            .and_then(|e| ms(e, "latest_ack_timestamp")),
        last_completed: point("/latest/completed"),
        last_savepoint: point("/latest/savepoint"),
        restored_from: v
            .pointer("/latest/restored/external_path")
            .and_then(serde_json::Value::as_str)
            .and_then(usable_path),
        interval_ms: None,
        retention: None,
    }))
}

/// `/jobs/{id}/checkpoints/config`: the interval (ms; Long.MAX when
/// checkpointing is off) and what Flink keeps when the job ends.
pub fn parse_checkpoint_config(body: &[u8]) -> Result<(u64, Option<Retention>), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable JSON ({e})"))?;
    let interval = v
        .get("interval")
        .and_then(serde_json::Value::as_u64)
        .ok_or("a config without an interval")?;
    let flag = |k: &str| {
        v.pointer(&format!("/externalization/{k}"))
            .and_then(serde_json::Value::as_bool)
    };
    let retention = match (flag("enabled"), flag("delete_on_cancellation")) {
        (Some(false), _) => Some(Retention::NotRetained),
        (Some(true), Some(delete)) => Some(Retention::from_flags(true, delete)),
        _ => None,
    };
    Ok((interval, retention))
}

/// One metric of a `/metrics?get=` answer (`[{"id","value"}]`, values as
/// strings); `None` while Flink has none.
pub fn parse_metric(body: &[u8], name: &str) -> Result<Option<u64>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable JSON ({e})"))?;
    let entries = v.as_array().ok_or("not a list of metrics")?;
    let Some(entry) = entries
        .iter()
        .find(|e| e.get("id").and_then(serde_json::Value::as_str) == Some(name))
    else {
        return Ok(None);
    };
    let value = entry.get("value").ok_or("a metric without a value")?;
    let text = value
        .as_str()
        .map(str::to_string)
        .unwrap_or(value.to_string());
    let parsed = text
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0);
    match parsed {
        Some(f) if f.fract() == 0.0 && f < 9.0e15 => Ok(Some(f as u64)),
        _ => Err(format!(
            "{name} is not a count: {:?}",
            crate::rules::model::truncate(&text, 40)
        )),
    }
}

/// Reads both shapes: Flink 1.x `root-exception`, and 2.x
/// `exceptionHistory.entries[0]`. The deepest `Caused by:` of a stack trace is
/// the root; a wrapper such as "Recovery is suppressed" is named after it.
pub fn root_cause_of(v: &serde_json::Value) -> Option<String> {
    let from_trace = |trace: &str| -> Option<String> {
        let first = trace
            .lines()
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty())?;
        let deepest = trace
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Caused by:").map(str::trim))
            .rfind(|c| !c.is_empty());
        Some(match deepest {
            Some(root) if root != first => format!("{root} (via {first})"),
            _ => first.to_string(),
        })
    };
    if let Some(entry) = v.pointer("/exceptionHistory/entries/0") {
        if let Some(trace) = entry.get("stacktrace").and_then(|s| s.as_str())
            && let Some(cause) = from_trace(trace)
        {
            return Some(cause);
        }
        // An empty name says nothing: a FAILED record keeps no empty reason
        // (found by the `flink_json` fuzz target).
        if let Some(name) = entry
            .get("exceptionName")
            .and_then(|s| s.as_str())
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            return Some(name.to_string());
        }
    }
    v.get("root-exception")
        .and_then(|s| s.as_str())
        .and_then(from_trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Arbitrary JSON, nested a few levels.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            "[0-9a-f]{32}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("jobs".to_string()),
                        Just("jid".to_string()),
                        Just("state".to_string()),
                        Just("start-time".to_string()),
                        Just("end-time".to_string()),
                        Just("exceptionHistory".to_string()),
                        Just("entries".to_string()),
                        Just("stacktrace".to_string()),
                        Just("root-exception".to_string()),
                        "[a-z-]{1,12}",
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any body parses or is an error, without panicking.
        #[test]
        fn any_overview_body_parses_or_errs_and_yields_only_job_ids(v in json()) {
            let body = serde_json::to_vec(&v).unwrap_or_default();
            // Every JobID that comes out was a `jid` of the input: none is
            // made up or taken from another field.
            let jids: Vec<&str> = v["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|j| j["jid"].as_str())
                .collect();
            match parse_overview(&body) {
                Ok(jobs) => {
                    for id in jobs.keys() {
                        prop_assert!(jids.contains(&id.as_str()), "{id} not in {jids:?}");
                    }
                }
                Err(e) => prop_assert!(e.detail().starts_with("GET /jobs/overview: "), "{e}"),
            }
            let _ = root_cause_of(&v);
        }

        /// An overview's jobs come out exactly: every entry whose jid is a
        /// JobID, and none of the others.
        #[test]
        fn overview_shaped_bodies_yield_exactly_their_job_ids(
            entries in proptest::collection::vec(("[0-9a-f]{32}|[0-9A-Za-z./]{0,40}", "[A-Z]{1,12}"), 0..12)
        ) {
            let jobs: Vec<serde_json::Value> = entries
                .iter()
                .map(|(jid, state)| serde_json::json!({"jid": jid, "state": state, "start-time": 1}))
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({"jobs": jobs})).unwrap_or_default();
            let parsed = parse_overview(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut got: Vec<&str> = parsed.keys().map(FlinkJobId::as_str).collect();
            got.sort();
            let mut want: Vec<&str> = entries
                .iter()
                .map(|(jid, _)| jid.as_str())
                .filter(|jid| FlinkJobId::parse(jid).is_some())
                .collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(got, want);
        }

        /// Unknown states and extra fields are kept, not refused.
        #[test]
        fn unknown_states_and_fields_are_tolerated(id in "[0-9a-f]{32}", state in "[A-Z_]{1,20}", extra in ".{0,20}") {
            let body = serde_json::json!({"jobs": [{"jid": id, "state": state, "start-time": 5, "end-time": -1,
                "name": extra, "tasks": {"total": 1}, "new-field": [1, 2]}]});
            let jobs = parse_overview(&serde_json::to_vec(&body).unwrap_or_default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let job = jobs.values().next().ok_or_else(|| TestCaseError::fail("the job"))?;
            prop_assert_eq!(job.state.as_str(), state.as_str());
        }

        /// Bytes that are not JSON are an error naming the endpoint.
        #[test]
        fn garbage_bytes_are_an_error_naming_the_endpoint(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            match parse_overview(&bytes) {
                Err(e) => prop_assert!(e.detail().starts_with("GET /jobs/overview: ")),
                // Only an overview parses, and an overview is JSON.
                Ok(_) => prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()),
            }
        }
    }

    #[test]
    fn root_cause_of_flink_2_exception_history_is_the_deepest_cause() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/flink/exceptions_2x_failed.json"
        ))
        .expect("fixture");
        let cause = root_cause_of(&v).expect("a cause");
        assert!(
            cause.starts_with("java.lang.NumberFormatException: For input string"),
            "{cause}"
        );
        assert!(
            cause.contains("via org.apache.flink.runtime.JobException"),
            "{cause}"
        );
    }

    #[test]
    fn root_cause_of_flink_1_root_exception() {
        let v = serde_json::json!({"root-exception": "java.lang.RuntimeException: boom\n\tat X.y(X.java:1)\nCaused by: java.io.IOException: disk\n\tat Z", "all-exceptions": []});
        assert_eq!(
            root_cause_of(&v).as_deref(),
            Some("java.io.IOException: disk (via java.lang.RuntimeException: boom)")
        );
        assert_eq!(
            root_cause_of(&serde_json::json!({"exceptionHistory": {"entries": []}})),
            None
        );
    }

    #[test]
    fn an_empty_exception_name_or_cause_is_no_reason() {
        let v = serde_json::json!({"exceptionHistory": {"entries": [{"exceptionName": " "}]}});
        assert_eq!(root_cause_of(&v), None);
        let v = serde_json::json!({
            "exceptionHistory": {"entries": [{"exceptionName": ""}]},
            "root-exception": "java.lang.IllegalStateException: boom\nCaused by: \n",
        });
        assert_eq!(
            root_cause_of(&v).as_deref(),
            Some("java.lang.IllegalStateException: boom")
        );
    }

    #[test]
    fn overview_fixture_parses_with_minus_one_end_time_default() {
        let o: Overview = serde_json::from_str(include_str!(
            "../../../tests/fixtures/flink/overview_finished_failed.json"
        ))
        .expect("fixture");
        assert_eq!(o.jobs.len(), 2);
        let d: JobDetails = serde_json::from_str(r#"{"jid":"a","state":"RUNNING","start-time":5}"#)
            .expect("parses");
        assert_eq!((d.start, d.end), (5, -1));
    }
}
