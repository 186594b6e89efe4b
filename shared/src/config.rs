//! Configuration from the environment, read once at cold start. Every variable,
//! its default and its meaning is listed in the README; an error names the
//! variable that is missing or bad, never its value (it may be a secret).

use std::time::Duration;

use crate::cleanup::CleanupRules;
use crate::error::Error;
use crate::plan::Rules;

/// A value that must never reach a log line: `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Empty until resolved when only `MONGODB_URI_SECRET_ARN` is given.
    pub mongodb_uri: Secret,
    /// Secrets Manager secrets read at cold start by [`crate::aws::resolve_secrets`].
    pub mongodb_uri_secret_arn: Option<String>,
    pub kubeconfig_secret_arn: Option<String>,
    /// A kubeconfig document (from `KUBECONFIG_SECRET_ARN`); `None` means
    /// `KUBECONFIG` / `~/.kube/config` / in-cluster.
    pub kubeconfig: Option<Secret>,
    pub database: String,
    pub collection: String,
    pub runs_collection: String,
    /// Required by sync (see [`Config::flink_rest_url`]); cleanup needs no Flink.
    pub flink_rest_url: Option<String>,
    pub flink_history_url: Option<String>,
    pub flink_timeout: Duration,
    /// `FLINK_TLS_INSECURE=true` turns certificate checks off for Flink's
    /// https URLs (a self-signed JobManager); off unless asked, and warned of.
    pub flink_tls_insecure: bool,
    pub k8s_namespace: String,
    pub k8s_job_selector: String,
    pub k8s_timeout: Duration,
    pub log_tail_lines: i64,
    pub log_limit_bytes: i64,
    pub log_concurrency: usize,
    pub history_max: usize,
    /// Records observed and written together; a run near its deadline stops between chunks.
    pub chunk_size: usize,
    /// EventBridge bus for state-change events; none are sent without it.
    pub event_bus_name: Option<String>,
    pub event_source: String,
    pub rules: Rules,
    pub cleanup: CleanupRules,
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Config::from_env`], from any lookup (tests use a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let or = |k: &str, d: &str| var(k).unwrap_or_else(|| d.to_string());
        let number = |k: &str, d: u64| -> Result<u64, Error> {
            match var(k) {
                None => Ok(d),
                Some(v) => v
                    .parse()
                    .map_err(|_| Error::config(k, format!("must be a whole number, got {v:?}"))),
            }
        };
        // A value outside what the product can honour is an error naming the
        // variable and the range, never silently moved into it.
        let ranged = |k: &str, d: u64, lo: u64, hi: u64| -> Result<u64, Error> {
            let v = number(k, d)?;
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(Error::config(
                    k,
                    format!("must be between {lo} and {hi}, got {v}"),
                ))
            }
        };
        let flag = |k: &str| -> Result<bool, Error> {
            match var(k).as_deref() {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(v) => Err(Error::config(
                    k,
                    format!("must be true or false, got {v:?}"),
                )),
            }
        };
        let url = |k: &str, v: String| -> Result<String, Error> {
            let parsed = reqwest::Url::parse(&v)
                .map_err(|e| Error::config(k, format!("is not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(Error::config(k, "must be an http(s) URL with a host"));
            }
            Ok(v.trim_end_matches('/').to_string())
        };
        let mongodb_uri_secret_arn = var("MONGODB_URI_SECRET_ARN");
        let mongodb_uri = match (&mongodb_uri_secret_arn, var("MONGODB_URI")) {
            (_, Some(uri)) => uri,
            (Some(_), None) => String::new(),
            (None, None) => {
                return Err(Error::config(
                    "MONGODB_URI",
                    "is required (or MONGODB_URI_SECRET_ARN) and not set",
                ));
            }
        };
        let scheme_ok =
            mongodb_uri.starts_with("mongodb://") || mongodb_uri.starts_with("mongodb+srv://");
        if !(mongodb_uri.is_empty() || scheme_ok) {
            return Err(Error::config(
                "MONGODB_URI",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        let flink_rest_url = var("FLINK_REST_URL")
            .map(|v| url("FLINK_REST_URL", v))
            .transpose()?;
        let flink_history_url = var("FLINK_HISTORY_URL")
            .map(|v| url("FLINK_HISTORY_URL", v))
            .transpose()?;
        let k8s_namespace = or("K8S_NAMESPACE", "lemo-dev");
        if !crate::model::is_dns_label(&k8s_namespace) {
            return Err(Error::config(
                "K8S_NAMESPACE",
                "is not a Kubernetes namespace name",
            ));
        }
        const YEAR_SECONDS: u64 = 366 * 24 * 3600;
        let secs = |k: &str, d: u64| {
            ranged(k, d, 0, YEAR_SECONDS).map(|s| chrono::Duration::seconds(s as i64))
        };
        let rules = Rules {
            job_not_found_grace: secs("JOB_NOT_FOUND_GRACE_SECONDS", 600)?,
            pod_waiting_grace: secs("POD_WAITING_GRACE_SECONDS", 300)?,
            missing_threshold: ranged("FLINK_MISSING_THRESHOLD", 3, 1, 1000)? as u32,
            reason_max_bytes: ranged("STATUS_REASON_MAX_BYTES", 2048, 64, 64 * 1024)? as usize,
        };
        Ok(Config {
            mongodb_uri: Secret::new(mongodb_uri),
            mongodb_uri_secret_arn,
            kubeconfig_secret_arn: var("KUBECONFIG_SECRET_ARN"),
            kubeconfig: None,
            database: or("MONGODB_DATABASE", "lemo_recommender"),
            collection: or("MONGODB_COLLECTION", "flink_jobs"),
            runs_collection: or("MONGODB_RUNS_COLLECTION", "flink_job_sync_runs"),
            flink_rest_url,
            flink_history_url,
            flink_timeout: Duration::from_millis(ranged("FLINK_TIMEOUT_MS", 5000, 100, 600_000)?),
            flink_tls_insecure: flag("FLINK_TLS_INSECURE")?,
            k8s_namespace,
            k8s_job_selector: or("K8S_JOB_SELECTOR", "app=flink-python-job"),
            k8s_timeout: Duration::from_millis(ranged("K8S_TIMEOUT_MS", 10000, 100, 600_000)?),
            log_tail_lines: ranged("LOG_TAIL_LINES", 500, 1, 100_000)? as i64,
            log_limit_bytes: ranged("LOG_LIMIT_BYTES", 256 * 1024, 1024, 16 * 1024 * 1024)? as i64,
            log_concurrency: ranged("LOG_CONCURRENCY", 8, 1, 64)? as usize,
            event_bus_name: var("EVENT_BUS_NAME"),
            event_source: or("EVENT_SOURCE", "flink-job-sync"),
            chunk_size: ranged("SYNC_CHUNK_SIZE", 1000, 1, 100_000)? as usize,
            history_max: ranged("STATUS_HISTORY_MAX", 50, 1, 1000)? as usize,
            rules,
            cleanup: CleanupRules {
                min_age: chrono::Duration::hours(
                    ranged("CLEANUP_MIN_AGE_HOURS", 24, 0, 87_600)? as i64
                ),
                max_evidence_age: chrono::Duration::hours(ranged(
                    "CLEANUP_MAX_EVIDENCE_AGE_HOURS",
                    168,
                    1,
                    87_600,
                )? as i64),
            },
        })
    }

    /// The Flink REST URL, which sync cannot do without.
    pub fn flink_rest_url(&self) -> Result<&str, Error> {
        self.flink_rest_url
            .as_deref()
            .ok_or_else(|| Error::config("FLINK_REST_URL", "is required by sync and not set"))
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
        assert_eq!(c.database, "lemo_recommender");
        assert_eq!(c.collection, "flink_jobs");
        assert_eq!(c.k8s_namespace, "lemo-dev");
        assert_eq!(c.k8s_job_selector, "app=flink-python-job");
        assert_eq!(c.flink_rest_url().ok(), Some("http://flink:8081"));
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
        let e = c.flink_rest_url().expect_err("sync does");
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
        assert_eq!(c.log_concurrency, 64);
    }

    #[test]
    fn tls_is_verified_unless_insecure_is_asked_for_by_name() {
        let c = Config::from_lookup(lookup(&BASE)).expect("valid");
        assert!(!c.flink_tls_insecure, "verified by default");
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TLS_INSECURE", "true"));
        assert!(
            Config::from_lookup(lookup(&pairs))
                .expect("valid")
                .flink_tls_insecure
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TLS_INSECURE", "yes please"));
        let e = Config::from_lookup(lookup(&pairs)).expect_err("not a flag");
        assert!(e.to_string().contains("FLINK_TLS_INSECURE"), "{e}");
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
