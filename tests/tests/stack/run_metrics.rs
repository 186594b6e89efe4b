//! What a run says about itself: `SyncLag` in its EMF line (once a complete
//! full run exists, the time since that run started) and `phases_ms` (each
//! phase filled, their sum within `elapsed_ms`), with MongoDB, Kubernetes,
//! Flink and EventBridge each a few milliseconds away behind a proxy, so
//! every phase has a floor that can be checked and runs' starts lie apart.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flink_job_sync::adapters::events::Publisher;
use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::record::to_bson_date;
use flink_job_sync::runs::sync::SyncRequest;
use mongodb::bson::{Document, doc};
use serde_json::Value;
use test_kit::faultproxy::{Fault, FaultProxy};
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::scenario::{JobState, Scenario};
use test_kit::stack::{Stack, unique_name};

/// MongoDB's one-way delay: a round trip costs at least twice this.
const ONE_WAY: Duration = Duration::from_millis(5);
/// The other services', longer: the phases of their requests outweigh the
/// run's few MongoDB requests outside any phase, so a phase counted twice
/// would not fit in the run's time.
const FAR_WAY: Duration = Duration::from_millis(15);

struct Far {
    s: Scenario,
    fake: Arc<FlinkFake>,
    /// The EMF documents of the real runs, in order.
    emf: Arc<Mutex<Vec<Value>>>,
    _proxies: Vec<FaultProxy>,
}

async fn latency_in_front_of(url: &str, one_way: Duration) -> (FaultProxy, String) {
    let proxy = FaultProxy::in_front_of(url).await;
    proxy.set(Fault::Latency(one_way)).await;
    let proxied = proxy.url_for(url);
    (proxy, proxied)
}

/// A scenario whose MongoDB is [`ONE_WAY`] away, its Kubernetes API and
/// Flink [`FAR_WAY`],
/// its EMF lines kept.
async fn far(extra_env: &[(&str, &str)]) -> Far {
    let stack = Stack::from_env();
    let fake = FlinkFake::with_jobs(BTreeMap::new());
    let (flink, flink_url) = latency_in_front_of(&fake.serve().await, FAR_WAY).await;
    let (mongo, mut mongo_uri) = latency_in_front_of(&stack.mongodb_uri, ONE_WAY).await;
    // A replica set member would otherwise announce its own address, and
    // the driver would go around the proxy.
    mongo_uri.push(if mongo_uri.contains('?') { '&' } else { '?' });
    mongo_uri.push_str("directConnection=true");
    let mut env = vec![("MONGODB_URI", mongo_uri.as_str())];
    env.extend_from_slice(extra_env);
    let mut s = Scenario::new(&flink_url, &env).await;
    let (kube, kube_url) = latency_in_front_of(&s.emulator.url(), FAR_WAY).await;
    let uri = kube_url
        .parse()
        .unwrap_or_else(|e| panic!("{kube_url}: {e}"));
    let client = kube::Client::try_from(kube::Config::new(uri))
        .unwrap_or_else(|e| panic!("kube client through the proxy: {e}"));
    s.syncer
        .set_kubernetes(Kubernetes::new(client, &s.cfg.kube));
    let emf = Arc::new(Mutex::new(Vec::new()));
    let kept = emf.clone();
    s.syncer.set_metrics(Arc::new(move |v: &Value| {
        kept.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(v.clone());
    }));
    Far {
        s,
        fake,
        emf,
        _proxies: vec![flink, mongo, kube],
    }
}

impl Far {
    /// The EMF documents of the real runs so far.
    fn emf(&self) -> Vec<Value> {
        self.emf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// When the run of this EMF document started, as the runs collection says (ms).
    async fn started_ms(&self, emf: &Value) -> i64 {
        let id = emf["run_id"].as_str().unwrap_or_default();
        let run: Document = self
            .s
            .db
            .collection("flink_job_sync_runs")
            .find_one(doc! {"_id": id})
            .await
            .unwrap_or_else(|e| panic!("reading run {id}: {e}"))
            .unwrap_or_else(|| panic!("run {id} is not recorded"));
        run.get_datetime("started_at")
            .unwrap_or_else(|e| panic!("run {id}: started_at: {e}"))
            .timestamp_millis()
    }
}

fn waiting(job_id: &str) -> Document {
    doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": null,
    "submitted_at": to_bson_date(chrono::Utc::now())}
}

/// How far `SyncLag` is from the time between a run's start and the EMF
/// line's timestamp, in ms: 0 to a few when the lag counts from that run.
fn lag_error_ms(emf: &Value, started_ms: i64) -> f64 {
    let ts = emf["_aws"]["Timestamp"].as_f64().unwrap_or_default();
    let lag = emf["SyncLag"]
        .as_f64()
        .unwrap_or_else(|| panic!("no SyncLag: {emf}"));
    ts - started_ms as f64 - lag * 1000.0
}

