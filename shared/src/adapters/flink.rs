//! Flink REST adapter: fetches job facts from the JobManager (and the History
//! Server, when configured). It decides nothing; it only tells a trusted
//! "unknown job" (the server answered 404) from "no trustworthy answer".

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;

use crate::config::FlinkSettings;
use crate::error::Error;
use crate::rules::health::{Checkpoints, HealthFacts, PointAt, Retention, Tasks, usable_path};
use crate::rules::model::FlinkJobId;
use crate::rules::plan::{FlinkFacts, FlinkJob};

/// Flink's REST API: the JobManager, and the History Server when configured.
#[derive(Debug, Clone)]
pub struct FlinkClient {
    http: reqwest::Client,
    base: String,
    history: Option<String>,
}

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
struct JobDetails {
    jid: String,
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
            state: d.state,
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

/// Intervals from here up mean checkpointing is off (Flink says Long.MAX_VALUE).
const CHECKPOINTING_DISABLED: u64 = 1 << 62;

/// Every Flink cluster sync follows: the one `FLINK_REST_URL` names (for
/// records without `flink_cluster`) and those `FLINK_CLUSTERS` names.
#[derive(Debug, Clone, Default)]
pub struct FlinkClusters {
    default: Option<FlinkClient>,
    named: BTreeMap<String, FlinkClient>,
}

impl From<FlinkClient> for FlinkClusters {
    fn from(default: FlinkClient) -> Self {
        FlinkClusters::single(default)
    }
}

impl FlinkClusters {
    /// The clients the settings describe (sync needs at least one cluster).
    pub fn from_settings(settings: &FlinkSettings) -> Result<Self, Error> {
        settings.require_a_cluster()?;
        let client = |rest: &str, history: Option<&str>| {
            FlinkClient::with_tls(rest, history, settings.timeout, !settings.tls_insecure)
        };
        let default = match &settings.rest_url {
            Some(rest) => Some(client(rest, settings.history_url.as_deref())?),
            None => None,
        };
        let mut named = BTreeMap::new();
        for (name, urls) in &settings.clusters {
            named.insert(
                name.clone(),
                client(&urls.rest_url, urls.history_url.as_deref())?,
            );
        }
        Ok(FlinkClusters { default, named })
    }

