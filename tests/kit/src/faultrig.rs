//! The rig of the fault suite: a small fleet with a known truth, and a sync
//! that reaches Flink, the Kubernetes API and MongoDB through fault proxies.
//! A case injects one fault, runs sync, checks that every record is whole and
//! nothing was misjudged, clears the fault, runs sync again and checks that
//! the truth was reached with every transition recorded exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;

use flink_job_sync::adapters::flink::FlinkClient;
use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::Store;
use flink_job_sync::adapters::store::record::{record_from_document, to_bson_date};
use flink_job_sync::reporting::summary::Summary;
use flink_job_sync::runs::sync::{SyncRequest, Syncer};
use mongodb::bson::{Document, doc};

use crate::faultproxy::{Fault, FaultProxy};
use crate::flinkfake::{FakeJob, FlinkFake};
use crate::scenario::{JobState, NS, Scenario, config_for};

const T0: i64 = 1_795_000_000_000;

pub fn flink_id(n: u32) -> String {
    format!("{:032x}", 0x00fa_0000_u64 + u64::from(n))
}

/// What a record must end as, and the transitions that take it there.
#[derive(Debug, Clone)]
pub struct Truth {
    pub job_id: String,
    pub status: &'static str,
    pub transitions: Vec<(&'static str, &'static str)>,
    /// The record's Flink JobID once known.
    pub flink_job_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Flink,
    Kubernetes,
    Mongo,
}

pub struct Rig {
    pub scenario: Scenario,
    pub flink: Arc<FlinkFake>,
    pub flink_proxy: FaultProxy,
    pub k8s_proxy: FaultProxy,
    pub mongo_proxy: FaultProxy,
    pub truth: Vec<Truth>,
    pub pods: BTreeMap<String, String>,
}

/// One row of the README's figures.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub case: String,
    pub corrupted: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub recovered: bool,
    pub problems: Vec<String>,
}

impl Outcome {
    pub fn row(&self) -> String {
        format!(
            "| {} | 1 | {} | {} | {} |",
            self.case,
            self.corrupted,
            self.lost + self.duplicated,
            if self.recovered { "yes" } else { "no" }
        )
    }

    /// Fails the test with every problem the case found.
    pub fn assert_clean(&self) {
        assert!(
            self.problems.is_empty()
                && self.corrupted == 0
                && self.lost == 0
                && self.duplicated == 0
                && self.recovered,
            "{}: {:#?}",
            self.case,
            self
        );
    }
}