#[tokio::test]
async fn sync_lag_appears_with_the_first_complete_full_run_and_counts_from_its_start() {
    let far = far(&[("SYNC_CHUNK_SIZE", "1")]).await;
    let s = &far.s;
    for id in ["lag-a", "lag-b"] {
        s.insert(waiting(id)).await;
    }
    let selected = SyncRequest {
        job_ids: Some(vec!["lag-a".into()]),
        ..Default::default()
    };
    let partial = || async {
        let summary = s
            .syncer
            .run_until(&SyncRequest::default(), Some(Instant::now()))
            .await
            .unwrap_or_else(|e| panic!("partial run: {e}"));
        assert!(!summary.complete, "one chunk of two: {summary:?}");
    };

    s.sync_with(selected.clone()).await;
    partial().await;
    s.sync_with(SyncRequest {
        dry_run: true,
        ..Default::default()
    })
    .await;
    let before = far.emf();
    assert_eq!(before.len(), 2, "a dry run prints no metrics: {before:?}");
    for emf in &before {
        assert!(
            emf.get("SyncLag").is_none(),
            "no complete full run yet, so no lag: {emf}"
        );
    }

    let full = s.sync().await;
    assert!(full.complete, "{full:?}");
    partial().await;
    s.sync_with(selected).await;
    let after = far.emf();
    let [full_emf, partial_emf, selected_emf] = &after[2..] else {
        panic!("three more runs, three more lines: {after:?}")
    };
    let full_started = far.started_ms(full_emf).await;
    for emf in [full_emf, partial_emf, selected_emf] {
        let off = lag_error_ms(emf, full_started);
        assert!(
            (-1.0..=20.0).contains(&off),
            "SyncLag counts from the complete full run's start ({off} ms off): {emf}"
        );
    }
    // Not from their own starts: they began well after the full run did.
    for emf in [partial_emf, selected_emf] {
        let own = far.started_ms(emf).await;
        assert!(
            own - full_started > 40,
            "runs {} ms apart cannot tell the starts apart",
            own - full_started
        );
    }
}

#[tokio::test]
async fn every_phase_of_a_real_run_is_filled_and_they_add_up_within_its_time() {
    let bus = unique_name("fjs-phases").replace('_', "-");
    let sdk = test_kit::aws::sdk_config();
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bus (moto at AWS_ENDPOINT_URL): {e:?}"));
    let endpoint = test_kit::stack::require("AWS_ENDPOINT_URL");
    let (events, events_url) = latency_in_front_of(&endpoint, FAR_WAY).await;
    let mut far = far(&[]).await;
    let sdk = sdk.to_builder().endpoint_url(events_url).build();
    far.s
        .syncer
        .set_events(Some(Publisher::new(&sdk, &bus, "flink-job-sync")));
    far._proxies.push(events);
    // Two runs, each with a record just submitted: the second runs without
    // the first's one-off work (the indexes), so little of its time lies
    // outside the phases and a phase counted twice would show.
    for n in 1..=2u8 {
        let job_id = format!("phases-{n}");
        let id = format!("{n:032x}");
        let now = chrono::Utc::now().timestamp_millis();
        far.fake.set(&id, FakeJob::new("RUNNING", now - 60_000, -1));
        far.s.insert(waiting(&job_id)).await;
        let pod = far.s.k8s_job(&job_id, JobState::Running).await;
        far.s
            .set_log(&pod, format!("Job has been submitted with JobID {id}\n"))
            .await;
        let summary = far.s.sync().await;
        assert_eq!(
            summary.transitions.get("CREATED->RUNNING"),
            Some(&1),
            "{summary:?}"
        );
        assert!(summary.events_published >= 1, "{summary:?}");
        phases_filled_within(&summary);
    }
}

/// Each phase at least one round trip; together no more than the run.
fn phases_filled_within(summary: &flink_job_sync::reporting::summary::Summary) {
    let p = summary.phases_ms;
    let floor = 2 * ONE_WAY.as_millis() as u64;
    for (phase, ms) in [
        ("read", p.read),
        ("kubernetes", p.kubernetes),
        ("flink", p.flink),
        ("write", p.write),
        ("finish", p.finish),
    ] {
        assert!(
            ms >= floor,
            "{phase}: {ms} ms, less than one round trip ({floor} ms): {p:?}"
        );
    }
    let sum = p.read + p.kubernetes + p.flink + p.write + p.finish;
    assert!(
        sum <= summary.elapsed_ms,
        "phases {sum} ms > elapsed {} ms: {p:?}",
        summary.elapsed_ms
    );
}
