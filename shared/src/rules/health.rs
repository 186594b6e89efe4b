//! The health rule: from what Flink says of a job's checkpoints, restarts and
//! tasks (and whether its submitting pod restarts), whether the job is
//! healthy, and where it could be restarted from. Pure: the run fetches the
//! facts ([`HealthFacts`]) and [`crate::rules::plan::decide`] turns the
//! assessment into changes. Health never changes a record's status.

use chrono::{DateTime, Duration, Utc};
use mongodb::bson::{Bson, Document};

use std::collections::HashSet;

use crate::rules::model::{
    Health, HealthReason, Record, flink_state_ended, human, to_bson_date, truncate,
};

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

/// What Flink keeps of a job's checkpoints once the job ends
/// (`/checkpoints/config` `externalization`; Flink's retention policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Not externalized: deleted whatever the end (Flink's default).
    NotRetained,
    /// Retained on cancellation (and on failure); deleted when finished.
    OnCancellation,
    /// Retained on failure only.
    OnFailure,
}

impl Retention {
    /// As stored in `checkpoint.retention`.
    pub fn as_str(self) -> &'static str {
        match self {
            Retention::NotRetained => "not_retained",
            Retention::OnCancellation => "retain_on_cancellation",
            Retention::OnFailure => "retain_on_failure",
        }
    }

    /// A stored value.
    pub fn parse(s: &str) -> Option<Retention> {
        [
            Retention::NotRetained,
            Retention::OnCancellation,
            Retention::OnFailure,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// From `/checkpoints/config`'s `externalization` flags.
    pub fn from_flags(enabled: bool, delete_on_cancellation: bool) -> Retention {
        match (enabled, delete_on_cancellation) {
            (false, _) => Retention::NotRetained,
            (true, false) => Retention::OnCancellation,
            (true, true) => Retention::OnFailure,
        }
    }

    /// Whether the last checkpoint survives a job that ended in `state`.
    pub fn keeps(self, state: &str) -> bool {
        matches!(
            (self, state),
            (Retention::OnCancellation, "CANCELED" | "FAILED") | (Retention::OnFailure, "FAILED")
        )
    }
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
    /// The record's `checkpoint` field.
    pub fn to_document(&self) -> Document {
        let mut d = Document::new();
        let count = |n: u64| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX));
        if let Some(id) = self.last_completed_id {
            d.insert("last_completed_id", count(id));
        }
        if let Some(p) = &self.last_completed {
            d.insert("last_completed_path", p.path.as_str());
        }
        if let Some(at) = self.last_completed_at {
            d.insert("last_completed_at", to_bson_date(at));
        }
        if let Some(p) = &self.last_savepoint {
            d.insert("last_savepoint_path", p.path.as_str());
            if let Some(at) = p.at {
                d.insert("last_savepoint_at", to_bson_date(at));
            }
        }
        if let Some(p) = &self.restored_from {
            d.insert("restored_from_path", p.as_str());
        }
        d.insert("completed", count(self.completed));
        d.insert("failed", count(self.failed));
        if let Some(i) = self.interval_ms {
            d.insert("interval_ms", count(i));
        }
        if let Some(r) = self.retention {
            d.insert("retention", r.as_str());
        }
        d
    }
}

/// What one look at a job's health saw. `Err` is a request that got no
/// trustworthy answer (its text names it).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthFacts {
    /// `None`: the job has no checkpointing (Flink answered 404).
    pub checkpoints: Result<Option<Checkpoints>, String>,
    /// `None`: the metric has no value yet (it lags a few seconds).
    pub restarts: Result<Option<u64>, String>,
    /// Restarts of the submitting pod's container, when it was seen.
    pub submitter_restarts: Option<u32>,
}

/// A job as Flink's overview shows it, for the health rule.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView<'a> {
    /// Flink's state.
    pub state: &'a str,
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

/// Flink states in which a job is starting, not yet running its tasks.
const STARTING: [&str; 2] = ["CREATED", "INITIALIZING"];

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
    let starting = STARTING.contains(&job.state);
    let grace = human(rules.tasks_grace);
    if STARTING.contains(&job.state) && long_enough {
        reasons.push(reason(
            "stuck_starting",
            format!("the job is {} for longer than {grace}", job.state),
        ));
    } else if job.state == "RUNNING"
        && let Some(t) = job.tasks
        && long_enough
    {
        let not_running = t.total.saturating_sub(t.running + t.finished);
        if t.running == 0 && t.total > t.finished {
            reasons.push(reason(
                "stuck_starting",
                format!("RUNNING with no task running for longer than {grace}"),
            ));
        } else if not_running > 0 {
            reasons.push(reason(
                "tasks_not_running",
                format!(
                    "{not_running} of {} tasks not running for longer than {grace}",
                    t.total
                ),
            ));
        }
    }
    let restarts = match &facts.restarts {
        Ok(r) => *r,
        Err(_) if starting => None,
        Err(e) => {
            unknown.push(e.clone());
            None
        }
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
        Ok(c) => Some(c.clone()),
        Err(e) => {
            unknown.push(e.clone());
            None
        }
    };
    if let Some(Some(c)) = &checkpoints
        && job.state == "RUNNING"
        && let Some(why) = checkpoints_failing(record, c, long_enough, now, rules)
    {
        reasons.push(reason("checkpoints_failing", why));
    }
    // Restarts since the last look: a pod that restarted once long ago is
    // not restarting now.
    if let (Some(now_seen), Some(before)) = (facts.submitter_restarts, record.submitter_restarts)
        && now_seen > before
    {
        reasons.push(reason(
            "submitter_restarting",
            format!(
                "the submitting pod's container restarted {} times since the last look ({now_seen} in all)",
                now_seen - before
            ),
        ));
    }
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
    if let Some(before) = record.checkpoint_failed
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

/// The records with a running (or starting) job that one run looks at,
/// within `budget`: those never looked at first, then the longest unchecked.
/// `runs` says whether Flink shows the record's job not ended: a job that
/// has just ended is looked at anyway, outside the budget, so the budget's
/// picks are spent on jobs still running.
pub fn due(records: &[Record], budget: usize, runs: impl Fn(&Record) -> bool) -> HashSet<String> {
    let mut running: Vec<&Record> = records
        .iter()
        .filter(|r| !r.status.is_final() && r.flink_job_id.is_some() && runs(r))
        .collect();
    running.sort_by_key(|r| r.health_checked_at);
    running
        .into_iter()
        .take(budget)
        .map(|r| r.job_id.clone())
        .collect()
}

/// Whether a record's job gets a health look this run: every job Flink
/// reports ended whose record is not final yet (its restart point), and a
/// job the budget picked while Flink does not report it ended.
pub fn needs_look(record: &Record, flink_state: &str, due: &HashSet<String>) -> bool {
    if record.status.is_final() {
        return false;
    }
    let ended = flink_state_ended(flink_state);
    ended || due.contains(&record.job_id)
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
    let c = record.checkpoint.as_ref()?.to_document().ok()?;
    let interval = crate::rules::model::whole(c.get("interval_ms"))?;
    Some(Checkpoints {
        interval_ms: Some(interval),
        retention: c.get_str("retention").ok().and_then(Retention::parse),
        ..Default::default()
    })
}

/// Where a job that just ended can resume: the newer of its last savepoint
/// and its last completed checkpoint, the checkpoint only when Flink's
/// retention keeps it for the way the job ended.
pub fn restart_point(state: &str, checkpoints: Option<&Checkpoints>) -> RestartPoint {
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
