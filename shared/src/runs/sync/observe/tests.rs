//! The observer against a stand-in for Kubernetes and Flink that notes
//! every request: what a run asks, and how often.

use std::sync::Mutex;

use std::collections::HashMap;

use crate::adapters::k8s::CondensedJob;
use crate::reporting::summary::Phases;
use crate::rules::health::{Checkpoints, HealthFacts};
use crate::rules::model::{ClusterRef, FlinkJobId, Unobserved};
use crate::rules::model::{FlinkState, Status};
use crate::rules::plan::{FlinkFacts, FlinkJob, JobFacts, Observed};
use crate::rules::plan::{LogFacts, PodFacts};
use crate::rules::record::Record;
use crate::rules::record::RecordId;
use crate::runs::sync::observe::{Observer, Sources};
use crate::runs::sync::run::{Overview, Seen};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccc";

fn id(s: &str) -> FlinkJobId {
    FlinkJobId::parse(s).expect("a JobID")
}

fn job(state: FlinkState) -> FlinkJob {
    FlinkJob {
        state,
        start_ms: 1_000,
        end_ms: -1,
        root_cause: None,
        tasks: None,
        last_modification_ms: 1_000,
        name: String::new(),
    }
}

/// Kubernetes and Flink as a test says, every request noted.
#[derive(Default)]
struct Fake {
    jobs: HashMap<String, HashMap<String, CondensedJob>>,
    overviews: HashMap<ClusterRef, Overview>,
    lookups: HashMap<FlinkJobId, FlinkFacts>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn note(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }

    fn calls(&self, prefix: &str) -> Vec<String> {
        let calls = self.calls.lock().expect("calls");
        calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// A Job in `lemo-dev` whose started pod's log announces `flink_id`.
    fn submitted(mut self, name: &str, flink_id: &str) -> Self {
        let facts = JobFacts {
            name: name.to_string(),
            pod: Some(PodFacts::default()),
            log: LogFacts::Read {
                ids: vec![id(flink_id)],
                tail: String::new(),
            },
            ..Default::default()
        };
        let condensed = CondensedJob {
            facts,
            started: vec![(format!("{name}-pod"), None)],
            submitter_restarts: Some(0),
        };
        self.jobs
            .entry("lemo-dev".to_string())
            .or_default()
            .insert(name.to_string(), condensed);
        self
    }

    fn running(mut self, cluster: ClusterRef, jobs: &[(&str, FlinkState)]) -> Self {
        let overview = jobs.iter().map(|(i, s)| (id(i), job(s.clone()))).collect();
        self.overviews.insert(cluster, Ok(overview));
        self
    }
}

impl Sources for Fake {
    fn default_namespace(&self) -> &str {
        "lemo-dev"
    }

    async fn jobs_in(&self, ns: &str) -> Result<HashMap<String, CondensedJob>, Unobserved> {
        self.note(format!("list {ns}"));
        Ok(self.jobs.get(ns).cloned().unwrap_or_default())
    }

    async fn job_facts(&self, ns: &str, job: &CondensedJob) -> JobFacts {
        self.note(format!("log {ns}/{}", job.facts.name));
        job.facts.clone()
    }

    async fn overview(&self, cluster: &ClusterRef) -> Overview {
        self.note(format!("overview {cluster}"));
        self.overviews.get(cluster).cloned().unwrap_or_else(|| {
            Err(Unobserved::Unanswered(
                "GET /jobs/overview: HTTP 503".into(),
            ))
        })
    }

    async fn job(&self, _: &ClusterRef, id: &FlinkJobId) -> FlinkFacts {
        self.note(format!("job {id}"));
        self.lookups.get(id).cloned().unwrap_or(FlinkFacts::Missing)
    }

    async fn health(
        &self,
        _: &ClusterRef,
        id: &FlinkJobId,
        _: Option<&Checkpoints>,
    ) -> HealthFacts {
        self.note(format!("health {id}"));
        HealthFacts {
            checkpoints: Ok(None),
            restarts: Ok(Some(0)),
            submitter_restarts: None,
        }
    }

