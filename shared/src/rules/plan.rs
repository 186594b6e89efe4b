//! The sync rule, as a pure function: from one record and what was observed of
//! its Kubernetes Job and its Flink job, the changes to make to the record.
//! No I/O here; the adapters fetch the facts and apply the plan.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::rules::health::{
    self, Checkpoints, HealthFacts, HealthRules, JobView, RestartPoint, Tasks,
};
use crate::rules::model::{
    FlinkJobId, Health, HealthReason, Record, Status, System, human, status_for_flink_state,
    truncate,
};

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

/// Longest [`Plan::reason`], in bytes: a dry run lists up to a hundred.
pub const REASON_SUMMARY_MAX_BYTES: usize = 300;

/// Pod waiting reasons that do not cure themselves.
pub const STUCK_WAITING_REASONS: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// What was seen of the record's Kubernetes Job.
#[derive(Debug, Clone, PartialEq)]
pub enum K8sFacts {
    /// The namespace's Job list could not be read.
    Unavailable(String),
    /// The list was read and has no Job of that name.
    NoJob,
    /// The Job, with its pods and logs.
    Job(JobFacts),
}

/// What was seen of a record's Kubernetes Job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobFacts {
    /// The Job's name.
    pub name: String,
    /// Condition `Complete` is true.
    pub complete: bool,
    /// Condition `Failed` is true: its reason and message.
    pub failed: Option<String>,
    /// The newest pod of the Job.
    pub pod: Option<PodFacts>,
    /// Its started pods' logs.
    pub log: LogFacts,
}

/// The Job's newest pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodFacts {
    /// The pod's name.
    pub name: String,
    /// A container waiting: reason, message, and since when (pod creation).
    pub waiting: Option<Waiting>,
    /// Exit code of the terminated container.
    pub exit_code: Option<i32>,
}

/// A container waiting to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// Kubernetes' reason (`ImagePullBackOff`).
    pub reason: String,
    /// Kubernetes' message.
    pub message: String,
    /// Since when: the pod's creation.
    pub since: Option<DateTime<Utc>>,
}

/// The pod logs of the Job, read from its pods that have started.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LogFacts {
    /// No pod has started, or the Job has no pod at all.
    #[default]
    NotStarted,
    /// The logs were read: the JobIDs they announce and their last lines.
    Read {
        /// The JobIDs announced, oldest pod first, without repeats.
        ids: Vec<FlinkJobId>,
        /// The newest log's last lines, for a failure's reason.
        tail: String,
    },
    /// A pod has started but its log could not be read this time.
    Unreadable(String),
}

/// What was seen of the Flink job.
#[derive(Debug, Clone, PartialEq)]
pub enum FlinkFacts {
    /// The JobManager (or History Server) knows the job.
    Found(FlinkJob),
    /// The JobManager answered, and no source knows the job: a trusted miss.
    Missing,
    /// No trustworthy answer (timeout, refused, 5xx, garbled JSON).
    Unavailable(String),
}

/// A job as Flink reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlinkJob {
    /// Flink's state (`RUNNING`); unknown states pass through.
    pub state: String,
    /// Epoch milliseconds; -1 (or any value ≤ 0) when Flink has none.
    pub start_ms: i64,
    /// Epoch milliseconds; -1 (or any value ≤ 0) while running.
    pub end_ms: i64,
    /// Root cause from `/jobs/{id}/exceptions`, fetched for failed jobs.
    pub root_cause: Option<String>,
    /// Task counts, from the overview.
    pub tasks: Option<Tasks>,
    /// When the job's state last changed (epoch ms; ≤ 0 when unknown).
    pub last_modification_ms: i64,
    /// The job's name (at most 200 bytes), as the overview gives it.
    pub name: String,
}

