//! The sync rule, row by row, without I/O: facts in, changes out.

use chrono::{DateTime, Duration, Utc};
use flink_job_sync::adapters::store::record::id_bson;
use flink_job_sync::adapters::store::writes::{Write, WriteContext, statement};
use flink_job_sync::rules::model::{FlinkState, Status, System, Unobserved};
use flink_job_sync::rules::plan::{
    Change, FlinkFacts, FlinkJob, JobFacts, K8sFacts, LogFacts, Observed, Plan, PodFacts, Source,
    SyncError, SyncRules, Waiting, decide, needs_root_cause,
};
use flink_job_sync::rules::record::Record;
use mongodb::bson::{Bson, Document, doc};

use crate::builder::{RecordBuilder, at_ms, id, now};
use proptest::prelude::*;

const ID: &str = "ef163bff25523543d6699ac3c0e9b72e";
const ID2: &str = "b73bb3f147dc3bd5b562d668b64b4c58";

/// The statement a plan's write becomes (`None`: nothing to write).
fn write_for(
    r: &Record,
    p: &Plan,
    at: DateTime<Utc>,
    run_id: &str,
    history_max: usize,
) -> Option<Document> {
    let w = Write::new(r, p, at)?;
    Some(statement(
        &w,
        WriteContext {
            run_id,
            history_max,
        },
    ))
}

fn flink(state: &str, start: i64, end: i64) -> Observed {
    Observed {
        conflict: None,
        health: None,
        others: vec![],
        k8s: None,
        flink: Some(FlinkFacts::Found(FlinkJob {
            name: String::new(),
            tasks: None,
            last_modification_ms: -1,
            state: FlinkState::parse(state),
            start_ms: start,
            end_ms: end,
            root_cause: None,
        })),
    }
}

fn k8s_job(job: JobFacts) -> Observed {
    Observed {
        conflict: None,
        health: None,
        others: vec![],
        k8s: Some(K8sFacts::Job(job)),
        flink: None,
    }
}

fn job() -> JobFacts {
    JobFacts {
        name: "tpl-1".into(),
        ..Default::default()
    }
}

fn log(ids: &[&str], tail: &str) -> LogFacts {
    LogFacts::Read {
        ids: ids.iter().map(|s| id(s)).collect(),
        tail: tail.into(),
    }
}

fn status_change(p: &flink_job_sync::rules::plan::Plan) -> Option<(Status, Status)> {
    p.transition().map(|(f, t, _)| (f, t))
}

fn reason(p: &flink_job_sync::rules::plan::Plan) -> String {
    p.changes
        .iter()
        .find_map(|c| {
            if let Change::StatusReason(r) = c {
                Some(r.clone())
            } else {
                None
            }
        })
        .unwrap_or_default()
}

const T0: i64 = 1_795_465_704_023;

#[test]
fn finished_job_gets_duration_from_flink_times() {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .build();
    let p = decide(
        &r,
        &flink("FINISHED", T0, T0 + 2898),
        now(),
        &SyncRules::default(),
    );
    assert_eq!(status_change(&p), Some((Status::Running, Status::Finished)));
    assert!(p.changes.contains(&Change::Duration(2.898)), "{p:?}");
    assert!(p.changes.contains(&Change::FlinkState("FINISHED".into())));
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::EndTime(t) if t.timestamp_millis() == T0 + 2898))
    );
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::StartTime(t) if t.timestamp_millis() == T0))
    );
}

#[test]
fn running_job_gets_start_time_but_no_end_or_duration() {
    let r = RecordBuilder::new().flink_job_id(ID).build();
    let p = decide(&r, &flink("RUNNING", T0, -1), now(), &SyncRules::default());
    assert_eq!(status_change(&p), Some((Status::Created, Status::Running)));
    assert!(
        !p.changes
            .iter()
            .any(|c| matches!(c, Change::EndTime(_) | Change::Duration(_))),
        "{p:?}"
    );
}

