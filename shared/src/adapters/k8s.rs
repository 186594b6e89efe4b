//! Kubernetes adapter: lists the product's Jobs and pods once per namespace,
//! reads the submitting pods' logs (tail and byte limits, bounded
//! concurrency) and condenses them into the facts the sync rule decides on;
//! for cleanup, lists when each Job ended and deletes Jobs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::{AsyncReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams};

use crate::config::KubeSettings;
use crate::error::Error;
use crate::rules::cleanup::JobEnd;
use crate::rules::model::{Unobserved, is_dns_label, is_dns_subdomain};
use crate::rules::plan::{JobFacts, LogFacts, PodFacts, Waiting};
use crate::rules::podlog;

/// The Kubernetes API, as the product uses it: the product's Jobs (by
/// label selector), their pods and the pods' logs.
#[derive(Clone)]
pub struct Kubernetes {
    client: kube::Client,
    namespace: String,
    selector: String,
    tail_lines: i64,
    limit_bytes: i64,
    concurrency: usize,
}

/// A listed Job, reduced as its page arrives to what the rule reads of it,
/// so a run never holds a namespace's full Job and pod objects.
#[derive(Debug, Clone)]
pub struct JobLite {
    /// The Job's name.
    pub name: String,
    /// The Job's uid, which its pods' owner references name.
    pub uid: String,
    /// Condition `Complete` is true.
    pub complete: bool,
    /// `reason: message` of a true `Failed` condition.
    pub failed: Option<String>,
}

/// A listed pod, reduced likewise.
#[derive(Debug, Clone)]
pub struct PodLite {
    /// The pod's name.
    pub name: String,
    /// When the pod was created (the oldest announced JobID is the first submitted).
    pub created: Option<DateTime<Utc>>,
    /// The controlling Job's uid, else the `job-name` label.
    pub owner_uid: Option<String>,
    /// The `job-name` label, for pods without an owner reference.
    pub job_name_label: Option<String>,
    /// Running or done, with a container past waiting: a log exists.
    pub started: bool,
    /// The first container, whose log is read.
    pub container: Option<String>,
    /// Reason and message of a waiting first container.
    pub waiting: Option<(String, String)>,
    /// Exit code of a terminated first container.
    pub exit_code: Option<i32>,
    /// Restarts of its containers (attached-mode submitters restart in place).
    pub restarts: u32,
}

/// A Job with its pods, as listed.
#[derive(Debug, Clone)]
pub struct ListedJob {
    /// The Job.
    pub job: JobLite,
    /// Its pods, in list order.
    pub pods: Vec<PodLite>,
}

/// A listed Job condensed to what sync decides on: its facts before any log
/// is read, and the started pods whose logs to read.
#[derive(Debug, Clone)]
pub struct CondensedJob {
    /// The Job's facts, with no log read yet.
    pub facts: JobFacts,
    /// Started pods (name, container), oldest first.
    pub started: Vec<(String, Option<String>)>,
    /// Container restarts of the newest pod: the submitter restarting.
    pub submitter_restarts: Option<u32>,
}

impl From<&ListedJob> for CondensedJob {
    fn from(listed: &ListedJob) -> Self {
        CondensedJob {
            facts: summarize(listed),
            started: started_pods(&listed.pods),
            submitter_restarts: pods_by_age(&listed.pods).last().map(|p| p.restarts),
        }
    }
}

/// The Job's condition of type `kind` when it is true (`Complete`, `Failed`).
pub fn true_condition<'a>(
    job: &'a Job,
    kind: &str,
) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
}

/// A Kubernetes timestamp as a chrono one.
pub fn to_utc(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    Utc.timestamp_millis_opt(t.0.as_millisecond()).single()
}