/// Everything observed for one record in this run. `flink` describes the
/// record's JobID, or the one the log just revealed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The Kubernetes facts; `None` when not looked at (the JobID is known).
    pub k8s: Option<K8sFacts>,
    /// The Flink facts; `None` when there is no JobID to follow.
    pub flink: Option<FlinkFacts>,
    /// A look at the job's health; `None` when not looked at this run.
    pub health: Option<HealthFacts>,
    /// The other jobs of a record whose pod log announced several.
    pub others: Vec<(FlinkJobId, FlinkFacts)>,
}

/// Which system a transition was learned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Kubernetes Job or pod said so.
    Kubernetes,
    /// Flink said so.
    Flink,
}

impl Source {
    /// The name stored in `status_history`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kubernetes => "kubernetes",
            Source::Flink => "flink",
        }
    }
}

/// One change to a field sync owns.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new status, learned from `source`.
    Status {
        /// The status read.
        from: Status,
        /// The status to write.
        to: Status,
        /// What it was learned from.
        source: Source,
    },
    /// The JobID read from the pod log, and every JobID it announced.
    FlinkJobId {
        /// The first JobID announced: `flink_job_id`.
        first: FlinkJobId,
        /// Every JobID announced: `flink_job_ids`.
        all: Vec<FlinkJobId>,
    },
    /// Flink's state word.
    FlinkState(String),
    /// Each job's state, for a record of several jobs (`flink_jobs_state`).
    FlinkJobsState(std::collections::BTreeMap<String, String>),
    /// When Flink started the job.
    StartTime(DateTime<Utc>),
    /// When it ended.
    EndTime(DateTime<Utc>),
    /// Seconds.
    Duration(f64),
    /// Why the status is what it is.
    StatusReason(String),
    /// `None` clears it.
    SyncError(Option<SyncError>),
    /// Runs in a row Flink did not know the JobID (0 removes the field).
    MissingCount(u32),
    /// When health was looked at (`health_checked_at`).
    HealthCheckedAt(DateTime<Utc>),
    /// A new health verdict, recorded once (`health_history`, an event).
    Health {
        /// The health stored before.
        from: Option<Health>,
        /// The health now.
        to: Health,
        /// Why.
        reasons: Vec<HealthReason>,
    },
    /// The job's checkpoints; `None` removes the field (no checkpointing).
    Checkpoint(Option<Checkpoints>),
    /// `numRestarts` as seen.
    Restarts(u64),
    /// The restart samples over the window.
    RestartSamples(Vec<(DateTime<Utc>, u64)>),
    /// Container restarts of the submitting pod, as last seen.
    SubmitterRestarts(u32),
    /// Where the ended job can resume, or why nowhere.
    RestartPoint(RestartPoint),
}

/// Why a record could not be observed this run: which system failed, and
/// the text stored in `sync_error` (`"flink: HTTP 503 ..."`, bounded).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncError {
    /// The system that failed.
    pub system: System,
    /// `"<system>: <detail>"`, as stored.
    pub text: String,
}

impl SyncError {
    /// `"<system>: <detail>"`, at most `max_bytes`.
    pub fn new(system: System, detail: &str, max_bytes: usize) -> SyncError {
        let text = format!("{}: {detail}", system.as_str());
        SyncError {
            system,
            text: truncate(&text, max_bytes).to_string(),
        }
    }
}

/// The plan for one record: the changes (empty when nothing new was learned),
/// and anything worth a log line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// What to write; empty when nothing new was learned.
    pub changes: Vec<Change>,
    /// A Flink state the rule does not know (logged; the status is left as it is).
    pub unknown_flink_state: Option<String>,
}

impl Plan {
    /// The status change, if the plan makes one: from, to, and what it was learned from.
    pub fn transition(&self) -> Option<(Status, Status, Source)> {
        self.changes.iter().find_map(|c| match c {
            Change::Status { from, to, source } => Some((*from, *to, *source)),
            _ => None,
        })
    }

