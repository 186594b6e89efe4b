//! One run's own state: its id, its answer as it grows, and what it has seen
//! (the namespaces' lists, the clusters' overviews, the health looks it may
//! still make, the records it found in conflict, the JobIDs it learned).
//! Every chunk reads and adds to it; nothing here does I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::adapters::k8s::CondensedJob;
use crate::adapters::store::runs::{RunEnd, RunState};
use crate::reporting::summary::{
    DuplicateJobId, MalformedReport, RecordError, Summary, WOULD_CHANGE_MAX, WouldChange,
};
use crate::rules::health::HealthLooks;
use crate::rules::model::{ClusterRef, FlinkJobId, Health, System, Unobserved};
use crate::rules::plan::{Change, FlinkJob, Plan};
use crate::rules::record::{MalformedRecord, Record, RecordId};
use crate::runs::sync::request::SyncRequest;

/// Milliseconds since `t`.
pub fn ms_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A cluster's overview as this run read it, by JobID.
pub type Overview = Result<HashMap<FlinkJobId, FlinkJob>, Unobserved>;

/// What one run fetched once and every chunk reuses.
#[derive(Default)]
pub struct Seen {
    /// Each namespace's Jobs (with their pods), by name.
    pub listed: HashMap<String, Result<HashMap<String, CondensedJob>, Unobserved>>,
    /// Each cluster's overview.
    pub overviews: HashMap<ClusterRef, Overview>,
    /// The health looks this run may still make; chosen when Flink is first asked.
    pub health: Option<HealthLooks>,
    /// This run already waited for Flink's caches to settle.
    pub settled: bool,
    /// Records that cannot be decided on their own facts, with why: a
    /// JobID or a job_id another record read claims too.
    pub conflicts: HashMap<RecordId, Unobserved>,
    /// The JobIDs this run learned from pod logs and wrote (or, in a dry
    /// run, would write) to their records.
    pub learned: HashSet<String>,
}

impl Seen {
    /// Whether the record's cluster overview shows its job not ended.
    pub fn shows_running(&self, record: &Record) -> bool {
        let Some(id) = &record.flink_job_id else {
            return false;
        };
        match self.overviews.get(&record.flink_cluster) {
            Some(Ok(overview)) => overview.get(id).is_some_and(|job| !job.state.ended()),
            _ => false,
        }
    }
}

/// One run: its id, its answer so far and what it has seen.
pub struct Run {
    /// The runs collection's `_id` of this run.
    pub id: String,
    /// Decide and report, write nothing.
    pub dry_run: bool,
    /// When it started.
    pub started: DateTime<Utc>,
    clock: Instant,
    /// The answer so far.
    pub summary: Summary,
    /// What it fetched once.
    pub seen: Seen,
}

impl Run {
    /// A run starting now.
    pub fn new(id: String, req: &SyncRequest) -> Run {
        Run {
            summary: Summary {
                run_id: id.clone(),
                dry_run: req.dry_run,
                ..Default::default()
            },
            id,
            dry_run: req.dry_run,
            started: Utc::now(),
            clock: Instant::now(),
            seen: Seen::default(),
        }
    }

    /// Reports the documents that could not be read as records.
    pub fn malformed(&mut self, malformed: Vec<MalformedRecord>) {
        for e in malformed {
            tracing::warn!(record = %e.id, problem = %e.problem, "malformed record skipped");
            self.summary.malformed.push(MalformedReport {
                job_id: e.id,
                error: e.problem,
            });
        }
    }

    /// Notes what each decided record contributes to the answer: its
    /// observation error and its health.
    pub fn decided(&mut self, record: &Record, plan: &Plan) {
        if let Some(state) = &plan.unknown_flink_state {
            tracing::warn!(job_id = %record.job_id, flink_state = %state, "unknown Flink state: status left as it is");
        }
        // Every run reports what it could not observe, changed or not: an
        // outage of hours is in every run's answer and metrics, not only
        // in the first one's.
        if let Some(e) = &plan.error {
            self.summary.errors.push(RecordError {
                job_id: record.job_id.clone(),
                system: e.system,
                error: e.text.clone(),
            });
        }
        count_health(record, plan, &mut self.summary);
    }

