//! The record as sync sees it: the facts of one `flink_jobs` document that
//! sync decides on, in the rules' own types. The store adapter reads a
//! document into a [`Record`] (strict about what sync relies on, tolerant of
//! everything else, which it never rewrites); fields sync does not own are
//! not kept here, and so can never be written back.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

use crate::rules::model::{ClusterRef, FlinkJobId, FlinkState, Health, Status, truncate};

/// A record's `_id`, in the types the submitting system writes (an
/// ObjectId, a number or a string), any other kept as the store encoded it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordId {
    /// An ObjectId's twelve bytes (what the submitting system writes).
    ObjectId([u8; 12]),
    /// A 32-bit integer `_id`.
    Int32(i32),
    /// A 64-bit integer `_id`.
    Int64(i64),
    /// A string `_id`.
    String(String),
    /// An `_id` of any other type: its encoding, which only the store reads.
    Other(Box<[u8]>),
}

impl RecordId {
    /// A total order in MongoDB's own order across the types an `_id` takes
    /// here (numbers, then strings, then ObjectIds); other types sort first.
    pub fn sort_key(&self) -> (u8, i64, &[u8]) {
        match self {
            RecordId::Other(b) => (0, 0, b),
            RecordId::Int32(n) => (1, i64::from(*n), &[]),
            RecordId::Int64(n) => (1, *n, &[]),
            RecordId::String(s) => (2, 0, s.as_bytes()),
            RecordId::ObjectId(o) => (3, 0, o),
        }
    }

    /// When an ObjectId was made (its first four bytes); `None` for other ids.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        match self {
            RecordId::ObjectId(o) => {
                let secs = u32::from_be_bytes([o[0], o[1], o[2], o[3]]);
                Utc.timestamp_opt(i64::from(secs), 0).single()
            }
            _ => None,
        }
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordId::ObjectId(o) => o.iter().try_for_each(|b| write!(f, "{b:02x}")),
            RecordId::Int32(n) => write!(f, "{n}"),
            RecordId::Int64(n) => write!(f, "{n}"),
            RecordId::String(s) => write!(f, "{:?}", truncate(s, 80)),
            RecordId::Other(_) => f.write_str("(an _id of another type)"),
        }
    }
}

/// Why a document could not be taken as a record. Named by `job_id` when it has
/// a string one, else by `_id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {id}: {problem}")]
pub struct MalformedRecord {
    /// `job_id "..."`, or `_id ...` without a string job_id.
    pub id: String,
    /// What is wrong, naming the field.
    pub problem: String,
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
    pub fn keeps(self, state: &FlinkState) -> bool {
        matches!(
            (self, state),
            (
                Retention::OnCancellation,
                FlinkState::Canceled | FlinkState::Failed
            ) | (Retention::OnFailure, FlinkState::Failed)
        )
    }
}

/// A record's `checkpoint` field: what the last look at the job's
/// checkpoints found, as sync stores it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredCheckpoint {
    /// `last_completed_id`.
    pub last_completed_id: Option<u64>,
    /// `last_completed_path`.
    pub last_completed_path: Option<String>,
    /// `last_completed_at`.
    pub last_completed_at: Option<DateTime<Utc>>,
    /// `last_savepoint_path`.
    pub last_savepoint_path: Option<String>,
    /// `last_savepoint_at`.
    pub last_savepoint_at: Option<DateTime<Utc>>,
    /// `restored_from_path`.
    pub restored_from_path: Option<String>,
    /// `completed`: checkpoints completed.
    pub completed: Option<u64>,
    /// `failed`: checkpoints failed.
    pub failed: Option<u64>,
    /// `interval_ms`: the checkpoint interval, once read.
    pub interval_ms: Option<u64>,
    /// `retention`: what Flink keeps when the job ends, once read.
    pub retention: Option<Retention>,
}

