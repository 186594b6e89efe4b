//! The properties the fuzz targets hold the parsers of untrusted input to.
//! Each `check_*` takes raw bytes, panics when a property fails, and says
//! which properties the input reached (an input a parser rejects early
//! reaches few): the fuzz targets call them under libFuzzer, and the stable
//! test suite replays `fuzz/seeds/` and any saved crash through them,
//! requiring every seed to reach a property and the seeds together to reach
//! them all (this file is included there as a module, so it uses only
//! crates both builds have).

use flink_job_sync::adapters::k8s::{CondensedJob, JobLite, ListedJob, PodLite, true_condition};
use flink_job_sync::adapters::store::record::{id_bson, record_from_document};
use flink_job_sync::rules::model::{is_dns_label, is_dns_subdomain};
use flink_job_sync::{adapters::flink, rules::podlog};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use mongodb::bson::{Bson, Document};

const PHRASE: &[u8] = b"Job has been submitted with JobID ";

/// What a reader with no colour codes to strip must find: the phrase, then
/// exactly 32 lowercase hex digits that no word character follows.
fn naive_job_ids(log: &[u8]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut at = 0;
    while let Some(pos) = log[at..].windows(PHRASE.len()).position(|w| w == PHRASE) {
        let start = at + pos + PHRASE.len();
        at = at + pos + 1;
        let Some(digits) = log.get(start..start + 32) else {
            continue;
        };
        let hex = digits
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        let ends = log
            .get(start + 32)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
        if hex && ends {
            let id = String::from_utf8_lossy(digits).into_owned();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

fn is_subsequence(needle: &[u8], hay: &[u8]) -> bool {
    let mut it = hay.iter();
    needle.iter().all(|n| it.any(|h| h == n))
}

/// A pod log: only 32 lowercase hex digits ever become a JobID, each one
/// stands in the log, none twice; without colour codes the result is exactly
/// what a naive reader finds. The failure tail is bounded and clean.
pub fn check_podlog(data: &[u8]) -> Vec<&'static str> {
    let mut reached = vec!["tail"];
    let ids = podlog::submitted_job_ids(data);
    if !ids.is_empty() {
        reached.push("job_ids");
    }
    let strs: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    for (i, id) in strs.iter().enumerate() {
        assert_eq!(id.len(), 32, "JobID {id:?} is not 32 characters");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "JobID {id:?} is not lowercase hex"
        );
        assert!(
            is_subsequence(id.as_bytes(), data),
            "JobID {id} does not stand in the log"
        );
        assert!(!strs[..i].contains(id), "JobID {id} reported twice");
    }
    if !data.contains(&0x1b) {
        assert_eq!(
            strs,
            naive_job_ids(data),
            "without colour codes, the JobIDs are exactly those after the phrase"
        );
    }

    let tail = podlog::tail_text(data, 5, 512);
    assert!(
        tail.len() <= 512 + '…'.len_utf8(),
        "tail of {} bytes",
        tail.len()
    );
    assert!(tail.lines().count() <= 5, "more than 5 lines in {tail:?}");
    assert!(
        !tail
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "control character in {tail:?}"
    );
    reached
}

/// Flink REST bodies: an overview parses or is an error naming the endpoint,
/// and only JobIDs come out of it; any JSON gives a root cause or none; a
/// checkpoints answer yields only usable paths; a metric error is bounded.
pub fn check_flink_json(data: &[u8]) -> Vec<&'static str> {
    let mut reached = Vec::new();
    match flink::parse_overview(data) {
        Ok(jobs) => {
            reached.push("overview");
            for (id, job) in &jobs {
                assert_eq!(id.as_str().len(), 32, "overview key {id:?}");
                // Whatever the state, mapping it must not panic.
                let _ = job.state.status();
            }
        }
        Err(e) => {
            reached.push("overview_error");
            assert!(
                e.detail().starts_with("GET /jobs/overview: "),
                "error does not name the endpoint: {e}"
            )
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(cause) = flink::root_cause_of(&v)
    {
        reached.push("root_cause");
        assert!(!cause.trim().is_empty(), "an empty root cause from {v}");
    }
    // Health answers: every path that comes out could be a restart point.
    if let Ok(Some(c)) = flink::parse_checkpoints(data) {
        reached.push("checkpoints");
        let paths = [&c.last_completed, &c.last_savepoint]
            .into_iter()
            .flatten()
            .map(|p| p.path.as_str())
            .chain(c.restored_from.as_deref());
        for path in paths {
            assert!(
                flink_job_sync::rules::health::usable_path(path).as_deref() == Some(path),
                "an unusable path came out: {path:?}"
            );
        }
    }
    if flink::parse_checkpoint_config(data).is_ok() {
        reached.push("checkpoint_config");
    }
    match flink::parse_metric(data, "numRestarts") {
        Ok(Some(_)) => reached.push("metric"),
        Ok(None) => {}
        Err(e) => assert!(
            e.len() < 200,
            "an unbounded metric error: {} bytes",
            e.len()
        ),
    }
    reached
}

/// Kubernetes objects: a Job and its pods (`[job, [pod, ...]]`), or one Job
/// or Pod alone. The reduced forms agree with the objects, and only
/// Kubernetes names are ever chosen for a log read.
pub fn check_k8s_objects(data: &[u8]) -> Vec<&'static str> {
    if let Ok((job, pods)) = serde_json::from_slice::<(Job, Vec<Pod>)>(data) {
        let complete = true_condition(&job, "Complete").is_some();
        let failed = true_condition(&job, "Failed").is_some();
        let name = job.metadata.name.clone().unwrap_or_default();
        let lite = JobLite::from(job);
        assert_eq!(lite.complete, complete);
        assert_eq!(lite.failed.is_some(), failed);
        assert_eq!(lite.name, name);
        let listed = ListedJob {
            job: lite,
            pods: pods.into_iter().map(PodLite::from).collect(),
        };
        let condensed = CondensedJob::from(&listed);
        assert!(condensed.started.len() <= 4, "more than four logs to read");
        for (pod, container) in &condensed.started {
            assert!(is_dns_subdomain(pod), "log read of pod {pod:?}");
            assert!(
                listed.pods.iter().any(|p| &p.name == pod && p.started),
                "{pod} was not a started pod"
            );
            if let Some(c) = container {
                assert!(is_dns_label(c), "log read of container {c:?}");
            }
        }
        assert_eq!(condensed.facts.name, listed.job.name);
        if let Some(p) = &condensed.facts.pod {
            assert!(listed.pods.iter().any(|q| q.name == p.name));
        }
        return vec!["job_with_pods"];
    }
    let mut reached = Vec::new();
    if let Ok(job) = serde_json::from_slice::<Job>(data) {
        let _ = JobLite::from(job);
        reached.push("job");
    }
    if let Ok(pod) = serde_json::from_slice::<Pod>(data) {
        let _ = PodLite::from(pod);
        reached.push("pod");
    }
    reached
}

/// A MongoDB record as BSON: read as a record or reported, with a bounded
/// report; a record read keeps what it was given.
pub fn check_record(data: &[u8]) -> Vec<&'static str> {
    let Ok(doc) = Document::from_reader(data) else {
        return Vec::new();
    };
    match record_from_document(&doc) {
        Ok(r) => {
            check_read_record(&doc, &r);
            vec!["record"]
        }
        Err(m) => {
            // A report goes to logs and the runs collection: a huge field
            // must not make it huge.
            assert!(m.id.len() <= 1024, "report id of {} bytes", m.id.len());
            assert!(
                m.problem.len() <= 1024,
                "report problem of {} bytes",
                m.problem.len()
            );
            vec!["report"]
        }
    }
}

/// A record read keeps what it was given, and only names pass as names.
fn check_read_record(doc: &Document, r: &flink_job_sync::rules::record::Record) {
    assert_eq!(doc.get("job_id"), Some(&Bson::String(r.job_id.clone())));
    assert!(!r.job_id.is_empty());
    if let Some(id) = &r.flink_job_id {
        assert_eq!(doc.get("flink_job_id"), Some(&Bson::String(id.to_string())));
    }
    if let Some(name) = &r.k8s_job_name {
        assert!(is_dns_subdomain(name), "k8s_job_name {name:?} accepted");
    }
    if let Some(ns) = &r.k8s_namespace {
        assert!(is_dns_label(ns), "k8s_namespace {ns:?} accepted");
    }
    let _ = r.oid.sort_key();
    // An `_id` goes back into the write's filter as it was stored.
    let stored = doc.get("_id").cloned().unwrap_or(Bson::Null);
    assert_eq!(format!("{:?}", id_bson(&r.oid)), format!("{stored:?}"));
}
