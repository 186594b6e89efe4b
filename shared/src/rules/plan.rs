//! The sync rule, as a pure function: from one record and what was observed of
//! its Kubernetes Job and its Flink job, the changes to make to the record.
//! No I/O here; the adapters fetch the facts and apply the plan.

use chrono::{DateTime, Duration, TimeZone, Utc};

pub use crate::rules::change::{Change, Plan, REASON_SUMMARY_MAX_BYTES, Source, SyncError};
pub use crate::rules::facts::{
    FlinkFacts, FlinkJob, JobFacts, K8sFacts, LogFacts, Observed, PodFacts, Unobserved, Waiting,
};
use crate::rules::health::{
    self, Assessment, Checkpoints, HealthFacts, HealthRules, JobView, RestartPoint,
};
use crate::rules::model::{FlinkJobId, FlinkState, Health, Status, System, human, truncate};
use crate::rules::record::Record;

/// Tunables of the rule.
/// `Default` gives the declared defaults: the impl is in `config::numeric`,
/// beside the declarations in `config::declared` (rules know no environment).
#[derive(Debug, Clone)]
pub struct SyncRules {
    /// How long a record may wait for its Kubernetes Job to appear.
    pub job_not_found_grace: Duration,
    /// How long a pod may wait on an image or config problem before the record fails.
    pub pod_waiting_grace: Duration,
    /// Consecutive trusted misses on Flink before a job counts as gone.
    pub missing_threshold: u32,
    /// Longest `status_reason` and `sync_error`, in bytes.
    pub reason_max_bytes: usize,
    /// The health rule's thresholds.
    pub health: HealthRules,
}

/// Pod waiting reasons that do not cure themselves.
pub const STUCK_WAITING_REASONS: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// The JobID Flink should be asked about for this record: the stored one, or
/// the first one its pod log announced.
pub fn flink_job_id_to_follow<'a>(
    record: &'a Record,
    k8s: Option<&'a K8sFacts>,
) -> Option<&'a FlinkJobId> {
    record.flink_job_id.as_ref().or(match k8s {
        Some(K8sFacts::Job(JobFacts {
            log: LogFacts::Read { ids, .. },
            ..
        })) => ids.first(),
        _ => None,
    })
}

/// The record's other JobIDs, beyond the one it follows first: the stored
/// `flink_job_ids`, or those its pod log just announced.
pub fn other_flink_job_ids(record: &Record, k8s: Option<&K8sFacts>) -> Vec<FlinkJobId> {
    let announced: &[FlinkJobId] = match (&record.flink_job_id, k8s) {
        (Some(_), _) => &record.flink_job_ids,
        (
            None,
            Some(K8sFacts::Job(JobFacts {
                log: LogFacts::Read { ids, .. },
                ..
            })),
        ) => ids,
        _ => &[],
    };
    let first = flink_job_id_to_follow(record, k8s);
    announced
        .iter()
        .filter(|id| Some(*id) != first)
        .cloned()
        .collect()
}

/// Several jobs as one: FAILED if any failed, CANCELED if any was
/// cancelled and none failed, FINISHED when all finished, else the first
/// job's running or starting state; started at the earliest start, ended at
/// the latest end once every job has ended.
pub fn aggregate(jobs: &[&FlinkJob]) -> FlinkJob {
    let status_of = |j: &&FlinkJob| j.state.status();
    let any = |s: Status| jobs.iter().find(|j| status_of(j) == Some(s));
    let all_final = jobs
        .iter()
        .all(|j| status_of(j).is_some_and(Status::is_final));
    let lead = any(Status::Failed)
        .or_else(|| any(Status::Cancelled))
        .or_else(|| {
            jobs.iter()
                .find(|j| !status_of(j).is_some_and(Status::is_final))
        })
        .or_else(|| jobs.first())
        .copied();
    let starts = jobs.iter().map(|j| j.start_ms).filter(|t| *t > 0);
    let ends = jobs.iter().map(|j| j.end_ms).filter(|t| *t > 0);
    match lead {
        None => FlinkJob {
            state: FlinkState::Created,
            start_ms: -1,
            end_ms: -1,
            root_cause: None,
            tasks: None,
            last_modification_ms: -1,
            name: String::new(),
        },
        Some(lead) => FlinkJob {
            start_ms: starts.min().unwrap_or(-1),
            end_ms: if all_final {
                ends.max().unwrap_or(-1)
            } else {
                -1
            },
            ..lead.clone()
        },
    }
}

/// Whether the run should fetch Flink's root cause for this record: only for
/// a job Flink reports FAILED whose record is not FAILED yet, so a failed
/// fleet costs one exceptions request per failure, once.
pub fn needs_root_cause(record: &Record, flink: Option<&FlinkFacts>) -> bool {
    record.status != Status::Failed
        && matches!(flink, Some(FlinkFacts::Found(job)) if job.state == FlinkState::Failed)
}

