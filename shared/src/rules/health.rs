//! The health rule: from what Flink says of a job's checkpoints, restarts and
//! tasks (and whether its submitting pod restarts), whether the job is
//! healthy, and where it could be restarted from. Pure: the run fetches the
//! facts ([`HealthFacts`]) and [`crate::rules::plan::decide`] turns the
//! assessment into changes. Health never changes a record's status.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use crate::rules::model::{FlinkState, Health, HealthReason, Unobserved, human, truncate};
pub use crate::rules::record::Retention;
use crate::rules::record::{Record, RecordId, StoredCheckpoint};

/// The placeholder Flink reports for a checkpoint with no external path.
pub const NOT_ADDRESSABLE: &str = "<checkpoint-not-externally-addressable>";

/// Paths longer than this are not kept (a path that long is not one to restart from).
pub const PATH_MAX_BYTES: usize = 1024;

/// Restart samples kept in a record: enough to cover the restart window at
/// one sample a run.
pub const RESTART_SAMPLES_MAX: usize = 20;

/// The health rule's thresholds (README: "Job health").
/// `Default` gives the declared defaults: the impl is in `config::numeric`,
/// beside the declarations in `config::declared` (rules know no environment).
#[derive(Debug, Clone)]
pub struct HealthRules {
    /// `HEALTH_RESTARTS_MIN`: restarts within the window that make a restart loop.
    pub restarts_min: u64,
    /// `HEALTH_RESTART_WINDOW_SECONDS`.
    pub restart_window: Duration,
    /// `HEALTH_CHECKPOINT_AGE_FACTOR`: the last completed checkpoint may be
    /// this many checkpoint intervals old.
    pub checkpoint_age_factor: u32,
    /// `HEALTH_TASKS_GRACE_SECONDS`: how long tasks may be not all running,
    /// and a job may be starting.
    pub tasks_grace: Duration,
    /// `HEALTH_BUDGET`: running jobs looked at per run, oldest-checked first.
    pub budget: usize,
}

/// Task counts of a job, from `/jobs/overview` (free with the overview).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tasks {
    /// Every task of the job.
    pub total: u64,
    /// Tasks running.
    pub running: u64,
    /// Tasks finished (a bounded source's, say): not a problem.
    pub finished: u64,
}

/// A checkpoint or savepoint that can be pointed at.
#[derive(Debug, Clone, PartialEq)]
pub struct PointAt {
    /// Its id (savepoints and checkpoints share one counter).
    pub id: Option<u64>,
    /// Its external path (`file:/...`, `s3://...`).
    pub path: String,
    /// When it completed.
    pub at: Option<DateTime<Utc>>,
}

/// What `/jobs/{id}/checkpoints` (and its `/config`) say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoints {
    /// Checkpoints completed.
    pub completed: u64,
    /// Checkpoints failed.
    pub failed: u64,
    /// The id of the last completed checkpoint.
    pub last_completed_id: Option<u64>,
    /// When the last checkpoint completed, whether or not it has a path
    /// (checkpoints kept in the JobManager have none, yet can stall).
    pub last_completed_at: Option<DateTime<Utc>>,
    /// The last completed checkpoint, when it has a path.
    pub last_completed: Option<PointAt>,
    /// The last savepoint, when it has a path.
    pub last_savepoint: Option<PointAt>,
    /// What the job was restored from.
    pub restored_from: Option<String>,
    /// The checkpoint interval; `None` when the config was not read.
    pub interval_ms: Option<u64>,
    /// What Flink keeps when the job ends; `None` when unknown.
    pub retention: Option<Retention>,
}

impl Checkpoints {
    /// What the record keeps of these figures (its `checkpoint` field).
    pub fn stored(&self) -> StoredCheckpoint {
        StoredCheckpoint {
            last_completed_id: self.last_completed_id,
            last_completed_path: self.last_completed.as_ref().map(|p| p.path.clone()),
            last_completed_at: self.last_completed_at,
            last_savepoint_path: self.last_savepoint.as_ref().map(|p| p.path.clone()),
            last_savepoint_at: self.last_savepoint.as_ref().and_then(|p| p.at),
            restored_from_path: self.restored_from.clone(),
            completed: Some(self.completed),
            failed: Some(self.failed),
            interval_ms: self.interval_ms,
            retention: self.retention,
        }
    }
}