#[test]
fn every_flink_state_moves_a_created_record_as_the_mapping_says() {
    let table = [
        ("CREATED", None),
        ("INITIALIZING", None),
        ("RUNNING", Some(Status::Running)),
        ("CANCELLING", Some(Status::Running)),
        ("RESTARTING", Some(Status::Running)),
        ("FAILING", Some(Status::Running)),
        ("RECONCILING", Some(Status::Running)),
        ("SUSPENDED", Some(Status::Suspended)),
        ("FINISHED", Some(Status::Finished)),
        ("FAILED", Some(Status::Failed)),
        ("CANCELED", Some(Status::Cancelled)),
    ];
    for (state, to) in table {
        let r = RecordBuilder::new().flink_job_id(ID).build();
        let p = decide(
            &r,
            &flink(state, T0, T0 + 1000),
            now(),
            &SyncRules::default(),
        );
        assert_eq!(status_change(&p).map(|(_, t)| t), to, "{state}");
        assert_eq!(
            p.transition().map(|(_, _, s)| s).unwrap_or(Source::Flink),
            Source::Flink
        );
    }
}

#[test]
fn unknown_flink_state_changes_only_flink_state() {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .build();
    let p = decide(
        &r,
        &flink("DEPLOYING_SOMEWHERE", -1, -1),
        now(),
        &SyncRules::default(),
    );
    assert_eq!(
        p.changes,
        vec![Change::FlinkState("DEPLOYING_SOMEWHERE".into())]
    );
    assert_eq!(
        p.unknown_flink_state.as_ref().map(FlinkState::as_str),
        Some("DEPLOYING_SOMEWHERE")
    );
}

#[test]
fn root_cause_is_fetched_only_for_a_job_flink_reports_failed_on_a_record_not_yet_failed() {
    let running = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .build();
    let failed = RecordBuilder::new()
        .status(Status::Failed)
        .flink_job_id(ID)
        .build();
    let facts = |state: &str| flink(state, T0, T0 + 1).flink;
    assert!(needs_root_cause(&running, facts("FAILED").as_ref()));
    assert!(
        !needs_root_cause(&failed, facts("FAILED").as_ref()),
        "already recorded"
    );
    for state in ["RUNNING", "FINISHED", "CANCELED", "FAILING"] {
        assert!(
            !needs_root_cause(&running, facts(state).as_ref()),
            "{state}"
        );
    }
    assert!(!needs_root_cause(&running, Some(&FlinkFacts::Missing)));
    assert!(!needs_root_cause(
        &running,
        Some(&FlinkFacts::Unavailable(Unobserved::Unanswered(
            "down".into()
        )))
    ));
    assert!(!needs_root_cause(&running, None));
}

#[test]
fn failed_flink_job_keeps_the_root_cause_as_reason() {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .build();
    let mut o = flink("FAILED", T0, T0 + 744);
    if let Some(FlinkFacts::Found(j)) = &mut o.flink {
        j.root_cause = Some("java.lang.NumberFormatException: For input string: 'abc'".into());
    }
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(status_change(&p), Some((Status::Running, Status::Failed)));
    assert_eq!(
        reason(&p),
        "java.lang.NumberFormatException: For input string: 'abc'"
    );
}

#[test]
fn jobid_in_the_log_is_stored_and_followed_in_the_same_run() {
    let r = RecordBuilder::new().build();
    let mut o = k8s_job(JobFacts {
        log: log(&[ID, ID2], "Job has been submitted"),
        ..job()
    });
    o.flink = flink("FINISHED", T0, T0 + 5000).flink;
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert!(
        p.changes.contains(&Change::FlinkJobId {
            first: id(ID),
            all: vec![id(ID), id(ID2)]
        }),
        "{p:?}"
    );
    assert_eq!(status_change(&p), Some((Status::Created, Status::Finished)));
    assert!(p.changes.contains(&Change::Duration(5.0)));
}

#[test]
fn jobid_found_while_pod_still_runs_with_flink_down_is_kept_with_an_error() {
    let r = RecordBuilder::new().build();
    let mut o = k8s_job(JobFacts {
        log: log(&[ID], ""),
        ..job()
    });
    o.flink = Some(FlinkFacts::Unavailable(Unobserved::Unanswered(
        "GET /jobs/overview: cannot connect".into(),
    )));
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert!(p.new_flink_job_id().is_some());
    assert_eq!(status_change(&p), None);
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::SyncError(Some(e))
                if e.system == System::Flink && e.text.starts_with("flink: "))),
        "{p:?}"
    );
}