    /// Notes a plan whose write was applied (or, in a dry run, would be).
    pub fn written(&mut self, record: &Record, plan: &Plan) {
        for change in &plan.changes {
            if let Change::FlinkJobId { all, .. } = change {
                self.seen
                    .learned
                    .extend(all.iter().map(|id| id.to_string()));
            }
        }
        if let Some((from, to, source)) = plan.transition() {
            let source = source.as_str();
            if self.dry_run {
                tracing::info!(job_id = %record.job_id, from = %from, to = %to, source, "status would change (dry run)");
            } else {
                tracing::info!(job_id = %record.job_id, from = %from, to = %to, source, "status changed");
            }
            *self
                .summary
                .transitions
                .entry(format!("{from}->{to}"))
                .or_default() += 1;
        }
        // A look's own bookkeeping is written, not counted as a change.
        if !plan.is_bookkeeping() {
            self.summary.records_changed += 1;
            if self.dry_run && self.summary.would_change.len() < WOULD_CHANGE_MAX {
                self.summary.would_change.push(WouldChange {
                    job_id: record.job_id.clone(),
                    from: record.status,
                    to: plan.transition().map_or(record.status, |(_, to, _)| to),
                    reason: plan.reason(),
                });
            }
        }
    }

    /// A write MongoDB refused.
    pub fn refused(&mut self, record: &Record, why: String) {
        self.summary.errors.push(RecordError {
            job_id: record.job_id.clone(),
            system: System::MongoDb,
            error: format!("MongoDB refused the write: {why}"),
        });
    }

    /// The run's wall time so far.
    pub fn elapsed_ms(&self) -> u64 {
        ms_since(self.clock)
    }

    /// What the runs collection keeps of the run's end.
    pub fn end(
        &self,
        req: &SyncRequest,
        resume_after: Option<RecordId>,
        error: Option<String>,
    ) -> RunEnd {
        let s = &self.summary;
        let state = match (&error, &resume_after) {
            (Some(_), _) => RunState::Failed,
            (None, Some(_)) => RunState::Partial,
            (None, None) => RunState::Complete,
        };
        RunEnd {
            state,
            scope: req.scope(),
            records_checked: s.records_checked,
            records_changed: s.records_changed,
            conflicts: s.conflicts,
            errors: s.errors.len(),
            malformed: s.malformed.len(),
            transitions: s
                .transitions
                .iter()
                .map(|(k, v)| (k.clone(), *v as u64))
                .collect::<BTreeMap<_, _>>(),
            elapsed_ms: self.elapsed_ms(),
            resume_after: resume_after.map(|id| (id, s.records_deferred)),
            error,
        }
    }
}

/// The records that cannot be decided on their own facts: those sharing a
/// job_id with another record read (the unique index is only wanted), and
/// those claiming a JobID another record read claims. Neither changes on
/// the other's account; both are reported.
pub fn conflicts(records: &[Record], summary: &mut Summary) -> HashMap<RecordId, Unobserved> {
    let mut out = HashMap::new();
    let mut by_job_id: HashMap<&str, Vec<&Record>> = HashMap::new();
    for r in records {
        by_job_id.entry(&r.job_id).or_default().push(r);
    }
    for (job_id, sharing) in by_job_id.into_iter().filter(|(_, s)| s.len() > 1) {
        tracing::warn!(job_id = %job_id, records = sharing.len(), "several records have one job_id: none of them is synced");
        for r in &sharing {
            let why = Unobserved::SharedJobIdOfRecord {
                job_id: job_id.to_string(),
                count: sharing.len(),
            };
            out.insert(r.oid.clone(), why);
        }
    }
    let mut by_flink_id: HashMap<&FlinkJobId, Vec<&Record>> = HashMap::new();
    for r in records.iter().filter(|r| !out.contains_key(&r.oid)) {
        if let Some(id) = &r.flink_job_id {
            by_flink_id.entry(id).or_default().push(r);
        }
    }
    let mut found: Vec<DuplicateJobId> = Vec::new();
    for (id, claimants) in by_flink_id.into_iter().filter(|(_, c)| c.len() > 1) {
        let mut job_ids: Vec<String> = claimants.iter().map(|r| r.job_id.clone()).collect();
        job_ids.sort();
        tracing::warn!(flink_job_id = %id, job_ids = ?job_ids, "several records claim one JobID: none of them follows it");
        for r in &claimants {
            let others = job_ids
                .iter()
                .filter(|o| **o != r.job_id)
                .cloned()
                .collect();
            let why = Unobserved::SharedJobId {
                flink_job_id: id.clone(),
                others,
            };
            out.insert(r.oid.clone(), why);
        }
        found.push(DuplicateJobId {
            flink_job_id: id.to_string(),
            job_ids,
        });
    }
    found.sort_by(|a, b| a.flink_job_id.cmp(&b.flink_job_id));
    summary.duplicate_job_ids = found;
    out
}

