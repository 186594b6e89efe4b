//! The rig one fleet size runs on: a Flink stand-in per cluster, the
//! Kubernetes API emulator, and MongoDB, each behind a pass-through proxy
//! that adds the round trip asked for and counts the bytes each variant
//! reads; the request and command counters; the reads the comparison
//! algorithms share; and what a variant's run is measured by.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::LogParams;
use mongodb::bson::{Document, doc};
use serde_json::Value;
use test_kit::emulator::{self, EmulatorConfig, RunningEmulator};
use test_kit::faultproxy::{Fault, FaultProxy};
use test_kit::flinkfake::{FlinkFake, HEALTH_ENDPOINTS};
use test_kit::scenario::NS;

use crate::mongo::{MongoCounts, MongoTally};
use crate::report::Measure;
use crate::seed::{self, Knobs};

/// MongoDB for the whole benchmark: seeding goes straight to it, every
/// measured variant through the proxy.
pub struct Mongo {
    /// The stack's `MONGODB_URI`.
    pub direct_uri: String,
    /// The seeding client (not counted, no round trip added).
    pub seeder: mongodb::Client,
    /// MongoDB as every variant reaches it: through `proxy`.
    uri: String,
    proxy: Arc<FaultProxy>,
    counts: Arc<MongoCounts>,
    /// The comparison algorithms' client, counted in `counts`.
    client: mongodb::Client,
}

impl Mongo {
    /// The stack's MongoDB and a proxy in front of it adding `rtt`.
    pub async fn connect(direct_uri: String, rtt: Duration) -> Mongo {
        let seeder = mongodb::Client::with_uri_str(&direct_uri)
            .await
            .unwrap_or_else(|e| panic!("MONGODB_URI: {e}"));
        let proxy = FaultProxy::in_front_of(&direct_uri).await;
        // One server, so a direct connection: no discovery around the proxy.
        let uri = {
            let u = proxy.url_for(&direct_uri);
            let sep = if u.contains('?') { '&' } else { '?' };
            format!("{u}{sep}directConnection=true")
        };
        if let Some(l) = latency(rtt) {
            proxy.set(l).await;
        }
        let counts = Arc::new(MongoCounts::default());
        let client = crate::mongo::client(&uri, counts.clone()).await;
        Mongo {
            direct_uri,
            seeder,
            uri,
            proxy: Arc::new(proxy),
            counts,
            client,
        }
    }
}

/// The proxies' fault for a round trip: half of it each way.
fn latency(rtt: Duration) -> Option<Fault> {
    (!rtt.is_zero()).then(|| Fault::Latency(rtt / 2))
}

/// Where the kubeconfig for the variants is written.
pub fn kubeconfig_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("fjs-bench-{}", std::process::id()))
        .join("kubeconfig")
}

/// One Flink cluster of the fleet: its stand-in, behind a proxy.
pub struct Cluster {
    /// `None`: the `FLINK_REST_URL` cluster (a fleet of one cluster).
    pub name: Option<String>,
    fake: Arc<FlinkFake>,
    proxy: FaultProxy,
    /// Its base URL, through the proxy.
    pub url: String,
}

/// Everything one fleet size runs on.
pub struct Bench {
    /// MongoDB as every variant reaches it: through `mongo_proxy`.
    pub uri: String,
    /// `HEALTH_BUDGET` for the product; `None`: its default.
    pub health_budget: Option<usize>,
    pub clusters: Vec<Cluster>,
    emu: RunningEmulator,
    pub kubeconfig: PathBuf,
    pub counts: Arc<MongoCounts>,
    pub client: mongodb::Client,
    /// Pass-through proxies in front of the emulator and MongoDB (the Flink
    /// stand-ins have theirs), counting the bytes each variant reads and
    /// adding the round trip asked for.
    k8s_proxy: FaultProxy,
    mongo_proxy: Arc<FaultProxy>,
    /// A client of the emulator, through its proxy.
    pub kube: kube::Client,
}

impl Bench {
    /// The Flink stand-ins and the emulator for a fleet of `n`, the
    /// emulator seeded with the waiting records' Jobs.
    pub async fn start(
        mongo: &Mongo,
        n: usize,
        knobs: Knobs,
        health_budget: Option<usize>,
    ) -> Bench {
        let latency = latency(knobs.rtt);
        let mut clusters = Vec::new();
        for (c, jobs) in seed::flink_jobs(n, knobs).into_iter().enumerate() {
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
        seed::k8s_fleet(&emu, n, knobs).await;
        let kubeconfig = kubeconfig_path();
        if let Some(dir) = kubeconfig.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        let k8s_proxy = FaultProxy::in_front_of(&emu.url()).await;
        let k8s_url = k8s_proxy.url_for(&emu.url());
        if let Some(l) = &latency {
            k8s_proxy.set(l.clone()).await;
        }
        std::fs::write(&kubeconfig, emulator::kubeconfig_yaml(&k8s_url, NS))
            .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
        let mut kc = kube::Config::new(k8s_url.parse().unwrap_or_else(|e| panic!("{e}")));
        kc.default_namespace = NS.to_string();
        let kube = kube::Client::try_from(kc).unwrap_or_else(|e| panic!("{e}"));
        Bench {
            uri: mongo.uri.clone(),
            health_budget,
            clusters,
            emu,
            kubeconfig,
            counts: mongo.counts.clone(),
            client: mongo.client.clone(),
            k8s_proxy,
            mongo_proxy: mongo.proxy.clone(),
            kube,
        }
    }

    /// Every counter back to zero, before a variant runs.
    pub fn reset_counts(&self) {
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

    /// The base URL of the cluster a record names (`flink_cluster`).
    pub fn flink_url_of(&self, cluster: Option<&str>) -> &str {
        self.clusters
            .iter()
            .find(|c| c.name.as_deref() == cluster)
            .map_or("http://unknown-cluster", |c| c.url.as_str())
    }

    /// A variant's figures: the counters since [`Bench::reset_counts`], the
    /// wall time, the MongoDB tally and what the variant itself reports.
    pub fn measure(
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
}

/// The log read both comparison algorithms make, with the product's limits.
pub fn log_params() -> LogParams {
    LogParams {
        tail_lines: Some(500),
        limit_bytes: Some(256 * 1024),
        ..Default::default()
    }
}

/// A GET's body as JSON; `Null` when it is none.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json().await.unwrap_or_default()
}

/// A GET's body as bytes, for the product's parsers.
pub async fn get_bytes(http: &reqwest::Client, url: &str) -> Vec<u8> {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default()
}

/// One find of the non-final records, as both comparison algorithms start.
pub async fn non_final_docs(
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
