//! The monitoring queries of the design note, as MongoDB aggregations (the
//! server does the counting; nothing is loaded into memory): status
//! distribution, duration of FINISHED jobs, failure rate; optionally within a
//! window on `submitted_at`.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};
use serde::Serialize;

use crate::adapters::store::Store;
use crate::error::Error;
use crate::rules::model::to_bson_date;

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

/// The three monitoring figures of the design note.
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

fn number(d: &Document, k: &str) -> Option<f64> {
    match d.get(k)? {
        Bson::Double(x) => Some(*x),
        Bson::Int32(x) => Some(f64::from(*x)),
        Bson::Int64(x) => Some(*x as f64),
        _ => None,
    }
}

/// The three aggregations over the records submitted in the window.
pub async fn compute(store: &Store, w: &Window) -> Result<Stats, Error> {
    let (dist, dur, rate) = futures::try_join!(
        store.aggregate(
            status_distribution(w),
            "aggregating the status distribution"
        ),
        store.aggregate(finished_durations(w), "aggregating finished durations"),
        store.aggregate(failure_rate(w), "aggregating the failure rate"),
    )?;
    let by_status = dist
        .iter()
        .map(|d| {
            let status = match d.get("_id") {
                Some(Bson::String(s)) => s.clone(),
                Some(Bson::Null) | None => "(none)".to_string(),
                Some(other) => other.to_string(),
            };
            StatusCount {
                status,
                count: number(d, "count").unwrap_or(0.0) as i64,
            }
        })
        .collect();
    let finished_durations = dur
        .first()
        .map(|d| Durations {
            count: number(d, "count").unwrap_or(0.0) as i64,
            avg_seconds: number(d, "avg_duration"),
            min_seconds: number(d, "min_duration"),
            max_seconds: number(d, "max_duration"),
        })
        .unwrap_or_default();
    let r = rate.first();
    Ok(Stats {
        by_status,
        finished_durations,
        total: r.and_then(|d| number(d, "total")).unwrap_or(0.0) as i64,
        failed: r.and_then(|d| number(d, "failed")).unwrap_or(0.0) as i64,
        failure_rate_percent: r.and_then(|d| number(d, "failure_rate")),
    })
}

/// The readable table.
pub fn render(s: &Stats) -> String {
    let mut out = String::from("status        count\n");
    for StatusCount { status, count } in &s.by_status {
        out.push_str(&format!("{status:<12} {count:>6}\n"));
    }
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}s"));
    let d = &s.finished_durations;
    out.push_str(&format!(
        "\nFINISHED durations ({} jobs): avg {}  min {}  max {}\n",
        d.count,
        secs(d.avg_seconds),
        secs(d.min_seconds),
        secs(d.max_seconds)
    ));
    out.push_str(&format!(
        "failure rate: {} of {} = {}\n",
        s.failed,
        s.total,
        s.failure_rate_percent
            .map_or("-".to_string(), |p| format!("{p:.1}%"))
    ));
    out
}
