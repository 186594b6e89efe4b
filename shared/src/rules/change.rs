//! What the sync rule decides: a [`Plan`] of [`Change`]s to the fields sync
//! owns, and how a plan reads (its transition, its reason in words, whether
//! it is only a look's bookkeeping).

use chrono::{DateTime, Utc};

use crate::rules::health::{Checkpoints, RestartPoint};
use crate::rules::model::{FlinkJobId, FlinkState, Health, HealthReason, Status, System, truncate};

/// Longest [`Plan::reason`], in bytes: a dry run lists up to a hundred.
pub const REASON_SUMMARY_MAX_BYTES: usize = 300;

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
    FlinkState(FlinkState),
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
    /// What this run could not observe of the record, whether or not the
    /// stored `sync_error` already says so: every run reports it, only a
    /// new text is written.
    pub error: Option<SyncError>,
    /// A Flink state the rule does not know (logged; the status is left as it is).
    pub unknown_flink_state: Option<FlinkState>,
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
