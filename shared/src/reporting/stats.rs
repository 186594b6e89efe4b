//! What the monitoring shows an operator: the aggregations of
//! [`crate::adapters::store::stats`] rendered as tables for a terminal.

use chrono::{DateTime, SecondsFormat, Utc};

pub use crate::adapters::store::stats::{
    DegradedJob, Durations, EndedJob, LIST_MAX, Listed, Reason, Stats, StatusCount, Window,
    compute, degraded_count, degraded_jobs, failed_or_cancelled_count, failed_or_cancelled_jobs,
    failure_rate, finished_durations, status_distribution,
};

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
    render_degraded(&mut out, &s.degraded);
    render_ended(&mut out, &s.failed_or_cancelled);
    out
}

/// `"DEGRADED jobs: 3"`, or `"...: 250 (the first 100 listed)"`.
fn heading(title: &str, list_total: i64, shown: usize, order: &str) -> String {
    if list_total > shown as i64 {
        format!("\n{title}: {list_total} (the {shown} {order} listed)\n")
    } else {
        format!("\n{title}: {list_total}\n")
    }
}

fn render_degraded(out: &mut String, l: &Listed<DegradedJob>) {
    out.push_str(&heading(
        "DEGRADED jobs",
        l.total,
        l.jobs.len(),
        "checked most recently",
    ));
    if l.jobs.is_empty() {
        return;
    }
    let rows: Vec<[String; 4]> = l
        .jobs
        .iter()
        .map(|j| {
            [
                one_line(&j.job_id),
                one_line(&j.status),
                date(j.health_checked_at),
                j.flink_job_id.as_deref().map_or("-".into(), one_line),
            ]
        })
        .collect();
    let header = ["job_id", "status", "checked at", "flink_job_id"].map(String::from);
    let w = widths(&header, &rows);
    out.push_str(&row(&header, &w));
    for (j, cells) in l.jobs.iter().zip(&rows) {
        out.push_str(&row(cells, &w));
        for r in &j.reasons {
            out.push_str(&format!(
                "    {}: {}\n",
                one_line(&r.code),
                one_line(&r.message)
            ));
        }
    }
}

fn render_ended(out: &mut String, l: &Listed<EndedJob>) {
    out.push_str(&heading(
        "FAILED and CANCELLED jobs",
        l.total,
        l.jobs.len(),
        "ended most recently",
    ));
    if l.jobs.is_empty() {
        return;
    }
    let rows: Vec<[String; 4]> = l
        .jobs
        .iter()
        .map(|j| {
            let point = match (&j.restart_point, &j.restart_point_reason) {
                (Some(p), _) => one_line(p),
                (None, Some(why)) => format!("none: {}", one_line(why)),
                (None, None) => "-".to_string(),
            };
            [
                one_line(&j.job_id),
                one_line(&j.status),
                date(j.end_time),
                point,
            ]
        })
        .collect();
    let header = ["job_id", "status", "ended at", "restart point"].map(String::from);
    let w = widths(&header, &rows);
    out.push_str(&row(&header, &w));
    for cells in &rows {
        out.push_str(&row(cells, &w));
    }
}

/// Column widths: the widest cell of each column but the last.
fn widths(header: &[String; 4], rows: &[[String; 4]]) -> [usize; 3] {
    let mut w = [0; 3];
    for cells in std::iter::once(header).chain(rows) {
        for (i, width) in w.iter_mut().enumerate() {
            *width = (*width).max(cells[i].chars().count());
        }
    }
    w
}

fn row(cells: &[String; 4], w: &[usize; 3]) -> String {
    format!(
        "{:<a$}  {:<b$}  {:<c$}  {}\n",
        cells[0],
        cells[1],
        cells[2],
        cells[3],
        a = w[0],
        b = w[1],
        c = w[2]
    )
    .trim_end()
    .to_string()
        + "\n"
}

fn date(d: Option<DateTime<Utc>>) -> String {
    d.map_or("-".to_string(), |d| {
        d.to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

/// Stored text on one line of the table: control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