/// The rule. A final record never changes; a value already stored is never
/// written again, so a quiet fleet costs no writes.
pub fn decide(record: &Record, observed: &Observed, now: DateTime<Utc>, rules: &SyncRules) -> Plan {
    let mut b = Builder {
        record,
        rules,
        plan: Plan::default(),
        status: record.status,
        error: None,
        looked_at_health: false,
    };
    if record.status.is_final() {
        return Plan::default();
    }
    if let Some(conflict) = &observed.conflict {
        b.error = Some((System::MongoDb, conflict.to_string()));
        return b.finish();
    }
    let follow_flink = match (&record.flink_job_id, &observed.k8s) {
        (Some(_), _) => true,
        (None, None) => false,
        (None, Some(k8s)) => b.kubernetes(k8s, now),
    };
    if follow_flink && !observed.others.is_empty() {
        b.several_jobs(observed);
    } else if follow_flink {
        b.flink(observed, now);
    }
    b.finish()
}

struct Builder<'a> {
    record: &'a Record,
    rules: &'a SyncRules,
    plan: Plan,
    status: Status,
    /// Which system could not be observed, and how.
    error: Option<(System, String)>,
    /// The job's health was looked at this run.
    looked_at_health: bool,
}

impl Builder<'_> {
    fn set_status(&mut self, to: Status, source: Source) {
        if to != self.record.status {
            self.plan
                .changes
                .retain(|c| !matches!(c, Change::Status { .. }));
            self.plan.changes.push(Change::Status {
                from: self.record.status,
                to,
                source,
            });
        }
        self.status = to;
    }

    fn reason(&mut self, reason: String) {
        let reason = truncate(reason.trim(), self.rules.reason_max_bytes).to_string();
        if self.record.status_reason.as_deref() != Some(reason.as_str()) {
            self.plan.changes.push(Change::StatusReason(reason));
        }
    }

    fn fail(&mut self, source: Source, reason: String) {
        self.set_status(Status::Failed, source);
        self.reason(reason);
    }

    /// What the Kubernetes facts of a record waiting for its JobID say;
    /// returns whether Flink should be followed (a JobID was found).
    fn kubernetes(&mut self, k8s: &K8sFacts, now: DateTime<Utc>) -> bool {
        let record = self.record;
        match k8s {
            K8sFacts::Unavailable(e) => self.error = Some((System::Kubernetes, e.to_string())),
            K8sFacts::NoJob => {
                let waited = record.submitted().map(|s| now - s);
                let grace = self.rules.job_not_found_grace;
                if let Some(waited) = waited.filter(|w| *w > grace) {
                    let reason = format!(
                        "Kubernetes Job not found: no Job {:?} {} after submission (grace {})",
                        record.k8s_job_name(),
                        human(waited),
                        human(grace)
                    );
                    self.fail(Source::Kubernetes, reason);
                }
            }
            K8sFacts::Job(job) => return self.kubernetes_job(job, now),
        }
        false
    }

    /// What Flink says of the record's one job (and its health, when looked at).
    fn flink(&mut self, observed: &Observed, now: DateTime<Utc>) {
        let record = self.record;
        match &observed.flink {
            None => {}
            Some(FlinkFacts::Unavailable(e)) => self.error = Some((System::Flink, e.to_string())),
            Some(FlinkFacts::Missing) => {
                let misses = record.flink_missing_count.saturating_add(1);
                self.plan.changes.push(Change::MissingCount(misses));
                if misses >= self.rules.missing_threshold {
                    let id = flink_job_id_to_follow(record, observed.k8s.as_ref())
                        .map(ToString::to_string);
                    self.fail(
                        Source::Flink,
                        format!(
                            "Flink job {} not found on Flink cluster ({misses} consecutive checks)",
                            id.unwrap_or_default()
                        ),
                    );
                }
            }
            Some(FlinkFacts::Found(job)) => {
                self.flink_job(job);
                if let Some(facts) = &observed.health {
                    self.health(job, facts, now);
                }
            }
        }
    }

    /// Returns whether Flink should be followed (a JobID was found).
    fn kubernetes_job(&mut self, job: &JobFacts, now: DateTime<Utc>) -> bool {
        match &job.log {
            LogFacts::Read { ids, .. } if !ids.is_empty() => {
                self.plan.changes.push(Change::FlinkJobId {
                    first: ids[0].clone(),
                    all: ids.clone(),
                });
                return true;
            }
            LogFacts::Unreadable(e) => {
                self.error = Some((
                    System::Kubernetes,
                    format!("reading the log of Job {}: {e}", job.name),
                ));
                return false;
            }
            _ => {}
        }
        if let Some(reason) = self.job_failure(job, now) {
            self.fail(Source::Kubernetes, reason);
        }
        false
    }

    /// Why a Job with no JobID in its log has failed, if it has: the Job
    /// failed, completed without submitting, or its pod cannot start.
    fn job_failure(&self, job: &JobFacts, now: DateTime<Utc>) -> Option<String> {
        let pod_part = match &job.pod {
            Some(PodFacts {
                name,
                exit_code: Some(code),
                ..
            }) => format!("; pod {name} exit code {code}"),
            _ => String::new(),
        };
        let tail = match &job.log {
            LogFacts::Read { tail, .. } if !tail.is_empty() => format!("\nlog tail:\n{tail}"),
            _ => String::new(),
        };
        let name = &job.name;
        if let Some(failed) = &job.failed {
            return Some(format!(
                "Kubernetes Job {name} failed: {failed}{pod_part}{tail}"
            ));
        }
        if job.complete {
            return Some(format!(
                "no Flink JobID in pod log of Kubernetes Job {name}{pod_part}{tail}"
            ));
        }
        let grace = self.rules.pod_waiting_grace;
        match &job.pod {
            Some(PodFacts {
                name: pod,
                waiting: Some(w),
                ..
            }) if STUCK_WAITING_REASONS.contains(&w.reason.as_str())
                && w.since.is_some_and(|s| now - s > grace) =>
            {
                Some(format!(
                    "pod {pod} of Kubernetes Job {name} cannot start: {}: {} (waiting longer than {})",
                    w.reason,
                    w.message,
                    human(grace)
                ))
            }
            _ => None,
        }
    }

    fn flink_job(&mut self, job: &FlinkJob) {
        let r = self.record;
        if r.flink_missing_count != 0 {
            self.plan.changes.push(Change::MissingCount(0));
        }
        if r.flink_state.as_ref() != Some(&job.state) {
            self.plan
                .changes
                .push(Change::FlinkState(job.state.clone()));
        }
        match job.state.status() {
            Some(status) => self.set_status(status, Source::Flink),
            None => self.plan.unknown_flink_state = Some(job.state.clone()),
        }
        let start = epoch_ms(job.start_ms);
        if let Some(start) = start
            && r.start_time != Some(start)
        {
            self.plan.changes.push(Change::StartTime(start));
        }
        if !self.status.is_final() {
            return;
        }
        let end = epoch_ms(job.end_ms);
        if let Some(end) = end
            && r.end_time != Some(end)
        {
            self.plan.changes.push(Change::EndTime(end));
        }
        if let (Some(start), Some(end)) = (start, end) {
            let secs = (end - start).num_milliseconds().max(0) as f64 / 1000.0;
            if r.duration != Some(secs) {
                self.plan.changes.push(Change::Duration(secs));
            }
        }
        if self.status == Status::Failed {
            let cause = job
                .root_cause
                .clone()
                .unwrap_or_else(|| "Flink reports the job FAILED".to_string());
            self.reason(cause);
        }
    }

    /// A record whose pod log announced several jobs: each job's state is
    /// kept, and the record's status is theirs together ([`aggregate`]). A
    /// job with no trustworthy answer holds the record as it is.
    fn several_jobs(&mut self, observed: &Observed) {
        let first = flink_job_id_to_follow(self.record, observed.k8s.as_ref()).cloned();
        let all: Vec<(Option<FlinkJobId>, Option<&FlinkFacts>)> =
            std::iter::once((first, observed.flink.as_ref()))
                .chain(
                    observed
                        .others
                        .iter()
                        .map(|(id, f)| (Some(id.clone()), Some(f))),
                )
                .collect();
        let mut jobs = Vec::new();
        let mut states = std::collections::BTreeMap::new();
        for (id, facts) in &all {
            let id = id.as_ref().map(ToString::to_string).unwrap_or_default();
            match facts {
                Some(FlinkFacts::Found(job)) => {
                    states.insert(id, job.state.to_string());
                    jobs.push(job);
                }
                Some(FlinkFacts::Unavailable(e)) => {
                    self.error = Some((System::Flink, format!("job {id}: {e}")));
                    return;
                }
                Some(FlinkFacts::Missing) => {
                    states.insert(id, "NOT_FOUND".to_string());
                }
                None => return,
            }
        }
        if self.record.flink_jobs_state.as_ref() != Some(&states) {
            self.plan
                .changes
                .push(Change::FlinkJobsState(states.clone()));
        }
        if states.values().any(|s| s == "NOT_FOUND") {
            // A job Flink does not know counts as a miss of the record.
            let misses = self.record.flink_missing_count.saturating_add(1);
            self.plan.changes.push(Change::MissingCount(misses));
            if misses >= self.rules.missing_threshold {
                self.fail(
                    Source::Flink,
                    format!("a job of this record is not found on Flink cluster ({misses} consecutive checks)"),
                );
            }
            return;
        }
        let jobs: Vec<&FlinkJob> = jobs.into_iter().collect();
        self.flink_job(&aggregate(&jobs));
    }

    /// The health look's changes: the verdict while the job runs, the
    /// restart point when it has just ended (its last health is kept).
    fn health(&mut self, job: &FlinkJob, facts: &HealthFacts, now: DateTime<Utc>) {
        let r = self.record;
        let view = JobView {
            state: &job.state,
            tasks: job.tasks,
            last_modification_ms: job.last_modification_ms,
            start_ms: job.start_ms,
        };
        let a = health::assess(r, &view, facts, now, &self.rules.health);
        self.plan.changes.push(Change::HealthCheckedAt(now));
        self.looked_at_health = true;
        // What Flink would not tell is this run's error on the record; a
        // record becoming final is never looked at again, so it keeps none.
        if a.health == Health::Unknown && self.error.is_none() && !self.status.is_final() {
            let why = a.reasons.first().map(|x| x.message.clone());
            self.error = why.map(|w| (System::Flink, format!("health: {w}")));
        }
        self.health_figures(&a, facts);
        if self.status.is_final() {
            self.restart_point(job, &a, facts);
            // A job seen only once it ended gets the one verdict it had.
            if r.health.is_some() {
                return;
            }
        }
        let codes: Vec<&str> = a.reasons.iter().map(|x| x.code.as_str()).collect();
        if r.health != Some(a.health) || r.health_codes != codes {
            self.plan.changes.push(Change::Health {
                from: r.health,
                to: a.health,
                reasons: a.reasons,
            });
        }
    }

    /// The figures a look keeps: checkpoints, restarts, the submitter's
    /// restarts and the restart samples, each only when it changed.
    fn health_figures(&mut self, a: &Assessment, facts: &HealthFacts) {
        let r = self.record;
        if let Some(checkpoints) = &a.checkpoints {
            let seen = checkpoints.as_ref().map(Checkpoints::stored);
            if seen.as_ref() != r.checkpoint.as_deref() {
                self.plan
                    .changes
                    .push(Change::Checkpoint(checkpoints.clone()));
            }
        }
        if let Some(n) = a.restarts.filter(|n| r.restarts != Some(*n)) {
            self.plan.changes.push(Change::Restarts(n));
        }
        if let Some(n) = facts
            .submitter_restarts
            .filter(|n| r.submitter_restarts != Some(*n))
        {
            self.plan.changes.push(Change::SubmitterRestarts(n));
        }
        if a.samples != r.restart_samples {
            self.plan
                .changes
                .push(Change::RestartSamples(a.samples.clone()));
        }
    }

    /// Where a job that has just ended can resume, or why nowhere. The
    /// record is not looked at again: it says why it has none.
    fn restart_point(&mut self, job: &FlinkJob, a: &Assessment, facts: &HealthFacts) {
        let point = match &a.checkpoints {
            Some(c) => health::restart_point(&job.state, c.as_ref()),
            None => RestartPoint::None(match &facts.checkpoints {
                Err(e) => format!("Flink did not answer about its checkpoints: {e}"),
                Ok(_) => "the job ended while it was starting".to_string(),
            }),
        };
        let stored = match &point {
            RestartPoint::At(p) => self.record.restart_point.as_deref() == Some(p.as_str()),
            RestartPoint::None(_) => false,
        };
        if !stored {
            self.plan.changes.push(Change::RestartPoint(point));
        }
    }

    fn finish(mut self) -> Plan {
        let max = self.rules.reason_max_bytes;
        let error = self
            .error
            .map(|(system, detail)| SyncError::new(system, &detail, max));
        // A health error stands until the next look says otherwise: runs
        // without a look (the budget) must not clear and set it in turn.
        let health_error = self
            .record
            .sync_error
            .as_deref()
            .is_some_and(|e| e.starts_with("flink: health: "));
        if error.is_none() && health_error && !self.looked_at_health && !self.status.is_final() {
            return self.plan;
        }
        if error.as_ref().map(|e| e.text.as_str()) != self.record.sync_error.as_deref() {
            self.plan.changes.push(Change::SyncError(error.clone()));
        }
        self.plan.error = error;
        self.plan
    }
}

fn epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    if ms <= 0 {
        None
    } else {
        Utc.timestamp_millis_opt(ms).single()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_says_them() {
        for (secs, want) in [
            (45, "45s"),
            (600, "10m"),
            (610, "10m10s"),
            (3600, "1h"),
            (3720, "1h02m"),
            (3 * 86_400 + 4 * 3600 + 59, "3d04h"),
            (2 * 86_400, "2d"),
        ] {
            assert_eq!(human(Duration::seconds(secs)), want);
        }
    }
}
