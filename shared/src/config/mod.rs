//! Configuration from the environment, read once at cold start into each
//! component's own settings. The folder owns:
//!
//! - [`declared`]: every variable's name, default, range and meaning, once;
//!   the README's configuration tables are checked against it;
//! - [`secret`]: [`Secret`], a value `Debug` never shows, [`SecretSource`],
//!   where one comes from, and [`Resolve`], from one to the other;
//! - [`settings`]: each component's settings types;
//! - `numeric`: the numeric settings built from any reader of numbers, and
//!   so their `Default` impls, from the declared defaults;
//! - `env`: the environment's reader, through the declarations;
//! - here: what each binary reads, and nothing more: [`SyncConfig`],
//!   [`CleanupConfig`], [`StatsConfig`] (a bad sync setting does not stop
//!   `flink-job-stats`).
//!
//! An error names the variable that is missing or bad, never its value (it
//! may be a secret).

pub mod declared;
mod env;
mod numeric;
pub mod secret;
pub mod settings;

pub use crate::config::secret::{Resolve, Secret, SecretSource};
pub use crate::config::settings::{
    ClusterUrls, DEFAULT_CLUSTER, EventSettings, FlinkSettings, KubeSettings, MongoSettings,
    SyncSettings, is_cluster_name,
};

use crate::config::env::Env;
use crate::config::secret::ReadSecret;
use crate::error::Error;
use crate::rules::cleanup::CleanupRules;
use crate::rules::plan::SyncRules;

/// What the sync function reads: MongoDB, Flink, Kubernetes, EventBridge,
/// the sync run and the sync and health rules (not the cleanup rule). `S`
/// is what its secrets are: [`SecretSource`]s as read, [`Secret`]s once
/// resolved (what [`crate::runs::sync::Syncer::from_config`] takes).
#[derive(Debug, Clone)]
pub struct SyncConfig<S = Secret> {
    /// MongoDB.
    pub mongo: MongoSettings<S>,
    /// Flink's REST API.
    pub flink: FlinkSettings,
    /// The Kubernetes API.
    pub kube: KubeSettings<S>,
    /// EventBridge.
    pub events: EventSettings,
    /// How a sync run goes through the records.
    pub sync: SyncSettings,
    /// The sync rule's graces and limits, with the health rule's.
    pub rules: SyncRules,
}

/// What the cleanup function reads: MongoDB, Kubernetes and the cleanup
/// rule (no Flink, no sync setting). `S` as in [`SyncConfig`].
#[derive(Debug, Clone)]
pub struct CleanupConfig<S = Secret> {
    /// MongoDB.
    pub mongo: MongoSettings<S>,
    /// The Kubernetes API.
    pub kube: KubeSettings<S>,
    /// The cleanup rule's ages.
    pub cleanup: CleanupRules,
}

/// What `flink-job-stats` reads: MongoDB's settings, nothing else. `S` as
/// in [`SyncConfig`].
#[derive(Debug, Clone)]
pub struct StatsConfig<S = Secret> {
    /// MongoDB.
    pub mongo: MongoSettings<S>,
}

/// The process environment as a lookup.
fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

impl SyncConfig<SecretSource> {
    /// Reads the sync function's settings from the process environment.
    pub fn from_env() -> Result<SyncConfig<SecretSource>, Error> {
        SyncConfig::from_lookup(process_env)
    }

    /// Same as [`SyncConfig::from_env`], from any lookup (tests use a map).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<SyncConfig<SecretSource>, Error> {
        let env = Env(&get);
        Ok(SyncConfig {
            mongo: env.mongo()?,
            flink: env.flink()?,
            kube: env.kube()?,
            events: env.events(),
            sync: env.sync()?,
            rules: env.sync_rules()?,
        })
    }
}

impl CleanupConfig<SecretSource> {
    /// Reads the cleanup function's settings from the process environment.
    pub fn from_env() -> Result<CleanupConfig<SecretSource>, Error> {
        CleanupConfig::from_lookup(process_env)
    }

    /// Same as [`CleanupConfig::from_env`], from any lookup.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<CleanupConfig<SecretSource>, Error> {
        let env = Env(&get);
        Ok(CleanupConfig {
            mongo: env.mongo()?,
            kube: env.kube()?,
            cleanup: env.cleanup_rules()?,
        })
    }
}

