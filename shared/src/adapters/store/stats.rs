//! The monitoring queries of the design note, as MongoDB aggregations (the
//! server does the counting and the sorting; nothing is loaded beyond the
//! rows listed): status distribution, duration of FINISHED jobs, failure
//! rate, the degraded jobs with their reasons, and the failed and cancelled
//! jobs with their restart points; optionally within a window on
//! `submitted_at`. [`crate::reporting::stats`] renders them.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};
use serde::Serialize;

use crate::adapters::store::record::{parse_date, to_bson_date};
use crate::adapters::store::records::Records;
use crate::error::Error;
use crate::rules::model::Status;

/// Rows a list shows at most; its `total` counts them all.
pub const LIST_MAX: usize = 100;

/// A window on `submitted_at`: `[since, until)`.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Submitted at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Submitted before this.
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    fn filter(&self) -> Document {
        let mut range = Document::new();
        if let Some(s) = self.since {
            range.insert("$gte", to_bson_date(s));
        }
        if let Some(u) = self.until {
            range.insert("$lt", to_bson_date(u));
        }
        if range.is_empty() {
            doc! {}
        } else {
            doc! {"submitted_at": range}
        }
    }
}

/// Durations of FINISHED jobs, in seconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Durations {
    /// FINISHED records with a duration.
    pub count: i64,
    /// Their mean.
    pub avg_seconds: Option<f64>,
    /// The shortest.
    pub min_seconds: Option<f64>,
    /// The longest.
    pub max_seconds: Option<f64>,
}

/// Records of one status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusCount {
    /// The status (`(none)` for records without one).
    pub status: String,
    /// How many.
    pub count: i64,
}

/// Up to [`LIST_MAX`] rows of a list, and how many rows it has in all.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Listed<T> {
    /// Every matching record in the window.
    pub total: i64,
    /// The first [`LIST_MAX`] of them, in the list's order.
    pub jobs: Vec<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            total: 0,
            jobs: Vec::new(),
        }
    }
}

/// One reason a job is degraded (`health_reasons[]`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reason {
    /// `restart_loop`, `checkpoints_failing`, `tasks_not_running`,
    /// `stuck_starting` or `submitter_restarting`.
    pub code: String,
    /// What sync saw, in words.
    pub message: String,
}

/// A non-final record whose job sync last judged DEGRADED.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DegradedJob {
    /// The record's `job_id`.
    pub job_id: String,
    /// The Flink JobID, when the record has one.
    pub flink_job_id: Option<String>,
    /// The record's status (CREATED, RUNNING or SUSPENDED).
    pub status: String,
    /// Why, in the order sync stored them.
    pub reasons: Vec<Reason>,
    /// When sync last looked at the job's health.
    pub health_checked_at: Option<DateTime<Utc>>,
}

/// A FAILED or CANCELLED record and where its job could resume.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EndedJob {
    /// The record's `job_id`.
    pub job_id: String,
    /// FAILED or CANCELLED.
    pub status: String,
    /// The path to resume from (`restart_point`), when there is one.
    pub restart_point: Option<String>,
    /// Why there is none (`restart_point_reason`); both are absent for a
    /// job whose end sync did not look at (records from before job health).
    pub restart_point_reason: Option<String>,
    /// When the job ended, when known.
    pub end_time: Option<DateTime<Utc>>,
}

/// The monitoring figures and lists.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// Most frequent first.
    pub by_status: Vec<StatusCount>,
    /// Durations of FINISHED jobs.
    pub finished_durations: Durations,
    /// Records in the window, whatever their status.
    pub total: i64,
    /// Of those, FAILED.
    pub failed: i64,
    /// Percent of all records in the window that are FAILED.
    pub failure_rate_percent: Option<f64>,
    /// Non-final records with `health: "DEGRADED"`, the most recently
    /// checked first.
    pub degraded: Listed<DegradedJob>,
    /// FAILED and CANCELLED records with their restart points, the most
    /// recently ended first (records without `end_time` last).
    pub failed_or_cancelled: Listed<EndedJob>,
}