    /// What the plan changes, in words, for a person reading a dry run: the
    /// status reason first when there is one, then what was learned. At most
    /// [`REASON_SUMMARY_MAX_BYTES`].
    pub fn reason(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(reason) = self.changes.iter().find_map(|c| match c {
            Change::StatusReason(r) => Some(r),
            _ => None,
        }) {
            parts.push(reason.clone());
        }
        for c in &self.changes {
            let part = match c {
                Change::Status { source, .. } => format!("learned from {}", source.as_str()),
                Change::FlinkJobId { first, all } if all.len() > 1 => {
                    format!(
                        "JobID {first} (and {} more) found in the pod log",
                        all.len() - 1
                    )
                }
                Change::FlinkJobId { first, .. } => format!("JobID {first} found in the pod log"),
                Change::FlinkState(state) => format!("Flink state {state}"),
                Change::FlinkJobsState(states) => format!("{} jobs' states", states.len()),
                Change::StartTime(_) => "start time".to_string(),
                Change::EndTime(_) => "end time".to_string(),
                Change::Duration(secs) => format!("duration {secs}s"),
                Change::StatusReason(_) => continue,
                Change::SyncError(Some(e)) => format!("sync_error: {}", e.text),
                Change::SyncError(None) => "sync_error cleared".to_string(),
                Change::MissingCount(0) => "found on Flink again".to_string(),
                Change::MissingCount(n) => format!("not on Flink ({n} consecutive checks)"),
                Change::Health { to, reasons, .. } => {
                    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
                    format!("health {to} {codes:?}")
                }
                Change::RestartPoint(RestartPoint::At(p)) => format!("restart point {p}"),
                Change::HealthCheckedAt(_)
                | Change::SubmitterRestarts(_)
                | Change::Checkpoint(_)
                | Change::Restarts(_)
                | Change::RestartSamples(_)
                | Change::RestartPoint(_) => continue,
            };
            parts.push(part);
        }
        truncate(&parts.join("; "), REASON_SUMMARY_MAX_BYTES).to_string()
    }

    /// Whether the plan only records what a health look read (its time,
    /// counts, checkpoint figures): kept, but no news (no verdict, status
    /// or restart point changed).
    pub fn is_bookkeeping(&self) -> bool {
        !self.changes.is_empty()
            && self.changes.iter().all(|c| {
                matches!(
                    c,
                    Change::HealthCheckedAt(_)
                        | Change::RestartSamples(_)
                        | Change::Restarts(_)
                        | Change::SubmitterRestarts(_)
                        | Change::Checkpoint(_)
                )
            })
    }