impl StatsConfig<SecretSource> {
    /// Reads MongoDB's settings from the process environment.
    pub fn from_env() -> Result<StatsConfig<SecretSource>, Error> {
        StatsConfig::from_lookup(process_env)
    }

    /// Same as [`StatsConfig::from_env`], from any lookup.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<StatsConfig<SecretSource>, Error> {
        Ok(StatsConfig {
            mongo: Env(&get).mongo()?,
        })
    }
}

impl Resolve for SyncConfig<SecretSource> {
    type Resolved = SyncConfig;

    fn sources(&self) -> Vec<&SecretSource> {
        [self.mongo.sources(), self.kube.sources()].concat()
    }

    fn resolve_with(self, read: ReadSecret<'_>) -> Result<SyncConfig, Error> {
        Ok(SyncConfig {
            mongo: self.mongo.resolve_with(read)?,
            kube: self.kube.resolve_with(read)?,
            flink: self.flink,
            events: self.events,
            sync: self.sync,
            rules: self.rules,
        })
    }
}

impl Resolve for CleanupConfig<SecretSource> {
    type Resolved = CleanupConfig;

    fn sources(&self) -> Vec<&SecretSource> {
        [self.mongo.sources(), self.kube.sources()].concat()
    }

    fn resolve_with(self, read: ReadSecret<'_>) -> Result<CleanupConfig, Error> {
        Ok(CleanupConfig {
            mongo: self.mongo.resolve_with(read)?,
            kube: self.kube.resolve_with(read)?,
            cleanup: self.cleanup,
        })
    }
}

impl Resolve for StatsConfig<SecretSource> {
    type Resolved = StatsConfig;

    fn sources(&self) -> Vec<&SecretSource> {
        self.mongo.sources()
    }

