//! Kubernetes adapter: lists the product's Jobs and pods once per namespace,
//! reads the submitting pods' logs (tail and byte limits, bounded
//! concurrency), and condenses them into the facts the rule decides on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::{AsyncReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use crate::error::Error;
use crate::model::is_dns_subdomain;
use crate::plan::{JobFacts, LogFacts, PodFacts, Waiting};
use crate::podlog;

#[derive(Clone)]
pub struct KubeObserver {
    client: kube::Client,
    selector: String,
    tail_lines: i64,
    limit_bytes: i64,
    concurrency: usize,
}

/// A Job with its pods, as listed.
#[derive(Debug, Clone)]
pub struct ListedJob {
    pub job: Job,
    pub pods: Vec<Pod>,
}

/// A listed Job condensed to what sync decides on: its facts before any log
/// is read, and the started pods whose logs to read. Condensed at list time,
/// so a run never holds the namespace's Job and pod objects.
#[derive(Debug, Clone)]
pub struct CondensedJob {
    pub facts: JobFacts,
    pub started: Vec<(String, Option<String>)>,
}

impl From<&ListedJob> for CondensedJob {
    fn from(listed: &ListedJob) -> Self {
        CondensedJob {
            facts: summarize(listed),
            started: started_pods(&listed.pods),
        }
    }
}

impl KubeObserver {
    pub fn new(client: kube::Client, cfg: &crate::Config) -> Self {
        KubeObserver {
            client,
            selector: cfg.k8s_job_selector.clone(),
            tail_lines: cfg.log_tail_lines,
            limit_bytes: cfg.log_limit_bytes,
            concurrency: cfg.log_concurrency,
        }
    }

    /// A client from the configuration: the kubeconfig document read from
    /// Secrets Manager, else `KUBECONFIG` (or `~/.kube/config`), else the
    /// in-cluster service account.
    pub async fn client_for(cfg: &crate::Config) -> Result<kube::Client, Error> {
        let mut config = match &cfg.kubeconfig {
            Some(doc) => {
                let kubeconfig =
                    kube::config::Kubeconfig::from_yaml(doc.expose()).map_err(|e| {
                        Error::KubeConfig(format!("KUBECONFIG_SECRET_ARN: not a kubeconfig ({e})"))
                    })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|e| Error::KubeConfig(e.to_string()))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| Error::KubeConfig(e.to_string()))?,
        };
        if config.accept_invalid_certs {
            tracing::warn!("the kubeconfig turns TLS verification off for the Kubernetes API");
        }
        config.connect_timeout = Some(cfg.k8s_timeout);
        config.read_timeout = Some(cfg.k8s_timeout);
        config.write_timeout = Some(cfg.k8s_timeout);
        kube::Client::try_from(config).map_err(Error::kube("building the client"))
    }

    /// The product's Jobs in `ns` by name, each with its pods: one Job list and
    /// one pod list.
    pub async fn jobs_in(&self, ns: &str) -> Result<HashMap<String, CondensedJob>, String> {
        let params = ListParams::default().labels(&self.selector);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let (jobs, pods) = futures::try_join!(list_all(&jobs, &params), list_all(&pods, &params))
            .map_err(|e| {
            format!("listing Jobs and pods in namespace {ns}: {}", describe(&e))
        })?;
        let mut by_uid: HashMap<String, ListedJob> = HashMap::new();
        let mut uid_of_name: HashMap<String, String> = HashMap::new();
        for job in jobs {
            let (Some(name), Some(uid)) = (job.metadata.name.clone(), job.metadata.uid.clone())
            else {
                continue;
            };
            uid_of_name.insert(name, uid.clone());
            by_uid.insert(
                uid,
                ListedJob {
                    job,
                    pods: Vec::new(),
                },
            );
        }
        for pod in pods {
            let owner = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "Job" && o.controller == Some(true))
                .map(|o| o.uid.clone())
                .or_else(|| {
                    let labels = pod.metadata.labels.as_ref()?;
                    let name = labels
                        .get("batch.kubernetes.io/job-name")
                        .or_else(|| labels.get("job-name"))?;
                    uid_of_name.get(name).cloned()
                });
            if let Some(listed) = owner.and_then(|uid| by_uid.get_mut(&uid)) {
                listed.pods.push(pod);
            }
        }
        Ok(by_uid
            .into_values()
            .filter_map(|l| Some((l.job.metadata.name.clone()?, CondensedJob::from(&l))))
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
        let reads = futures::stream::iter(started.iter().map(|(name, container)| {
            let pods = pods.clone();
            async move { self.read_log(&pods, name, container.as_deref()).await }
        }))
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
                    facts.log = LogFacts::Unreadable(e);
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
    ) -> Result<Vec<u8>, String> {
        let params = LogParams {
            tail_lines: Some(self.tail_lines),
            limit_bytes: Some(self.limit_bytes),
            container: container.map(str::to_string),
            ..Default::default()
        };
        let mut stream = pods
            .log_stream(name, &params)
            .await
            .map_err(|e| format!("pod {name}: {}", describe(&e)))?;
        let mut buf = Vec::new();
        // The server honours limitBytes; this cap guards against one that does not.
        let cap = u64::try_from(self.limit_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1024);
        (&mut stream)
            .take(cap)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("pod {name}: reading the log: {e}"))?;
        Ok(buf)
    }
}