#[test]
fn failed_kubernetes_job_without_jobid_fails_with_condition_exit_code_and_log_tail() {
    let r = RecordBuilder::new().build();
    let o = k8s_job(JobFacts {
        failed: Some("BackoffLimitExceeded: Job has reached the specified backoff limit".into()),
        pod: Some(PodFacts {
            name: "tpl-1-abcde".into(),
            waiting: None,
            exit_code: Some(1),
        }),
        log: log(&[], "RuntimeError: table missing"),
        ..job()
    });
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(status_change(&p), Some((Status::Created, Status::Failed)));
    assert_eq!(p.transition().map(|t| t.2), Some(Source::Kubernetes));
    let why = reason(&p);
    for part in [
        "BackoffLimitExceeded",
        "exit code 1",
        "RuntimeError: table missing",
    ] {
        assert!(why.contains(part), "{part} missing from {why}");
    }
}

#[test]
fn complete_kubernetes_job_without_jobid_fails_as_no_jobid_in_log() {
    let r = RecordBuilder::new().build();
    let o = k8s_job(JobFacts {
        complete: true,
        log: log(&[], "some output"),
        ..job()
    });
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(status_change(&p), Some((Status::Created, Status::Failed)));
    assert!(
        reason(&p).starts_with("no Flink JobID in pod log"),
        "{}",
        reason(&p)
    );
    assert!(reason(&p).contains("some output"));
}

#[test]
fn running_pod_without_jobid_yet_changes_nothing() {
    let r = RecordBuilder::new().build();
    let o = k8s_job(JobFacts {
        log: log(&[], "starting"),
        ..job()
    });
    assert!(
        decide(&r, &o, now(), &SyncRules::default())
            .changes
            .is_empty()
    );
}

#[test]
fn pod_stuck_on_image_pull_fails_only_after_the_grace_period() {
    for (reason_name, minutes, fails) in [
        ("ImagePullBackOff", 2, false),
        ("ImagePullBackOff", 6, true),
        ("ErrImagePull", 6, true),
        ("InvalidImageName", 6, true),
        ("CreateContainerConfigError", 6, true),
        ("ContainerCreating", 60, false),
    ] {
        let r = RecordBuilder::new().build();
        let waiting = Waiting {
            reason: reason_name.into(),
            message: "Back-off pulling image".into(),
            since: Some(now() - Duration::minutes(minutes)),
        };
        let o = k8s_job(JobFacts {
            pod: Some(PodFacts {
                name: "p".into(),
                waiting: Some(waiting),
                exit_code: None,
            }),
            ..job()
        });
        let p = decide(&r, &o, now(), &SyncRules::default());
        assert_eq!(
            status_change(&p).is_some(),
            fails,
            "{reason_name} after {minutes}m: {p:?}"
        );
        if fails {
            assert!(reason(&p).contains(reason_name));
        }
    }
}

#[test]
fn missing_kubernetes_job_fails_only_after_the_grace_period() {
    let young = RecordBuilder::new()
        .submitted_ago(Duration::minutes(5))
        .build();
    let o = Observed {
        conflict: None,
        health: None,
        others: vec![],
        k8s: Some(K8sFacts::NoJob),
        flink: None,
    };
    assert!(
        decide(&young, &o, now(), &SyncRules::default())
            .changes
            .is_empty()
    );
    let old = RecordBuilder::new()
        .submitted_ago(Duration::minutes(11))
        .build();
    let p = decide(&old, &o, now(), &SyncRules::default());
    assert_eq!(status_change(&p), Some((Status::Created, Status::Failed)));
    assert!(
        reason(&p).starts_with("Kubernetes Job not found"),
        "{}",
        reason(&p)
    );
}

#[test]
fn string_submitted_at_counts_for_the_grace_period() {
    let r = RecordBuilder::new()
        .with(|r| r.submitted_at = Some(now() - chrono::Duration::hours(1)))
        .build();
    let p = decide(
        &r,
        &Observed {
            conflict: None,
            health: None,
            others: vec![],
            k8s: Some(K8sFacts::NoJob),
            flink: None,
        },
        now(),
        &SyncRules::default(),
    );
    assert_eq!(status_change(&p), Some((Status::Created, Status::Failed)));
}