    fn resolve_with(self, read: ReadSecret<'_>) -> Result<StatsConfig, Error> {
        Ok(StatsConfig {
            mongo: self.mongo.resolve_with(read)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::declared::{Component, SETTINGS};
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

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

    /// Reads what every binary reads: the first error of any.
    fn read_all(pairs: &[(&str, &str)]) -> Result<(), Error> {
        SyncConfig::from_lookup(lookup(pairs))?;
        CleanupConfig::from_lookup(lookup(pairs))?;
        StatsConfig::from_lookup(lookup(pairs))?;
        Ok(())
    }

    #[test]
    fn defaults_follow_the_documented_values() {
        let c = SyncConfig::from_lookup(lookup(&BASE)).expect("valid");
        assert_eq!(c.mongo.database, "lemo_recommender");
        assert_eq!(c.mongo.collection, "flink_jobs");
        assert_eq!(c.kube.namespace, "lemo-dev");
        assert_eq!(c.kube.job_selector, "app=flink-python-job");
        assert_eq!(c.flink.rest_url().ok(), Some("http://flink:8081"));
        assert_eq!(c.rules.missing_threshold, 3);
        let c = CleanupConfig::from_lookup(lookup(&BASE)).expect("valid");
        assert_eq!(c.cleanup.min_age, chrono::Duration::hours(24));
        assert_eq!(c.cleanup.max_evidence_age, chrono::Duration::days(7));
    }

    #[test]
    fn missing_variable_is_named() {
        let e =
            SyncConfig::from_lookup(lookup(&[("FLINK_REST_URL", "http://f")])).expect_err("no uri");
        assert!(e.to_string().contains("MONGODB_URI"), "{e}");
        let only_mongo = [("MONGODB_URI", "mongodb://x")];
        CleanupConfig::from_lookup(lookup(&only_mongo)).expect("cleanup needs no Flink");
        let c = SyncConfig::from_lookup(lookup(&only_mongo)).expect("read");
        let e = c.flink.rest_url().expect_err("sync does");
        assert!(e.to_string().contains("FLINK_REST_URL"), "{e}");
    }

    #[test]
    fn bad_number_is_named_without_leaking_the_uri() {
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TIMEOUT_MS", "soon"));
        let e = SyncConfig::from_lookup(lookup(&pairs)).expect_err("bad number");
        assert!(e.to_string().contains("FLINK_TIMEOUT_MS"), "{e}");
        let c = SyncConfig::from_lookup(lookup(&BASE)).expect("valid");
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
            let e = read_all(&pairs).expect_err("out of range");
            let e = e.to_string();
            assert!(
                e.contains(var) && e.contains(range) && e.contains(value),
                "{e}"
            );
        }
        let mut pairs = BASE.to_vec();
        pairs.extend([("LOG_CONCURRENCY", "64"), ("CLEANUP_MIN_AGE_HOURS", "0")]);
        read_all(&pairs).expect("the bounds themselves are accepted");
        let c = CleanupConfig::from_lookup(lookup(&pairs)).expect("valid");
        assert_eq!(c.kube.log_concurrency, 64);
        assert_eq!(c.cleanup.min_age, chrono::Duration::zero());
    }

    #[test]
    fn tls_is_verified_unless_insecure_is_asked_for_by_name() {
        let c = SyncConfig::from_lookup(lookup(&BASE)).expect("valid");
        assert!(!c.flink.tls_insecure, "verified by default");
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TLS_INSECURE", "true"));
        assert!(
            SyncConfig::from_lookup(lookup(&pairs))
                .expect("valid")
                .flink
                .tls_insecure
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("FLINK_TLS_INSECURE", "yes please"));
        let e = SyncConfig::from_lookup(lookup(&pairs)).expect_err("not a flag");
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
        let c = SyncConfig::from_lookup(lookup(&pairs)).expect("valid");
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
            let e = SyncConfig::from_lookup(lookup(&pairs))
                .expect_err(bad)
                .to_string();
            assert!(
                e.contains("FLINK_CLUSTERS") && e.contains(says),
                "{bad}: {e}"
            );
        }
        // Clusters alone are enough for sync.
        let c = SyncConfig::from_lookup(lookup(&[
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
        let e = SyncConfig::from_lookup(lookup(&[
            ("MONGODB_URI", "mongodb://x"),
            ("FLINK_REST_URL", "file:///etc"),
        ]))
        .expect_err("bad url");
        assert!(e.to_string().contains("FLINK_REST_URL"), "{e}");
    }

    /// A reader of Secrets Manager that knows `secrets` by ARN.
    fn secrets_manager(
        secrets: &[(&str, &str)],
    ) -> impl FnMut(SecretSource) -> Result<Secret, Error> {
        move |source| match source {
            SecretSource::Given(secret) => Ok(secret),
            SecretSource::SecretsManager { var, arn } => secrets
                .iter()
                .find(|(a, _)| *a == arn)
                .map(|(_, v)| Secret::new(*v))
                .ok_or_else(|| Error::config(var, "names no secret")),
        }
    }

    #[test]
    fn a_uri_given_in_the_environment_resolves_to_itself_and_stays_hidden() {
        let c = SyncConfig::from_lookup(lookup(&BASE)).expect("valid");
        assert_eq!(c.mongo.uri.secrets_manager(), None);
        assert!(c.kube.kubeconfig.is_none());
        let c = c.resolve_given().expect("nothing to read");
        assert_eq!(c.mongo.uri.expose(), "mongodb://u:hunter2@db:27017/");
        assert!(format!("{c:?}").contains("Secret(***)"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn secret_arns_are_sources_naming_their_variables_and_resolving_reads_them() {
        let c = SyncConfig::from_lookup(lookup(&[
            ("MONGODB_URI_SECRET_ARN", "arn:mongo"),
            ("KUBECONFIG_SECRET_ARN", "arn:kube"),
        ]))
        .expect("the ARN stands for the URI");
        let sources: Vec<_> = c
            .sources()
            .into_iter()
            .filter_map(SecretSource::secrets_manager)
            .collect();
        assert_eq!(
            sources,
            [
                ("MONGODB_URI_SECRET_ARN", "arn:mongo"),
                ("KUBECONFIG_SECRET_ARN", "arn:kube")
            ]
        );
        let e = c.clone().resolve_given().expect_err("no Secrets Manager");
        assert!(e.to_string().contains("MONGODB_URI_SECRET_ARN"), "{e}");
        let c = c
            .resolve_with(&mut secrets_manager(&[
                ("arn:mongo", "mongodb+srv://u:hunter2@db/"),
                ("arn:kube", "apiVersion: v1"),
            ]))
            .expect("both read");
        assert_eq!(c.mongo.uri.expose(), "mongodb+srv://u:hunter2@db/");
        assert_eq!(
            c.kube.kubeconfig.as_ref().map(Secret::expose),
            Some("apiVersion: v1")
        );
    }

    #[test]
    fn the_secret_arn_wins_over_a_given_uri_which_is_still_checked() {
        let mut pairs = BASE.to_vec();
        pairs.push(("MONGODB_URI_SECRET_ARN", "arn:mongo"));
        let c = SyncConfig::from_lookup(lookup(&pairs)).expect("valid");
        assert_eq!(
            c.mongo.uri.secrets_manager(),
            Some(("MONGODB_URI_SECRET_ARN", "arn:mongo"))
        );
        let e = SyncConfig::from_lookup(lookup(&[
            ("MONGODB_URI", "postgres://x"),
            ("MONGODB_URI_SECRET_ARN", "arn:mongo"),
        ]))
        .expect_err("not a MongoDB URI");
        assert!(
            e.to_string()
                .contains("MONGODB_URI must start with mongodb://"),
            "{e}"
        );
    }

    #[test]
    fn a_secret_that_is_no_mongodb_uri_is_named_by_its_variable_not_its_value() {
        let c = SyncConfig::from_lookup(lookup(&[("MONGODB_URI_SECRET_ARN", "arn:mongo")]))
            .expect("valid");
        let e = c
            .resolve_with(&mut secrets_manager(&[(
                "arn:mongo",
                "postgres://u:hunter2@db/",
            )]))
            .expect_err("not a MongoDB URI");
        assert_eq!(
            e.to_string(),
            "configuration: MONGODB_URI_SECRET_ARN names a secret that is not a mongodb:// URI"
        );
    }

    /// The variables a reader asks for, from an environment that is all valid.
    fn asked<T>(
        read: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, Error>,
    ) -> BTreeSet<String> {
        let asked = RefCell::new(BTreeSet::new());
        let env = lookup(&BASE);
        let get = |k: &str| {
            asked.borrow_mut().insert(k.to_string());
            env(k)
        };
        read(&get).expect("a valid environment");
        asked.into_inner()
    }

    /// The declared variables config reads of these components.
    fn declared_of(components: &[Component]) -> BTreeSet<String> {
        SETTINGS
            .iter()
            .filter(|s| s.read_by_config() && components.contains(&s.component))
            .map(|s| s.name.to_string())
            .collect()
    }

    #[test]
    fn each_binary_reads_the_declared_variables_of_its_components_and_no_other() {
        use Component::*;
        let sync = asked(|get| SyncConfig::from_lookup(get));
        assert_eq!(
            sync,
            declared_of(&[Mongo, Flink, Kube, Events, Sync, SyncRule, HealthRule])
        );
        let cleanup = asked(|get| CleanupConfig::from_lookup(get));
        assert_eq!(cleanup, declared_of(&[Mongo, Kube, CleanupRule]));
        let stats = asked(|get| StatsConfig::from_lookup(get));
        assert_eq!(stats, declared_of(&[Mongo]));
        assert!(stats.contains("MONGODB_URI_SECRET_ARN") && stats.len() == 5);
        // Every variable config reads is declared, and every declared one is read.
        let read: BTreeSet<String> = [sync, cleanup, stats].into_iter().flatten().collect();
        let declared: BTreeSet<String> = SETTINGS
            .iter()
            .filter(|s| s.read_by_config())
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(read, declared);
    }

    #[test]
    fn a_bad_setting_stops_only_the_binaries_that_read_it() {
        for (var, value, sync, cleanup, stats) in [
            ("SYNC_CHUNK_SIZE", "0", false, true, true),
            ("HEALTH_BUDGET", "many", false, true, true),
            ("FLINK_REST_URL", "file:///etc", false, true, true),
            ("CLEANUP_MIN_AGE_HOURS", "-1", true, false, true),
            ("K8S_NAMESPACE", "Not_A_Name", false, false, true),
            ("MONGODB_URI", "postgres://x", false, false, false),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((var, value));
            let results = [
                SyncConfig::from_lookup(lookup(&pairs)).err(),
                CleanupConfig::from_lookup(lookup(&pairs)).err(),
                StatsConfig::from_lookup(lookup(&pairs)).err(),
            ];
            for (error, reads_fine) in results.iter().zip([sync, cleanup, stats]) {
                assert_eq!(error.is_none(), reads_fine, "{var}={value}: {error:?}");
                if let Some(e) = error {
                    assert!(e.to_string().contains(var), "{e}");
                }
            }
        }
    }
}
