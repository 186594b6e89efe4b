//! The environment's reader: every variable through its declaration (so its
//! default and range are the declared ones), blank meaning unset, and every
//! error naming its variable, never its value (it may be a secret). One
//! function per component's settings.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::declared::{
    EVENT_BUS_NAME, EVENT_SOURCE, FLINK_CLUSTERS, FLINK_HISTORY_URL, FLINK_REST_URL,
    FLINK_TIMEOUT_MS, FLINK_TLS_INSECURE, Flag, K8S_JOB_SELECTOR, K8S_NAMESPACE, K8S_TIMEOUT_MS,
    KUBECONFIG_SECRET_ARN, LOG_CONCURRENCY, LOG_LIMIT_BYTES, LOG_TAIL_LINES, MONGODB_COLLECTION,
    MONGODB_DATABASE, MONGODB_RUNS_COLLECTION, MONGODB_URI, MONGODB_URI_SECRET_ARN, Number,
    Optional, Setting, Text,
};
use crate::config::numeric;
use crate::config::secret::{Secret, SecretSource};
use crate::config::settings::{
    ClusterUrls, DEFAULT_CLUSTER, EventSettings, FlinkSettings, KubeSettings, MongoSettings,
    SyncSettings, is_cluster_name, is_mongodb_uri,
};
use crate::error::Error;
use crate::rules::cleanup::CleanupRules;
use crate::rules::model::{is_dns_label, truncate};
use crate::rules::plan::SyncRules;

/// An http(s) URL with a host, without its trailing slash; else why not.
fn http_url(v: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(v.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("must be an http(s) URL with a host".to_string());
    }
    Ok(v.trim().trim_end_matches('/').to_string())
}