#[test]
fn kubernetes_unreachable_or_log_unreadable_keeps_status_and_sets_sync_error() {
    for k8s in [
        K8sFacts::Unavailable(Unobserved::Unanswered("HTTP 500".into())),
        K8sFacts::Job(JobFacts {
            failed: Some("x".into()),
            log: LogFacts::Unreadable(Unobserved::Unanswered("HTTP 500".into())),
            ..job()
        }),
    ] {
        let r = RecordBuilder::new()
            .submitted_ago(Duration::hours(2))
            .build();
        let p = decide(
            &r,
            &Observed {
                conflict: None,
                health: None,
                others: vec![],
                k8s: Some(k8s),
                flink: None,
            },
            now(),
            &SyncRules::default(),
        );
        assert_eq!(status_change(&p), None);
        assert!(
            p.changes
                .iter()
                .any(|c| matches!(c, Change::SyncError(Some(e))
                    if e.system == System::Kubernetes && e.text.starts_with("kubernetes: ")))
        );
    }
}

#[test]
fn flink_miss_counts_up_and_fails_only_at_the_threshold() {
    let rules = SyncRules::default();
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .build();
    let missing = Observed {
        conflict: None,
        health: None,
        others: vec![],
        k8s: None,
        flink: Some(FlinkFacts::Missing),
    };
    let p = decide(&r, &missing, now(), &rules);
    assert_eq!(p.changes, vec![Change::MissingCount(1)]);
    let r2 = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .with(|r| r.flink_missing_count = 2)
        .build();
    let p = decide(&r2, &missing, now(), &rules);
    assert_eq!(status_change(&p), Some((Status::Running, Status::Failed)));
    assert!(reason(&p).contains("not found on Flink cluster"));
}

#[test]
fn transport_errors_are_never_misses() {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .with(|r| r.flink_missing_count = 2)
        .build();
    let o = Observed {
        conflict: None,
        health: None,
        others: vec![],
        k8s: None,
        flink: Some(FlinkFacts::Unavailable(Unobserved::Unanswered(
            "HTTP 503".into(),
        ))),
    };
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(
        p.changes,
        vec![Change::SyncError(Some(SyncError {
            system: System::Flink,
            text: "flink: HTTP 503".into()
        }))]
    );
}

#[test]
fn a_found_job_resets_misses_and_clears_the_error() {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .with(|r| r.flink_missing_count = 1)
        .with(|r| r.sync_error = Some("flink: HTTP 503".into()))
        .flink_state("RUNNING")
        .with(|r| r.start_time = at_ms(T0))
        .build();
    let p = decide(&r, &flink("RUNNING", T0, -1), now(), &SyncRules::default());
    assert_eq!(
        p.changes,
        vec![Change::MissingCount(0), Change::SyncError(None)]
    );
}

#[test]
fn nothing_new_means_no_write() {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .flink_state("RUNNING")
        .with(|r| r.start_time = at_ms(T0))
        .build();
    let p = decide(&r, &flink("RUNNING", T0, -1), now(), &SyncRules::default());
    assert!(p.changes.is_empty(), "{p:?}");
    assert!(write_for(&r, &p, now(), "run", 50).is_none());
    let same_error = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .with(|r| r.sync_error = Some("flink: x".into()))
        .build();
    let p = decide(
        &same_error,
        &Observed {
            conflict: None,
            health: None,
            others: vec![],
            k8s: None,
            flink: Some(FlinkFacts::Unavailable(Unobserved::Unanswered("x".into()))),
        },
        now(),
        &SyncRules::default(),
    );
    assert!(p.changes.is_empty(), "a repeated error is not news: {p:?}");
    assert_eq!(
        p.error.map(|e| (e.system, e.text)),
        Some((System::Flink, "flink: x".to_string())),
        "but it is this run's error all the same, to report"
    );
}

#[test]
fn status_reason_is_bounded() {
    let r = RecordBuilder::new().build();
    let o = k8s_job(JobFacts {
        complete: true,
        log: log(&[], &"é".repeat(10_000)),
        ..job()
    });
    let rules = SyncRules {
        reason_max_bytes: 300,
        ..SyncRules::default()
    };
    assert!(reason(&decide(&r, &o, now(), &rules)).len() <= 300);
}

