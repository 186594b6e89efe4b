//! The cleanup rule: which of the product's Kubernetes Jobs may be deleted,
//! from when each ended and what its record still waits for. Pure: the run
//! ([`crate::runs::cleanup`]) lists, looks up and deletes.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::rules::model::Status;

/// A Kubernetes Job as cleanup sees it: its name and when it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd {
    /// The Job's name.
    pub name: String,
    /// When it finished: `completionTime` of a complete Job, the `Failed`
    /// condition's `lastTransitionTime` of a failed one; `None` if not finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What cleanup needs to know of the record submitted as that Job.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFacts {
    /// The record's job_id.
    pub job_id: String,
    /// Its status; `None` when it is not one sync knows.
    pub status: Option<Status>,
    /// It has its Flink JobID (the pod log is no longer needed).
    pub has_flink_job_id: bool,
}

/// Why a Job is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// Running, suspended, or otherwise not finished.
    NotFinished,
    /// Finished less than the minimum age ago.
    TooRecent,
    /// Its record still waits for sync to read the JobID from the pod log.
    EvidenceNeeded,
}

/// What to do with one Job.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Delete the Job.
    Delete {
        /// Deleted although its record still waited for its JobID: past the hard maximum age.
        evidence_lost: Option<String>,
    },
    /// Keep it, and why.
    Keep(KeepReason),
}

/// How old a finished Job must be before it goes.
/// `Default` gives the declared defaults: the impl is in `config::numeric`,
/// beside the declarations in `config::declared` (rules know no environment).
#[derive(Debug, Clone)]
pub struct CleanupRules {
    /// `CLEANUP_MIN_AGE_HOURS`: no Job younger than this is deleted.
    pub min_age: Duration,
    /// `CLEANUP_MAX_EVIDENCE_AGE_HOURS`: past this, a Job goes even though
    /// its record never got its JobID.
    pub max_evidence_age: Duration,
}

/// The rule for one Job.
pub fn decide(
    job: &JobEnd,
    record: Option<&RecordFacts>,
    now: DateTime<Utc>,
    rules: &CleanupRules,
) -> Decision {
    let Some(finished_at) = job.finished_at else {
        return Decision::Keep(KeepReason::NotFinished);
    };
    let age = now - finished_at;
    if age < rules.min_age {
        return Decision::Keep(KeepReason::TooRecent);
    }
    let waiting = record.filter(|r| !r.has_flink_job_id && !r.status.is_some_and(Status::is_final));
    match waiting {
        None => Decision::Delete {
            evidence_lost: None,
        },
        Some(_) if age < rules.max_evidence_age => Decision::Keep(KeepReason::EvidenceNeeded),
        Some(r) => Decision::Delete {
            evidence_lost: Some(r.job_id.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn job(finished_hours_ago: Option<i64>) -> JobEnd {
        JobEnd {
            name: "j".into(),
            finished_at: finished_hours_ago.map(|h| now() - Duration::hours(h)),
        }
    }

    fn record(status: Status, has_id: bool) -> RecordFacts {
        RecordFacts {
            job_id: "j".into(),
            status: Some(status),
            has_flink_job_id: has_id,
        }
    }

    #[test]
    fn cleanup_rule_table() {
        use Decision::*;
        use KeepReason::*;
        let r = CleanupRules::default();
        let rows: Vec<(JobEnd, Option<RecordFacts>, Decision)> = vec![
            (job(None), None, Keep(NotFinished)),
            (
                job(None),
                Some(record(Status::Finished, true)),
                Keep(NotFinished),
            ),
            (job(Some(23)), None, Keep(TooRecent)),
            (
                job(Some(25)),
                None,
                Delete {
                    evidence_lost: None,
                },
            ),
            (
                job(Some(25)),
                Some(record(Status::Running, true)),
                Delete {
                    evidence_lost: None,
                },
            ),
            (
                job(Some(25)),
                Some(record(Status::Failed, false)),
                Delete {
                    evidence_lost: None,
                },
            ),
            (
                job(Some(25)),
                Some(record(Status::Created, false)),
                Keep(EvidenceNeeded),
            ),
            (
                job(Some(24 * 7 - 1)),
                Some(record(Status::Suspended, false)),
                Keep(EvidenceNeeded),
            ),
            (
                job(Some(24 * 7 + 1)),
                Some(record(Status::Created, false)),
                Delete {
                    evidence_lost: Some("j".into()),
                },
            ),
            (
                job(Some(48)),
                Some(RecordFacts {
                    job_id: "j".into(),
                    status: None,
                    has_flink_job_id: false,
                }),
                Keep(EvidenceNeeded),
            ),
        ];
        for (i, (j, rec, want)) in rows.into_iter().enumerate() {
            assert_eq!(decide(&j, rec.as_ref(), now(), &r), want, "row {i}");
        }
    }
}
