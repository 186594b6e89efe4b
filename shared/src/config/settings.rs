//! Each component's settings, the types its client or run takes. Those that
//! hold a secret are generic over it: `S` is a [`SecretSource`] as read from
//! the environment and a [`Secret`] (the default) once resolved, so
//! [`crate::adapters::store::Store::connect`] and
//! [`crate::adapters::k8s::Kubernetes::connect`] take resolved settings only.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::declared::{FLINK_CLUSTERS, FLINK_REST_URL, MONGODB_URI_SECRET_ARN};
use crate::config::secret::{ReadSecret, Resolve, Secret, SecretSource};
use crate::error::Error;

/// MongoDB: where the records and the runs live.
#[derive(Debug, Clone)]
pub struct MongoSettings<S = Secret> {
    /// `MONGODB_URI`, or the secret `MONGODB_URI_SECRET_ARN` names (which
    /// wins when both are set).
    pub uri: S,
    /// `MONGODB_DATABASE`.
    pub database: String,
    /// `MONGODB_COLLECTION`: the records.
    pub collection: String,
    /// `MONGODB_RUNS_COLLECTION`: one document per sync run.
    pub runs_collection: String,
}

/// Flink's REST API (JobManager, and the History Server when there is one).
#[derive(Debug, Clone)]
pub struct FlinkSettings {
    /// Required by sync (see [`FlinkSettings::rest_url`]); cleanup needs no Flink.
    pub rest_url: Option<String>,
    /// `FLINK_HISTORY_URL`: asked for jobs the JobManager no longer knows.
    pub history_url: Option<String>,
    /// `FLINK_TIMEOUT_MS`: per request.
    pub timeout: Duration,
    /// `FLINK_TLS_INSECURE=true` turns certificate checks off for Flink's
    /// https URLs (a self-signed JobManager); off unless asked, and warned of.
    pub tls_insecure: bool,
    /// `FLINK_CLUSTERS`: the named clusters records may name in `flink_cluster`.
    pub clusters: BTreeMap<String, ClusterUrls>,
}

/// Where one named Flink cluster answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrls {
    /// Its JobManager's REST endpoint.
    pub rest_url: String,
    /// Its History Server, if it has one.
    pub history_url: Option<String>,
}

pub use crate::rules::model::DEFAULT_CLUSTER;

/// The Kubernetes API: which Jobs are the product's, and how their pod logs are read.
#[derive(Debug, Clone)]
pub struct KubeSettings<S = Secret> {
    /// A kubeconfig document (the secret `KUBECONFIG_SECRET_ARN` names);
    /// `None` means `KUBECONFIG` / `~/.kube/config` / in-cluster.
    pub kubeconfig: Option<S>,
    /// `K8S_NAMESPACE`: where Jobs are, unless a record names its own `k8s_namespace`.
    pub namespace: String,
    /// `K8S_JOB_SELECTOR`: the label selector of the product's Jobs and pods.
    pub job_selector: String,
    /// `K8S_TIMEOUT_MS`: connect, read and write timeouts.
    pub timeout: Duration,
    /// `LOG_TAIL_LINES`: lines of a pod log read.
    pub log_tail_lines: i64,
    /// `LOG_LIMIT_BYTES`: bytes of a pod log read.
    pub log_limit_bytes: i64,
    /// `LOG_CONCURRENCY`: pod logs read at once.
    pub log_concurrency: usize,
}

/// State-change events on EventBridge.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// `EVENT_BUS_NAME`: no events are sent without a bus.
    pub bus_name: Option<String>,
    /// `EVENT_SOURCE`: the events' `source`.
    pub source: String,
}

/// How a sync run goes through the records.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `SYNC_CHUNK_SIZE`: records observed and written together; a run near
    /// its deadline stops between chunks.
    pub chunk_size: usize,
    /// Records observed at once and Flink lookups at once (`LOG_CONCURRENCY`,
    /// the bound of pod-log reads too).
    pub concurrency: usize,
    /// `STATUS_HISTORY_MAX`: entries kept in a record's `status_history`.
    pub history_max: usize,
}

impl FlinkSettings {
    /// The Flink REST URL of the records without `flink_cluster`.
    pub fn rest_url(&self) -> Result<&str, Error> {
        self.rest_url
            .as_deref()
            .ok_or_else(|| Error::config(FLINK_REST_URL.name, "is required by sync and not set"))
    }

    /// Sync needs at least one cluster: `FLINK_REST_URL` or `FLINK_CLUSTERS`.
    pub fn require_a_cluster(&self) -> Result<(), Error> {
        if self.rest_url.is_none() && self.clusters.is_empty() {
            return Err(Error::config(
                FLINK_REST_URL.name,
                format!(
                    "is required by sync and not set (nor {})",
                    FLINK_CLUSTERS.name
                ),
            ));
        }
        Ok(())
    }
}

/// A cluster's name: what a record's `flink_cluster` and a run's scope say.
pub fn is_cluster_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// A URI the MongoDB driver takes: `mongodb://` or `mongodb+srv://`.
pub fn is_mongodb_uri(uri: &str) -> bool {
    uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")
}

impl Resolve for MongoSettings<SecretSource> {
    type Resolved = MongoSettings;

    fn sources(&self) -> Vec<&SecretSource> {
        vec![&self.uri]
    }

    fn resolve_with(self, read: ReadSecret<'_>) -> Result<MongoSettings, Error> {
        // A given URI was checked when read; a secret's is checked here.
        let from_secrets_manager = self.uri.secrets_manager().is_some();
        let uri = read(self.uri)?;
        if from_secrets_manager && !is_mongodb_uri(uri.expose()) {
            return Err(Error::config(
                MONGODB_URI_SECRET_ARN.name,
                "names a secret that is not a mongodb:// URI",
            ));
        }
        Ok(MongoSettings {
            uri,
            database: self.database,
            collection: self.collection,
            runs_collection: self.runs_collection,
        })
    }
}

impl Resolve for KubeSettings<SecretSource> {
    type Resolved = KubeSettings;

    fn sources(&self) -> Vec<&SecretSource> {
        self.kubeconfig.iter().collect()
    }

    fn resolve_with(self, read: ReadSecret<'_>) -> Result<KubeSettings, Error> {
        Ok(KubeSettings {
            kubeconfig: self.kubeconfig.map(read).transpose()?,
            namespace: self.namespace,
            job_selector: self.job_selector,
            timeout: self.timeout,
            log_tail_lines: self.log_tail_lines,
            log_limit_bytes: self.log_limit_bytes,
            log_concurrency: self.log_concurrency,
        })
    }
}