#[test]
fn the_write_is_conditional_on_status_jobid_and_revision() {
    let r = RecordBuilder::new().with(|r| r.revision = Some(7)).build();
    let o = k8s_job(JobFacts {
        complete: true,
        ..job()
    });
    let p = decide(&r, &o, now(), &SyncRules::default());
    let w = write_for(&r, &p, now(), "run-1", 50).expect("a write");
    let q = w.get_document("q").expect("filter");
    assert_eq!(q.get_str("status").ok(), Some("CREATED"));
    assert_eq!(q.get("flink_job_id"), Some(&Bson::Null));
    assert_eq!(q.get_i64("revision").ok(), Some(7));
    let u = w.get_document("u").expect("update");
    assert_eq!(u.get_document("$inc").ok(), Some(&doc! {"revision": 1_i64}));
    let pushed = u
        .get_document("$push")
        .and_then(|p| p.get_document("status_history"))
        .expect("history");
    assert_eq!(pushed.get_i64("$slice").ok(), Some(-50));
    let fresh = RecordBuilder::new().build();
    let w = write_for(
        &fresh,
        &decide(&fresh, &o, now(), &SyncRules::default()),
        now(),
        "r",
        50,
    )
    .expect("a write");
    assert_eq!(
        w.get_document("q")
            .and_then(|q| q.get_document("revision"))
            .ok(),
        Some(&doc! {"$exists": false})
    );
}

fn any_status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn any_flink() -> impl Strategy<Value = Option<FlinkFacts>> {
    let state = prop::sample::select(vec![
        "CREATED",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "CANCELED",
        "SUSPENDED",
        "RESTARTING",
        "WHATEVER",
    ]);
    prop_oneof![
        Just(None),
        Just(Some(FlinkFacts::Missing)),
        ".{0,20}".prop_map(|e| Some(FlinkFacts::Unavailable(Unobserved::Unanswered(e)))),
        (state, -1i64..T0 + 10_000, -1i64..T0 + 10_000).prop_map(|(s, a, b)| Some(
            FlinkFacts::Found(FlinkJob {
                name: String::new(),
                tasks: None,
                last_modification_ms: -1,
                state: FlinkState::parse(s),
                start_ms: a,
                end_ms: b,
                root_cause: None
            })
        )),
    ]
}

fn any_k8s() -> impl Strategy<Value = Option<K8sFacts>> {
    prop_oneof![
        Just(None),
        Just(Some(K8sFacts::NoJob)),
        Just(Some(K8sFacts::Unavailable(Unobserved::Unanswered(
            "down".into()
        )))),
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(complete, failed, with_id)| {
            let ids: &[&str] = if with_id { &[ID] } else { &[] };
            Some(K8sFacts::Job(JobFacts {
                complete,
                failed: failed.then(|| "BackoffLimitExceeded".to_string()),
                log: log(ids, "tail"),
                ..job()
            }))
        }),
    ]
}

proptest! {
    #[test]
    fn no_observation_ever_moves_a_final_record(status in any_status(), has_id in any::<bool>(),
            k8s in any_k8s(), flink in any_flink(), misses in 0i64..5, ago in 0i64..100_000) {
        let mut b = RecordBuilder::new().status(status).submitted_ago(Duration::seconds(ago)).with(|r| r.flink_missing_count = misses as u32);
        if has_id { b = b.flink_job_id(ID2); }
        let r = b.build();
        let p = decide(&r, &Observed { conflict: None, k8s, flink, health: None, others: vec![] }, now(), &SyncRules::default());
        if status.is_final() {
            prop_assert!(p.changes.is_empty(), "final record changed: {:?}", p);
        }
        if let Some((from, _, _)) = p.transition() {
            prop_assert_eq!(from, r.status);
        }
        // Every plan that changes something becomes a write pinned to what was read.
        if let Some(w) = write_for(&r, &p, now(), "run", 50) {
            let q = w.get_document("q").expect("filter");
            prop_assert_eq!(q.get("_id"), Some(&id_bson(&r.oid)));
            prop_assert_eq!(q.get_str("status").ok(), Some(r.status.as_str()));
            prop_assert!(q.contains_key("revision") && q.contains_key("flink_job_id"));
        } else {
            prop_assert!(p.changes.is_empty());
        }
    }
}

