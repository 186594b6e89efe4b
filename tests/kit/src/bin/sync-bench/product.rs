//! The product as the benchmark runs it: the one module that configures and
//! constructs it through its library API (`SyncConfig`, `Store`, `Kubernetes`,
//! `FlinkClusters`, `Syncer`). A change to how the product is configured or
//! constructed is adapted here alone. It owns the child process a sync run
//! is measured in (so that its peak RSS is its own), the product's indexes
//! every variant's collection gets, and the product's defaults the floor
//! follows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flink_job_sync::SyncConfig;
use flink_job_sync::adapters::store::Store;
use flink_job_sync::config::Resolve;
use serde_json::{Value, json};
use test_kit::scenario::NS;

use crate::mongo::{MongoCounts, MongoTally};
use crate::report::Measure;
use crate::rig::Bench;

/// The product's defaults the floor does as the product does.
pub struct Defaults {
    /// `STATUS_HISTORY_MAX`: the `$slice` of the history entries.
    pub history_max: usize,
    /// `LOG_CONCURRENCY`: log reads and health looks at once.
    pub concurrency: usize,
    /// `HEALTH_BUDGET`: running jobs looked at per run.
    pub health_budget: usize,
}

/// The product's defaults: its configuration with nothing set.
pub fn defaults() -> Defaults {
    let cfg = config_for("unused");
    Defaults {
        history_max: cfg.sync.history_max,
        concurrency: cfg.sync.concurrency,
        health_budget: cfg.rules.health.budget,
    }
}

/// The product's configuration for database `db`, all else default.
fn config_for(db: &str) -> SyncConfig {
    SyncConfig::from_lookup(|k| match k {
        "MONGODB_URI" => Some("mongodb://unused".to_string()),
        "MONGODB_DATABASE" => Some(db.to_string()),
        "FLINK_REST_URL" => Some("http://unused:8081".to_string()),
        _ => None,
    })
    .and_then(Resolve::resolve_given)
    .unwrap_or_else(|e| panic!("the product's default configuration: {e}"))
}

/// The product's indexes on the records of `db`.
pub async fn ensure_indexes(db: &mongodb::Database) {
    let cfg = config_for(db.name());
    Store::from_client(db.client(), &cfg.mongo)
        .ensure_indexes()
        .await
        .unwrap_or_else(|e| panic!("indexes: {e}"));
}

impl Bench {
    /// The product: the real `Syncer`, in a child process of its own so its
    /// peak RSS is its own.
    pub fn product(&self, db: &str, variant: &'static str) -> Measure {
        self.reset_counts();
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        // BENCH_CHILD_WRAP runs the child under a profiler, e.g. "heaptrack -o /tmp/ht".
        let wrap: Vec<String> = std::env::var("BENCH_CHILD_WRAP")
            .map(|w| w.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut cmd = match wrap.split_first() {
            Some((tool, args)) => {
                let mut c = std::process::Command::new(tool);
                c.args(args).arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        if let Some(b) = self.health_budget {
            cmd.env("HEALTH_BUDGET", b.to_string());
        }
        let out = cmd
            .arg("--child-sync")
            .env("MONGODB_URI", &self.uri)
            .env("MONGODB_DATABASE", db)
            .envs(self.flink_env())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("K8S_NAMESPACE", NS)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("child sync: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("{\"bench\""))
            .unwrap_or_else(|| {
                panic!(
                    "child sync printed no result: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
        let mongo: MongoTally =
            serde_json::from_value(v["bench"]["mongo"].clone()).unwrap_or_default();
        let mut m = self.measure(
            variant,
            Duration::from_secs_f64(v["bench"]["wall_ms"].as_f64().unwrap_or(0.0) / 1000.0),
            mongo,
            v["bench"]["peak_rss_mb"].as_f64(),
            v["bench"]["records_changed"].as_u64(),
        );
        m.phases_ms = Some(v["bench"]["phases_ms"].clone());
        m.health_looks = v["bench"]["health_checked"].as_u64();
        m.health_changes = v["bench"]["health_changes"].as_u64();
        m
    }

    /// How the product finds the clusters: `FLINK_REST_URL` for a fleet of
    /// one, else `FLINK_CLUSTERS`.
    fn flink_env(&self) -> Vec<(&'static str, String)> {
        match self.clusters.as_slice() {
            [one] if one.name.is_none() => vec![("FLINK_REST_URL", one.url.clone())],
            all => {
                let named: serde_json::Map<String, Value> = all
                    .iter()
                    .filter_map(|c| Some((c.name.clone()?, json!({"rest_url": c.url}))))
                    .collect();
                vec![("FLINK_CLUSTERS", Value::Object(named).to_string())]
            }
        }
    }
}

/// Child mode (`--child-sync`): one real sync run, configured from the
/// environment [`Bench::product`] gives it; prints its figures as one JSON line.
pub async fn child_sync() {
    let cfg = SyncConfig::from_env()
        .and_then(Resolve::resolve_given)
        .unwrap_or_else(|e| panic!("{e}"));
    let counts = Arc::new(MongoCounts::default());
    let client = crate::mongo::client(cfg.mongo.uri.expose(), counts.clone()).await;
    let store = Store::from_client(&client, &cfg.mongo);
    let kube = flink_job_sync::adapters::k8s::Kubernetes::connect(&cfg.kube)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let flink = flink_job_sync::adapters::flink::FlinkClusters::from_settings(&cfg.flink)
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .ensure_indexes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let syncer = flink_job_sync::runs::sync::Syncer::builder(store, kube)
        .flink(flink)
        .settings(cfg.sync)
        .rules(cfg.rules)
        .build();
    counts.take_all();
    let start = Instant::now();
    let summary = syncer
        .run(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let wall = start.elapsed();
    let mongo = counts.take_all();
    println!(
        "{}",
        json!({"bench": {"wall_ms": wall.as_secs_f64() * 1000.0, "mongo": mongo, "peak_rss_mb": peak_rss_mb(),
            "records_changed": summary.records_changed, "phases_ms": summary.phases_ms,
            "health_checked": summary.health_checked, "health_changes": summary.health_changes}})
    );
}

/// This process's peak resident set (`VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