    /// The JobID the plan records for the first time, if any.
    pub fn new_flink_job_id(&self) -> Option<&FlinkJobId> {
        self.changes.iter().find_map(|c| match c {
            Change::FlinkJobId { first, .. } => Some(first),
            _ => None,
        })
    }
}

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
    let status_of = |j: &&FlinkJob| status_for_flink_state(&j.state);
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
            state: "CREATED".into(),
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
        && matches!(flink, Some(FlinkFacts::Found(job)) if job.state == "FAILED")
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
    let mut follow_flink = record.flink_job_id.is_some();
    if record.flink_job_id.is_none() {
        match &observed.k8s {
            None => {}
            Some(K8sFacts::Unavailable(e)) => b.error = Some((System::Kubernetes, e.clone())),
            Some(K8sFacts::NoJob) => {
                let waited = record.submitted().map(|s| now - s);
                if let Some(waited) = waited.filter(|w| *w > rules.job_not_found_grace) {
                    let reason = format!(
                        "Kubernetes Job not found: no Job {:?} {} after submission (grace {})",
                        record.k8s_job_name(),
                        human(waited),
                        human(rules.job_not_found_grace)
                    );
                    b.fail(Source::Kubernetes, reason);
                }
            }
            Some(K8sFacts::Job(job)) => follow_flink = b.kubernetes_job(job, now),
        }
    }
    if follow_flink && !observed.others.is_empty() {
        b.several_jobs(observed);
        return b.finish();
    }
    if follow_flink {
        match &observed.flink {
            None => {}
            Some(FlinkFacts::Unavailable(e)) => b.error = Some((System::Flink, e.clone())),
            Some(FlinkFacts::Missing) => {
                let misses = record.flink_missing_count.saturating_add(1);
                b.plan.changes.push(Change::MissingCount(misses));
                if misses >= rules.missing_threshold {
                    let id = flink_job_id_to_follow(record, observed.k8s.as_ref())
                        .map(ToString::to_string);
                    b.fail(
                        Source::Flink,
                        format!(
                            "Flink job {} not found on Flink cluster ({misses} consecutive checks)",
                            id.unwrap_or_default()
                        ),
                    );
                }
            }
            Some(FlinkFacts::Found(job)) => {
                b.flink_job(job);
                if let Some(facts) = &observed.health {
                    b.health(job, facts, now);
                }
            }
        }
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

    /// Returns whether Flink should be followed (a JobID was found).
    fn kubernetes_job(&mut self, job: &JobFacts, now: DateTime<Utc>) -> bool {
        let pod_part = |job: &JobFacts| match &job.pod {
            Some(PodFacts {
                name,
                exit_code: Some(code),
                ..
            }) => format!("; pod {name} exit code {code}"),
            _ => String::new(),
        };
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
        let tail = match &job.log {
            LogFacts::Read { tail, .. } if !tail.is_empty() => format!("\nlog tail:\n{tail}"),
            _ => String::new(),
        };
        if let Some(failed) = &job.failed {
            let reason = format!(
                "Kubernetes Job {} failed: {failed}{}{tail}",
                job.name,
                pod_part(job)
            );
            self.fail(Source::Kubernetes, reason);
        } else if job.complete {
            let reason = format!(
                "no Flink JobID in pod log of Kubernetes Job {}{}{tail}",
                job.name,
                pod_part(job)
            );
            self.fail(Source::Kubernetes, reason);
        } else if let Some(PodFacts {
            name,
            waiting: Some(w),
            ..
        }) = &job.pod
            && STUCK_WAITING_REASONS.contains(&w.reason.as_str())
            && w.since
                .is_some_and(|s| now - s > self.rules.pod_waiting_grace)
        {
            let reason = format!(
                "pod {name} of Kubernetes Job {} cannot start: {}: {} (waiting longer than {})",
                job.name,
                w.reason,
                w.message,
                human(self.rules.pod_waiting_grace)
            );
            self.fail(Source::Kubernetes, reason);
        }
        false
    }

    fn flink_job(&mut self, job: &FlinkJob) {
        let r = self.record;
        if r.flink_missing_count != 0 {
            self.plan.changes.push(Change::MissingCount(0));
        }
        if r.flink_state.as_deref() != Some(job.state.as_str()) {
            self.plan
                .changes
                .push(Change::FlinkState(job.state.clone()));
        }
        match status_for_flink_state(&job.state) {
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
                    states.insert(id, job.state.clone());
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
        let stored: Option<std::collections::BTreeMap<String, String>> =
            self.record.flink_jobs_state.as_ref().map(|d| {
                d.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            });
        if stored.as_ref() != Some(&states) {
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
        if let Some(checkpoints) = &a.checkpoints {
            let now_doc = checkpoints.as_ref().map(Checkpoints::to_document);
            let stored = r.checkpoint.as_ref().and_then(|c| c.to_document().ok());
            if now_doc != stored {
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
        if self.status.is_final() {
            let point = match &a.checkpoints {
                Some(c) => health::restart_point(&job.state, c.as_ref()),
                // The record is not looked at again: it says why it has none.
                None => RestartPoint::None(match &facts.checkpoints {
                    Err(e) => format!("Flink did not answer about its checkpoints: {e}"),
                    Ok(_) => "the job ended while it was starting".to_string(),
                }),
            };
            let stored = match &point {
                RestartPoint::At(p) => r.restart_point.as_deref() == Some(p.as_str()),
                RestartPoint::None(_) => false,
            };
            if !stored {
                self.plan.changes.push(Change::RestartPoint(point));
            }
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
            self.plan.changes.push(Change::SyncError(error));
        }
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