async fn list_all<K>(api: &Api<K>, params: &ListParams) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = params.clone().limit(500);
    let mut out = Vec::new();
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// A kube error in words: the API's Status message when there is one.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => {
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        }
    }
}

fn created(pod: &Pod) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let t = pod.metadata.creation_timestamp.as_ref()?;
    Utc.timestamp_millis_opt(t.0.as_millisecond()).single()
}

fn pods_by_age(pods: &[Pod]) -> Vec<&Pod> {
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| {
        created(a)
            .cmp(&created(b))
            .then(a.metadata.name.cmp(&b.metadata.name))
    });
    sorted
}

/// The pods whose container has started (so a log exists), oldest first, with
/// the container to read; at most the four newest.
fn started_pods(pods: &[Pod]) -> Vec<(String, Option<String>)> {
    let started: Vec<(String, Option<String>)> = pods_by_age(pods)
        .into_iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            let running_or_done = matches!(phase, Some("Running" | "Succeeded" | "Failed"));
            let container_started = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.state.as_ref().is_some_and(|st| st.waiting.is_none()))
                });
            running_or_done && container_started
        })
        .filter_map(|p| {
            let name = p.metadata.name.clone().filter(|n| is_dns_subdomain(n))?;
            let container = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone());
            Some((name, container))
        })
        .collect();
    let skip = started.len().saturating_sub(4);
    started.into_iter().skip(skip).collect()
}

/// The Job's own facts (conditions, newest pod), before any log is read.
pub fn summarize(listed: &ListedJob) -> JobFacts {
    let job = &listed.job;
    let condition = |kind: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
    };
    let failed = condition("Failed").map(|c| {
        let reason = c.reason.clone().unwrap_or_else(|| "Failed".to_string());
        match c.message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => format!("{reason}: {m}"),
            None => reason,
        }
    });
    let newest = pods_by_age(&listed.pods).last().copied();
    let pod = newest.map(|p| {
        let statuses = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        let state = statuses
            .and_then(|cs| cs.first())
            .and_then(|c| c.state.as_ref());
        let waiting = state.and_then(|s| s.waiting.as_ref()).and_then(|w| {
            Some(Waiting {
                reason: w.reason.clone()?,
                message: w.message.clone().unwrap_or_default(),
                since: created(p),
            })
        });
        PodFacts {
            name: p.metadata.name.clone().unwrap_or_default(),
            waiting,
            exit_code: state
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code),
        }
    });
    JobFacts {
        name: job.metadata.name.clone().unwrap_or_default(),
        complete: condition("Complete").is_some(),
        failed,
        pod,
        log: LogFacts::NotStarted,
    }
}