impl From<Job> for JobLite {
    fn from(job: Job) -> Self {
        let failed = true_condition(&job, "Failed").map(|c| {
            let reason = c.reason.clone().unwrap_or_else(|| "Failed".to_string());
            match c.message.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => format!("{reason}: {m}"),
                None => reason,
            }
        });
        JobLite {
            complete: true_condition(&job, "Complete").is_some(),
            failed,
            name: job.metadata.name.unwrap_or_default(),
            uid: job.metadata.uid.unwrap_or_default(),
        }
    }
}

impl From<Pod> for PodLite {
    fn from(p: Pod) -> Self {
        let created = p.metadata.creation_timestamp.as_ref().and_then(to_utc);
        let owner_uid = p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "Job" && o.controller == Some(true))
            .map(|o| o.uid.clone());
        let job_name_label = p.metadata.labels.as_ref().and_then(|l| {
            l.get("batch.kubernetes.io/job-name")
                .or_else(|| l.get("job-name"))
                .cloned()
        });
        let status = p.status.as_ref();
        let statuses = status.and_then(|s| s.container_statuses.as_ref());
        let phase = status.and_then(|s| s.phase.as_deref());
        let running_or_done = matches!(phase, Some("Running" | "Succeeded" | "Failed"));
        let container_started = statuses.is_some_and(|cs| {
            cs.iter()
                .any(|c| c.state.as_ref().is_some_and(|st| st.waiting.is_none()))
        });
        let state = statuses
            .and_then(|cs| cs.first())
            .and_then(|c| c.state.as_ref());
        PodLite {
            waiting: state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| Some((w.reason.clone()?, w.message.clone().unwrap_or_default()))),
            exit_code: state
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code),
            restarts: statuses
                .into_iter()
                .flatten()
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .fold(0u32, u32::saturating_add),
            started: running_or_done && container_started,
            container: p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone()),
            name: p.metadata.name.unwrap_or_default(),
            created,
            owner_uid,
            job_name_label,
        }
    }
}

impl Kubernetes {
    /// The adapter over a client built elsewhere.
    pub fn new(client: kube::Client, settings: &KubeSettings) -> Self {
        Kubernetes {
            client,
            namespace: settings.namespace.clone(),
            selector: settings.job_selector.clone(),
            tail_lines: settings.log_tail_lines,
            limit_bytes: settings.log_limit_bytes,
            concurrency: settings.log_concurrency,
        }
    }

    /// The adapter over a client from the settings (see [`client_for`]).
    pub async fn connect(settings: &KubeSettings) -> Result<Self, Error> {
        Ok(Kubernetes::new(client_for(settings).await?, settings))
    }

    /// The namespace of records that name none (`K8S_NAMESPACE`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The product's Jobs in `ns` by name, each with its pods: one Job list and
    /// one pod list.
    pub async fn jobs_in(&self, ns: &str) -> Result<HashMap<String, CondensedJob>, Error> {
        let params = ListParams::default().labels(&self.selector);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let (jobs, pods) = futures::try_join!(
            list_all(&jobs, &params, JobLite::from),
            list_all(&pods, &params, PodLite::from)
        )
        .map_err(Error::kube(format!(
            "listing Jobs and pods in namespace {ns}"
        )))?;
        let mut by_uid: HashMap<String, ListedJob> = HashMap::new();
        let mut uid_of_name: HashMap<String, String> = HashMap::new();
        for job in jobs {
            if job.name.is_empty() || job.uid.is_empty() {
                continue;
            }
            uid_of_name.insert(job.name.clone(), job.uid.clone());
            by_uid.insert(
                job.uid.clone(),
                ListedJob {
                    job,
                    pods: Vec::new(),
                },
            );
        }
        for pod in pods {
            let owner = pod.owner_uid.clone().or_else(|| {
                pod.job_name_label
                    .as_ref()
                    .and_then(|n| uid_of_name.get(n).cloned())
            });
            if let Some(listed) = owner.and_then(|uid| by_uid.get_mut(&uid)) {
                listed.pods.push(pod);
            }
        }
        Ok(by_uid
            .into_values()
            .map(|l| (l.job.name.clone(), CondensedJob::from(&l)))
            .collect())
    }

