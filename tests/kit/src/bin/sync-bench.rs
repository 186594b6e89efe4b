//! The fleet-scale benchmark (`scripts/bench`): for each fleet size, the
//! product's sync run against (1) the per-record algorithm of the design note
//! and (2) the floor, the bare minimal calls for the same changes; all on the
//! same generated data, on the stack's MongoDB, an in-process Kubernetes API
//! emulator and a fast in-process Flink REST stand-in that counts requests.
//! The product runs three times on each fleet: its first run (no job ever
//! looked at for health), the next run, and a later run once every running
//! job has been looked at (its checkpoint config known), so the cost of the
//! health looks shows per run. Prints a table, or JSON with `--json`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flink_job_sync::adapters::store::record::to_bson_date;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use mongodb::bson::{Bson, Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use serde_json::{Value, json};
use test_kit::emulator::{self, EmulatorConfig, RunningEmulator};
use test_kit::faultproxy::{Fault, FaultProxy};
use test_kit::flinkfake::{FakeJob, FlinkFake, HEALTH_ENDPOINTS};
use test_kit::scenario::NS;

const T0: i64 = 1_795_000_000_000;

/// Every generated job checkpoints this often (retained on cancellation).
const CHECKPOINT_INTERVAL_MS: u64 = 60_000;

fn usage() -> ! {
    eprintln!(
        "usage: scripts/bench [--records 1000,10000] [--changing 0.10] [--pending 0.05] [--clusters 1] [--rtt-ms 0] [--baseline-max 10000] [--health-budget N] [--json]"
    );
    std::process::exit(2)
}

#[derive(Clone, Copy)]
struct Knobs {
    changing: f64,
    pending: f64,
    /// Flink clusters the fleet is spread over (record `i` on cluster
    /// `i % clusters`); with one, records name none (`FLINK_REST_URL`).
    clusters: usize,
    /// Round trip added to every exchange with MongoDB, Flink and
    /// Kubernetes (half each way, by the fault proxies).
    rtt: Duration,
}

/// The cluster record `i` names, if the fleet has several.
fn cluster_of(i: usize, k: Knobs) -> Option<String> {
    (k.clusters > 1).then(|| format!("c{}", i % k.clusters))
}

fn jid(i: usize) -> String {
    format!("{:032x}", i + 1)
}

fn job_name(i: usize) -> String {
    format!("bench-{i:06}")
}

/// Counts MongoDB commands by name, the time the driver waited for each
/// kind, and the bytes of the replies.
#[derive(Default)]
struct MongoCounts(std::sync::Mutex<MongoTally>);

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct MongoTally {
    commands: BTreeMap<String, u64>,
    wait_ms: BTreeMap<String, f64>,
    reply_bytes: u64,
}

impl MongoCounts {
    fn take_all(&self) -> MongoTally {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn mongo_client(uri: &str, counts: Arc<MongoCounts>) -> mongodb::Client {
    let mut options = mongodb::options::ClientOptions::parse(uri)
        .await
        .unwrap_or_else(|e| panic!("MONGODB_URI: {e}"));
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        let mut tally = counts.0.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            CommandEvent::Started(s) => *tally.commands.entry(s.command_name).or_default() += 1,
            CommandEvent::Succeeded(s) => {
                *tally.wait_ms.entry(s.command_name).or_default() +=
                    s.duration.as_secs_f64() * 1000.0;
                tally.reply_bytes += mongodb::bson::to_vec(&s.reply).map_or(0, |b| b.len() as u64);
            }
            _ => {}
        }
    }));
    mongodb::Client::with_options(options).unwrap_or_else(|e| panic!("mongo client: {e}"))
}