/// What one look at a job's health saw. `Err` is a request that got no
/// trustworthy answer (its text names it).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthFacts {
    /// `None`: the job has no checkpointing (Flink answered 404).
    pub checkpoints: Result<Option<Checkpoints>, Unobserved>,
    /// `None`: the metric has no value yet (it lags a few seconds).
    pub restarts: Result<Option<u64>, Unobserved>,
    /// Restarts of the submitting pod's container, when it was seen.
    pub submitter_restarts: Option<u32>,
}

/// A job as Flink's overview shows it, for the health rule.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView<'a> {
    /// Flink's state.
    pub state: &'a FlinkState,
    /// From the overview; `None` from a single-job answer without them.
    pub tasks: Option<Tasks>,
    /// When the job's state last changed (epoch ms).
    pub last_modification_ms: i64,
    /// When the job started (epoch ms; ≤ 0 when unknown).
    pub start_ms: i64,
}

/// The health rule's verdict for one look.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// HEALTHY, DEGRADED or UNKNOWN.
    pub health: Health,
    /// Why DEGRADED (or UNKNOWN); empty when healthy.
    pub reasons: Vec<HealthReason>,
    /// The checkpoint facts to keep, when read (`None`: not read, keep what is stored).
    pub checkpoints: Option<Option<Checkpoints>>,
    /// `numRestarts`, when read.
    pub restarts: Option<u64>,
    /// The restart samples to keep, newest last.
    pub samples: Vec<(DateTime<Utc>, u64)>,
}

/// Where a job that ended can resume, or why there is nowhere.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartPoint {
    /// The path of the newest savepoint or retained checkpoint.
    At(String),
    /// Why none is offered.
    None(String),
}

/// Assesses one look at a job; the record brings what earlier looks saw
/// (restart samples, failed checkpoints).
pub fn assess(
    record: &Record,
    job: &JobView<'_>,
    facts: &HealthFacts,
    now: DateTime<Utc>,
    rules: &HealthRules,
) -> Assessment {
    let mut reasons = Vec::new();
    let mut unknown = Vec::new();
    let changed = epoch(job.last_modification_ms).or(epoch(job.start_ms));
    let long_enough = changed.is_some_and(|t| now - t > rules.tasks_grace);
    // While a job starts, Flink answers placeholders (a 500 for its
    // checkpoints, no metrics): nothing to judge by but the time it takes.
    let starting = job.state.starting();
    reasons.extend(tasks_reason(job, long_enough, rules));
    let restarts = match &facts.restarts {
        Err(_) if starting => None,
        answer => answered(answer, &mut unknown).flatten(),
    };
    let samples = samples_with(record, restarts, now, rules);
    if let Some(grown) = restart_growth(&samples, epoch(job.start_ms), now, rules)
        && grown >= rules.restarts_min
    {
        reasons.push(reason(
            "restart_loop",
            format!(
                "{grown} restarts within {} (limit {})",
                human(rules.restart_window),
                rules.restarts_min
            ),
        ));
    }
    let checkpoints = match &facts.checkpoints {
        _ if starting => None,
        answer => answered(answer, &mut unknown),
    };
    if let Some(Some(c)) = &checkpoints
        && *job.state == FlinkState::Running
        && let Some(why) = checkpoints_failing(record, c, long_enough, now, rules)
    {
        reasons.push(reason("checkpoints_failing", why));
    }
    reasons.extend(submitter_reason(record, facts));
    let health = if !reasons.is_empty() {
        Health::Degraded
    } else if !unknown.is_empty() {
        reasons.push(reason("unobservable", unknown.join("; ")));
        Health::Unknown
    } else {
        Health::Healthy
    };
    Assessment {
        health,
        reasons,
        checkpoints,
        restarts,
        samples,
    }
}

/// A request's answer, or none, with what Flink would not tell noted.
fn answered<T: Clone>(answer: &Result<T, Unobserved>, unknown: &mut Vec<String>) -> Option<T> {
    match answer {
        Ok(v) => Some(v.clone()),
        Err(e) => {
            unknown.push(e.to_string());
            None
        }
    }
}

