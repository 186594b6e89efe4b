//! The monitoring queries, computed by MongoDB aggregation on a seeded
//! collection, through the library and through the `flink-job-stats` command.

use chrono::{TimeZone, Utc};
use flink_job_sync::adapters::store::Store;
use flink_job_sync::reporting::stats::{StatusCount, Window, compute};
use flink_job_sync::rules::model::to_bson_date;
use mongodb::bson::{Bson, Document, doc};
use test_kit::stack::{Stack, unique_name};

fn at(day: u32) -> Bson {
    to_bson_date(
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    )
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
    let s = compute(&store, &Window::default())
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

    let since = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).single();
    let w = Window {
        since,
        until: Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single(),
    };
    let s = compute(&store, &w).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.total, s.failed),
        (4, 1),
        "the window keeps f3, f4, x2, r1"
    );
    assert_eq!(s.finished_durations.avg_seconds, Some(60.0));
}

#[tokio::test]
async fn stats_cli_prints_a_table_and_json() {
    let stack = Stack::from_env();
    let (db, _) = seeded(&stack).await;
    let bin = test_kit::lambda::built_binary("flink-job-stats", "flink-job-stats");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .env("MONGODB_URI", &stack.mongodb_uri)
            .env("MONGODB_DATABASE", &db)
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
    let (code, table, err) = run(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("failure rate: 2 of 8 = 25.0%"), "{table}");
    let (code, json, err) = run(&["--json", "--since", "2026-11-20"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["total"], 5);
    let (code, _, err) = run(&["--since", "yesterday"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--since"), "{err}");

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
