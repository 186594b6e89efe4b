//! The monitoring queries, computed by MongoDB aggregation on a seeded
//! collection, through the library and through the `flink-job-stats` command.

use chrono::{DateTime, TimeZone, Utc};
use flink_job_sync::adapters::store::Store;
use flink_job_sync::adapters::store::record::to_bson_date;
use flink_job_sync::reporting::stats::{
    DegradedJob, EndedJob, LIST_MAX, Reason, StatusCount, Window, compute, render,
};
use mongodb::bson::{Bson, Document, doc};
use test_kit::stack::{Stack, unique_name};

fn day(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn at(d: u32) -> Bson {
    to_bson_date(day(d))
}

async fn seeded(stack: &Stack) -> (String, mongodb::Collection<Document>) {
    let db = unique_name("fjs_stats");
    let coll = stack.records(&db).await;
    let rows = vec![
        doc! {"job_id": "f1", "status": "FINISHED", "duration": 10.0, "submitted_at": at(1)},
        doc! {"job_id": "f2", "status": "FINISHED", "duration": 20.0, "submitted_at": at(2)},
        doc! {"job_id": "f3", "status": "FINISHED", "duration": 60.0, "submitted_at": at(20)},
        doc! {"job_id": "f4", "status": "FINISHED", "duration": null, "submitted_at": at(20)},
        doc! {"job_id": "x1", "status": "FAILED", "submitted_at": at(3)},
        doc! {"job_id": "x2", "status": "FAILED", "submitted_at": at(21)},
        doc! {"job_id": "r1", "status": "RUNNING", "duration": 999.0, "submitted_at": at(21)},
        doc! {"job_id": "c1", "status": "CREATED", "submitted_at": at(22)},
    ];
    coll.insert_many(rows)
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
    (db, coll)
}

/// The product's store over the seeded database.
async fn store_of(stack: &Stack, db: &str) -> Store {
    let cfg = test_kit::scenario::config_for(stack, db, "http://127.0.0.1:1", &[]);
    Store::connect(&cfg.mongo)
        .await
        .unwrap_or_else(|e| panic!("MongoDB: {e}"))
}

#[tokio::test]
async fn stats_match_the_seeded_collection() {
    let stack = Stack::from_env();
    let (db, _) = seeded(&stack).await;
    let store = store_of(&stack, &db).await;
    let s = compute(store.records(), &Window::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let count = |st: &str| s.by_status.iter().find(|c| c.status == st).map(|c| c.count);
    assert_eq!(
        (
            count("FINISHED"),
            count("FAILED"),
            count("RUNNING"),
            count("CREATED")
        ),
        (Some(4), Some(2), Some(1), Some(1))
    );
    assert_eq!(
        s.by_status.first(),
        Some(&StatusCount {
            status: "FINISHED".into(),
            count: 4
        }),
        "most frequent first"
    );
    assert_eq!(
        s.finished_durations.count, 3,
        "FINISHED without duration is left out"
    );
    assert_eq!(s.finished_durations.avg_seconds, Some(30.0));
    assert_eq!(
        (
            s.finished_durations.min_seconds,
            s.finished_durations.max_seconds
        ),
        (Some(10.0), Some(60.0))
    );
    assert_eq!((s.total, s.failed), (8, 2));
    assert_eq!(s.failure_rate_percent, Some(25.0));
    // Records from before job health: none degraded; the failed ones listed
    // without a restart point or a reason, newest submitted first (no end_time).
    assert_eq!((s.degraded.total, s.degraded.jobs.len()), (0, 0));
    assert_eq!(s.failed_or_cancelled.total, 2);
    assert_eq!(
        s.failed_or_cancelled.jobs,
        vec![
            ended("x2", "FAILED", None, None, None),
            ended("x1", "FAILED", None, None, None)
        ]
    );

    let since = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).single();
    let w = Window {
        since,
        until: Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single(),
    };
    let s = compute(store.records(), &w)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.total, s.failed),
        (4, 1),
        "the window keeps f3, f4, x2, r1"
    );
    assert_eq!(s.finished_durations.avg_seconds, Some(60.0));
    assert_eq!(
        s.failed_or_cancelled.jobs,
        vec![ended("x2", "FAILED", None, None, None)],
        "the window keeps x2 of the failed"
    );
}