/// The generated fleet, written to a fresh database.
async fn seed(db: &mongodb::Database, n: usize, k: Knobs) {
    db.drop().await.unwrap_or_else(|e| panic!("drop: {e}"));
    let coll = db.collection::<Document>("flink_jobs");
    let pending = (n as f64 * k.pending) as usize;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        let mut d = if i < pending {
            doc! {"job_id": job_name(i), "status": "CREATED", "flink_job_id": null, "submitted_at": to_bson_date(chrono::Utc::now())}
        } else {
            doc! {"job_id": job_name(i), "status": "RUNNING", "flink_job_id": jid(i), "flink_state": "RUNNING",
            "start_time": Bson::DateTime(mongodb::bson::DateTime::from_millis(T0)), "submitted_at": to_bson_date(chrono::Utc::now())}
        };
        if let Some(c) = cluster_of(i, k) {
            d.insert("flink_cluster", c);
        }
        batch.push(d);
        if batch.len() == 1000 {
            coll.insert_many(std::mem::take(&mut batch))
                .await
                .unwrap_or_else(|e| panic!("seed: {e}"));
        }
    }
    if !batch.is_empty() {
        coll.insert_many(batch)
            .await
            .unwrap_or_else(|e| panic!("seed: {e}"));
    }
    // Every variant pays for the same indexes: the product's.
    let name = db.name().to_string();
    let cfg = flink_job_sync::StatsConfig::from_lookup(|k| match k {
        "MONGODB_URI" => Some("mongodb://unused".to_string()),
        "MONGODB_DATABASE" => Some(name.clone()),
        _ => None,
    })
    .and_then(flink_job_sync::config::Resolve::resolve_given)
    .unwrap_or_else(|e| panic!("{e}"));
    flink_job_sync::adapters::store::Store::from_client(db.client(), &cfg.mongo)
        .ensure_indexes()
        .await
        .unwrap_or_else(|e| panic!("indexes: {e}"));
}

/// Flink states, per cluster: pending records' jobs RUNNING (a change once
/// found), the changing share FINISHED, the rest RUNNING as recorded; every
/// job checkpointing, so a health look reads checkpoints, config and restarts.
fn flink_jobs(n: usize, k: Knobs) -> Vec<BTreeMap<String, FakeJob>> {
    let pending = (n as f64 * k.pending) as usize;
    let changing = (n as f64 * k.changing) as usize;
    let mut clusters = vec![BTreeMap::new(); k.clusters.max(1)];
    for i in 0..n {
        let finished = i >= pending && i < pending + changing;
        let job = if finished {
            FakeJob::new("FINISHED", T0, T0 + 60_000)
        } else {
            FakeJob::new("RUNNING", T0, -1)
        };
        clusters[i % k.clusters.max(1)].insert(jid(i), job.checkpointing(CHECKPOINT_INTERVAL_MS));
    }
    clusters
}

/// Every running record with a JobID as a health look leaves it, some time
/// ago: healthy, checkpoint config known. What the records look like once
/// every running job has had a look (after fleet / budget runs).
async fn mark_all_looked_at(db: &mongodb::Database) {
    let ago = to_bson_date(chrono::Utc::now() - chrono::Duration::minutes(10));
    db.collection::<Document>("flink_jobs")
        .update_many(
            doc! {"status": "RUNNING", "flink_job_id": {"$ne": null}},
            doc! {"$set": {"health": "HEALTHY", "health_reasons": [], "health_checked_at": ago,
            "restarts": 0_i64, "checkpoint": {"completed": 0_i64, "failed": 0_i64,
            "interval_ms": CHECKPOINT_INTERVAL_MS as i64,
            "retention": flink_job_sync::rules::health::Retention::OnCancellation.as_str()}}},
        )
        .await
        .unwrap_or_else(|e| panic!("marking records looked at: {e}"));
}

async fn k8s_fleet(emu: &RunningEmulator, n: usize, k: Knobs) {
    let pending = (n as f64 * k.pending) as usize;
    let client = emu.client().await;
    let url = emu.url();
    futures::stream::iter((0..pending).map(|i| {
        let client = client.clone();
        let url = url.clone();
        async move { create_pending(&client, &url, i).await }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
}

async fn create_pending(client: &kube::Client, url: &str, i: usize) {
    let name = job_name(i);
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let job: Job = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "flink-python-job"}},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "flink-python-job"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink"}]}}}}))
    .unwrap_or_else(|e| panic!("{e}"));
    let job = jobs
        .create(&Default::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("create job: {e}"));
    let uid = job.metadata.uid.unwrap_or_default();
    let pod_name = format!("{name}-pod0");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": pod_name, "labels": {"app": "flink-python-job", "job-name": name},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true}]},
        "spec": {"containers": [{"name": "flink-client", "image": "flink"}]}}))
    .unwrap_or_else(|e| panic!("{e}"));
    pods.create(&Default::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod: {e}"));
    let running = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "flink-client", "image": "flink", "imageID": "",
        "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
    pods.patch_status(
        &pod_name,
        &Default::default(),
        &kube::api::Patch::Merge(running),
    )
    .await
    .unwrap_or_else(|e| panic!("pod status: {e}"));
    let log = format!("starting\nJob has been submitted with JobID {}\n", jid(i));
    reqwest::Client::new()
        .put(format!(
            "{url}/emulator/v1/namespaces/{NS}/pods/{pod_name}/log?container=flink-client"
        ))
        .body(log)
        .send()
        .await
        .unwrap_or_else(|e| panic!("log: {e}"));
}