/// `db.flink_jobs.aggregate([{ $group: { _id: "$status", count: { $sum: 1 } } }])`
pub fn status_distribution(w: &Window) -> Vec<Document> {
    vec![
        doc! {"$match": w.filter()},
        doc! {"$group": {"_id": "$status", "count": {"$sum": 1}}},
        doc! {"$sort": {"count": -1, "_id": 1}},
    ]
}

/// Average, minimum and maximum `duration` of FINISHED jobs.
pub fn finished_durations(w: &Window) -> Vec<Document> {
    let mut m = w.filter();
    m.insert("status", "FINISHED");
    m.insert("duration", doc! {"$ne": null});
    vec![
        doc! {"$match": m},
        doc! {"$group": {"_id": null, "count": {"$sum": 1}, "avg_duration": {"$avg": "$duration"},
        "min_duration": {"$min": "$duration"}, "max_duration": {"$max": "$duration"}}},
    ]
}

/// Total, failed, and the failure rate in percent.
pub fn failure_rate(w: &Window) -> Vec<Document> {
    vec![
        doc! {"$match": w.filter()},
        doc! {"$group": {"_id": null, "total": {"$sum": 1},
        "failed": {"$sum": {"$cond": [{"$eq": ["$status", "FAILED"]}, 1, 0]}}}},
        doc! {"$project": {"total": 1, "failed": 1,
        "failure_rate": {"$multiply": [{"$divide": ["$failed", "$total"]}, 100]}}},
    ]
}

fn degraded_match(w: &Window) -> Document {
    let mut m = w.filter();
    let non_final: Vec<&str> = Status::NON_FINAL.iter().map(|s| s.as_str()).collect();
    m.insert("status", doc! {"$in": non_final});
    m.insert("health", "DEGRADED");
    m
}

fn ended_match(w: &Window) -> Document {
    let mut m = w.filter();
    m.insert(
        "status",
        doc! {"$in": [Status::Failed.as_str(), Status::Cancelled.as_str()]},
    );
    m
}

/// The first [`LIST_MAX`] matches in `sort` order, with only `fields`.
fn first_rows(m: Document, sort: Document, fields: &[&str]) -> Vec<Document> {
    let mut project = doc! {"_id": 0};
    for f in fields {
        project.insert(*f, 1);
    }
    vec![
        doc! {"$match": m},
        doc! {"$sort": sort},
        doc! {"$limit": LIST_MAX as i64},
        doc! {"$project": project},
    ]
}

fn counted(m: Document) -> Vec<Document> {
    vec![
        doc! {"$match": m},
        doc! {"$group": {"_id": null, "count": {"$sum": 1}}},
    ]
}

/// The degraded non-final jobs, the most recently checked first, at most
/// [`LIST_MAX`]:
/// `db.flink_jobs.aggregate([{ $match: { status: { $in: ["CREATED", "RUNNING", "SUSPENDED"] }, health: "DEGRADED" } }, { $sort: { health_checked_at: -1, job_id: 1 } }, { $limit: 100 }])`
pub fn degraded_jobs(w: &Window) -> Vec<Document> {
    first_rows(
        degraded_match(w),
        doc! {"health_checked_at": -1, "job_id": 1},
        &[
            "job_id",
            "flink_job_id",
            "status",
            "health_reasons",
            "health_checked_at",
        ],
    )
}

/// How many degraded non-final jobs there are.
pub fn degraded_count(w: &Window) -> Vec<Document> {
    counted(degraded_match(w))
}

/// The FAILED and CANCELLED jobs with their restart points, the most
/// recently ended first, at most [`LIST_MAX`]:
/// `db.flink_jobs.aggregate([{ $match: { status: { $in: ["FAILED", "CANCELLED"] } } }, { $sort: { end_time: -1, submitted_at: -1, job_id: 1 } }, { $limit: 100 }])`
pub fn failed_or_cancelled_jobs(w: &Window) -> Vec<Document> {
    first_rows(
        ended_match(w),
        doc! {"end_time": -1, "submitted_at": -1, "job_id": 1},
        &[
            "job_id",
            "status",
            "restart_point",
            "restart_point_reason",
            "end_time",
        ],
    )
}

