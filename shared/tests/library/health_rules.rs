//! The health rule and the health parsers, without I/O: Flink 2.3's real
//! answers (`fixtures/flink/health/`, captured from the local stack) in,
//! verdicts, restart points and record changes out.

use chrono::{DateTime, Duration, TimeZone, Utc};
use flink_job_sync::adapters::flink::{
    parse_checkpoint_config, parse_checkpoints, parse_metric, parse_overview,
};
use flink_job_sync::rules::health::{
    Checkpoints, HealthFacts, HealthLooks, HealthRules, JobView, NOT_ADDRESSABLE, PointAt,
    RestartPoint, Retention, Tasks, assess, restart_point, usable_path,
};
use flink_job_sync::rules::model::{FlinkJobId, FlinkState, Health, Status, Unobserved};
use flink_job_sync::rules::plan::{Change, FlinkFacts, FlinkJob, Observed, SyncRules, decide};
use flink_job_sync::rules::record::{Record, RecordId, StoredCheckpoint};

const ID: &str = "398df549e65cbb47b428135966f57e9e";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/flink/health/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A checkpoints fixture of a job with checkpointing.
fn checkpoints(name: &str) -> Checkpoints {
    parse_checkpoints(&fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: checkpointing"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A RUNNING record with a JobID, written three times; `stored` adds what
/// earlier looks stored.
fn record(stored: impl FnOnce(&mut Record)) -> Record {
    let mut r = Record::new(RecordId::String("oid-1".into()), "tpl-1", Status::Running);
    r.flink_job_id = FlinkJobId::parse(ID);
    r.flink_state = Some(FlinkState::Running);
    r.revision = Some(3);
    stored(&mut r);
    r
}

static RUNNING: FlinkState = FlinkState::Running;
static INITIALIZING: FlinkState = FlinkState::Initializing;

fn st(s: &str) -> FlinkState {
    FlinkState::parse(s)
}

/// `mins` minutes before [`now`].
fn ago(mins: i64) -> DateTime<Utc> {
    now() - Duration::minutes(mins)
}

fn running(tasks: Option<Tasks>, changed_ago: Duration) -> JobView<'static> {
    JobView {
        state: &RUNNING,
        tasks,
        last_modification_ms: ms(now() - changed_ago),
        start_ms: ms(now() - Duration::days(1)),
    }
}

fn all_running(n: u64) -> Option<Tasks> {
    Some(Tasks {
        total: n,
        running: n,
        finished: 0,
    })
}

fn healthy_checkpoints() -> Checkpoints {
    Checkpoints {
        completed: 7,
        failed: 0,
        last_completed_id: Some(7),
        last_completed_at: Some(now() - Duration::seconds(2)),
        last_completed: Some(PointAt {
            id: Some(7),
            path: "file:/ck/chk-7".into(),
            at: Some(now() - Duration::seconds(2)),
        }),
        interval_ms: Some(1000),
        retention: Some(Retention::OnCancellation),
        ..Default::default()
    }
}

fn facts(checkpoints: Option<Checkpoints>, restarts: Option<u64>) -> HealthFacts {
    HealthFacts {
        checkpoints: Ok(checkpoints),
        restarts: Ok(restarts),
        submitter_restarts: None,
    }
}

fn codes(a: &flink_job_sync::rules::health::Assessment) -> Vec<&str> {
    a.reasons.iter().map(|r| r.code.as_str()).collect()
}

// The parsers, on what Flink 2.3 really answered.

#[test]
fn a_running_checkpointed_job_reads_its_last_completed_checkpoint() {
    let c = checkpoints("running_retained_checkpoints.json");
    let last = c.last_completed.expect("a completed checkpoint");
    assert!(
        last.path.starts_with("file:/") && last.path.contains("/chk-"),
        "{}",
        last.path
    );
    assert!(last.at.is_some());
    assert_eq!(c.last_completed_id, Some(7));
    assert_eq!((c.completed, c.failed), (7, 1));
    assert_eq!(c.last_savepoint, None);
}

#[test]
fn a_job_stopped_with_a_savepoint_reads_the_savepoint() {
    let c = checkpoints("stopped_with_savepoint_checkpoints.json");
    let sp = c.last_savepoint.clone().expect("a savepoint");
    assert!(sp.path.contains("/sp/savepoint-"), "{}", sp.path);
    assert_eq!(
        restart_point(&st("FINISHED"), Some(&c)),
        RestartPoint::At(sp.path.clone()),
        "the savepoint is newer than the last checkpoint"
    );
}

#[test]
fn checkpoint_config_says_whether_a_cancel_deletes_the_checkpoints() {
    let retained =
        parse_checkpoint_config(&fixture("running_retained_config.json")).expect("parses");
    assert_eq!(retained, (1000, Some(Retention::OnCancellation)));
    let deleted =
        parse_checkpoint_config(&fixture("cancelled_deleted_config.json")).expect("parses");
    assert_eq!(deleted.1, Some(Retention::NotRetained));
    assert!(
        parse_checkpoint_config(br#"{"externalization": {}}"#).is_err(),
        "no interval"
    );
    // Flink's retention policies: what survives which end.
    assert!(
        Retention::OnCancellation.keeps(&st("CANCELED"))
            && Retention::OnCancellation.keeps(&st("FAILED"))
    );
    assert!(!Retention::OnCancellation.keeps(&st("FINISHED")));
    assert!(
        Retention::OnFailure.keeps(&st("FAILED")) && !Retention::OnFailure.keeps(&st("CANCELED"))
    );
    for state in ["FAILED", "CANCELED", "FINISHED"] {
        assert!(!Retention::NotRetained.keeps(&st(state)), "{state}");
    }
}

#[test]
fn restarts_come_from_string_metric_values_and_are_absent_until_flink_has_them() {
    assert!(
        parse_metric(&fixture("restart_loop_metrics.json"), "numRestarts")
            .expect("parses")
            .is_some_and(|n| n > 0)
    );
    assert_eq!(
        parse_metric(&fixture("metrics_just_submitted_empty.json"), "numRestarts"),
        Ok(None)
    );
    for garbled in [
        r#"[{"id":"numRestarts","value":"many"}]"#,
        r#"[{"id":"numRestarts","value":"-3"}]"#,
        r#"[{"id":"numRestarts","value":"1.5"}]"#,
        r#"{"id":"numRestarts"}"#,
        "[{",
    ] {
        let e = parse_metric(garbled.as_bytes(), "numRestarts").expect_err(garbled);
        assert!(e.len() < 200, "bounded: {e}");
    }
}

#[test]
fn the_overview_carries_task_counts_and_the_last_modification() {
    let jobs = parse_overview(&fixture("running_retained_overview.json")).expect("parses");
    let job = jobs
        .values()
        .find(|j| j.state == FlinkState::Running)
        .expect("a running job");
    let tasks = job.tasks.expect("task counts");
    assert_eq!((tasks.total, tasks.running), (2, 2));
    assert!(job.last_modification_ms > 0);
    // Garbled counts lose the counts, not the job.
    let body = format!(
        r#"{{"jobs":[{{"jid":"{ID}","state":"RUNNING","tasks":{{"total":"x"}},"last-modification":"y"}}]}}"#
    );
    let jobs = parse_overview(body.as_bytes()).expect("parses");
    let job = jobs.values().next().expect("the job is kept");
    assert_eq!((job.tasks, job.last_modification_ms), (None, -1));
}

#[test]
fn placeholder_empty_and_huge_paths_are_never_restart_points() {
    assert_eq!(usable_path(NOT_ADDRESSABLE), None);
    assert_eq!(usable_path("  "), None);
    assert_eq!(usable_path(&format!("file:/{}", "x".repeat(5000))), None);
    let body = format!(
        r#"{{"counts":{{"completed":1,"failed":0}},"latest":{{"completed":{{"id":1,"external_path":"{NOT_ADDRESSABLE}","latest_ack_timestamp":5}}}}}}"#
    );
    let c = parse_checkpoints(body.as_bytes())
        .expect("parses")
        .expect("checkpointing");
    assert_eq!(c.last_completed, None);
    assert_eq!(c.last_completed_id, Some(1));
    assert!(
        c.last_completed_at.is_some(),
        "the age is known without a path"
    );
    assert!(parse_checkpoints(b"{\"counts\": [").is_err());
    for not_an_answer in [
        "[]",
        "null",
        "{}",
        r#"{"errors": ["Internal server error."]}"#,
    ] {
        assert!(
            parse_checkpoints(not_an_answer.as_bytes()).is_err(),
            "{not_an_answer}"
        );
    }
}

// The verdict.

#[test]
fn a_running_job_with_fresh_checkpoints_and_no_restarts_is_healthy() {
    let a = assess(
        &record(|_| {}),
        &running(all_running(2), Duration::hours(1)),
        &facts(Some(healthy_checkpoints()), Some(0)),
        now(),
        &HealthRules::default(),
    );
    assert_eq!((a.health, codes(&a)), (Health::Healthy, vec![]));
}

#[test]
fn restarts_growing_past_the_limit_within_the_window_are_a_restart_loop() {
    let rules = HealthRules::default();
    let r = record(|r| r.restart_samples = vec![(ago(6), 1), (ago(3), 2)]);
    let a = assess(
        &r,
        &running(all_running(2), Duration::hours(1)),
        &facts(None, Some(4)),
        now(),
        &rules,
    );
    assert_eq!(codes(&a), vec!["restart_loop"], "{:?}", a.reasons);
    assert_eq!(a.health, Health::Degraded);
    assert_eq!(a.samples.last(), Some(&(now(), 4)));
    // A first look at a job that started within the window counts from zero.
    let young = JobView {
        start_ms: ms(now() - Duration::minutes(2)),
        ..running(all_running(2), Duration::minutes(1))
    };
    let a = assess(
        &record(|_| {}),
        &young,
        &facts(None, Some(5)),
        now(),
        &rules,
    );
    assert_eq!(codes(&a), vec!["restart_loop"]);
    // The same growth spread over more than the window is no loop.
    let r = record(|r| r.restart_samples = vec![(ago(60), 1)]);
    let a = assess(
        &r,
        &running(all_running(2), Duration::hours(1)),
        &facts(None, Some(4)),
        now(),
        &rules,
    );
    assert_eq!(codes(&a), Vec::<&str>::new());
}

#[test]
fn failed_checkpoints_since_the_last_look_or_a_stale_last_checkpoint_are_failing() {
    let rules = HealthRules::default();
    let view = running(all_running(2), Duration::hours(1));
    let mut grew = healthy_checkpoints();
    grew.failed = 3;
    let r = record(|r| {
        r.checkpoint = Some(Box::new(StoredCheckpoint {
            failed: Some(1),
            interval_ms: Some(1000),
            ..Default::default()
        }))
    });
    let a = assess(&r, &view, &facts(Some(grew), Some(0)), now(), &rules);
    assert_eq!(codes(&a), vec!["checkpoints_failing"]);
    let mut stale = healthy_checkpoints();
    stale.interval_ms = Some(60_000);
    stale.last_completed_at = Some(now() - Duration::minutes(10));
    stale.last_completed = None;
    let a = assess(
        &record(|_| {}),
        &view,
        &facts(Some(stale), Some(0)),
        now(),
        &rules,
    );
    assert_eq!(codes(&a), vec!["checkpoints_failing"], "{:?}", a.reasons);
}

#[test]
fn tasks_not_all_running_past_the_grace_are_reported_and_not_before() {
    let rules = HealthRules::default();
    let tasks = Some(Tasks {
        total: 4,
        running: 2,
        finished: 0,
    });
    let r = record(|_| {});
    let f = facts(None, Some(0));
    let young = assess(&r, &running(tasks, Duration::minutes(1)), &f, now(), &rules);
    assert_eq!(young.health, Health::Healthy);
    let old = assess(
        &r,
        &running(tasks, Duration::minutes(30)),
        &f,
        now(),
        &rules,
    );
    assert_eq!(codes(&old), vec!["tasks_not_running"]);
    let none = Some(Tasks {
        total: 4,
        running: 0,
        finished: 0,
    });
    let stuck = assess(&r, &running(none, Duration::minutes(30)), &f, now(), &rules);
    assert_eq!(codes(&stuck), vec!["stuck_starting"]);
    let initializing = JobView {
        state: &INITIALIZING,
        tasks: None,
        last_modification_ms: ms(now() - Duration::minutes(30)),
        start_ms: -1,
    };
    let a = assess(&r, &initializing, &f, now(), &rules);
    assert_eq!(codes(&a), vec!["stuck_starting"]);
}

#[test]
fn a_submitter_pod_restarting_since_the_last_look_degrades_the_job() {
    let look = |stored: Option<u32>, seen: u32| {
        let mut f = facts(None, Some(0));
        f.submitter_restarts = Some(seen);
        let a = assess(
            &record(|r| r.submitter_restarts = stored),
            &running(all_running(1), Duration::hours(1)),
            &f,
            now(),
            &HealthRules::default(),
        );
        codes(&a).iter().map(|c| c.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(look(Some(1), 3), vec!["submitter_restarting"]);
    assert!(look(Some(3), 3).is_empty(), "old restarts are history");
    assert!(
        look(None, 2).is_empty(),
        "the first look only sets the baseline"
    );
}

#[test]
fn restart_samples_stay_bounded_and_keep_their_oldest() {
    // Thirty looks a few seconds apart, all within the window.
    let r = record(|r| r.restart_samples = (0..30).map(|i| (ago(14), i)).collect());
    let a = assess(
        &r,
        &running(all_running(1), Duration::hours(1)),
        &facts(None, Some(40)),
        now(),
        &HealthRules::default(),
    );
    assert!(a.samples.len() <= flink_job_sync::rules::health::RESTART_SAMPLES_MAX);
    assert_eq!(
        a.samples.first().map(|s| s.1),
        Some(0),
        "the oldest is the baseline"
    );
    assert_eq!(codes(&a), vec!["restart_loop"]);
}

#[test]
fn a_job_that_ended_moments_ago_is_asked_once_flinks_caches_settle() {
    use flink_job_sync::rules::health::settle_wait;
    let end = ms(now()) - 1000;
    let wait = settle_wait(end, now()).expect("a wait");
    assert_eq!(wait.as_millis(), 3000);
    assert_eq!(settle_wait(ms(now()) - 10_000, now()), None);
    assert_eq!(settle_wait(-1, now()), None);
}

#[test]
fn a_job_ending_while_flink_does_not_answer_about_checkpoints_says_so_and_keeps_no_error() {
    let f = HealthFacts {
        checkpoints: Err(Unobserved::Unanswered(
            "GET /jobs/x/checkpoints: HTTP 500".into(),
        )),
        restarts: Ok(Some(0)),
        submitter_restarts: None,
    };
    let p = decide(
        &record(|r| r.health = Some(Health::Healthy)),
        &observed("FAILED", f),
        now(),
        &SyncRules::default(),
    );
    let why = p.changes.iter().find_map(|c| match c {
        Change::RestartPoint(RestartPoint::None(why)) => Some(why.clone()),
        _ => None,
    });
    assert!(
        why.is_some_and(|w| w.contains("HTTP 500")),
        "{:?}",
        p.changes
    );
    assert!(
        !p.changes
            .iter()
            .any(|c| matches!(c, Change::SyncError(Some(_)))),
        "a final record is never looked at again"
    );
}

#[test]
fn a_health_error_stands_through_runs_that_do_not_look() {
    let stored = record(|r| {
        r.health = Some(Health::Unknown);
        r.sync_error = Some("flink: health: GET /jobs/x/checkpoints: HTTP 503".into());
    });
    let no_look = Observed {
        conflict: None,
        k8s: None,
        flink: Some(found("RUNNING")),
        health: None,
        others: vec![],
    };
    let p = decide(&stored, &no_look, now(), &SyncRules::default());
    assert!(
        !p.changes.iter().any(|c| matches!(c, Change::SyncError(_))),
        "{:?}",
        p.changes
    );
    let good_look = observed("RUNNING", facts(Some(healthy_checkpoints()), Some(0)));
    let p = decide(&stored, &good_look, now(), &SyncRules::default());
    assert!(
        p.changes.contains(&Change::SyncError(None)),
        "cleared by a good look"
    );
}

#[test]
fn no_trustworthy_answer_is_unknown_not_healthy() {
    let f = HealthFacts {
        checkpoints: Err(Unobserved::Unanswered(
            "GET /jobs/x/checkpoints: HTTP 503".into(),
        )),
        restarts: Ok(Some(0)),
        submitter_restarts: None,
    };
    let a = assess(
        &record(|_| {}),
        &running(all_running(1), Duration::hours(1)),
        &f,
        now(),
        &HealthRules::default(),
    );
    assert_eq!(a.health, Health::Unknown);
    assert!(a.reasons[0].message.contains("HTTP 503"));
    assert_eq!(a.checkpoints, None, "what is stored is kept");
}

// Restart points.

#[test]
fn a_cancelled_job_resumes_from_a_retained_checkpoint_and_not_from_a_deleted_one() {
    let mut c = checkpoints("cancelled_retained_checkpoints.json");
    c.retention = parse_checkpoint_config(&fixture("running_retained_config.json"))
        .expect("parses")
        .1;
    let path = c
        .last_completed
        .as_ref()
        .map(|p| p.path.clone())
        .expect("a path");
    assert_eq!(
        restart_point(&st("CANCELED"), Some(&c)),
        RestartPoint::At(path.clone())
    );
    assert_eq!(
        restart_point(&st("FAILED"), Some(&c)),
        RestartPoint::At(path)
    );
    assert!(
        matches!(
            restart_point(&st("FINISHED"), Some(&c)),
            RestartPoint::None(_)
        ),
        "retained on cancellation is deleted when finished"
    );
    // Flink's default deletes on every end, FAILED included.
    c.retention = Some(Retention::NotRetained);
    for state in ["CANCELED", "FAILED"] {
        match restart_point(&st(state), Some(&c)) {
            RestartPoint::None(why) => assert!(why.contains("deletes"), "{why}"),
            other => panic!("{state}: {other:?}"),
        }
    }
    c.retention = None;
    match restart_point(&st("FAILED"), Some(&c)) {
        RestartPoint::None(why) => assert!(why.contains("unknown"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        restart_point(&st("FINISHED"), None),
        RestartPoint::None(_)
    ));
}

#[test]
fn a_checkpoint_flink_already_discarded_is_never_a_restart_point() {
    // Cancelled without retention: Flink still names the deleted checkpoint.
    let mut c = checkpoints("cancelled_deleted_checkpoints.json");
    assert_eq!(c.last_completed, None, "discarded: true");
    assert!(c.last_completed_id.is_some());
    c.retention = Some(Retention::NotRetained);
    match restart_point(&st("CANCELED"), Some(&c)) {
        RestartPoint::None(why) => assert!(why.contains("deletes"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The JobManager's cached answer right after a cancel can name an older,
    // already deleted checkpoint: never offered.
    let mut stale = checkpoints("cancelled_retained_checkpoints_stale.json");
    stale.retention = Some(Retention::OnCancellation);
    assert!(matches!(
        restart_point(&st("CANCELED"), Some(&stale)),
        RestartPoint::None(_)
    ));
}

#[test]
fn a_savepoint_newer_by_id_wins_over_a_retained_checkpoint() {
    let mut c = healthy_checkpoints();
    c.last_savepoint = Some(PointAt {
        id: Some(9),
        path: "file:/sp/savepoint-1".into(),
        at: None,
    });
    assert_eq!(
        restart_point(&st("CANCELED"), Some(&c)),
        RestartPoint::At("file:/sp/savepoint-1".into())
    );
}

#[test]
fn flink_saying_checkpointing_is_not_enabled_is_no_checkpoint() {
    let history_batch = br#"{"errors": ["Checkpointing has not been enabled."]}"#;
    assert_eq!(parse_checkpoints(history_batch), Ok(None));
}

// The rule end to end: a look's changes.

fn found(state: &str) -> FlinkFacts {
    FlinkFacts::Found(FlinkJob {
        name: String::new(),
        state: state.into(),
        start_ms: ms(now() - Duration::hours(2)),
        end_ms: if state == "RUNNING" {
            -1
        } else {
            ms(now() - Duration::seconds(5))
        },
        root_cause: None,
        tasks: all_running(2),
        last_modification_ms: ms(now() - Duration::hours(1)),
    })
}

fn observed(state: &str, health: HealthFacts) -> Observed {
    Observed {
        conflict: None,
        k8s: None,
        flink: Some(found(state)),
        health: Some(health),
        others: vec![],
    }
}

#[test]
fn a_first_look_records_health_checkpoint_and_restarts_and_never_the_status() {
    let p = decide(
        &record(|_| {}),
        &observed("RUNNING", facts(Some(healthy_checkpoints()), Some(0))),
        now(),
        &SyncRules::default(),
    );
    assert!(p.transition().is_none(), "health never changes status");
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::HealthCheckedAt(_)))
    );
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::Checkpoint(Some(_))))
    );
    assert!(p.changes.iter().any(|c| matches!(c, Change::Restarts(0))));
    assert!(p.changes.iter().any(|c| matches!(
        c,
        Change::Health {
            from: None,
            to: Health::Healthy,
            ..
        }
    )));
}

#[test]
fn the_same_verdict_again_is_not_a_health_change() {
    let stored = record(|r| {
        r.health = Some(Health::Healthy);
        r.restarts = Some(0);
        r.checkpoint = Some(Box::new(healthy_checkpoints().stored()));
    });
    let p = decide(
        &stored,
        &observed("RUNNING", facts(Some(healthy_checkpoints()), Some(0))),
        now(),
        &SyncRules::default(),
    );
    assert!(
        !p.changes
            .iter()
            .any(|c| matches!(c, Change::Health { .. } | Change::Checkpoint(_))),
        "{:?}",
        p.changes
    );
}

#[test]
fn a_job_ending_gets_its_restart_point_and_keeps_its_last_health() {
    let stored = record(|r| {
        r.health = Some(Health::Degraded);
        r.health_codes = vec!["restart_loop".into()];
    });
    let c = healthy_checkpoints();
    let p = decide(
        &stored,
        &observed("CANCELED", facts(Some(c), Some(5))),
        now(),
        &SyncRules::default(),
    );
    assert_eq!(p.transition().map(|t| t.1), Some(Status::Cancelled));
    assert!(p.changes.contains(&Change::RestartPoint(RestartPoint::At(
        "file:/ck/chk-7".into()
    ))));
    assert!(!p.changes.iter().any(|c| matches!(c, Change::Health { .. })));
}

#[test]
fn garbled_health_answers_change_no_status_and_corrupt_nothing() {
    let f = HealthFacts {
        checkpoints: Err(Unobserved::Unanswered(
            "GET /jobs/x/checkpoints: unreadable JSON (EOF)".into(),
        )),
        restarts: Err(Unobserved::Unanswered(
            "GET /jobs/x/metrics?get=numRestarts: numRestarts is not a count: \"many\"".into(),
        )),
        submitter_restarts: None,
    };
    let p = decide(
        &record(|_| {}),
        &observed("RUNNING", f),
        now(),
        &SyncRules::default(),
    );
    assert!(p.transition().is_none());
    assert!(
        !p.changes
            .iter()
            .any(|c| matches!(c, Change::Checkpoint(_) | Change::Restarts(_)))
    );
    assert!(p.changes.iter().any(|c| matches!(
        c,
        Change::Health {
            to: Health::Unknown,
            ..
        }
    )));
    let error = p.changes.iter().find_map(|c| match c {
        Change::SyncError(Some(e)) => Some(e.text.clone()),
        _ => None,
    });
    let error = error.expect("reported in sync_error");
    assert!(
        error.starts_with("flink: health: ") && error.contains("not a count"),
        "{error}"
    );
    assert!(error.len() <= SyncRules::default().reason_max_bytes);
}

/// The job_ids a run's health looks go to, among jobs Flink shows running.
fn picked(records: &[Record], budget: usize, runs: impl Fn(&Record) -> bool) -> Vec<String> {
    let mut looks = HealthLooks::choose(records, budget, runs);
    let mut picked: Vec<String> = records
        .iter()
        .filter(|r| looks.take(r, &FlinkState::Running))
        .map(|r| r.job_id.clone())
        .collect();
    picked.sort();
    picked
}

fn running_record(job_id: &str, status: Status, checked: Option<DateTime<Utc>>) -> Record {
    let mut r = Record::new(RecordId::String(job_id.into()), job_id, status);
    r.flink_job_id = FlinkJobId::parse(ID);
    r.health_checked_at = checked;
    r
}

#[test]
fn the_budget_goes_to_jobs_flink_shows_running_not_to_jobs_that_just_ended() {
    let mk = |job_id: &str| running_record(job_id, Status::Running, None);
    let records = vec![mk("ended-a"), mk("ended-b"), mk("running")];
    assert_eq!(picked(&records, 2, |r| r.job_id == "running"), ["running"]);
    let mut looks = HealthLooks::choose(&records, 2, |r| r.job_id == "running");
    assert!(
        looks.take(&records[0], &FlinkState::Finished),
        "a job that just ended is looked at outside the budget"
    );
}

#[test]
fn the_budget_picks_never_checked_then_oldest_checked_running_jobs() {
    let records = vec![
        running_record("recent", Status::Running, Some(ago(1))),
        running_record("old", Status::Running, Some(ago(60))),
        running_record("never", Status::Running, None),
        running_record("final", Status::Finished, None),
    ];
    assert_eq!(picked(&records, 2, |_| true), ["never", "old"]);
    assert!(picked(&records, 0, |_| true).is_empty());
    assert_eq!(
        FlinkJobId::parse(ID).map(|i| i.to_string()),
        Some(ID.to_string())
    );
}