/// Counts one decided record's health: whether it was looked at, whether
/// the verdict changed, and, for a job still running after this run, its
/// verdict (new or kept), so the degraded figures cover every non-final
/// record read, not only this run's looks.
fn count_health(record: &Record, plan: &Plan, summary: &mut Summary) {
    if plan
        .changes
        .iter()
        .any(|c| matches!(c, Change::HealthCheckedAt(_)))
    {
        summary.health_checked += 1;
    }
    let changed = plan.changes.iter().find_map(|c| match c {
        Change::Health { to, reasons, .. } => Some((*to, reasons)),
        _ => None,
    });
    if changed.is_some() {
        summary.health_changes += 1;
    }
    let ends = plan.transition().is_some_and(|(_, to, _)| to.is_final());
    let (health, codes): (Option<Health>, Vec<&str>) = match changed {
        Some((to, reasons)) => (Some(to), reasons.iter().map(|r| r.code.as_str()).collect()),
        None => (
            record.health,
            record.health_codes.iter().map(String::as_str).collect(),
        ),
    };
    if ends || health != Some(Health::Degraded) {
        return;
    }
    summary.degraded_jobs += 1;
    for code in codes {
        *summary.degraded.entry(code.to_string()).or_default() += 1;
    }
}

/// Puts the records after `after` (in `_id` order) first, so a run resumes
/// where the previous one stopped and then wraps around.
pub fn rotate_after(records: &mut [Record], after: &RecordId) {
    let after = after.sort_key();
    if let Some(pos) = records.iter().position(|r| r.oid.sort_key() > after) {
        records.rotate_left(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::Status;

    fn record(oid: i32, job_id: &str, flink: Option<&str>) -> Record {
        let mut r = Record::new(RecordId::Int32(oid), job_id, Status::Running);
        r.flink_job_id = flink.and_then(FlinkJobId::parse);
        r
    }

    const ID: &str = "ef163bff25523543d6699ac3c0e9b72e";

    #[test]
    fn records_sharing_a_job_id_are_each_held_back_by_their_own_id() {
        let records = [
            record(1, "dup", None),
            record(2, "dup", None),
            record(3, "own", None),
        ];
        let mut summary = Summary::default();
        let c = conflicts(&records, &mut summary);
        assert_eq!(c.len(), 2, "{c:?}");
        for oid in [1, 2] {
            let why = c[&RecordId::Int32(oid)].to_string();
            assert!(why.contains("\"dup\" is shared by 2 records"), "{why}");
        }
        assert!(!c.contains_key(&RecordId::Int32(3)));
    }

    #[test]
    fn records_claiming_one_jobid_are_reported_and_held_back() {
        let records = [record(1, "a", Some(ID)), record(2, "b", Some(ID))];
        let mut summary = Summary::default();
        let c = conflicts(&records, &mut summary);
        assert_eq!(summary.duplicate_job_ids.len(), 1);
        assert_eq!(summary.duplicate_job_ids[0].job_ids, ["a", "b"]);
        assert!(
            c[&RecordId::Int32(1)]
                .to_string()
                .contains("claimed by record b")
        );
        assert!(
            c[&RecordId::Int32(2)]
                .to_string()
                .contains("claimed by record a")
        );
    }

    #[test]
    fn a_run_resumes_after_the_record_the_last_one_stopped_at() {
        let mut records: Vec<Record> = (1..=5).map(|i| record(i, "j", None)).collect();
        rotate_after(&mut records, &RecordId::Int32(3));
        let order: Vec<RecordId> = records.iter().map(|r| r.oid.clone()).collect();
        assert_eq!(
            order,
            [4, 5, 1, 2, 3].map(RecordId::Int32),
            "the rest first, then around"
        );
    }

    #[test]
    fn a_failed_run_ends_failed_with_its_error_and_a_cut_one_partial() {
        let req = SyncRequest::default();
        let run = Run::new("r1".into(), &req);
        let failed = run.end(&req, None, Some("MongoDB: lost".into()));
        assert_eq!(failed.state, RunState::Failed);
        assert_eq!(failed.error.as_deref(), Some("MongoDB: lost"));
        let partial = run.end(&req, Some(RecordId::Int32(9)), None);
        assert_eq!(partial.state, RunState::Partial);
        assert_eq!(run.end(&req, None, None).state, RunState::Complete);
    }
}
