//! Configuration from the environment, read once at cold start. Every variable,
//! its default and its meaning is listed in the README; an error names the
//! variable that is missing or bad, never its value (it may be a secret).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;
use crate::rules::cleanup::CleanupRules;
use crate::rules::health::HealthRules;
use crate::rules::model::{is_dns_label, truncate};
use crate::rules::plan::SyncRules;

/// A value that must never reach a log line: `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must not be shown.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// MongoDB: where the records and the runs live.
#[derive(Debug, Clone)]
pub struct MongoSettings {
    /// `MONGODB_URI`; empty until resolved when only `MONGODB_URI_SECRET_ARN` is given.
    pub uri: Secret,
    /// `MONGODB_URI_SECRET_ARN`, read at cold start by [`crate::adapters::aws::resolve_secrets`].
    pub uri_secret_arn: Option<String>,
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

/// The name a run's `clusters` scope uses for the records without
/// `flink_cluster` (those `FLINK_REST_URL` serves).
pub const DEFAULT_CLUSTER: &str = "default";

/// The Kubernetes API: which Jobs are the product's, and how their pod logs are read.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// A kubeconfig document (from `KUBECONFIG_SECRET_ARN`); `None` means
    /// `KUBECONFIG` / `~/.kube/config` / in-cluster.
    pub kubeconfig: Option<Secret>,
    /// `KUBECONFIG_SECRET_ARN`, read at cold start.
    pub kubeconfig_secret_arn: Option<String>,
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

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            chunk_size: 1000,
            concurrency: 8,
            history_max: 50,
        }
    }
}

/// Every setting, each component's under its own name.
#[derive(Debug, Clone)]
pub struct Config {
    /// MongoDB.
    pub mongo: MongoSettings,
    /// Flink's REST API.
    pub flink: FlinkSettings,
    /// The Kubernetes API.
    pub kube: KubeSettings,
    /// EventBridge.
    pub events: EventSettings,
    /// How a sync run goes through the records.
    pub sync: SyncSettings,
    /// The sync rule's graces and limits.
    pub rules: SyncRules,
    /// The cleanup rule's ages.
    pub cleanup: CleanupRules,
}