    /// One cluster, for the records without `flink_cluster`.
    pub fn single(default: FlinkClient) -> Self {
        FlinkClusters {
            default: Some(default),
            named: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the cluster records name `name`.
    pub fn insert(&mut self, name: &str, client: FlinkClient) {
        self.named.insert(name.to_string(), client);
    }

    /// The names of the clusters `FLINK_CLUSTERS` configures.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    /// The client of a record's cluster; an error, in words that name the
    /// known clusters, for one that is not configured.
    pub fn client(&self, cluster: Option<&str>) -> Result<&FlinkClient, String> {
        let found = match cluster {
            None => self.default.as_ref(),
            Some(name) => self.named.get(name),
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            match cluster {
                None => {
                    "the record names no flink_cluster and FLINK_REST_URL is not set".to_string()
                }
                Some(name) => format!(
                    "flink_cluster {:?} is not in FLINK_CLUSTERS (known: {})",
                    crate::rules::model::truncate(name, 80),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            }
        })
    }
}

/// The answer for one job from one server.
enum Lookup {
    Found(FlinkJob),
    NotFound,
    Failed(Error),
}

impl FlinkClient {
    /// The client the settings describe (sync requires `FLINK_REST_URL`).
    pub fn from_settings(settings: &FlinkSettings) -> Result<Self, Error> {
        FlinkClient::with_tls(
            settings.rest_url()?,
            settings.history_url.as_deref(),
            settings.timeout,
            !settings.tls_insecure,
        )
    }

    /// A client that verifies TLS certificates (the only kind tests and
    /// tools build).
    pub fn new(base: &str, history: Option<&str>, timeout: Duration) -> Result<Self, Error> {
        FlinkClient::with_tls(base, history, timeout, true)
    }

    /// `verify_tls: false` accepts any certificate; it is only reached by
    /// explicit configuration (`FLINK_TLS_INSECURE=true`) and says so.
    pub fn with_tls(
        base: &str,
        history: Option<&str>,
        timeout: Duration,
        verify_tls: bool,
    ) -> Result<Self, Error> {
        if !verify_tls {
            tracing::warn!("FLINK_TLS_INSECURE=true: Flink's TLS certificates are not verified");
        }
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(!verify_tls)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("flink-job-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::flink("building the HTTP client", Some(Box::new(e))))?;
        Ok(FlinkClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            history: history.map(|h| h.trim_end_matches('/').to_string()),
        })
    }

    /// `GET /jobs/overview`: every job the JobManager still knows, by JobID.
    pub async fn overview(&self) -> Result<HashMap<FlinkJobId, FlinkJob>, Error> {
        let url = format!("{}/jobs/overview", self.base);
        let body = self
            .get_ok(&url)
            .await?
            .ok_or_else(|| Error::flink("GET /jobs/overview: 404", None))?;
        parse_overview(&body)
    }

    /// Facts about a job absent from the overview: asks `/jobs/{id}`, then the
    /// History Server. Only answers that are 404 everywhere make a miss.
    pub async fn job(&self, id: &FlinkJobId) -> FlinkFacts {
        match self.lookup(&self.base, id).await {
            Lookup::Found(job) => FlinkFacts::Found(job),
            Lookup::Failed(e) => FlinkFacts::Unavailable(e.detail()),
            Lookup::NotFound => match &self.history {
                None => FlinkFacts::Missing,
                Some(history) => match self.lookup(history, id).await {
                    Lookup::Found(job) => FlinkFacts::Found(job),
                    Lookup::NotFound => FlinkFacts::Missing,
                    Lookup::Failed(e) => {
                        FlinkFacts::Unavailable(format!("history server: {}", e.detail()))
                    }
                },
            },
        }
    }

    async fn lookup(&self, base: &str, id: &FlinkJobId) -> Lookup {
        let url = format!("{base}/jobs/{id}");
        match self.get_ok(&url).await {
            Err(e) => Lookup::Failed(e),
            Ok(None) => Lookup::NotFound,
            Ok(Some(body)) => match serde_json::from_slice::<JobDetails>(&body) {
                Ok(d) if d.jid == id.as_str() => Lookup::Found(d.into()),
                Ok(d) => Lookup::Failed(Error::flink(
                    format!("GET /jobs/{id} answered for another job {:?}", d.jid),
                    None,
                )),
                Err(e) => Lookup::Failed(Error::flink(
                    format!("GET /jobs/{id}: unreadable JSON"),
                    Some(Box::new(e)),
                )),
            },
        }
    }

    /// The root cause of a failed job, in words, from `/jobs/{id}/exceptions`.
    pub async fn root_cause(&self, id: &FlinkJobId) -> Result<Option<String>, Error> {
        let url = format!("{}/jobs/{id}/exceptions", self.base);
        match self.get_ok(&url).await? {
            None => Ok(None),
            Some(body) => {
                let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    Error::flink(
                        format!("GET /jobs/{id}/exceptions: unreadable JSON"),
                        Some(Box::new(e)),
                    )
                })?;
                Ok(root_cause_of(&v))
            }
        }
    }

    /// A look at a job's health: its checkpoints (with their config, unless
    /// `known` already has it) and its restarts. Asks the JobManager, and
    /// the History Server for a job the JobManager no longer knows.
    pub async fn health(&self, id: &FlinkJobId, known: Option<&Checkpoints>) -> HealthFacts {
        let (checkpoints, restarts) =
            futures::join!(self.checkpoints(id, known), self.restarts(id));
        HealthFacts {
            checkpoints: checkpoints.map_err(|e| e.detail()),
            restarts: restarts.map_err(|e| e.detail()),
            submitter_restarts: None,
        }
    }

    /// `/jobs/{id}/checkpoints` and `/checkpoints/config`: `None` for a job
    /// without checkpointing (404, "not enabled", or an interval of
    /// Long.MAX) unless a savepoint was taken of it.
    async fn checkpoints(
        &self,
        id: &FlinkJobId,
        known: Option<&Checkpoints>,
    ) -> Result<Option<Checkpoints>, Error> {
        let path = format!("/jobs/{id}/checkpoints");
        let Some((base, body)) = self.get_either(&path).await? else {
            return Ok(None);
        };
        let unusable = |why: String| Error::flink(format!("GET {path}: {why}"), None);
        let Some(mut c) = parse_checkpoints(&body).map_err(unusable)? else {
            return Ok(None);
        };
        if let Some(k) = known.filter(|k| k.interval_ms.is_some()) {
            c.interval_ms = k.interval_ms;
            c.retention = k.retention;
            return Ok(Some(c));
        }
        let url = format!("{base}{path}/config");
        let Some(body) = self.get_ok(&url).await? else {
            return Ok(None);
        };
        let (interval, retention) = parse_checkpoint_config(&body)
            .map_err(|why| Error::flink(format!("GET {path}/config: {why}"), None))?;
        // Flink reports disabled checkpointing as an interval of
        // Long.MAX_VALUE: such a job has no checkpoint to keep, unless a
        // savepoint was taken of it.
        let disabled = interval >= CHECKPOINTING_DISABLED;
        if disabled && c.last_savepoint.is_none() && c.completed == 0 {
            return Ok(None);
        }
        c.interval_ms = (!disabled).then_some(interval);
        c.retention = retention;
        Ok(Some(c))
    }