#[derive(Debug, Clone, serde::Serialize)]
struct Measure {
    variant: &'static str,
    wall_ms: f64,
    flink_requests: BTreeMap<String, u64>,
    k8s_requests: BTreeMap<String, u64>,
    mongo_commands: BTreeMap<String, u64>,
    mongo_round_trips: u64,
    /// Bytes of answers read from each server.
    bytes_read: BTreeMap<String, u64>,
    /// Time the driver waited for each kind of command.
    mongo_wait_ms: BTreeMap<String, u64>,
    peak_rss_mb: Option<f64>,
    records_changed: Option<u64>,
    /// Of `flink_requests`, the health looks' (checkpoints, their config,
    /// metrics), by endpoint.
    health_requests: BTreeMap<String, u64>,
    /// Jobs whose health the product looked at (`health_checked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    health_looks: Option<u64>,
    /// Health verdicts it changed (`health_changes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    health_changes: Option<u64>,
    /// The product's own account of where its time went.
    #[serde(skip_serializing_if = "Option::is_none")]
    phases_ms: Option<Value>,
}

/// One Flink cluster of the fleet: its stand-in, behind a proxy.
struct Cluster {
    /// `None`: the `FLINK_REST_URL` cluster (a fleet of one cluster).
    name: Option<String>,
    fake: Arc<FlinkFake>,
    proxy: FaultProxy,
    url: String,
}

struct Bench {
    /// MongoDB as every variant reaches it: through `mongo_proxy`.
    uri: String,
    /// `HEALTH_BUDGET` for the product; `None`: its default.
    health_budget: Option<usize>,
    clusters: Vec<Cluster>,
    emu: RunningEmulator,
    kubeconfig: std::path::PathBuf,
    counts: Arc<MongoCounts>,
    client: mongodb::Client,
    /// Pass-through proxies in front of the emulator and MongoDB (the Flink
    /// stand-ins have theirs), counting the bytes each variant reads and
    /// adding the round trip asked for.
    k8s_proxy: FaultProxy,
    mongo_proxy: Arc<FaultProxy>,
    kube: kube::Client,
}

impl Bench {
    fn reset_counts(&self) {
        self.flink_counts();
        self.flink_bytes();
        self.emu.take_request_counts();
        self.counts.take_all();
        self.k8s_proxy.take_bytes_to_client();
        self.mongo_proxy.take_bytes_to_client();
    }

    /// Requests by endpoint over every cluster, since the last call.
    fn flink_counts(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for c in &self.clusters {
            for (k, v) in c.fake.take_counts() {
                *all.entry(k).or_default() += v;
            }
        }
        all
    }

    fn flink_bytes(&self) -> u64 {
        self.clusters
            .iter()
            .map(|c| c.proxy.take_bytes_to_client())
            .sum()
    }

    /// The base URL of the cluster record `r` names.
    fn flink_url_of(&self, r: &Document) -> &str {
        let name = r.get_str("flink_cluster").ok();
        self.clusters
            .iter()
            .find(|c| c.name.as_deref() == name)
            .map_or("http://unknown-cluster", |c| c.url.as_str())
    }

