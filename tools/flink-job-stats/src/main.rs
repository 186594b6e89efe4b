//! `flink-job-stats`: the monitoring queries an operator runs against
//! `flink_jobs` (not a Lambda function: a command for a terminal): the status
//! distribution, FINISHED durations and failure rate, then the degraded jobs
//! with their reasons and the failed and cancelled jobs with their restart
//! points (at most 100 rows each, with their totals).
//!
//! ```text
//! flink-job-stats [--json] [--since 2026-11-01] [--until 2026-11-23T12:00:00Z]
//! ```
//! Reads MongoDB's settings only (`MONGODB_URI` or `MONGODB_URI_SECRET_ARN`,
//! `MONGODB_DATABASE`, `MONGODB_COLLECTION`), like sync: no other setting can
//! stop it.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use flink_job_sync::error::chain;
use flink_job_sync::reporting::stats::{Window, compute, render};
use flink_job_sync::{StatsConfig, adapters::store::Store};

const USAGE: &str = "usage: flink-job-stats [--json] [--since DATE] [--until DATE]   (DATE: YYYY-MM-DD or RFC 3339)";

fn parse_date(flag: &str, v: Option<String>) -> Result<DateTime<Utc>, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a date\n{USAGE}"))?;
    if let Ok(d) = DateTime::parse_from_rfc3339(&v) {
        return Ok(d.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(&v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| format!("{flag}: {v:?} is not a date (YYYY-MM-DD or RFC 3339)"))
}

async fn main_inner() -> Result<(), String> {
    let mut json = false;
    let mut window = Window::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--since" => window.since = Some(parse_date("--since", args.next())?),
            "--until" => window.until = Some(parse_date("--until", args.next())?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let cfg = StatsConfig::from_env().map_err(|e| chain(&e))?;
    let cfg = flink_job_sync::adapters::aws::resolve_secrets(cfg)
        .await
        .map_err(|e| chain(&e))?;
    let store = Store::connect(&cfg.mongo).await.map_err(|e| chain(&e))?;
    let stats = compute(store.records(), &window)
        .await
        .map_err(|e| chain(&e))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&stats));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match main_inner().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flink-job-stats: {e}");
            ExitCode::from(2)
        }
    }
}
