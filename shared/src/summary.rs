//! What one sync run reports: the answer the handler returns and logs, the
//! run's metrics are computed from ([`crate::metrics`]) and the runs
//! collection records. Plain data, so that reporting depends on no run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Status, System};

/// Most records a dry run lists in `would_change`.
pub const WOULD_CHANGE_MAX: usize = 100;

/// One record a dry run would change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WouldChange {
    pub job_id: String,
    pub from: Status,
    /// The same as `from` when only other fields would change.
    pub to: Status,
    pub reason: String,
}

/// A record this run could not observe or write: the system that failed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordError {
    pub job_id: String,
    pub system: System,
    pub error: String,
}

/// A record this run could not read (named by `job_id`, else `_id`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MalformedReport {
    pub job_id: String,
    pub error: String,
}

/// The JSON summary the handler returns and logs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub run_id: String,
    pub dry_run: bool,
    pub records_checked: usize,
    pub records_changed: usize,
    /// `"FROM->TO"` → count.
    pub transitions: BTreeMap<String, usize>,
    pub conflicts: usize,
    pub malformed: Vec<MalformedReport>,
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
    pub complete: bool,
    /// Records left for the next run because this one neared its deadline.
    pub records_deferred: usize,
    /// State-change events EventBridge accepted in this run (this run's and
    /// earlier runs' leftovers), and those still pending.
    pub events_published: usize,
    pub events_pending: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_errors: Vec<String>,
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
    /// Publishing events and recording the run.
    pub finish: u64,
}