impl Rig {
    /// The fleet: jobs finishing and failing on Flink, jobs running on, jobs
    /// whose pods announce their JobID, one still waiting for it, and one
    /// final record that Flink contradicts (it must never move).
    pub async fn new() -> Rig {
        let flink = FlinkFake::with_jobs(BTreeMap::new());
        let flink_url = flink.serve().await;
        let flink_proxy = FaultProxy::in_front_of(&flink_url).await;
        let scenario = Scenario::new(&flink_proxy.url_for(&flink_url), &[]).await;
        let k8s_proxy = FaultProxy::in_front_of(&scenario.emulator.url()).await;
        let mongo_proxy = FaultProxy::in_front_of(&scenario.stack.mongodb_uri).await;
        let mut rig = Rig {
            scenario,
            flink,
            flink_proxy,
            k8s_proxy,
            mongo_proxy,
            truth: Vec::new(),
            pods: BTreeMap::new(),
        };
        let mut n = 0;
        let mut next = || {
            n += 1;
            flink_id(n)
        };
        for i in 0..3 {
            let id = next();
            rig.flink
                .set(&id, FakeJob::new("FINISHED", T0, T0 + 60_000));
            rig.running(
                &format!("fin-{i}"),
                &id,
                "FINISHED",
                vec![("RUNNING", "FINISHED")],
            )
            .await;
        }
        for i in 0..2 {
            let id = next();
            let mut job = FakeJob::new("FAILED", T0, T0 + 5_000);
            job.root_exception =
                Some("java.lang.IllegalStateException: boom\n\tat Job.run(Job.java:1)".into());
            rig.flink.set(&id, job);
            rig.running(
                &format!("fail-{i}"),
                &id,
                "FAILED",
                vec![("RUNNING", "FAILED")],
            )
            .await;
        }
        for i in 0..3 {
            let id = next();
            rig.flink.set(&id, FakeJob::new("RUNNING", T0, -1));
            rig.running(&format!("run-{i}"), &id, "RUNNING", vec![])
                .await;
        }
        for i in 0..3 {
            let id = next();
            rig.flink.set(&id, FakeJob::new("RUNNING", T0, -1));
            let name = format!("new-{i}");
            rig.waiting(
                &name,
                &format!("starting\nJob has been submitted with JobID {id}\n"),
            )
            .await;
            rig.truth.push(Truth {
                job_id: name,
                status: "RUNNING",
                transitions: vec![("CREATED", "RUNNING")],
                flink_job_id: Some(id),
            });
        }
        rig.waiting("wait-0", "starting the Python job\n").await;
        rig.truth.push(Truth {
            job_id: "wait-0".into(),
            status: "CREATED",
            transitions: vec![],
            flink_job_id: None,
        });
        let id = next();
        rig.flink.set(&id, FakeJob::new("RUNNING", T0, -1));
        rig.scenario
            .insert(
                doc! {"job_id": "done-0", "status": "FINISHED", "flink_job_id": &id,
                "submitted_at": to_bson_date(chrono::Utc::now())},
            )
            .await;
        rig.truth.push(Truth {
            job_id: "done-0".into(),
            status: "FINISHED",
            transitions: vec![],
            flink_job_id: Some(id),
        });
        rig
    }

    async fn running(
        &mut self,
        job_id: &str,
        id: &str,
        status: &'static str,
        transitions: Vec<(&'static str, &'static str)>,
    ) {
        self.scenario
            .insert(doc! {"job_id": job_id, "status": "RUNNING", "flink_job_id": id, "flink_state": "RUNNING",
                "submitted_at": to_bson_date(chrono::Utc::now())})
            .await;
        self.truth.push(Truth {
            job_id: job_id.into(),
            status,
            transitions,
            flink_job_id: Some(id.into()),
        });
    }