    async fn root_cause(
        &self,
        _: &ClusterRef,
        id: &FlinkJobId,
    ) -> Result<Option<String>, Unobserved> {
        self.note(format!("cause {id}"));
        Ok(Some(format!("boom in {id}")))
    }
}

fn record(n: i32, flink_id: Option<&str>) -> Record {
    let status = if flink_id.is_some() {
        Status::Running
    } else {
        Status::Created
    };
    let mut r = Record::new(RecordId::Int32(n), format!("job-{n}"), status);
    r.flink_job_id = flink_id.map(id);
    r
}

async fn observe(
    fake: &Fake,
    budget: usize,
    records: &[Record],
    chunk_size: usize,
) -> Vec<Observed> {
    let observer = Observer {
        sources: fake,
        concurrency: 4,
        health_budget: budget,
    };
    let mut seen = Seen::default();
    let mut phases = Phases::default();
    let mut out = Vec::new();
    for chunk in records.chunks(chunk_size) {
        out.extend(
            observer
                .observe(records, chunk, &mut seen, &mut phases)
                .await,
        );
    }
    out
}

#[tokio::test]
async fn each_namespace_and_cluster_is_asked_once_a_run_however_many_chunks() {
    let fake = Fake::default()
        .submitted("job-1", A)
        .submitted("job-2", B)
        .running(
            ClusterRef::Default,
            &[(A, FlinkState::Running), (B, FlinkState::Running)],
        );
    let records = [record(1, None), record(2, None), record(3, Some(A))];
    let observed = observe(&fake, 0, &records, 1).await;
    assert_eq!(fake.calls("list"), ["list lemo-dev"]);
    assert_eq!(fake.calls("overview"), ["overview default"]);
    assert_eq!(
        fake.calls("job"),
        Vec::<String>::new(),
        "every JobID is in the overview"
    );
    assert_eq!(
        fake.calls("log").len(),
        2,
        "one log read per waiting record"
    );
    assert!(
        observed[2].k8s.is_none(),
        "a record with its JobID is not looked up on Kubernetes"
    );
    for o in &observed {
        assert!(matches!(o.flink, Some(FlinkFacts::Found(_))), "{o:?}");
    }
}

#[tokio::test]
async fn only_a_jobid_absent_from_its_overview_is_looked_up() {
    let mut fake = Fake::default().running(ClusterRef::Default, &[(A, FlinkState::Running)]);
    fake.lookups
        .insert(id(B), FlinkFacts::Found(job(FlinkState::Finished)));
    let records = [record(1, Some(A)), record(2, Some(B)), record(3, Some(C))];
    let observed = observe(&fake, 0, &records, 10).await;
    let mut looked_up = fake.calls("job");
    looked_up.sort();
    assert_eq!(looked_up, [format!("job {B}"), format!("job {C}")]);
    assert!(
        matches!(observed[1].flink, Some(FlinkFacts::Found(ref j)) if j.state == FlinkState::Finished)
    );
    assert_eq!(observed[2].flink, Some(FlinkFacts::Missing));
}

#[tokio::test]
async fn a_cluster_that_is_down_or_unknown_touches_only_its_own_records() {
    let fake = Fake::default().running(ClusterRef::Default, &[(A, FlinkState::Running)]);
    let mut on_prod = record(2, Some(B));
    on_prod.flink_cluster = ClusterRef::Named("prod".into());
    let records = [record(1, Some(A)), on_prod];
    let observed = observe(&fake, 0, &records, 10).await;
    assert!(matches!(observed[0].flink, Some(FlinkFacts::Found(_))));
    assert!(
        matches!(&observed[1].flink, Some(FlinkFacts::Unavailable(e)) if e.to_string().contains("HTTP 503")),
        "{:?}",
        observed[1].flink
    );
    assert_eq!(
        fake.calls("job"),
        Vec::<String>::new(),
        "no lookup on a cluster that is down"
    );
}

#[tokio::test]
async fn a_root_cause_is_asked_once_for_each_job_that_has_just_failed() {
    let fake = Fake::default().running(
        ClusterRef::Default,
        &[(A, FlinkState::Failed), (B, FlinkState::Running)],
    );
    let records = [record(1, Some(A)), record(2, Some(B))];
    let observed = observe(&fake, 0, &records, 10).await;
    assert_eq!(fake.calls("cause"), [format!("cause {A}")]);
    match &observed[0].flink {
        Some(FlinkFacts::Found(j)) => assert_eq!(
            j.root_cause.as_deref(),
            Some(format!("boom in {A}").as_str())
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn health_looks_go_to_every_ended_job_and_to_running_ones_within_the_run_budget() {
    let fake = Fake::default().running(
        ClusterRef::Default,
        &[
            (A, FlinkState::Running),
            (B, FlinkState::Running),
            (C, FlinkState::Finished),
        ],
    );
    let records = [record(1, Some(A)), record(2, Some(B)), record(3, Some(C))];
    let observed = observe(&fake, 1, &records, 1).await;
    let looks = fake.calls("health");
    assert_eq!(
        looks.len(),
        2,
        "one running job (the budget) and the ended one: {looks:?}"
    );
    assert!(looks.contains(&format!("health {C}")), "{looks:?}");
    assert_eq!(observed.iter().filter(|o| o.health.is_some()).count(), 2);
}

#[tokio::test]
async fn records_sharing_a_job_id_are_not_observed_at_all() {
    let fake = Fake::default()
        .submitted("job-1", A)
        .running(ClusterRef::Default, &[(A, FlinkState::Running)]);
    let mut twin = record(2, None);
    twin.job_id = "job-1".to_string();
    let records = [record(1, None), twin];
    let observer = Observer {
        sources: &fake,
        concurrency: 4,
        health_budget: 0,
    };
    let mut seen = Seen {
        conflicts: crate::runs::sync::run::conflicts(&records, &mut Default::default()),
        ..Default::default()
    };
    let observed = observer
        .observe(&records, &records, &mut seen, &mut Phases::default())
        .await;
    assert!(fake.calls("").is_empty(), "{:?}", fake.calls(""));
    for o in observed {
        assert!(
            o.conflict.is_some() && o.k8s.is_none() && o.flink.is_none(),
            "{o:?}"
        );
    }
}