#[test]
fn the_write_matches_flink_job_id_as_stored_empty_null_or_set() {
    let filter_of = |r: &Record, o: &Observed| {
        let p = decide(r, o, now(), &SyncRules::default());
        let w = write_for(r, &p, now(), "run-1", 50).expect("a write");
        w.get_document("q")
            .expect("filter")
            .get("flink_job_id")
            .cloned()
    };
    let complete = k8s_job(JobFacts {
        complete: true,
        ..job()
    });
    let empty = RecordBuilder::new()
        .with(|r| r.flink_job_id_empty = true)
        .build();
    assert_eq!(
        filter_of(&empty, &complete),
        Some(Bson::String(String::new()))
    );
    let null = RecordBuilder::new().build();
    assert_eq!(filter_of(&null, &complete), Some(Bson::Null));
    let id = "0123456789abcdef0123456789abcdef";
    let set = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(id)
        .build();
    assert_eq!(
        filter_of(&set, &flink("FINISHED", 1_000, 2_000)),
        Some(Bson::String(id.to_string()))
    );
}

fn found(state: &str, start: i64, end: i64) -> FlinkFacts {
    FlinkFacts::Found(FlinkJob {
        name: String::new(),
        tasks: None,
        last_modification_ms: -1,
        state: FlinkState::parse(state),
        start_ms: start,
        end_ms: end,
        root_cause: (state == "FAILED").then(|| "java.lang.ArithmeticException: / by zero".into()),
    })
}

fn two_jobs(first: FlinkFacts, second: FlinkFacts) -> (Record, Observed) {
    let r = RecordBuilder::new()
        .status(Status::Running)
        .flink_job_id(ID)
        .with(|r| r.flink_job_ids = vec![id(ID), id(ID2)])
        .build();
    let o = Observed {
        conflict: None,
        k8s: None,
        flink: Some(first),
        health: None,
        others: vec![(id(ID2), second)],
    };
    (r, o)
}

#[test]
fn a_record_of_several_jobs_fails_when_any_fails_and_keeps_each_state() {
    let (r, o) = two_jobs(
        found("FINISHED", T0, T0 + 5_000),
        found("FAILED", T0 + 1_000, T0 + 9_000),
    );
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(p.transition().map(|t| t.1), Some(Status::Failed));
    let states = p.changes.iter().find_map(|c| match c {
        Change::FlinkJobsState(s) => Some(s.clone()),
        _ => None,
    });
    let states = states.expect("each job's state kept");
    assert_eq!(states.get(ID).map(String::as_str), Some("FINISHED"));
    assert_eq!(states.get(ID2).map(String::as_str), Some("FAILED"));
    assert!(
        p.changes.contains(&Change::Duration(9.0)),
        "times span the jobs: {:?}",
        p.changes
    );
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::StatusReason(r) if r.contains("ArithmeticException")))
    );
}

#[test]
fn a_record_of_several_jobs_runs_while_any_runs_and_finishes_when_all_do() {
    let (r, o) = two_jobs(found("FINISHED", T0, T0 + 5_000), found("RUNNING", T0, -1));
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(p.transition(), None, "still RUNNING: {:?}", p.changes);
    let (r, o) = two_jobs(
        found("FINISHED", T0, T0 + 5_000),
        found("FINISHED", T0 + 1_000, T0 + 7_000),
    );
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(p.transition().map(|t| t.1), Some(Status::Finished));
    let (r, o) = two_jobs(
        found("CANCELED", T0, T0 + 5_000),
        found("FINISHED", T0, T0 + 7_000),
    );
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(p.transition().map(|t| t.1), Some(Status::Cancelled));
}

#[test]
fn a_job_of_several_without_an_answer_holds_the_record() {
    let (r, o) = two_jobs(
        found("FINISHED", T0, T0 + 5_000),
        FlinkFacts::Unavailable(Unobserved::Unanswered("GET /jobs/x: HTTP 503".into())),
    );
    let p = decide(&r, &o, now(), &SyncRules::default());
    assert_eq!(p.transition(), None);
    assert!(
        p.changes
            .iter()
            .any(|c| matches!(c, Change::SyncError(Some(e)) if e.text.contains("HTTP 503")))
    );
}