/// How many FAILED and CANCELLED jobs there are.
pub fn failed_or_cancelled_count(w: &Window) -> Vec<Document> {
    counted(ended_match(w))
}

fn number(d: &Document, k: &str) -> Option<f64> {
    match d.get(k)? {
        Bson::Double(x) => Some(*x),
        Bson::Int32(x) => Some(f64::from(*x)),
        Bson::Int64(x) => Some(*x as f64),
        _ => None,
    }
}

/// A field as text: strings as they are, anything else in its BSON form.
fn text(d: &Document, k: &str) -> Option<String> {
    match d.get(k)? {
        Bson::String(s) => Some(s.clone()),
        Bson::Null => None,
        other => Some(other.to_string()),
    }
}

fn reasons(d: &Document) -> Vec<Reason> {
    let Ok(items) = d.get_array("health_reasons") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|r| {
            let r = r.as_document()?;
            Some(Reason {
                code: r.get_str("code").ok()?.to_string(),
                message: r.get_str("message").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

fn count_of(rows: &[Document]) -> i64 {
    rows.first().and_then(|d| number(d, "count")).unwrap_or(0.0) as i64
}

/// Every aggregation over the records submitted in the window.
pub async fn compute(records: &Records, w: &Window) -> Result<Stats, Error> {
    let (dist, dur, rate, degraded, degraded_n, ended, ended_n) = futures::try_join!(
        records.aggregate(
            status_distribution(w),
            "aggregating the status distribution"
        ),
        records.aggregate(finished_durations(w), "aggregating finished durations"),
        records.aggregate(failure_rate(w), "aggregating the failure rate"),
        records.aggregate(degraded_jobs(w), "listing degraded jobs"),
        records.aggregate(degraded_count(w), "counting degraded jobs"),
        records.aggregate(
            failed_or_cancelled_jobs(w),
            "listing failed and cancelled jobs"
        ),
        records.aggregate(
            failed_or_cancelled_count(w),
            "counting failed and cancelled jobs"
        ),
    )?;
    let r = rate.first();
    Ok(Stats {
        by_status: dist.iter().map(status_count).collect(),
        finished_durations: dur.first().map(durations).unwrap_or_default(),
        total: r.and_then(|d| number(d, "total")).unwrap_or(0.0) as i64,
        failed: r.and_then(|d| number(d, "failed")).unwrap_or(0.0) as i64,
        failure_rate_percent: r.and_then(|d| number(d, "failure_rate")),
        degraded: Listed {
            total: count_of(&degraded_n),
            jobs: degraded.iter().map(degraded_job).collect(),
        },
        failed_or_cancelled: Listed {
            total: count_of(&ended_n),
            jobs: ended.iter().map(ended_job).collect(),
        },
    })
}

fn status_count(d: &Document) -> StatusCount {
    let status = match d.get("_id") {
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::Null) | None => "(none)".to_string(),
        Some(other) => other.to_string(),
    };
    StatusCount {
        status,
        count: number(d, "count").unwrap_or(0.0) as i64,
    }
}

fn durations(d: &Document) -> Durations {
    Durations {
        count: number(d, "count").unwrap_or(0.0) as i64,
        avg_seconds: number(d, "avg_duration"),
        min_seconds: number(d, "min_duration"),
        max_seconds: number(d, "max_duration"),
    }
}

fn degraded_job(d: &Document) -> DegradedJob {
    DegradedJob {
        job_id: text(d, "job_id").unwrap_or_default(),
        flink_job_id: text(d, "flink_job_id"),
        status: text(d, "status").unwrap_or_default(),
        reasons: reasons(d),
        health_checked_at: d.get("health_checked_at").and_then(parse_date),
    }
}

fn ended_job(d: &Document) -> EndedJob {
    EndedJob {
        job_id: text(d, "job_id").unwrap_or_default(),
        status: text(d, "status").unwrap_or_default(),
        restart_point: text(d, "restart_point"),
        restart_point_reason: text(d, "restart_point_reason"),
        end_time: d.get("end_time").and_then(parse_date),
    }
}