#[tokio::test]
async fn stats_cli_prints_a_table_and_json() {
    let stack = Stack::from_env();
    let (db, _) = seeded(&stack).await;
    let health_db = seeded_health(&stack).await;
    let bin = test_kit::lambda::built_binary("flink-job-stats", "flink-job-stats");
    let run_on = |db: &str, args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .env("MONGODB_URI", &stack.mongodb_uri)
            .env("MONGODB_DATABASE", db)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running {} (cargo build -p flink-job-stats): {e}",
                    bin.display()
                )
            });
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let run = |args: &[&str]| run_on(&db, args);
    let (code, table, err) = run(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("failure rate: 2 of 8 = 25.0%"), "{table}");
    assert!(
        table.ends_with(
            "\nDEGRADED jobs: 0\n\nFAILED and CANCELLED jobs: 2\n\
             job_id  status  ended at  restart point\n\
             x2      FAILED  -         -\n\
             x1      FAILED  -         -\n"
        ),
        "{table}"
    );
    let (code, json, err) = run(&["--json", "--since", "2026-11-20"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["total"], 5);
    assert_eq!(v["degraded"], serde_json::json!({"total": 0, "jobs": []}));
    assert_eq!(
        v["failed_or_cancelled"],
        serde_json::json!({"total": 1, "jobs": [{"job_id": "x2", "status": "FAILED",
            "restart_point": null, "restart_point_reason": null, "end_time": null}]})
    );
    let (code, _, err) = run(&["--since", "yesterday"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--since"), "{err}");

    // Degraded jobs and restart points, in the table and in JSON.
    let (code, table, err) = run_on(&health_db, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("\nDEGRADED jobs: 3\n"), "{table}");
    assert!(
        table.contains(
            "d1      RUNNING    2026-11-23T12:00:00Z  d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1\n\
             \x20   restart_loop: 4 restarts within 15m (limit 3)\n\
             \x20   checkpoints_failing: 2 checkpoints failed since the last look (3 in all)\n"
        ),
        "{table}"
    );
    assert!(
        table.contains("\nFAILED and CANCELLED jobs: 4\n"),
        "{table}"
    );
    assert!(
        table.contains("x1      FAILED     2026-11-22T12:00:00Z  file:/ckpt/c1c1/chk-7\n"),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "x3      FAILED     2026-11-06T12:00:00Z  none: {NO_CKPT}\n"
        )),
        "{table}"
    );
    let (code, json, err) = run_on(&health_db, &["--json", "--since", "2026-11-20"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(
        v["degraded"],
        serde_json::json!({"total": 2, "jobs": [
            {"job_id": "d3", "flink_job_id": JID_D3, "status": "RUNNING",
             "reasons": [{"code": "stuck_starting", "message": STUCK}],
             "health_checked_at": "2026-11-24T12:00:00Z"},
            {"job_id": "d1", "flink_job_id": JID_D1, "status": "RUNNING",
             "reasons": [{"code": "restart_loop", "message": LOOP}, {"code": "checkpoints_failing", "message": CKPT}],
             "health_checked_at": "2026-11-23T12:00:00Z"}]})
    );
    assert_eq!(
        v["failed_or_cancelled"],
        serde_json::json!({"total": 1, "jobs": [{"job_id": "x1", "status": "FAILED",
            "restart_point": "file:/ckpt/c1c1/chk-7", "restart_point_reason": null,
            "end_time": "2026-11-22T12:00:00Z"}]})
    );
    let (code, json, err) = run_on(&health_db, &["--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let ids = |list: &serde_json::Value| -> Vec<String> {
        list["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j["job_id"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        (v["degraded"]["total"].as_i64(), ids(&v["degraded"])),
        (Some(3), vec!["d3".to_string(), "d1".into(), "d2".into()])
    );
    assert_eq!(
        (
            v["failed_or_cancelled"]["total"].as_i64(),
            ids(&v["failed_or_cancelled"])
        ),
        (
            Some(4),
            vec!["x2".to_string(), "x1".into(), "x3".into(), "x4".into()]
        )
    );
    assert_eq!(
        v["failed_or_cancelled"]["jobs"][0]["restart_point_reason"].as_str(),
        Some(DELETED)
    );

    // An unreachable MongoDB: the answer says why, not only what was tried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    let out = std::process::Command::new(&bin)
        .env(
            "MONGODB_URI",
            format!("mongodb://127.0.0.1:{closed}/?serverSelectionTimeoutMS=300"),
        )
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mongodb: aggregating") && err.contains("server selection"),
        "the cause follows the context: {err}"
    );
}

fn ended(
    job_id: &str,
    status: &str,
    point: Option<&str>,
    why: Option<&str>,
    end: Option<u32>,
) -> EndedJob {
    EndedJob {
        job_id: job_id.into(),
        status: status.into(),
        restart_point: point.map(str::to_string),
        restart_point_reason: why.map(str::to_string),
        end_time: end.map(day),
    }
}

fn reason(code: &str, message: &str) -> Reason {
    Reason {
        code: code.into(),
        message: message.into(),
    }
}

fn reasons_bson(rs: &[(&str, &str)]) -> Bson {
    Bson::Array(
        rs.iter()
            .map(|(c, m)| Bson::Document(doc! {"code": *c, "message": *m}))
            .collect(),
    )
}

const JID_D1: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
const JID_D2: &str = "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2";
const JID_D3: &str = "d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3";
const LOOP: &str = "4 restarts within 15m (limit 3)";
const CKPT: &str = "2 checkpoints failed since the last look (3 in all)";
const TASKS: &str = "1 of 2 tasks not running for longer than 5m";
const STUCK: &str = "the job is INITIALIZING for longer than 5m";
const DELETED: &str = "Flink deletes the job's checkpoints when it is cancelled (not retained on cancellation) and there is no savepoint";
const NO_CKPT: &str = "the job had no checkpointing and no savepoint";

/// Records with what sync keeps of job health: degraded, healthy and
/// unknown non-final jobs, and ended jobs with and without restart points.
async fn seeded_health(stack: &Stack) -> String {
    let db = unique_name("fjs_stats_health");
    let coll = stack.records(&db).await;
    let degraded = |job_id: &str,
                    status: &str,
                    jid: &str,
                    rs: &[(&str, &str)],
                    checked: u32,
                    submitted: u32| {
        doc! {"job_id": job_id, "status": status, "flink_job_id": jid, "submitted_at": at(submitted),
        "health": "DEGRADED", "health_reasons": reasons_bson(rs), "health_checked_at": at(checked)}
    };
    let rows = vec![
        degraded(
            "d1",
            "RUNNING",
            JID_D1,
            &[("restart_loop", LOOP), ("checkpoints_failing", CKPT)],
            23,
            20,
        ),
        degraded(
            "d2",
            "SUSPENDED",
            JID_D2,
            &[("tasks_not_running", TASKS)],
            22,
            10,
        ),
        degraded(
            "d3",
            "RUNNING",
            JID_D3,
            &[("stuck_starting", STUCK)],
            24,
            21,
        ),
        doc! {"job_id": "h1", "status": "RUNNING", "flink_job_id": "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        "submitted_at": at(21), "health": "HEALTHY", "health_reasons": [], "health_checked_at": at(25)},
        doc! {"job_id": "u1", "status": "RUNNING", "flink_job_id": "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1",
        "submitted_at": at(21), "health": "UNKNOWN", "health_checked_at": at(25),
        "health_reasons": reasons_bson(&[("unobservable", "GET /jobs/b1.../checkpoints: HTTP 500")])},
        // Final records keep their last health; they are not listed as degraded.
        doc! {"job_id": "x1", "status": "FAILED", "flink_job_id": "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
        "submitted_at": at(21), "end_time": at(22), "health": "DEGRADED", "health_checked_at": at(22),
        "health_reasons": reasons_bson(&[("restart_loop", LOOP)]),
        "restart_point": "file:/ckpt/c1c1/chk-7"},
        doc! {"job_id": "x2", "status": "CANCELLED", "flink_job_id": "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2",
        "submitted_at": at(15), "end_time": at(23), "restart_point_reason": DELETED},
        doc! {"job_id": "x3", "status": "FAILED", "flink_job_id": "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
        "submitted_at": at(5), "end_time": at(6), "restart_point_reason": NO_CKPT},
        doc! {"job_id": "x4", "status": "CANCELLED", "submitted_at": at(4)},
        doc! {"job_id": "f1", "status": "FINISHED", "flink_job_id": "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1",
        "submitted_at": at(21), "end_time": at(24), "duration": 5.0, "restart_point": "file:/sp/savepoint-e1"},
        doc! {"job_id": "c1", "status": "CREATED", "submitted_at": at(22)},
    ];
    coll.insert_many(rows)
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
    db
}

fn d1() -> DegradedJob {
    DegradedJob {
        job_id: "d1".into(),
        flink_job_id: Some(JID_D1.into()),
        status: "RUNNING".into(),
        reasons: vec![
            reason("restart_loop", LOOP),
            reason("checkpoints_failing", CKPT),
        ],
        health_checked_at: Some(day(23)),
    }
}

fn d2() -> DegradedJob {
    DegradedJob {
        job_id: "d2".into(),
        flink_job_id: Some(JID_D2.into()),
        status: "SUSPENDED".into(),
        reasons: vec![reason("tasks_not_running", TASKS)],
        health_checked_at: Some(day(22)),
    }
}

fn d3() -> DegradedJob {
    DegradedJob {
        job_id: "d3".into(),
        flink_job_id: Some(JID_D3.into()),
        status: "RUNNING".into(),
        reasons: vec![reason("stuck_starting", STUCK)],
        health_checked_at: Some(day(24)),
    }
}

#[tokio::test]
async fn stats_list_degraded_jobs_and_restart_points() {
    let stack = Stack::from_env();
    let db = seeded_health(&stack).await;
    let store = store_of(&stack, &db).await;
    let s = compute(store.records(), &Window::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.degraded.total, 3,
        "non-final DEGRADED only: {:?}",
        s.degraded
    );
    assert_eq!(
        s.degraded.jobs,
        vec![d3(), d1(), d2()],
        "newest check first"
    );
    assert_eq!(s.failed_or_cancelled.total, 4);
    assert_eq!(
        s.failed_or_cancelled.jobs,
        vec![
            ended("x2", "CANCELLED", None, Some(DELETED), Some(23)),
            ended(
                "x1",
                "FAILED",
                Some("file:/ckpt/c1c1/chk-7"),
                None,
                Some(22)
            ),
            ended("x3", "FAILED", None, Some(NO_CKPT), Some(6)),
            ended("x4", "CANCELLED", None, None, None),
        ],
        "newest end first, records without end_time last"
    );
    // The existing figures are unchanged by the new fields.
    assert_eq!((s.total, s.failed), (11, 2));

    let table = render(&s);
    let expected = "
DEGRADED jobs: 3
job_id  status     checked at            flink_job_id
d3      RUNNING    2026-11-24T12:00:00Z  d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3
    stuck_starting: the job is INITIALIZING for longer than 5m
d1      RUNNING    2026-11-23T12:00:00Z  d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1
    restart_loop: 4 restarts within 15m (limit 3)
    checkpoints_failing: 2 checkpoints failed since the last look (3 in all)
d2      SUSPENDED  2026-11-22T12:00:00Z  d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2
    tasks_not_running: 1 of 2 tasks not running for longer than 5m

FAILED and CANCELLED jobs: 4
job_id  status     ended at              restart point
x2      CANCELLED  2026-11-23T12:00:00Z  none: Flink deletes the job's checkpoints when it is cancelled (not retained on cancellation) and there is no savepoint
x1      FAILED     2026-11-22T12:00:00Z  file:/ckpt/c1c1/chk-7
x3      FAILED     2026-11-06T12:00:00Z  none: the job had no checkpointing and no savepoint
x4      CANCELLED  -                     -
";
    assert!(table.ends_with(expected), "{table}");

    // The window applies to the lists as to the figures.
    let w = Window {
        since: Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).single(),
        until: None,
    };
    let s = compute(store.records(), &w)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.degraded.total, 2);
    assert_eq!(s.degraded.jobs, vec![d3(), d1()]);
    assert_eq!(s.failed_or_cancelled.total, 1);
    assert_eq!(
        s.failed_or_cancelled.jobs,
        vec![ended(
            "x1",
            "FAILED",
            Some("file:/ckpt/c1c1/chk-7"),
            None,
            Some(22)
        )]
    );
}

#[tokio::test]
async fn stats_lists_stop_at_the_limit_and_count_them_all() {
    let stack = Stack::from_env();
    let db = unique_name("fjs_stats_many");
    let coll = stack.records(&db).await;
    let n = LIST_MAX + 3;
    let base = day(1);
    let rows: Vec<Document> = (0..n)
        .flat_map(|i| {
            let t = to_bson_date(base + chrono::Duration::minutes(i as i64));
            [
                doc! {"job_id": format!("deg-{i:03}"), "status": "RUNNING", "flink_job_id": format!("{:032x}", i + 1),
                "submitted_at": at(1), "health": "DEGRADED", "health_checked_at": t.clone(),
                "health_reasons": reasons_bson(&[("restart_loop", LOOP)])},
                doc! {"job_id": format!("end-{i:03}"), "status": if i % 2 == 0 { "FAILED" } else { "CANCELLED" },
                "submitted_at": at(1), "end_time": t, "restart_point_reason": NO_CKPT},
            ]
        })
        .collect();
    coll.insert_many(rows)
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
    let store = store_of(&stack, &db).await;
    let s = compute(store.records(), &Window::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let newest = format!("{:03}", n - 1);
    let oldest_listed = format!("{:03}", n - LIST_MAX);
    assert_eq!(
        (s.degraded.total, s.degraded.jobs.len()),
        (n as i64, LIST_MAX)
    );
    assert_eq!(
        s.degraded.jobs.first().map(|j| j.job_id.clone()),
        Some(format!("deg-{newest}"))
    );
    assert_eq!(
        s.degraded.jobs.last().map(|j| j.job_id.clone()),
        Some(format!("deg-{oldest_listed}"))
    );
    assert_eq!(
        (
            s.failed_or_cancelled.total,
            s.failed_or_cancelled.jobs.len()
        ),
        (n as i64, LIST_MAX)
    );
    assert_eq!(
        s.failed_or_cancelled.jobs.first().map(|j| j.job_id.clone()),
        Some(format!("end-{newest}"))
    );
    assert_eq!(
        s.failed_or_cancelled.jobs.last().map(|j| j.job_id.clone()),
        Some(format!("end-{oldest_listed}"))
    );
    let table = render(&s);
    assert!(
        table.contains(&format!(
            "\nDEGRADED jobs: {n} (the {LIST_MAX} checked most recently listed)\n"
        )),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "\nFAILED and CANCELLED jobs: {n} (the {LIST_MAX} ended most recently listed)\n"
        )),
        "{table}"
    );
}