/// What sync reads of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `_id`: what a run keys the record by (`job_id` is only meant to be unique).
    pub oid: RecordId,
    /// `job_id`: the submission's id.
    pub job_id: String,
    /// `status`.
    pub status: Status,
    /// `flink_job_id`, once read from the pod log.
    pub flink_job_id: Option<FlinkJobId>,
    /// `submitted_at`.
    pub submitted_at: Option<DateTime<Utc>>,
    /// `k8s_job_name`; the job_id when absent.
    pub k8s_job_name: Option<String>,
    /// `k8s_namespace`; `K8S_NAMESPACE` when absent.
    pub k8s_namespace: Option<String>,
    /// `flink_state`: Flink's own word for the job's state.
    pub flink_state: Option<FlinkState>,
    /// `flink_job_ids`: every JobID the pod log announced (the first is
    /// `flink_job_id`); entries that are not JobIDs are dropped.
    pub flink_job_ids: Vec<FlinkJobId>,
    /// `flink_jobs_state`: each job's Flink state (or `NOT_FOUND`), by
    /// JobID, for a record of several jobs.
    pub flink_jobs_state: Option<BTreeMap<String, String>>,
    /// `flink_cluster`: the cluster the job runs on.
    pub flink_cluster: ClusterRef,
    /// `start_time`, from Flink.
    pub start_time: Option<DateTime<Utc>>,
    /// `end_time`, from Flink.
    pub end_time: Option<DateTime<Utc>>,
    /// `duration` in seconds, from Flink's times.
    pub duration: Option<f64>,
    /// `status_reason`: why the status is what it is.
    pub status_reason: Option<String>,
    /// `sync_error`: why the last run could not observe the record.
    pub sync_error: Option<String>,
    /// `flink_missing_count`: runs in a row Flink did not know the JobID.
    pub flink_missing_count: u32,
    /// `None` for a record sync has never written.
    pub revision: Option<i64>,
    /// `flink_job_id` was stored as `""` rather than null or absent: the
    /// conditional write must match what is stored.
    pub flink_job_id_empty: bool,
    /// `health`, as last judged.
    pub health: Option<Health>,
    /// The codes of `health_reasons`, as last judged.
    pub health_codes: Vec<String>,
    /// `health_checked_at`: the last look at the job's health.
    pub health_checked_at: Option<DateTime<Utc>>,
    /// `restarts`: `numRestarts` as last seen.
    pub restarts: Option<u64>,
    /// `restart_samples`: `[at, restarts]` pairs over the restart window.
    pub restart_samples: Vec<(DateTime<Utc>, u64)>,
    /// `submitter_restarts`: the submitting pod's container restarts, as last seen.
    pub submitter_restarts: Option<u32>,
    /// `checkpoint`, as stored (boxed: most records a run holds have none).
    pub checkpoint: Option<Box<StoredCheckpoint>>,
    /// `restart_point`.
    pub restart_point: Option<String>,
}

impl Record {
    /// A record as the submitting system writes it: `job_id` and `status`,
    /// nothing sync has written yet (tests build on it field by field).
    pub fn new(oid: RecordId, job_id: impl Into<String>, status: Status) -> Record {
        Record {
            oid,
            job_id: job_id.into(),
            status,
            flink_job_id: None,
            submitted_at: None,
            k8s_job_name: None,
            k8s_namespace: None,
            flink_state: None,
            flink_job_ids: Vec::new(),
            flink_jobs_state: None,
            flink_cluster: ClusterRef::Default,
            start_time: None,
            end_time: None,
            duration: None,
            status_reason: None,
            sync_error: None,
            flink_missing_count: 0,
            revision: None,
            flink_job_id_empty: false,
            health: None,
            health_codes: Vec::new(),
            health_checked_at: None,
            restarts: None,
            restart_samples: Vec::new(),
            submitter_restarts: None,
            checkpoint: None,
            restart_point: None,
        }
    }

    /// The Kubernetes Job this record was submitted as.
    pub fn k8s_job_name(&self) -> &str {
        self.k8s_job_name.as_deref().unwrap_or(&self.job_id)
    }

    /// The namespace of its Job: its own, else `default`.
    pub fn namespace<'a>(&'a self, default: &'a str) -> &'a str {
        self.k8s_namespace.as_deref().unwrap_or(default)
    }

    /// When the record was submitted: `submitted_at`, else the creation time an
    /// ObjectId `_id` carries.
    pub fn submitted(&self) -> Option<DateTime<Utc>> {
        self.submitted_at.or_else(|| self.oid.created_at())
    }

    /// `checkpoint.failed` as last seen.
    pub fn checkpoint_failed(&self) -> Option<u64> {
        self.checkpoint.as_ref().and_then(|c| c.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submitted_falls_back_to_the_object_id_time() {
        let mut oid = [0u8; 12];
        oid[..4].copy_from_slice(&1_700_000_000u32.to_be_bytes());
        let r = Record::new(RecordId::ObjectId(oid), "j", Status::Created);
        assert_eq!(r.submitted().map(|d| d.timestamp()), Some(1_700_000_000));
        let r = Record::new(RecordId::String("x".into()), "j", Status::Created);
        assert_eq!(r.submitted(), None);
    }

    #[test]
    fn record_ids_sort_numbers_then_strings_then_object_ids() {
        let mut ids = vec![
            RecordId::ObjectId([0; 12]),
            RecordId::String("b".into()),
            RecordId::Int64(7),
            RecordId::String("a".into()),
            RecordId::Int32(3),
        ];
        ids.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        assert_eq!(
            ids,
            [
                RecordId::Int32(3),
                RecordId::Int64(7),
                RecordId::String("a".into()),
                RecordId::String("b".into()),
                RecordId::ObjectId([0; 12]),
            ]
        );
    }
}