    fn measure(
        &self,
        variant: &'static str,
        wall: Duration,
        mongo: MongoTally,
        rss: Option<f64>,
        changed: Option<u64>,
    ) -> Measure {
        let round_trips = mongo.commands.values().sum();
        let flink_requests = self.flink_counts();
        Measure {
            variant,
            wall_ms: wall.as_secs_f64() * 1000.0,
            health_requests: flink_requests
                .iter()
                .filter(|(k, _)| HEALTH_ENDPOINTS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            flink_requests,
            k8s_requests: self.emu.take_request_counts(),
            bytes_read: [
                ("flink", self.flink_bytes()),
                ("kubernetes", self.k8s_proxy.take_bytes_to_client()),
                ("mongodb", mongo.reply_bytes),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            mongo_commands: mongo.commands,
            mongo_round_trips: round_trips,
            mongo_wait_ms: mongo
                .wait_ms
                .into_iter()
                .map(|(k, v)| (k, v.round() as u64))
                .collect(),
            peak_rss_mb: rss,
            records_changed: changed,
            health_looks: None,
            health_changes: None,
            phases_ms: None,
        }
    }

    /// The product: the real `Syncer`, in a child process of its own so its
    /// peak RSS is its own.
    fn product(&self, db: &str, variant: &'static str) -> Measure {
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

    /// The note's algorithm: per record, sequentially, one Flink GET and one
    /// update; for records without a JobID, one Job get and one log read.
    async fn baseline(&self, db: &str) -> Measure {
        let coll = self
            .client
            .database(db)
            .collection::<Document>("flink_jobs");
        let jobs: Api<Job> = Api::namespaced(self.kube.clone(), NS);
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let http = reqwest::Client::new();
        self.reset_counts();
        let start = Instant::now();
        let records = non_final_docs(&coll, None).await;
        let mut changed = 0;
        for r in records {
            let job_id = r.get_str("job_id").unwrap_or_default().to_string();
            let mut flink_id = r.get_str("flink_job_id").ok().map(str::to_string);
            if flink_id.is_none() {
                if jobs.get(&job_id).await.is_err() {
                    continue;
                }
                let list = pods
                    .list(&ListParams::default().labels(&format!("job-name={job_id}")))
                    .await;
                if let Some(pod) = list
                    .ok()
                    .and_then(|l| l.items.into_iter().next())
                    .and_then(|p| p.metadata.name)
                {
                    let lp = log_params();
                    let log = pods.logs(&pod, &lp).await.unwrap_or_default();
                    flink_id = flink_job_sync::rules::podlog::submitted_job_ids(log.as_bytes())
                        .first()
                        .map(|i| i.to_string());
                }
            }
            let Some(id) = flink_id else { continue };
            let body = get_json(&http, &format!("{}/jobs/{id}", self.flink_url_of(&r))).await;
            let state = body["state"].as_str().unwrap_or("RUNNING");
            let status = match state {
                "FINISHED" => "FINISHED",
                _ => "RUNNING",
            };
            coll.update_one(
                doc! {"_id": r.get("_id").cloned().unwrap_or(Bson::Null)},
                doc! {"$set": {"flink_job_id": &id, "status": status, "flink_state": state}},
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            if status != r.get_str("status").unwrap_or_default() {
                changed += 1;
            }
        }
        let wall = start.elapsed();
        self.measure(
            "per-record (design note)",
            wall,
            self.counts.take_all(),
            None,
            Some(changed),
        )
    }

    /// The floor: one find, one overview per cluster, the unavoidable log
    /// reads, the same health looks (every job that just ended, and the
    /// budget's running jobs; their three requests at once), and the same
    /// changes as the product's, in one `update` command per 500. Written
    /// unconditionally, or (`guarded`) under the product's conditions:
    /// the record as read (`status`, `flink_job_id`, `revision`), with
    /// `revision` bumped, which is what the store charges for safety.
    async fn floor(&self, db_name: &str, guarded: bool) -> Measure {
        let db = self.client.database(db_name);
        let coll = db.collection::<Document>("flink_jobs");
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let http = reqwest::Client::new();
        self.reset_counts();
        let start = Instant::now();
        let records = non_final_docs(
            &coll,
            Some(doc! {"job_id": 1, "status": 1, "flink_job_id": 1, "flink_cluster": 1, "revision": 1}),
        )
        .await;
        // One overview per cluster, at once (the generated JobIDs are unique
        // across clusters).
        let overviews = futures::future::join_all(self.clusters.iter().map(|c| {
            let url = format!("{}/jobs/overview", c.url);
            let http = &http;
            async move { get_json(http, &url).await }
        }))
        .await;
        let jobs: std::collections::HashMap<String, (String, i64, i64)> = overviews
            .iter()
            .flat_map(|o| o["jobs"].as_array().into_iter().flatten())
            .filter_map(|j| {
                Some((
                    j["jid"].as_str()?.to_string(),
                    (
                        j["state"].as_str()?.to_string(),
                        j["start-time"].as_i64()?,
                        j["end-time"].as_i64()?,
                    ),
                ))
            })
            .collect();
        let pending: Vec<&Document> = records
            .iter()
            .filter(|r| r.get_str("flink_job_id").is_err())
            .collect();
        let logs: Vec<String> = futures::stream::iter(pending.iter().map(|r| {
            let pods = pods.clone();
            let pod = format!("{}-pod0", r.get_str("job_id").unwrap_or_default());
            async move {
                let lp = log_params();
                pods.logs(&pod, &lp).await.unwrap_or_default()
            }
        }))
        .buffered(8)
        .collect()
        .await;
        // The same changes the product writes (status, Flink state and times,
        // the history entry, the health fields; the JobID for records that
        // learn it): what a write of those changes costs at the least,
        // without the product's conditions or (`guarded`) with them.
        let now = to_bson_date(chrono::Utc::now());
        let date = |ms: i64| Bson::DateTime(mongodb::bson::DateTime::from_millis(ms));
        let history = |from: &str, to: &str| {
            doc! {"status_history": {"$each": [{"from": from, "to": to, "at": now.clone(), "source": "flink"}], "$slice": -50}}
        };
        // Health looks: the jobs that just ended, then the budget's share of
        // the running ones.
        let budget = self
            .health_budget
            .unwrap_or(flink_job_sync::rules::health::HealthRules::default().budget);
        let mut looks: Vec<(&Document, &str)> = Vec::new();
        let mut running_picked = 0;
        for r in &records {
            let Ok(id) = r.get_str("flink_job_id") else {
                continue;
            };
            match jobs.get(id) {
                Some((state, _, _)) if state == "FINISHED" => looks.push((r, id)),
                Some(_) if running_picked < budget => {
                    running_picked += 1;
                    looks.push((r, id));
                }
                _ => {}
            }
        }
        let health: std::collections::HashMap<String, Document> =
            futures::stream::iter(looks.into_iter().map(|(r, id)| {
                let base = self.flink_url_of(r).to_string();
                let http = &http;
                let now = now.clone();
                async move { (id.to_string(), floor_look(http, &base, id, now).await) }
            }))
            .buffer_unordered(8)
            .collect()
            .await;
        let mut statements: Vec<Document> = Vec::new();
        let mut push = |r: &Document, mut set: Document, history: Option<Document>| {
            if let Some(h) = r.get_str("flink_job_id").ok().and_then(|id| health.get(id)) {
                set.extend(h.clone());
            }
            let mut u = doc! {"$set": set};
            if let Some(h) = history {
                u.insert("$push", h);
            }
            let mut q = doc! {"_id": r.get("_id").cloned().unwrap_or(Bson::Null)};
            let mut statement = doc! {};
            if guarded {
                q.insert("status", r.get_str("status").unwrap_or_default());
                q.insert(
                    "flink_job_id",
                    r.get("flink_job_id").cloned().unwrap_or(Bson::Null),
                );
                match r.get("revision") {
                    Some(rev) => q.insert("revision", rev.clone()),
                    None => q.insert("revision", doc! {"$exists": false}),
                };
                u.insert("$inc", doc! {"revision": 1_i64});
                statement.insert("hint", doc! {"_id": 1});
            }
            statement.insert("q", q);
            statement.insert("u", u);
            statements.push(statement);
        };
        for r in &records {
            let Ok(id) = r.get_str("flink_job_id") else {
                continue;
            };
            match jobs.get(id) {
                Some((state, start, end)) if state == "FINISHED" => push(
                    r,
                    doc! {"status": "FINISHED", "flink_state": state, "end_time": date(*end),
                    "duration": (end - start) as f64 / 1000.0, "last_synced_at": now.clone()},
                    Some(history("RUNNING", "FINISHED")),
                ),
                _ if health.contains_key(id) => push(r, doc! {}, None),
                _ => {}
            }
        }
        for (r, log) in pending.iter().zip(&logs) {
            let Some(id) = flink_job_sync::rules::podlog::submitted_job_ids(log.as_bytes())
                .first()
                .map(|i| i.to_string())
            else {
                continue;
            };
            let Some((state, start, _)) = jobs.get(&id) else {
                continue;
            };
            push(
                r,
                doc! {"status": "RUNNING", "flink_job_id": &id, "flink_job_ids": [&id],
                "flink_state": state, "start_time": date(*start), "last_synced_at": now.clone()},
                Some(history("CREATED", "RUNNING")),
            );
        }
        let changed = statements.len() as u64;
        for chunk in statements.chunks(500) {
            db.run_command(
                doc! {"update": "flink_jobs", "updates": chunk.to_vec(), "ordered": false},
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let wall = start.elapsed();
        self.measure(
            if guarded {
                "floor, product's guards"
            } else {
                "floor (minimal calls)"
            },
            wall,
            self.counts.take_all(),
            None,
            Some(changed),
        )
    }
}

/// The floor's health look at one job: its checkpoints, their config and
/// its restarts, asked at once; the fields a look sets.
async fn floor_look(http: &reqwest::Client, base: &str, id: &str, now: Bson) -> Document {
    let urls = [
        format!("{base}/jobs/{id}/checkpoints"),
        format!("{base}/jobs/{id}/checkpoints/config"),
        format!("{base}/jobs/{id}/metrics?get=numRestarts"),
    ];
    let (checkpoints, config, metrics) = futures::join!(
        get_json(http, &urls[0]),
        get_json(http, &urls[1]),
        get_json(http, &urls[2]),
    );
    let count = |v: &Value| v.as_i64().unwrap_or(0);
    let latest = checkpoints["latest"]["completed"]["external_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let restarts = metrics[0]["value"]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    doc! {"health": "HEALTHY", "health_reasons": [], "health_checked_at": now, "restarts": restarts,
    "checkpoint": {"completed": count(&checkpoints["counts"]["completed"]),
        "failed": count(&checkpoints["counts"]["failed"]), "interval_ms": count(&config["interval"]),
        "latest_path": &latest}, "restart_point": latest}
}

/// The log read both comparison algorithms make, with the product's limits.
fn log_params() -> LogParams {
    LogParams {
        tail_lines: Some(500),
        limit_bytes: Some(256 * 1024),
        ..Default::default()
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json().await.unwrap_or_default()
}

/// One find of the non-final records, as both comparison algorithms start.
async fn non_final_docs(
    coll: &mongodb::Collection<Document>,
    projection: Option<Document>,
) -> Vec<Document> {
    let mut cursor = coll
        .find(doc! {"status": {"$in": ["CREATED", "RUNNING", "SUSPENDED"]}})
        .with_options(
            mongodb::options::FindOptions::builder()
                .projection(projection)
                .build(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut records = Vec::new();
    while let Some(d) = cursor.next().await {
        records.push(d.unwrap_or_else(|e| panic!("{e}")));
    }
    records
}

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

/// Child mode: one real sync run; prints its figures as one JSON line.
async fn child_sync() {
    let cfg = flink_job_sync::SyncConfig::from_env()
        .and_then(flink_job_sync::config::Resolve::resolve_given)
        .unwrap_or_else(|e| panic!("{e}"));
    let counts = Arc::new(MongoCounts::default());
    let client = mongo_client(cfg.mongo.uri.expose(), counts.clone()).await;
    let store = flink_job_sync::adapters::store::Store::from_client(&client, &cfg.mongo);
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

/// Process start to the first `GET .../invocation/next` of the release `sync` binary.
async fn cold_start(uri: &str, flink_url: &str, kubeconfig: &std::path::Path) -> Value {
    let bin = test_kit::lambda::workspace_root().join("target/release/sync");
    let Ok(meta) = std::fs::metadata(&bin) else {
        return json!({"error": format!("{} not built (cargo build --release -p sync)", bin.display())});
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut child = tokio::process::Command::new(&bin)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "sync")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("MONGODB_URI", uri)
            .env("FLINK_REST_URL", flink_url)
            .env("KUBECONFIG", kubeconfig)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        let elapsed = start.elapsed();
        let _ = child.kill().await;
        if accepted.is_ok() {
            samples.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    json!({"binary": "target/release/sync (x86_64)", "binary_bytes": meta.len(),
        "ready_ms_median": samples.get(samples.len() / 2), "ready_ms_samples": samples})
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child-sync") {
        return child_sync().await;
    }
    let mut sizes = vec![1000usize, 10_000];
    let mut knobs = Knobs {
        changing: 0.10,
        pending: 0.05,
        clusters: 1,
        rtt: Duration::ZERO,
    };
    let mut baseline_max = 10_000usize;
    let mut health_budget = None;
    let mut as_json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--records" => {
                sizes = val()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--changing" => knobs.changing = val().parse().unwrap_or_else(|_| usage()),
            "--pending" => knobs.pending = val().parse().unwrap_or_else(|_| usage()),
            "--baseline-max" => baseline_max = val().parse().unwrap_or_else(|_| usage()),
            "--clusters" => knobs.clusters = val().parse().unwrap_or_else(|_| usage()),
            "--rtt-ms" => {
                let ms = val().parse::<f64>().unwrap_or_else(|_| usage());
                if !(ms.is_finite() && ms >= 0.0) {
                    usage()
                }
                knobs.rtt = Duration::from_secs_f64(ms / 1000.0)
            }
            "--health-budget" => health_budget = Some(val().parse().unwrap_or_else(|_| usage())),
            "--json" => as_json = true,
            _ => usage(),
        }
    }
    if knobs.clusters == 0 {
        usage()
    }
    let direct_uri = test_kit::stack::require("MONGODB_URI");
    // Seeding goes straight to MongoDB; every measured variant goes through
    // the proxy (one server, so a direct connection: no discovery around it).
    let seeder = mongodb::Client::with_uri_str(&direct_uri)
        .await
        .unwrap_or_else(|e| panic!("MONGODB_URI: {e}"));
    let mongo_proxy = FaultProxy::in_front_of(&direct_uri).await;
    let uri = {
        let u = mongo_proxy.url_for(&direct_uri);
        let sep = if u.contains('?') { '&' } else { '?' };
        format!("{u}{sep}directConnection=true")
    };
    let latency = (!knobs.rtt.is_zero()).then(|| Fault::Latency(knobs.rtt / 2));
    if let Some(l) = &latency {
        mongo_proxy.set(l.clone()).await;
    }
    let counts = Arc::new(MongoCounts::default());
    let client = mongo_client(&uri, counts.clone()).await;
    let mongo_proxy = Arc::new(mongo_proxy);
    let mut report = Vec::new();
    for n in sizes {
        let mut clusters = Vec::new();
        for (c, jobs) in flink_jobs(n, knobs).into_iter().enumerate() {
            let fake = FlinkFake::with_jobs(jobs);
            let direct = fake.serve().await;
            let proxy = FaultProxy::in_front_of(&direct).await;
            if let Some(l) = &latency {
                proxy.set(l.clone()).await;
            }
            clusters.push(Cluster {
                name: (knobs.clusters > 1).then(|| format!("c{c}")),
                url: proxy.url_for(&direct),
                fake,
                proxy,
            });
        }
        let emu = emulator::start(EmulatorConfig::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        k8s_fleet(&emu, n, knobs).await;
        let dir = std::env::temp_dir().join(format!("fjs-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = dir.join("kubeconfig");
        let k8s_proxy = FaultProxy::in_front_of(&emu.url()).await;
        let k8s_url = k8s_proxy.url_for(&emu.url());
        if let Some(l) = &latency {
            k8s_proxy.set(l.clone()).await;
        }
        std::fs::write(&kubeconfig, emulator::kubeconfig_yaml(&k8s_url, NS))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut kc = kube::Config::new(k8s_url.parse().unwrap_or_else(|e| panic!("{e}")));
        kc.default_namespace = NS.to_string();
        let kube = kube::Client::try_from(kc).unwrap_or_else(|e| panic!("{e}"));
        let bench = Bench {
            uri: uri.clone(),
            health_budget,
            clusters,
            emu,
            kubeconfig: kubeconfig.clone(),
            counts: counts.clone(),
            client: client.clone(),
            k8s_proxy,
            mongo_proxy: mongo_proxy.clone(),
            kube,
        };
        let db_name = format!("fjs_bench_{n}");
        let db = seeder.database(&db_name);
        eprintln!("bench: {n} records: seeding");
        seed(&db, n, knobs).await;
        eprintln!("bench: {n} records: sync, first run");
        let product = bench.product(&db_name, "sync (product)");
        eprintln!("bench: {n} records: sync, next run");
        let next = bench.product(&db_name, "sync, next run");
        mark_all_looked_at(&db).await;
        eprintln!("bench: {n} records: sync, later run (all looked at)");
        let later = bench.product(&db_name, "sync, later run");
        seed(&db, n, knobs).await;
        eprintln!("bench: {n} records: floor");
        let floor = bench.floor(&db_name, false).await;
        seed(&db, n, knobs).await;
        eprintln!("bench: {n} records: floor with the product's guards");
        let guarded = bench.floor(&db_name, true).await;
        let baseline = if n <= baseline_max {
            seed(&db, n, knobs).await;
            eprintln!("bench: {n} records: per-record baseline");
            Some(bench.baseline(&db_name).await)
        } else {
            None
        };
        let _ = db.drop().await;
        let ratio = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
        let runs: Vec<Measure> = [product.clone(), next, later, floor.clone(), guarded.clone()]
            .into_iter()
            .chain(baseline.clone())
            .collect();
        report.push(json!({
            "records": n, "changing": knobs.changing, "pending": knobs.pending,
            "clusters": knobs.clusters, "rtt_ms": knobs.rtt.as_secs_f64() * 1000.0,
            "health_budget": health_budget.map_or(json!("default (200)"), |b| json!(b)),
            "runs": runs,
            "product_over_floor": ratio(product.wall_ms, floor.wall_ms),
            "product_over_guarded_floor": ratio(product.wall_ms, guarded.wall_ms),
            "baseline_over_product": baseline.as_ref().and_then(|b| ratio(b.wall_ms, product.wall_ms)),
        }));
    }
    let cold = {
        let flink_url = FlinkFake::with_jobs(BTreeMap::new()).serve().await;
        let dir = std::env::temp_dir().join(format!("fjs-bench-{}", std::process::id()));
        cold_start(&direct_uri, &flink_url, &dir.join("kubeconfig")).await
    };
    let out = json!({"machine": machine(), "scenarios": report, "cold_start": cold});
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_table(&out);
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

fn total(v: &Value) -> u64 {
    v.as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

fn print_table(out: &Value) {
    println!("machine: {}", out["machine"].as_str().unwrap_or_default());
    println!(
        "{:>7}  {:<26} {:>10} {:>7} {:>6} {:>7} {:>9} {:>8} {:>8} {:>6} {:>7}",
        "records",
        "variant",
        "wall ms",
        "flink",
        "k8s",
        "mongo",
        "read KiB",
        "rss MB",
        "changed",
        "looks",
        "health"
    );
    for s in out["scenarios"].as_array().into_iter().flatten() {
        for r in s["runs"].as_array().into_iter().flatten() {
            println!(
                "{:>7}  {:<26} {:>10.1} {:>7} {:>6} {:>7} {:>9} {:>8} {:>8} {:>6} {:>7}",
                s["records"].as_u64().unwrap_or(0),
                r["variant"].as_str().unwrap_or_default(),
                r["wall_ms"].as_f64().unwrap_or(0.0),
                total(&r["flink_requests"]),
                total(&r["k8s_requests"]),
                r["mongo_round_trips"].as_u64().unwrap_or(0),
                total(&r["bytes_read"]) / 1024,
                r["peak_rss_mb"]
                    .as_f64()
                    .map_or("-".to_string(), |m| format!("{m:.1}")),
                r["records_changed"].as_u64().unwrap_or(0),
                r["health_looks"]
                    .as_u64()
                    .map_or("-".to_string(), |n| n.to_string()),
                total(&r["health_requests"]),
            );
            if let Some(p) = r["phases_ms"].as_object() {
                let parts: Vec<String> = p.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("{:>9}{:<26} ms: {}", "", "  phases", parts.join(", "));
            }
            if let Some(looks) = r["health_looks"].as_u64() {
                let by_endpoint: Vec<String> = HEALTH_ENDPOINTS
                    .iter()
                    .map(|e| {
                        let short = e.trim_start_matches("GET /jobs/{id}/");
                        format!("{short} {}", r["health_requests"][*e].as_u64().unwrap_or(0))
                    })
                    .collect();
                println!(
                    "{:>9}{:<26}    : {looks} looks, {} changed; requests: {}",
                    "",
                    "  health",
                    r["health_changes"].as_u64().unwrap_or(0),
                    by_endpoint.join(", ")
                );
            }
        }
        println!(
            "         {} cluster(s), {} ms round trip: sync / floor = {}   sync / guarded floor = {}   per-record / sync = {}",
            s["clusters"].as_u64().unwrap_or(1),
            s["rtt_ms"].as_f64().unwrap_or(0.0),
            s["product_over_floor"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}x")),
            s["product_over_guarded_floor"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}x")),
            s["baseline_over_product"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.1}x"))
        );
    }
    let c = &out["cold_start"];
    println!(
        "cold start: {} bytes, ready for first event in {} ms (median of 5)",
        c["binary_bytes"].as_u64().unwrap_or(0),
        c["ready_ms_median"]
            .as_f64()
            .map_or("-".into(), |x| format!("{x:.1}"))
    );
}