    /// Condenses a listed Job into facts, reading the logs of its started pods.
    pub async fn facts(&self, ns: &str, job: &CondensedJob) -> JobFacts {
        let mut facts = job.facts.clone();
        let started = &job.started;
        if started.is_empty() {
            return facts;
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        // Oldest first, so the first JobID announced is the first submitted.
        // Collected first: a stream over a closure's futures cannot be
        // proven Send for every lifetime, and the observer needs it Send.
        let reads: Vec<_> = started
            .iter()
            .map(|(name, container)| self.read_log(&pods, name, container.as_deref()))
            .collect();
        let reads = futures::stream::iter(reads)
            .buffered(self.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut ids = Vec::new();
        let mut tail = String::new();
        for read in reads {
            match read {
                Ok(bytes) => {
                    for id in podlog::submitted_job_ids(&bytes) {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                    tail = podlog::tail_text(&bytes, 15, 1500);
                }
                Err(e) => {
                    facts.log = LogFacts::Unreadable(Unobserved::Unanswered(e.detail()));
                    return facts;
                }
            }
        }
        facts.log = LogFacts::Read { ids, tail };
        facts
    }

    async fn read_log(
        &self,
        pods: &Api<Pod>,
        name: &str,
        container: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let params = LogParams {
            tail_lines: Some(self.tail_lines),
            limit_bytes: Some(self.limit_bytes),
            container: container.map(str::to_string),
            ..Default::default()
        };
        let mut stream = pods
            .log_stream(name, &params)
            .await
            .map_err(Error::kube(format!("pod {name}")))?;
        let mut buf = Vec::new();
        // The server honours limitBytes; this cap guards against one that does not.
        let cap = u64::try_from(self.limit_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1024);
        (&mut stream)
            .take(cap)
            .read_to_end(&mut buf)
            .await
            .map_err(|source| Error::KubeRead {
                context: format!("pod {name}: reading the log"),
                source,
            })?;
        Ok(buf)
    }

    /// Every product Job in `ns` with when it ended, for cleanup.
    pub async fn job_ends(&self, ns: &str) -> Result<Vec<JobEnd>, Error> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let params = ListParams::default().labels(&self.selector);
        let ends = list_all(&jobs, &params, |j| {
            Some(JobEnd {
                finished_at: finished_at(&j),
                name: j.metadata.name?,
            })
        })
        .await
        .map_err(Error::kube(format!("listing Jobs in namespace {ns}")))?;
        Ok(ends.into_iter().flatten().collect())
    }

    /// Deletes a Job and, in the background, its pods; one already gone counts as deleted.
    pub async fn delete_job(&self, ns: &str, name: &str) -> Result<(), Error> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        match jobs.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::kube(format!("deleting Job {name}"))(e)),
        }
    }
}

/// A client from the settings: the kubeconfig document read from Secrets
/// Manager, else `KUBECONFIG` (or `~/.kube/config`), else the in-cluster
/// service account.
pub async fn client_for(settings: &KubeSettings) -> Result<kube::Client, Error> {
    let mut config = match &settings.kubeconfig {
        Some(doc) => {
            let kubeconfig = kube::config::Kubeconfig::from_yaml(doc.expose()).map_err(|e| {
                Error::kube_config("KUBECONFIG_SECRET_ARN: not a kubeconfig", Some(Box::new(e)))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| Error::kube_config("the kubeconfig secret", Some(Box::new(e))))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            Error::kube_config(
                "from KUBECONFIG, ~/.kube/config or the in-cluster account",
                Some(Box::new(e)),
            )
        })?,
    };
    if config.accept_invalid_certs {
        tracing::warn!("the kubeconfig turns TLS verification off for the Kubernetes API");
    }
    // kube-rs retries 429, 503 and 504 up to 15 times with a backoff of up
    // to 1000 s: one throttled API would hold a run for minutes, past its
    // deadline. A run reports the error and the next run tries again.
    config.default_retry = false;
    config.connect_timeout = Some(settings.timeout);
    config.read_timeout = Some(settings.timeout);
    config.write_timeout = Some(settings.timeout);
    kube::Client::try_from(config).map_err(Error::kube("building the client"))
}