    async fn waiting(&mut self, job_id: &str, log: &str) {
        self.scenario
            .insert(
                doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": null,
                "submitted_at": to_bson_date(chrono::Utc::now())},
            )
            .await;
        let pod = self.scenario.k8s_job(job_id, JobState::Running).await;
        self.scenario.set_log(&pod, log.to_string()).await;
        self.pods.insert(job_id.to_string(), pod);
    }

    pub fn proxy(&self, target: Target) -> &FaultProxy {
        match target {
            Target::Flink => &self.flink_proxy,
            Target::Kubernetes => &self.k8s_proxy,
            Target::Mongo => &self.mongo_proxy,
        }
    }

    /// A sync whose every connection goes through the proxies, with short
    /// timeouts so slow-server cases take seconds.
    pub async fn syncer(&self, extra: &[(&str, &str)]) -> Syncer {
        let s = &self.scenario;
        let mut uri = self.mongo_proxy.url_for(&s.stack.mongodb_uri);
        uri.push(if uri.contains('?') { '&' } else { '?' });
        // directConnection: a replica set member would otherwise announce its
        // real address and the driver would go around the proxy.
        uri.push_str("directConnection=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1500");
        let mut vars = vec![
            ("MONGODB_URI", uri.as_str()),
            ("FLINK_TIMEOUT_MS", "700"),
            ("K8S_TIMEOUT_MS", "1000"),
            ("FLINK_MISSING_THRESHOLD", "3"),
        ];
        vars.extend_from_slice(extra);
        let database = s.db.name().to_string();
        let flink_url = s
            .cfg
            .flink
            .rest_url()
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        let cfg = config_for(&s.stack, &database, &flink_url, &vars);
        let store = Store::connect(&cfg.mongo)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        let flink =
            FlinkClient::new(&flink_url, None, cfg.flink.timeout).unwrap_or_else(|e| panic!("{e}"));
        let url = self.k8s_proxy.url_for(&s.emulator.url());
        let mut kc = kube::Config::new(url.parse().unwrap_or_else(|e| panic!("{url}: {e}")));
        kc.default_namespace = NS.to_string();
        kc.connect_timeout = Some(cfg.kube.timeout);
        kc.read_timeout = Some(cfg.kube.timeout);
        let client = kube::Client::try_from(kc).unwrap_or_else(|e| panic!("kube client: {e}"));
        let kube = Kubernetes::new(client, &cfg.kube);
        Syncer::builder(store, kube)
            .flink(flink)
            .settings(cfg.sync)
            .rules(cfg.rules)
            .build()
    }

    /// Every record, by job_id, read directly (not through the proxy).
    pub async fn snapshot(&self) -> BTreeMap<String, Document> {
        let mut out = BTreeMap::new();
        let mut cursor = self
            .scenario
            .records
            .find(doc! {})
            .await
            .unwrap_or_else(|e| panic!("snapshot: {e}"));
        while cursor
            .advance()
            .await
            .unwrap_or_else(|e| panic!("snapshot: {e}"))
        {
            let d = cursor
                .deserialize_current()
                .unwrap_or_else(|e| panic!("snapshot: {e}"));
            out.insert(d.get_str("job_id").unwrap_or_default().to_string(), d);
        }
        out
    }

    /// Makes `job_id`'s truth "still waiting": a case in which it cannot
    /// learn its JobID within the grace period, so it stays CREATED.
    pub fn expect_waiting(&mut self, job_id: &str) {
        let t = self
            .truth
            .iter_mut()
            .find(|t| t.job_id == job_id)
            .unwrap_or_else(|| panic!("{job_id} is not in the fleet"));
        t.status = "CREATED";
        t.transitions.clear();
        t.flink_job_id = None;
    }

    /// After a faulty run: every record whole and never misjudged. Returns
    /// the problems found (empty when all is well).
    pub async fn check_whole(
        &self,
        before: &BTreeMap<String, Document>,
        misses_allowed: bool,
    ) -> Vec<String> {
        let after = self.snapshot().await;
        let mut problems = Vec::new();
        for t in &self.truth {
            let (Some(b), Some(a)) = (before.get(&t.job_id), after.get(&t.job_id)) else {
                problems.push(format!("{}: record lost", t.job_id));
                continue;
            };
            if let Err(e) = record_from_document(a) {
                problems.push(format!(
                    "{}: no longer a valid record: {}",
                    t.job_id, e.problem
                ));
            }
            let status = a.get_str("status").unwrap_or_default();
            if status != b.get_str("status").unwrap_or_default() && status != t.status {
                problems.push(format!(
                    "{}: misjudged as {status} (truth {})",
                    t.job_id, t.status
                ));
            }
            for (pair, count) in history(a) {
                if count > 1
                    || !t
                        .transitions
                        .iter()
                        .any(|(f, to)| (*f, *to) == (pair.0.as_str(), pair.1.as_str()))
                {
                    problems.push(format!(
                        "{}: transition {pair:?} recorded {count} times",
                        t.job_id
                    ));
                }
            }
            if let Ok(id) = a.get_str("flink_job_id")
                && Some(id) != t.flink_job_id.as_deref()
            {
                problems.push(format!("{}: wrong JobID {id}", t.job_id));
            }
            if !misses_allowed && a.contains_key("flink_missing_count") {
                problems.push(format!("{}: counted as missing from Flink: {a}", t.job_id));
            }
            if t.status == "FINISHED" && t.transitions.is_empty() && a != b {
                problems.push(format!("{}: a final record was rewritten", t.job_id));
            }
            for field in crate::scope::foreign_changes(b, a) {
                problems.push(format!(
                    "{}: wrote {field}, which sync does not own",
                    t.job_id
                ));
            }
        }
        problems
    }

    /// After healthy runs: the truth reached, errors cleared, and each
    /// transition recorded once. Returns (lost, duplicated, problems).
    pub async fn check_truth(&self) -> (usize, usize, Vec<String>) {
        let after = self.snapshot().await;
        let (mut lost, mut duplicated, mut problems) = (0, 0, Vec::new());
        for t in &self.truth {
            let Some(a) = after.get(&t.job_id) else {
                problems.push(format!("{}: record lost", t.job_id));
                continue;
            };
            let status = a.get_str("status").unwrap_or_default();
            if status != t.status {
                problems.push(format!("{}: {status}, truth {}", t.job_id, t.status));
            }
            if let Ok(e) = a.get_str("sync_error") {
                problems.push(format!("{}: sync_error left: {e}", t.job_id));
            }
            let seen = history(a);
            for (f, to) in &t.transitions {
                match seen.get(&(f.to_string(), to.to_string())) {
                    None => lost += 1,
                    Some(n) if *n > 1 => duplicated += n - 1,
                    _ => {}
                }
            }
        }
        (lost, duplicated, problems)
    }

    /// The whole case: `fault` on `target` for one run, then healthy runs.
    pub async fn case(
        &self,
        name: &str,
        target: Target,
        fault: Fault,
        extra: &[(&str, &str)],
    ) -> (Outcome, Result<Summary, String>) {
        let syncer = self.syncer(extra).await;
        let before = self.snapshot().await;
        self.proxy(target).set(fault).await;
        let faulty = syncer
            .run(&SyncRequest::default())
            .await
            .map_err(|e| e.to_string());
        let mut outcome = Outcome {
            case: name.to_string(),
            ..Default::default()
        };
        outcome.problems = self.check_whole(&before, false).await;
        // Records, not problems: each problem names its record first.
        outcome.corrupted = outcome
            .problems
            .iter()
            .filter_map(|p| p.split_once(':').map(|(job_id, _)| job_id))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        self.proxy(target).set(Fault::Pass).await;
        self.recover(&syncer, &mut outcome).await;
        (outcome, faulty)
    }

    /// Healthy runs until nothing changes (at most three), then the truth check.
    pub async fn recover(&self, syncer: &Syncer, outcome: &mut Outcome) {
        let before = self.snapshot().await;
        for _ in 0..3 {
            match syncer.run(&SyncRequest::default()).await {
                Ok(s) if s.records_changed == 0 => break,
                Ok(_) => {}
                Err(e) => outcome.problems.push(format!("healthy run failed: {e}")),
            }
        }
        let after = self.snapshot().await;
        outcome
            .problems
            .extend(crate::scope::foreign_writes(&before, &after));
        let (lost, duplicated, problems) = self.check_truth().await;
        outcome.lost = lost;
        outcome.duplicated = duplicated;
        outcome.recovered = problems.is_empty();
        outcome.problems.extend(problems);
    }
}

/// `status_history` as (from, to) → how many times.
pub fn history(d: &Document) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in d
        .get_array("status_history")
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_document())
    {
        let pair = (
            e.get_str("from").unwrap_or_default().to_string(),
            e.get_str("to").unwrap_or_default().to_string(),
        );
        *out.entry(pair).or_default() += 1;
    }
    out
}

/// Writes a suite's rows to `target/fault-figures/SUITE.md` (the README's
/// table is made from them) and prints them.
pub fn report(suite: &str, outcomes: &[Outcome]) {
    let dir = crate::lambda::workspace_root().join("target/fault-figures");
    let _ = std::fs::create_dir_all(&dir);
    let rows: Vec<String> = outcomes.iter().map(Outcome::row).collect();
    let _ = std::fs::write(dir.join(format!("{suite}.md")), rows.join("\n") + "\n");
    println!("{}", rows.join("\n"));
}