    /// `numRestarts` from the job's metrics; `None` until Flink has a value.
    async fn restarts(&self, id: &FlinkJobId) -> Result<Option<u64>, Error> {
        let path = format!("/jobs/{id}/metrics?get=numRestarts");
        match self.get_either(&path).await? {
            None => Ok(None),
            Some((_, body)) => parse_metric(&body, "numRestarts")
                .map_err(|why| Error::flink(format!("GET {path}: {why}"), None)),
        }
    }

    /// A 200 from the JobManager, else from the History Server: the server's
    /// base and the body; `None` when both answer 404.
    async fn get_either(&self, path: &str) -> Result<Option<(&str, Vec<u8>)>, Error> {
        if let Some(body) = self.get_ok(&format!("{}{path}", self.base)).await? {
            return Ok(Some((&self.base, body)));
        }
        let Some(history) = &self.history else {
            return Ok(None);
        };
        Ok(self
            .get_ok(&format!("{history}{path}"))
            .await?
            .map(|b| (history.as_str(), b)))
    }

    /// The body of a 200, `None` for a 404, and an error for anything else.
    async fn get_ok(&self, url: &str) -> Result<Option<Vec<u8>>, Error> {
        // Errors name the path only: a base URL may carry credentials.
        let history = self.history.as_deref().and_then(|h| url.strip_prefix(h));
        let path = url
            .strip_prefix(&self.base)
            .or(history)
            .unwrap_or(url)
            .to_string();
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| request_failure(&path, e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::flink(format!("GET {path}: HTTP {status}"), None));
        }
        let body = resp.bytes().await.map_err(|e| request_failure(&path, e))?;
        // Into, not to_vec: the buffer is taken over, not copied (the
        // overview of a large cluster is megabytes).
        Ok(Some(body.into()))
    }
}

/// A request that got no answer, said without its URL.
fn request_failure(path: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // reqwest's Display includes the URL, which may carry credentials.
    let e = e.without_url();
    Error::flink(format!("GET {path}: {kind}"), Some(Box::new(e)))
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
            if let Ok(jobs) = parse_overview(&body) {
                for id in jobs.keys() {
                    prop_assert!(jids.contains(&id.as_str()), "{id} not in {jids:?}");
                }
            }
            let _ = root_cause_of(&v);
        }

        /// Unknown states and extra fields are kept, not refused.
        #[test]
        fn unknown_states_and_fields_are_tolerated(id in "[0-9a-f]{32}", state in "[A-Z_]{1,20}", extra in ".{0,20}") {
            let body = serde_json::json!({"jobs": [{"jid": id, "state": state, "start-time": 5, "end-time": -1,
                "name": extra, "tasks": {"total": 1}, "new-field": [1, 2]}]});
            let jobs = parse_overview(&serde_json::to_vec(&body).unwrap_or_default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let job = jobs.values().next().ok_or_else(|| TestCaseError::fail("the job"))?;
            prop_assert_eq!(&job.state, &state);
        }

        /// Bytes that are not JSON are an error naming the endpoint.
        #[test]
        fn garbage_bytes_are_an_error_naming_the_endpoint(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = parse_overview(&bytes) {
                prop_assert!(e.detail().starts_with("GET /jobs/overview: "));
            }
        }
    }

    #[test]
    fn root_cause_of_flink_2_exception_history_is_the_deepest_cause() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/flink/exceptions_2x_failed.json"
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
            "../../tests/fixtures/flink/overview_finished_failed.json"
        ))
        .expect("fixture");
        assert_eq!(o.jobs.len(), 2);
        let d: JobDetails = serde_json::from_str(r#"{"jid":"a","state":"RUNNING","start-time":5}"#)
            .expect("parses");
        assert_eq!((d.start, d.end), (5, -1));
    }
}