impl Config {
    /// Reads every setting from the process environment.
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Config::from_env`], from any lookup (tests use a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let env = Env(&get);
        let kube = env.kube()?;
        Ok(Config {
            mongo: env.mongo()?,
            flink: env.flink()?,
            events: EventSettings {
                bus_name: env.var("EVENT_BUS_NAME"),
                source: env.or("EVENT_SOURCE", "flink-job-sync"),
            },
            sync: SyncSettings {
                chunk_size: env.ranged("SYNC_CHUNK_SIZE", 1000, 1, 100_000)? as usize,
                concurrency: kube.log_concurrency,
                history_max: env.ranged("STATUS_HISTORY_MAX", 50, 1, 1000)? as usize,
            },
            rules: env.sync_rules()?,
            cleanup: env.cleanup_rules()?,
            kube,
        })
    }
}

impl FlinkSettings {
    /// The Flink REST URL of the records without `flink_cluster`.
    pub fn rest_url(&self) -> Result<&str, Error> {
        self.rest_url
            .as_deref()
            .ok_or_else(|| Error::config("FLINK_REST_URL", "is required by sync and not set"))
    }

    /// Sync needs at least one cluster: `FLINK_REST_URL` or `FLINK_CLUSTERS`.
    pub fn require_a_cluster(&self) -> Result<(), Error> {
        if self.rest_url.is_none() && self.clusters.is_empty() {
            return Err(Error::config(
                "FLINK_REST_URL",
                "is required by sync and not set (nor FLINK_CLUSTERS)",
            ));
        }
        Ok(())
    }
}

const YEAR_SECONDS: u64 = 366 * 24 * 3600;

/// An http(s) URL with a host, without its trailing slash; else why not.
fn http_url(v: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(v.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("must be an http(s) URL with a host".to_string());
    }
    Ok(v.trim().trim_end_matches('/').to_string())
}

/// A cluster's name: what a record's `flink_cluster` and a run's scope say.
pub fn is_cluster_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// The environment as read by [`Config::from_lookup`]: blank means unset,
/// and every error names its variable.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn var(&self, k: &str) -> Option<String> {
        (self.0)(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn or(&self, k: &str, default: &str) -> String {
        self.var(k).unwrap_or_else(|| default.to_string())
    }

    /// A whole number in `lo..=hi`: a value outside what the product can
    /// honour is an error naming the variable and the range, never
    /// silently moved into it.
    fn ranged(&self, k: &str, default: u64, lo: u64, hi: u64) -> Result<u64, Error> {
        let v = match self.var(k) {
            None => default,
            Some(v) => v
                .parse()
                .map_err(|_| Error::config(k, format!("must be a whole number, got {v:?}")))?,
        };
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(Error::config(
                k,
                format!("must be between {lo} and {hi}, got {v}"),
            ))
        }
    }

    fn seconds(&self, k: &str, default: u64) -> Result<chrono::Duration, Error> {
        self.ranged(k, default, 0, YEAR_SECONDS)
            .map(|s| chrono::Duration::seconds(s as i64))
    }

    fn hours(&self, k: &str, default: u64, lo: u64) -> Result<chrono::Duration, Error> {
        self.ranged(k, default, lo, 87_600)
            .map(|h| chrono::Duration::hours(h as i64))
    }

    fn millis(&self, k: &str, default: u64) -> Result<Duration, Error> {
        self.ranged(k, default, 100, 600_000)
            .map(Duration::from_millis)
    }

    fn flag(&self, k: &str) -> Result<bool, Error> {
        match self.var(k).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(Error::config(
                k,
                format!("must be true or false, got {v:?}"),
            )),
        }
    }

    fn url(&self, k: &str) -> Result<Option<String>, Error> {
        let Some(v) = self.var(k) else {
            return Ok(None);
        };
        http_url(&v).map(Some).map_err(|why| Error::config(k, why))
    }

    fn mongo(&self) -> Result<MongoSettings, Error> {
        let uri_secret_arn = self.var("MONGODB_URI_SECRET_ARN");
        let uri = match (&uri_secret_arn, self.var("MONGODB_URI")) {
            (_, Some(uri)) => uri,
            (Some(_), None) => String::new(),
            (None, None) => {
                return Err(Error::config(
                    "MONGODB_URI",
                    "is required (or MONGODB_URI_SECRET_ARN) and not set",
                ));
            }
        };
        let scheme_ok = uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://");
        if !(uri.is_empty() || scheme_ok) {
            return Err(Error::config(
                "MONGODB_URI",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        Ok(MongoSettings {
            uri: Secret::new(uri),
            uri_secret_arn,
            database: self.or("MONGODB_DATABASE", "lemo_recommender"),
            collection: self.or("MONGODB_COLLECTION", "flink_jobs"),
            runs_collection: self.or("MONGODB_RUNS_COLLECTION", "flink_job_sync_runs"),
        })
    }

    fn flink(&self) -> Result<FlinkSettings, Error> {
        Ok(FlinkSettings {
            rest_url: self.url("FLINK_REST_URL")?,
            history_url: self.url("FLINK_HISTORY_URL")?,
            timeout: self.millis("FLINK_TIMEOUT_MS", 5000)?,
            tls_insecure: self.flag("FLINK_TLS_INSECURE")?,
            clusters: self.clusters()?,
        })
    }

    /// `FLINK_CLUSTERS`: `{"<name>": {"rest_url": "...", "history_url": "..."}}`.
    fn clusters(&self) -> Result<BTreeMap<String, ClusterUrls>, Error> {
        const VAR: &str = "FLINK_CLUSTERS";
        let Some(text) = self.var(VAR) else {
            return Ok(BTreeMap::new());
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::config(VAR, format!("is not JSON ({e})")))?;
        let object = value.as_object().ok_or_else(|| {
            Error::config(
                VAR,
                "must be an object of clusters by name, {\"prod\": {\"rest_url\": \"...\"}}",
            )
        })?;
        let mut clusters = BTreeMap::new();
        for (name, entry) in object {
            if !is_cluster_name(name) || name == DEFAULT_CLUSTER {
                return Err(Error::config(
                    VAR,
                    format!(
                        "names a cluster {:?}: a name is 1 to 63 lowercase letters, digits, '-' or '_', and not {DEFAULT_CLUSTER:?}",
                        truncate(name, 80)
                    ),
                ));
            }
            let url = |key: &str| -> Result<Option<String>, Error> {
                match entry.get(key) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(serde_json::Value::String(u)) => http_url(u).map(Some).map_err(|why| {
                        Error::config(VAR, format!("cluster {name:?}: {key} {why}"))
                    }),
                    Some(_) => Err(Error::config(
                        VAR,
                        format!("cluster {name:?}: {key} must be a string"),
                    )),
                }
            };
            let rest_url = url("rest_url")?
                .ok_or_else(|| Error::config(VAR, format!("cluster {name:?} has no rest_url")))?;
            let history_url = url("history_url")?;
            clusters.insert(
                name.clone(),
                ClusterUrls {
                    rest_url,
                    history_url,
                },
            );
        }
        Ok(clusters)
    }

    fn kube(&self) -> Result<KubeSettings, Error> {
        let namespace = self.or("K8S_NAMESPACE", "lemo-dev");
        if !is_dns_label(&namespace) {
            return Err(Error::config(
                "K8S_NAMESPACE",
                "is not a Kubernetes namespace name",
            ));
        }
        Ok(KubeSettings {
            kubeconfig: None,
            kubeconfig_secret_arn: self.var("KUBECONFIG_SECRET_ARN"),
            namespace,
            job_selector: self.or("K8S_JOB_SELECTOR", "app=flink-python-job"),
            timeout: self.millis("K8S_TIMEOUT_MS", 10000)?,
            log_tail_lines: self.ranged("LOG_TAIL_LINES", 500, 1, 100_000)? as i64,
            log_limit_bytes: self.ranged("LOG_LIMIT_BYTES", 256 * 1024, 1024, 16 * 1024 * 1024)?
                as i64,
            log_concurrency: self.ranged("LOG_CONCURRENCY", 8, 1, 64)? as usize,
        })
    }

    fn sync_rules(&self) -> Result<SyncRules, Error> {
        Ok(SyncRules {
            job_not_found_grace: self.seconds("JOB_NOT_FOUND_GRACE_SECONDS", 600)?,
            pod_waiting_grace: self.seconds("POD_WAITING_GRACE_SECONDS", 300)?,
            missing_threshold: self.ranged("FLINK_MISSING_THRESHOLD", 3, 1, 1000)? as u32,
            reason_max_bytes: self.ranged("STATUS_REASON_MAX_BYTES", 2048, 64, 64 * 1024)? as usize,
            health: self.health_rules()?,
        })
    }

    fn health_rules(&self) -> Result<HealthRules, Error> {
        Ok(HealthRules {
            restarts_min: self.ranged("HEALTH_RESTARTS_MIN", 3, 1, 1_000_000)?,
            restart_window: self
                .ranged("HEALTH_RESTART_WINDOW_SECONDS", 900, 1, YEAR_SECONDS)
                .map(|s| chrono::Duration::seconds(s as i64))?,
            checkpoint_age_factor: self.ranged("HEALTH_CHECKPOINT_AGE_FACTOR", 3, 1, 1000)? as u32,
            tasks_grace: self.seconds("HEALTH_TASKS_GRACE_SECONDS", 300)?,
            budget: self.ranged("HEALTH_BUDGET", 200, 0, 100_000)? as usize,
        })
    }

    fn cleanup_rules(&self) -> Result<CleanupRules, Error> {
        Ok(CleanupRules {
            min_age: self.hours("CLEANUP_MIN_AGE_HOURS", 24, 0)?,
            max_evidence_age: self.hours("CLEANUP_MAX_EVIDENCE_AGE_HOURS", 168, 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const BASE: [(&str, &str); 2] = [
        ("MONGODB_URI", "mongodb://u:hunter2@db:27017/"),
        ("FLINK_REST_URL", "http://flink:8081/"),
    ];

    #[test]
    fn defaults_follow_the_documented_values() {
        let c = Config::from_lookup(lookup(&BASE)).expect("valid");
        assert_eq!(c.mongo.database, "lemo_recommender");
        assert_eq!(c.mongo.collection, "flink_jobs");
        assert_eq!(c.kube.namespace, "lemo-dev");
        assert_eq!(c.kube.job_selector, "app=flink-python-job");
        assert_eq!(c.flink.rest_url().ok(), Some("http://flink:8081"));
        assert_eq!(c.cleanup.min_age, chrono::Duration::hours(24));
        assert_eq!(c.cleanup.max_evidence_age, chrono::Duration::days(7));
        assert_eq!(c.rules.missing_threshold, 3);
    }

    #[test]
    fn missing_variable_is_named() {
        let e = Config::from_lookup(lookup(&[("FLINK_REST_URL", "http://f")])).expect_err("no uri");
        assert!(e.to_string().contains("MONGODB_URI"), "{e}");
        let c = Config::from_lookup(lookup(&[("MONGODB_URI", "mongodb://x")]))
            .expect("cleanup needs no Flink");
        let e = c.flink.rest_url().expect_err("sync does");
        assert!(e.to_string().contains("FLINK_REST_URL"), "{e}");
    }

    #[test]
    fn bad_number_is_named_without_leaking_the_uri() {
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TIMEOUT_MS", "soon"));
        let e = Config::from_lookup(lookup(&pairs)).expect_err("bad number");
        assert!(e.to_string().contains("FLINK_TIMEOUT_MS"), "{e}");
        let c = Config::from_lookup(lookup(&BASE)).expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn out_of_range_values_are_errors_naming_the_variable_and_range() {
        for (var, value, range) in [
            ("LOG_CONCURRENCY", "0", "between 1 and 64"),
            ("LOG_CONCURRENCY", "65", "between 1 and 64"),
            ("FLINK_MISSING_THRESHOLD", "0", "between 1 and 1000"),
            ("STATUS_REASON_MAX_BYTES", "10", "between 64 and 65536"),
            ("SYNC_CHUNK_SIZE", "0", "between 1 and 100000"),
            ("FLINK_TIMEOUT_MS", "0", "between 100 and 600000"),
            (
                "JOB_NOT_FOUND_GRACE_SECONDS",
                "99999999999999",
                "between 0 and 31622400",
            ),
            (
                "CLEANUP_MIN_AGE_HOURS",
                "99999999999",
                "between 0 and 87600",
            ),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((var, value));
            let e = Config::from_lookup(lookup(&pairs)).expect_err("out of range");
            let e = e.to_string();
            assert!(
                e.contains(var) && e.contains(range) && e.contains(value),
                "{e}"
            );
        }
        let mut pairs = BASE.to_vec();
        pairs.extend([("LOG_CONCURRENCY", "64"), ("CLEANUP_MIN_AGE_HOURS", "0")]);
        let c = Config::from_lookup(lookup(&pairs)).expect("the bounds themselves are accepted");
        assert_eq!(c.kube.log_concurrency, 64);
    }

    #[test]
    fn tls_is_verified_unless_insecure_is_asked_for_by_name() {
        let c = Config::from_lookup(lookup(&BASE)).expect("valid");
        assert!(!c.flink.tls_insecure, "verified by default");
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TLS_INSECURE", "true"));
        assert!(
            Config::from_lookup(lookup(&pairs))
                .expect("valid")
                .flink
                .tls_insecure
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TLS_INSECURE", "yes please"));
        let e = Config::from_lookup(lookup(&pairs)).expect_err("not a flag");
        assert!(e.to_string().contains("FLINK_TLS_INSECURE"), "{e}");
    }

    #[test]
    fn flink_clusters_are_read_by_name_and_a_bad_one_is_named() {
        let mut pairs = BASE.to_vec();
        pairs.push((
            "FLINK_CLUSTERS",
            r#"{"prod": {"rest_url": "http://prod-jm:8081/", "history_url": "http://prod-hs:8082"},
                "batch_2": {"rest_url": "https://batch:8081"}}"#,
        ));
        let c = Config::from_lookup(lookup(&pairs)).expect("valid");
        assert_eq!(c.flink.clusters.len(), 2);
        assert_eq!(c.flink.clusters["prod"].rest_url, "http://prod-jm:8081");
        assert_eq!(
            c.flink.clusters["prod"].history_url.as_deref(),
            Some("http://prod-hs:8082")
        );
        assert_eq!(c.flink.clusters["batch_2"].history_url, None);
        for (bad, says) in [
            ("[1]", "must be an object"),
            ("{", "is not JSON"),
            (r#"{"Prod": {"rest_url": "http://x"}}"#, "\"Prod\""),
            (r#"{"default": {"rest_url": "http://x"}}"#, "\"default\""),
            (r#"{"p": {}}"#, "cluster \"p\" has no rest_url"),
            (
                r#"{"p": {"rest_url": "file:///etc"}}"#,
                "rest_url must be an http(s) URL",
            ),
            (r#"{"p": {"rest_url": 5}}"#, "must be a string"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push(("FLINK_CLUSTERS", bad));
            let e = Config::from_lookup(lookup(&pairs))
                .expect_err(bad)
                .to_string();
            assert!(
                e.contains("FLINK_CLUSTERS") && e.contains(says),
                "{bad}: {e}"
            );
        }
        // Clusters alone are enough for sync.
        let c = Config::from_lookup(lookup(&[
            ("MONGODB_URI", "mongodb://x"),
            (
                "FLINK_CLUSTERS",
                r#"{"prod": {"rest_url": "http://prod:8081"}}"#,
            ),
        ]))
        .expect("valid");
        assert!(c.flink.require_a_cluster().is_ok());
    }

    #[test]
    fn flink_url_must_be_http() {
        let e = Config::from_lookup(lookup(&[
            ("MONGODB_URI", "mongodb://x"),
            ("FLINK_REST_URL", "file:///etc"),
        ]))
        .expect_err("bad url");
        assert!(e.to_string().contains("FLINK_REST_URL"), "{e}");
    }
}