/// A job starting, or running with tasks not running, for longer than the grace.
fn tasks_reason(job: &JobView<'_>, long_enough: bool, rules: &HealthRules) -> Option<HealthReason> {
    let grace = human(rules.tasks_grace);
    if !long_enough {
        return None;
    }
    if job.state.starting() {
        return Some(reason(
            "stuck_starting",
            format!("the job is {} for longer than {grace}", job.state),
        ));
    }
    let t = job.tasks.filter(|_| *job.state == FlinkState::Running)?;
    let not_running = t.total.saturating_sub(t.running + t.finished);
    if t.running == 0 && t.total > t.finished {
        Some(reason(
            "stuck_starting",
            format!("RUNNING with no task running for longer than {grace}"),
        ))
    } else if not_running > 0 {
        Some(reason(
            "tasks_not_running",
            format!(
                "{not_running} of {} tasks not running for longer than {grace}",
                t.total
            ),
        ))
    } else {
        None
    }
}

/// Restarts of the submitting pod since the last look: a pod that
/// restarted once long ago is not restarting now.
fn submitter_reason(record: &Record, facts: &HealthFacts) -> Option<HealthReason> {
    let (now_seen, before) = (facts.submitter_restarts?, record.submitter_restarts?);
    (now_seen > before).then(|| {
        reason(
            "submitter_restarting",
            format!(
                "the submitting pod's container restarted {} times since the last look ({now_seen} in all)",
                now_seen - before
            ),
        )
    })
}

/// The stored samples within the restart window, with this look's count.
fn samples_with(
    record: &Record,
    restarts: Option<u64>,
    now: DateTime<Utc>,
    rules: &HealthRules,
) -> Vec<(DateTime<Utc>, u64)> {
    let start = now - rules.restart_window;
    let mut samples: Vec<_> = record
        .restart_samples
        .iter()
        .copied()
        .filter(|(t, _)| *t > start && *t < now)
        .collect();
    if let Some(r) = restarts {
        samples.push((now, r));
    }
    // Thinned from the middle: the oldest stays, so growth keeps its span.
    let excess = samples.len().saturating_sub(RESTART_SAMPLES_MAX);
    if excess > 0 {
        samples.drain(1..1 + excess);
    }
    samples
}

/// Restarts within the window up to the newest sample (this look's):
/// counted from the oldest sample in the window, or from zero when the job
/// started within the window (so a first look already sees a loop).
fn restart_growth(
    samples: &[(DateTime<Utc>, u64)],
    started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    rules: &HealthRules,
) -> Option<u64> {
    let (newest_at, newest) = *samples.last()?;
    if newest_at != now {
        return None;
    }
    if started.is_some_and(|s| s > now - rules.restart_window) {
        return Some(newest);
    }
    let (oldest_at, oldest) = samples[0];
    (oldest_at < newest_at).then(|| newest.saturating_sub(oldest))
}

/// Why checkpoints are failing, if they are: the failed count grew since the
/// last look, or the last completed checkpoint is too old for the interval.
fn checkpoints_failing(
    record: &Record,
    c: &Checkpoints,
    long_enough: bool,
    now: DateTime<Utc>,
    rules: &HealthRules,
) -> Option<String> {
    if let Some(before) = record.checkpoint_failed()
        && c.failed > before
    {
        return Some(format!(
            "{} checkpoints failed since the last look ({} in all)",
            c.failed - before,
            c.failed
        ));
    }
    let interval = c.interval_ms.filter(|i| *i > 0)?;
    let limit = Duration::milliseconds(
        i64::try_from(interval.saturating_mul(u64::from(rules.checkpoint_age_factor)))
            .unwrap_or(i64::MAX),
    );
    let limit = limit.max(rules.tasks_grace);
    let age = match c.last_completed_at {
        Some(at) => now - at,
        // No checkpoint completed yet: judged only once the job has had time
        // (the first trigger often fails before every task runs).
        None if long_enough && c.completed == 0 && c.failed > 0 => {
            return Some(format!("no checkpoint completed, {} failed", c.failed));
        }
        None => return None,
    };
    (age > limit).then(|| {
        format!(
            "the last completed checkpoint is {} old (interval {}, limit {})",
            human(age),
            human(Duration::milliseconds(interval as i64)),
            human(limit)
        )
    })
}

/// Which jobs one run looks at: every job Flink reports ended whose record
/// is not final yet (for its restart point), and, within the run's budget,
/// running jobs: those never looked at first, then the longest unchecked.
/// Chosen once a run, so the budget is the run's, not a chunk's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthLooks {
    due: HashSet<RecordId>,
    budget_left: usize,
}

