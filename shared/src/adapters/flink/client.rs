//! One Flink cluster's REST API: the JobManager, and the History Server
//! when configured. It fetches facts and decides nothing; it only tells a
//! trusted "unknown job" (the server answered 404) from "no trustworthy
//! answer".

use std::collections::HashMap;
use std::time::Duration;

use crate::adapters::flink::parse::{
    JobDetails, parse_checkpoint_config, parse_checkpoints, parse_metric, parse_overview,
    root_cause_of,
};
use crate::config::FlinkSettings;
use crate::error::Error;
use crate::rules::health::{Checkpoints, HealthFacts};
use crate::rules::model::{FlinkJobId, Unobserved};
use crate::rules::plan::{FlinkFacts, FlinkJob};

/// Flink's REST API: the JobManager, and the History Server when configured.
#[derive(Debug, Clone)]
pub struct FlinkClient {
    http: reqwest::Client,
    base: String,
    history: Option<String>,
}

/// Intervals from here up mean checkpointing is off (Flink says Long.MAX_VALUE).
const CHECKPOINTING_DISABLED: u64 = 1 << 62;

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
            Lookup::Failed(e) => FlinkFacts::Unavailable(Unobserved::Unanswered(e.detail())),
            Lookup::NotFound => match &self.history {
                None => FlinkFacts::Missing,
                Some(history) => match self.lookup(history, id).await {
                    Lookup::Found(job) => FlinkFacts::Found(job),
                    Lookup::NotFound => FlinkFacts::Missing,
                    Lookup::Failed(e) => FlinkFacts::Unavailable(Unobserved::Unanswered(format!(
                        "history server: {}",
                        e.detail()
                    ))),
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
            checkpoints: checkpoints.map_err(|e| Unobserved::Unanswered(e.detail())),
            restarts: restarts.map_err(|e| Unobserved::Unanswered(e.detail())),
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