/// Every object the list selects, page by page, each reduced by `reduce` as
/// its page arrives.
async fn list_all<K, T>(
    api: &Api<K>,
    params: &ListParams,
    reduce: impl Fn(K) -> T,
) -> Result<Vec<T>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = params.clone().limit(500);
    let mut out = Vec::new();
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items.into_iter().map(&reduce));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// When a Job finished, read from its status.
pub fn finished_at(job: &Job) -> Option<DateTime<Utc>> {
    let status = job.status.as_ref()?;
    if let Some(complete) = true_condition(job, "Complete") {
        return status
            .completion_time
            .as_ref()
            .and_then(to_utc)
            .or_else(|| complete.last_transition_time.as_ref().and_then(to_utc));
    }
    true_condition(job, "Failed")
        .and_then(|c| c.last_transition_time.as_ref())
        .and_then(to_utc)
}

fn pods_by_age(pods: &[PodLite]) -> Vec<&PodLite> {
    let mut sorted: Vec<&PodLite> = pods.iter().collect();
    sorted.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    sorted
}

/// The pods whose container has started (so a log exists), oldest first, with
/// the container to read; at most the four newest.
fn started_pods(pods: &[PodLite]) -> Vec<(String, Option<String>)> {
    let started: Vec<(String, Option<String>)> = pods_by_age(pods)
        .into_iter()
        .filter(|p| p.started && is_dns_subdomain(&p.name))
        // Names from the API go into a URL: a container that is not a
        // Kubernetes name is not asked for (the pod's default is read).
        .map(|p| {
            let container = p.container.clone().filter(|c| is_dns_label(c));
            (p.name.clone(), container)
        })
        .collect();
    let skip = started.len().saturating_sub(4);
    started.into_iter().skip(skip).collect()
}

/// The Job's own facts (conditions, newest pod), before any log is read.
pub fn summarize(listed: &ListedJob) -> JobFacts {
    let pod = pods_by_age(&listed.pods).last().map(|p| PodFacts {
        name: p.name.clone(),
        waiting: p.waiting.as_ref().map(|(reason, message)| Waiting {
            reason: reason.clone(),
            message: message.clone(),
            since: p.created,
        }),
        exit_code: p.exit_code,
    });
    JobFacts {
        name: listed.job.name.clone(),
        complete: listed.job.complete,
        failed: listed.job.failed.clone(),
        pod,
        log: LogFacts::NotStarted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_job_age_counts_from_the_failed_condition() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"},
            "status": {"conditions": [
                {"type": "FailureTarget", "status": "True", "lastTransitionTime": "2026-11-20T00:00:00Z"},
                {"type": "Failed", "status": "True", "lastTransitionTime": "2026-11-21T00:00:00Z"}]}
        }))
        .unwrap_or_default();
        assert_eq!(
            finished_at(&job).map(|t| t.to_rfc3339()),
            Some("2026-11-21T00:00:00+00:00".to_string())
        );
        let complete: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "y"},
            "status": {"completionTime": "2026-11-22T00:00:00Z", "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-22T00:00:01Z"}]}
        }))
        .unwrap_or_default();
        assert_eq!(
            finished_at(&complete).map(|t| t.to_rfc3339()),
            Some("2026-11-22T00:00:00+00:00".to_string())
        );
        let running: Job = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "z"}, "status": {"active": 1}}),
        )
        .unwrap_or_default();
        assert_eq!(finished_at(&running), None);
    }
}