/// The environment as a lookup (the process's, or a test's map).
pub(crate) struct Env<'a>(pub(crate) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn var(&self, k: &str) -> Option<String> {
        (self.0)(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn text(&self, s: &Setting<Text>) -> String {
        self.var(s.name)
            .unwrap_or_else(|| s.kind.default.to_string())
    }

    fn optional(&self, s: &Setting<Optional>) -> Option<String> {
        self.var(s.name)
    }

    /// A whole number in its declared range: a value outside what the
    /// product can honour is an error naming the variable and the range,
    /// never silently moved into it.
    fn number(&self, s: &Setting<Number>) -> Result<u64, Error> {
        let Number { default, min, max } = s.kind;
        let v = match self.var(s.name) {
            None => default,
            Some(v) => v
                .parse()
                .map_err(|_| Error::config(s.name, format!("must be a whole number, got {v:?}")))?,
        };
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(Error::config(
                s.name,
                format!("must be between {min} and {max}, got {v}"),
            ))
        }
    }

    fn millis(&self, s: &Setting<Number>) -> Result<Duration, Error> {
        self.number(s).map(Duration::from_millis)
    }

    fn flag(&self, s: &Setting<Flag>) -> Result<bool, Error> {
        match self.var(s.name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(Error::config(
                s.name,
                format!("must be true or false, got {v:?}"),
            )),
        }
    }

    fn url(&self, s: &Setting<Optional>) -> Result<Option<String>, Error> {
        let Some(v) = self.optional(s) else {
            return Ok(None);
        };
        http_url(&v)
            .map(Some)
            .map_err(|why| Error::config(s.name, why))
    }

    /// MongoDB's settings; the URI's source is the secret's ARN when one is
    /// set, else the URI itself, which is checked either way.
    pub(crate) fn mongo(&self) -> Result<MongoSettings<SecretSource>, Error> {
        let uri = self.optional(&MONGODB_URI);
        if uri.as_deref().is_some_and(|u| !is_mongodb_uri(u)) {
            return Err(Error::config(
                MONGODB_URI.name,
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        let uri = match (self.optional(&MONGODB_URI_SECRET_ARN), uri) {
            (Some(arn), _) => SecretSource::SecretsManager {
                var: MONGODB_URI_SECRET_ARN.name,
                arn,
            },
            (None, Some(uri)) => SecretSource::Given(Secret::new(uri)),
            (None, None) => {
                return Err(Error::config(
                    MONGODB_URI.name,
                    format!(
                        "is required (or {}) and not set",
                        MONGODB_URI_SECRET_ARN.name
                    ),
                ));
            }
        };
        Ok(MongoSettings {
            uri,
            database: self.text(&MONGODB_DATABASE),
            collection: self.text(&MONGODB_COLLECTION),
            runs_collection: self.text(&MONGODB_RUNS_COLLECTION),
        })
    }

    pub(crate) fn flink(&self) -> Result<FlinkSettings, Error> {
        Ok(FlinkSettings {
            rest_url: self.url(&FLINK_REST_URL)?,
            history_url: self.url(&FLINK_HISTORY_URL)?,
            timeout: self.millis(&FLINK_TIMEOUT_MS)?,
            tls_insecure: self.flag(&FLINK_TLS_INSECURE)?,
            clusters: self.clusters()?,
        })
    }

    /// `FLINK_CLUSTERS`: `{"<name>": {"rest_url": "...", "history_url": "..."}}`.
    fn clusters(&self) -> Result<BTreeMap<String, ClusterUrls>, Error> {
        let var = FLINK_CLUSTERS.name;
        let Some(text) = self.optional(&FLINK_CLUSTERS) else {
            return Ok(BTreeMap::new());
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::config(var, format!("is not JSON ({e})")))?;
        let object = value.as_object().ok_or_else(|| {
            Error::config(
                var,
                "must be an object of clusters by name, {\"prod\": {\"rest_url\": \"...\"}}",
            )
        })?;
        let mut clusters = BTreeMap::new();
        for (name, entry) in object {
            if !is_cluster_name(name) || name == DEFAULT_CLUSTER {
                return Err(Error::config(
                    var,
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
                        Error::config(var, format!("cluster {name:?}: {key} {why}"))
                    }),
                    Some(_) => Err(Error::config(
                        var,
                        format!("cluster {name:?}: {key} must be a string"),
                    )),
                }
            };
            let rest_url = url("rest_url")?
                .ok_or_else(|| Error::config(var, format!("cluster {name:?} has no rest_url")))?;
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

    /// The Kubernetes API's settings; the kubeconfig's source is the
    /// secret `KUBECONFIG_SECRET_ARN` names, if set.
    pub(crate) fn kube(&self) -> Result<KubeSettings<SecretSource>, Error> {
        let namespace = self.text(&K8S_NAMESPACE);
        if !is_dns_label(&namespace) {
            return Err(Error::config(
                K8S_NAMESPACE.name,
                "is not a Kubernetes namespace name",
            ));
        }
        let kubeconfig =
            self.optional(&KUBECONFIG_SECRET_ARN)
                .map(|arn| SecretSource::SecretsManager {
                    var: KUBECONFIG_SECRET_ARN.name,
                    arn,
                });
        // The casts are lossless: each declared range fits the field's type.
        Ok(KubeSettings {
            kubeconfig,
            namespace,
            job_selector: self.text(&K8S_JOB_SELECTOR),
            timeout: self.millis(&K8S_TIMEOUT_MS)?,
            log_tail_lines: self.number(&LOG_TAIL_LINES)? as i64,
            log_limit_bytes: self.number(&LOG_LIMIT_BYTES)? as i64,
            log_concurrency: self.number(&LOG_CONCURRENCY)? as usize,
        })
    }

    pub(crate) fn events(&self) -> EventSettings {
        EventSettings {
            bus_name: self.optional(&EVENT_BUS_NAME),
            source: self.text(&EVENT_SOURCE),
        }
    }

    pub(crate) fn sync(&self) -> Result<SyncSettings, Error> {
        numeric::sync_settings(&|s| self.number(s))
    }

    pub(crate) fn sync_rules(&self) -> Result<SyncRules, Error> {
        numeric::sync_rules(&|s| self.number(s))
    }

    pub(crate) fn cleanup_rules(&self) -> Result<CleanupRules, Error> {
        numeric::cleanup_rules(&|s| self.number(s))
    }
}
