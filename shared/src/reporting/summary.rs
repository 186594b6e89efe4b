//! What one sync run reports: the answer the handler returns and logs, the
//! run's metrics are computed from ([`crate::reporting::metrics`]) and the runs
//! collection records. Plain data, so that reporting depends on no run.

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::rules::model::Untracked;
use crate::rules::model::{Status, System};

/// Most records a dry run lists in `would_change`.
pub const WOULD_CHANGE_MAX: usize = 100;

/// One record a dry run would change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WouldChange {
    /// The record.
    pub job_id: String,
    /// Its status now.
    pub from: Status,
    /// The same as `from` when only other fields would change.
    pub to: Status,
    /// Why, in words ([`crate::rules::plan::Plan::reason`]).
    pub reason: String,
}

/// A record this run could not observe or write: the system that failed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordError {
    /// The record.
    pub job_id: String,
    /// The system that failed.
    pub system: System,
    /// What failed, as stored in `sync_error`.
    pub error: String,
}

/// A record this run could not read (named by `job_id`, else `_id`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MalformedReport {
    /// The record's job_id, or its `_id` without one.
    pub job_id: String,
    /// What is wrong with it.
    pub error: String,
}

/// A JobID more than one record claims.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DuplicateJobId {
    /// The JobID.
    pub flink_job_id: String,
    /// The records claiming it.
    pub job_ids: Vec<String>,
}

/// Untracked jobs listed in a run's answer, at most.
pub const UNTRACKED_MAX: usize = 100;

/// The JSON summary the handler returns and logs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// This run's id (the runs collection's `_id`).
    pub run_id: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Non-final records read and decided.
    pub records_checked: usize,
    /// Records written (or, in a dry run, to be written).
    pub records_changed: usize,
    /// `"FROM->TO"` → count.
    pub transitions: BTreeMap<String, usize>,
    /// Records another writer changed meanwhile: left alone.
    pub conflicts: usize,
    /// Records that could not be read as records: skipped.
    pub malformed: Vec<MalformedReport>,
    /// Records a system failed for this run.
    pub errors: Vec<RecordError>,
    /// Requested job_ids that no record has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
    /// Requested job_ids whose record is already final (sync never changes those).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_final: Vec<String>,
    /// A dry run's answer: the records it would change (at most
    /// [`WOULD_CHANGE_MAX`]; `records_changed` counts them all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_change: Vec<WouldChange>,
    /// Every record was reached (no deadline cut the run short).
    pub complete: bool,
    /// Records left for the next run because this one neared its deadline.
    pub records_deferred: usize,
    /// State-change events EventBridge accepted in this run (this run's and
    /// earlier runs' leftovers), and those still pending.
    pub events_published: usize,
    /// Events left pending for the next run.
    pub events_pending: usize,
    /// Why events stayed pending.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_errors: Vec<String>,
    /// Jobs whose health was looked at (running jobs within the budget,
    /// and jobs that just ended).
    pub health_checked: usize,
    /// Health verdicts that changed (each recorded and published once).
    pub health_changes: usize,
    /// Jobs still running after this run whose health is DEGRADED (as
    /// stored, or as this run's looks found it).
    pub degraded_jobs: usize,
    /// Those jobs by reason code (a job with two reasons counts in both).
    pub degraded: BTreeMap<String, usize>,
    /// Jobs the clusters run (not final) that no record claims; counted
    /// by full runs only.
    pub untracked_count: usize,
    /// The first [`UNTRACKED_MAX`] of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<Untracked>,
    /// JobIDs claimed by more than one of the records read, and by which.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicate_job_ids: Vec<DuplicateJobId>,
    /// The run's wall time.
    pub elapsed_ms: u64,
    /// Where the run's time went, so a slow run says which side was slow.
    pub phases_ms: Phases,
}

/// Milliseconds spent in each phase of a run (summed over its chunks).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Phases {
    /// Reading the non-final records.
    pub read: u64,
    /// Job and pod lists and log reads.
    pub kubernetes: u64,
    /// Overview, lookups of absent JobIDs, root causes.
    pub flink: u64,
    /// Deciding and the conditional writes.
    pub write: u64,
    /// Publishing the events (the run's own record is written outside the phases).
    pub finish: u64,
}