impl HealthLooks {
    /// The budget's picks among `records`. `runs` says whether Flink shows
    /// the record's job not ended: a job that has just ended is looked at
    /// anyway, outside the budget, so the budget is spent on running jobs.
    pub fn choose(records: &[Record], budget: usize, runs: impl Fn(&Record) -> bool) -> Self {
        let mut running: Vec<&Record> = records
            .iter()
            .filter(|r| !r.status.is_final() && r.flink_job_id.is_some() && runs(r))
            .collect();
        running.sort_by_key(|r| r.health_checked_at);
        HealthLooks {
            due: running
                .into_iter()
                .take(budget)
                .map(|r| r.oid.clone())
                .collect(),
            budget_left: budget,
        }
    }

    /// Whether the record's job, in Flink's `state`, gets a look now; a
    /// running job's look is taken from the budget.
    pub fn take(&mut self, record: &Record, state: &FlinkState) -> bool {
        if record.status.is_final() {
            return false;
        }
        if state.ended() {
            return true;
        }
        if self.budget_left == 0 || !self.due.contains(&record.oid) {
            return false;
        }
        self.budget_left -= 1;
        true
    }
}

/// How long after a job's end Flink's answers about it settle (its REST
/// caches hold figures for about 3 s).
pub const SETTLE_MS: i64 = 4000;

/// How long to wait before asking about a job that ended at `end_ms`, if it
/// ended less than [`SETTLE_MS`] ago.
pub fn settle_wait(end_ms: i64, now: DateTime<Utc>) -> Option<std::time::Duration> {
    let left = end_ms.checked_add(SETTLE_MS)? - now.timestamp_millis();
    (end_ms > 0 && left > 0).then(|| std::time::Duration::from_millis(left.min(SETTLE_MS) as u64))
}

/// The checkpoint config a record already holds, so it is not asked again.
pub fn stored_config(record: &Record) -> Option<Checkpoints> {
    let c = record.checkpoint.as_ref()?;
    Some(Checkpoints {
        interval_ms: Some(c.interval_ms?),
        retention: c.retention,
        ..Default::default()
    })
}

/// Where a job that just ended can resume: the newer of its last savepoint
/// and its last completed checkpoint, the checkpoint only when Flink's
/// retention keeps it for the way the job ended.
pub fn restart_point(state: &FlinkState, checkpoints: Option<&Checkpoints>) -> RestartPoint {
    let Some(c) = checkpoints else {
        return RestartPoint::None("the job had no checkpointing and no savepoint".to_string());
    };
    let kept = c.retention.is_some_and(|r| r.keeps(state));
    let checkpoint = c.last_completed.as_ref().filter(|_| kept);
    let newest = match (checkpoint, c.last_savepoint.as_ref()) {
        (Some(ck), Some(sp)) => Some(match (ck.id, sp.id) {
            (Some(a), Some(b)) => {
                if b >= a {
                    sp
                } else {
                    ck
                }
            }
            _ => {
                if sp.at >= ck.at {
                    sp
                } else {
                    ck
                }
            }
        }),
        (ck, sp) => ck.or(sp),
    };
    if let Some(p) = newest {
        return RestartPoint::At(p.path.clone());
    }
    let had_checkpoint = c.last_completed_id.is_some() || c.last_completed.is_some();
    let why = match c.retention {
        _ if !had_checkpoint => "no checkpoint or savepoint completed".to_string(),
        None => "Flink's checkpoint retention is unknown, so no checkpoint is offered, and there is no savepoint".to_string(),
        Some(r) if !kept => format!(
            "Flink deletes the job's checkpoints when it ends {state} (retention {}) and there is no savepoint",
            r.as_str()
        ),
        Some(_) => "the last checkpoint has no external path (or Flink discarded it), and there is no savepoint".to_string(),
    };
    RestartPoint::None(why)
}

/// A path as a restart point: Flink's placeholder, an empty or a huge
/// value is none.
pub fn usable_path(path: &str) -> Option<String> {
    let path = path.trim();
    (!path.is_empty() && path != NOT_ADDRESSABLE && path.len() <= PATH_MAX_BYTES)
        .then(|| path.to_string())
}

fn reason(code: &'static str, message: String) -> HealthReason {
    HealthReason {
        code: code.to_string(),
        message: truncate(&message, 300).to_string(),
    }
}

fn epoch(ms: i64) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    (ms > 0)
        .then(|| Utc.timestamp_millis_opt(ms).single())
        .flatten()
}
