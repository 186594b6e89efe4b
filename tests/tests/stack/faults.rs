//! The fault suite: each fault injected into one sync run over a small fleet
//! with a known truth (Flink, Kubernetes and MongoDB reached through fault
//! proxies), then healthy runs. Every case checks that no record was corrupted
//! or misjudged, that nothing was counted missing from a transport error, and
//! that the next healthy runs reach the truth with each transition recorded
//! exactly once. Rows for the README land in `target/fault-figures/`.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use test_kit::faultproxy::Fault;
use test_kit::faultrig::{Outcome, Rig, Target, report};
use test_kit::scenario::NS;

fn status_json(code: u16, reason: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"injected {reason}","reason":"{reason}","code":{code}}}"#
    )
}

async fn run_cases(suite: &str, target: Target, cases: Vec<(&str, Fault)>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (name, fault) in cases {
        let rig = Rig::new().await;
        let (mut outcome, faulty) = rig.case(name, target, fault, &[]).await;
        match &faulty {
            Ok(summary) if summary.errors.is_empty() => outcome
                .problems
                .push(format!("the faulty run reported no errors: {summary:?}")),
            Ok(_) => {}
            Err(e) if target != Target::Mongo => outcome
                .problems
                .push(format!("a {target:?} fault failed the whole run: {e}")),
            Err(_) => {}
        }
        outcomes.push(outcome);
    }
    report(suite, &outcomes);
    outcomes
}

#[tokio::test]
async fn flink_faults_keep_statuses_record_errors_and_recover() {
    let outcomes = run_cases(
        "flink",
        Target::Flink,
        vec![
            ("Flink: JobManager down (connection refused)", Fault::Down),
            ("Flink: connection reset", Fault::Reset),
            (
                "Flink: answers after the timeout",
                Fault::Delay(Duration::from_millis(1500)),
            ),
            (
                "Flink: HTTP 500",
                Fault::Http(500, r#"{"errors":["Internal server error."]}"#.into()),
            ),
            (
                "Flink: HTTP 503",
                Fault::Http(
                    503,
                    r#"{"errors":["Service temporarily unavailable"]}"#.into(),
                ),
            ),
            ("Flink: truncated JSON", Fault::Truncate(150)),
            (
                "Flink: garbled JSON",
                Fault::Http(200, r#"{"jobs":[{"jid":"00fa0001","state":"#.into()),
            ),
        ],
    )
    .await;
    for o in &outcomes {
        o.assert_clean();
    }
}

#[tokio::test]
async fn a_job_dropping_out_of_the_overview_is_looked_up_not_missed() {
    let rig = Rig::new().await;
    // Every job leaves the overview, as after the JobManager evicts them;
    // /jobs/{id} still knows each.
    let ids: Vec<String> = rig
        .truth
        .iter()
        .filter_map(|t| t.flink_job_id.clone())
        .collect();
    for id in &ids {
        rig.flink.hide_from_overview(id);
    }
    let (outcome, faulty) = rig
        .case(
            "Flink: jobs dropping out of the overview",
            Target::Flink,
            Fault::Pass,
            &[],
        )
        .await;
    let summary = faulty.unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.errors.is_empty(), "{summary:?}");
    let counts = rig.flink.take_counts();
    assert!(
        counts.get("GET /jobs/{id}").copied().unwrap_or(0) >= 8,
        "absent JobIDs are looked up one by one: {counts:?}"
    );
    report("flink-overview", std::slice::from_ref(&outcome));
    outcome.assert_clean();
}

#[tokio::test]
async fn kubernetes_faults_leave_waiting_records_alone_and_recover() {
    let outcomes = run_cases(
        "kubernetes",
        Target::Kubernetes,
        vec![
            ("Kubernetes: API unreachable", Fault::Down),
            ("Kubernetes: connection reset", Fault::Reset),
            (
                "Kubernetes: 401 Unauthorized",
                Fault::Http(401, status_json(401, "Unauthorized")),
            ),
            (
                "Kubernetes: 403 Forbidden",
                Fault::Http(403, status_json(403, "Forbidden")),
            ),
            (
                "Kubernetes: 500",
                Fault::Http(500, status_json(500, "InternalError")),
            ),
            (
                "Kubernetes: answers after the timeout",
                Fault::Delay(Duration::from_millis(2500)),
            ),
            ("Kubernetes: truncated list", Fault::Truncate(300)),
        ],
    )
    .await;
    for o in &outcomes {
        o.assert_clean();
    }
}

#[tokio::test]
async fn a_job_deleted_between_list_and_log_read_is_not_misjudged() {
    let mut rig = Rig::new().await;
    let pod = rig.pods["new-0"].clone();
    rig.scenario.emulator.vanish_on_log_read(NS, "new-0", &pod);
    // Without its Job, new-0 cannot learn its JobID; inside the grace period
    // it stays CREATED.
    rig.expect_waiting("new-0");
    let (outcome, faulty) = rig
        .case(
            "Kubernetes: Job deleted between list and log read",
            Target::Kubernetes,
            Fault::Pass,
            &[],
        )
        .await;
    let summary = faulty.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.job_id == "new-0"
                && e.system == flink_job_sync::rules::model::System::Kubernetes),
        "the vanished pod's log read is reported: {summary:?}"
    );
    report("kubernetes-vanish", std::slice::from_ref(&outcome));
    outcome.assert_clean();
}

#[tokio::test]
async fn pod_logs_empty_or_beyond_the_byte_limit_are_not_misjudged() {
    let mut rig = Rig::new().await;
    // new-1: no log at all; new-2: the JobID line buried under 2 MiB of
    // output past the byte limit; wait-0: 2 MiB of noise, no JobID.
    let noise = "x".repeat(199) + "\n";
    rig.scenario
        .set_log(&rig.pods["new-1"], Vec::<u8>::new())
        .await;
    let id2 = rig
        .truth
        .iter()
        .find(|t| t.job_id == "new-2")
        .and_then(|t| t.flink_job_id.clone())
        .unwrap_or_default();
    let buried = format!(
        "Job has been submitted with JobID {id2}\n{}",
        noise.repeat(10_000)
    );
    rig.scenario.set_log(&rig.pods["new-2"], buried).await;
    rig.scenario
        .set_log(&rig.pods["wait-0"], noise.repeat(10_000))
        .await;
    rig.expect_waiting("new-1");
    rig.expect_waiting("new-2");
    let (outcome, faulty) = rig
        .case(
            "Kubernetes: pod without logs, log beyond the byte limit",
            Target::Kubernetes,
            Fault::Pass,
            &[("LOG_LIMIT_BYTES", "65536")],
        )
        .await;
    faulty.unwrap_or_else(|e| panic!("{e}"));
    report("kubernetes-logs", std::slice::from_ref(&outcome));
    outcome.assert_clean();
}

#[tokio::test]
async fn mongodb_down_at_start_fails_the_run_clearly_and_touches_nothing() {
    let rig = Rig::new().await;
    let (outcome, faulty) = rig
        .case("MongoDB: down at start", Target::Mongo, Fault::Down, &[])
        .await;
    let err = faulty.expect_err("a run without its store cannot succeed");
    assert!(err.contains("MongoDB"), "the error names MongoDB: {err}");
    report("mongo-down", std::slice::from_ref(&outcome));
    outcome.assert_clean();
}

#[tokio::test]
async fn mongodb_lost_in_the_middle_of_a_run_leaves_whole_records_and_recovers() {
    // The connection is cut after n wire messages, for every n from the
    // first command to past the end of a run: each cut lands at another step.
    let mut outcomes = Vec::new();
    let mut failed_runs = Vec::new();
    for n in 1..=14 {
        let rig = Rig::new().await;
        let (outcome, faulty) = rig
            .case(
                &format!("MongoDB: lost after {n} messages"),
                Target::Mongo,
                Fault::CutAfterMongoMessages(n),
                &[("SYNC_CHUNK_SIZE", "4")],
            )
            .await;
        if let Err(e) = faulty {
            failed_runs.push((n, e));
        }
        outcomes.push(outcome);
    }
    // The cuts must really land inside runs, the writes included: a cut
    // that comes after the last write only costs the run its own record.
    assert!(
        failed_runs.len() >= 6
            && failed_runs
                .iter()
                .any(|(_, e)| e.contains("writing records")),
        "cuts land at every step of a run, the writes included: {failed_runs:?}"
    );
    assert!(
        failed_runs.iter().all(|(_, e)| e.starts_with("MongoDB: ")),
        "a lost store fails the run with an error naming MongoDB: {failed_runs:?}"
    );
    report("mongo-lost", &outcomes);
    for o in &outcomes {
        o.assert_clean();
    }
}

#[tokio::test]
async fn a_round_trip_on_every_connection_changes_nothing_but_time() {
    // The benchmark's network delay (`scripts/bench --rtt-ms`): the delay
    // line must deliver every byte, in order, both ways.
    let rig = Rig::new().await;
    let targets = [Target::Flink, Target::Kubernetes, Target::Mongo];
    for t in targets {
        rig.proxy(t)
            .set(Fault::Latency(Duration::from_millis(2)))
            .await;
    }
    let syncer = rig.syncer(&[]).await;
    let mut outcome = Outcome::default();
    rig.recover(&syncer, &mut outcome).await;
    assert!(
        outcome.problems.is_empty() && outcome.lost == 0 && outcome.duplicated == 0,
        "{outcome:?}"
    );
    for t in targets {
        assert!(
            rig.proxy(t).connections() > 0,
            "{t:?} was reached through the delayed proxy"
        );
    }
    // The delay is there: a request and its answer cross the proxy twice
    // each way at least (a lower bound, which no machine can beat).
    // The scenario's Flink URL is the proxy's.
    let url = rig
        .scenario
        .cfg
        .flink
        .rest_url()
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string();
    let started = std::time::Instant::now();
    let answer = reqwest::get(format!("{url}/jobs/overview")).await;
    assert!(answer.is_ok_and(|a| a.status().is_success()));
    assert!(
        started.elapsed() >= Duration::from_millis(4),
        "a round trip through a 2 ms each-way delay took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_run_that_started_records_its_end_when_mongodb_fails_it_and_comes_back() {
    // MongoDB is cut in the middle of a run and back at once: the run fails
    // (or a retry of its request goes through), and either way the run it
    // recorded as started is not left `running`.
    let rig = Rig::new().await;
    let syncer = rig.syncer(&[("SYNC_CHUNK_SIZE", "4")]).await;
    let proxy = rig.proxy(Target::Mongo);
    let mut failed = 0;
    for n in 1..=16 {
        proxy.set(Fault::CutAfterMongoMessages(n)).await;
        let req = flink_job_sync::runs::sync::SyncRequest::default();
        let run = syncer.run(&req);
        tokio::pin!(run);
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                // Polled: the cut turns the proxy Down; the server comes back
                // before the run records how it ended.
                _ = tokio::time::sleep(Duration::from_millis(1)) => {
                    if proxy.fault() == Fault::Down {
                        proxy.set(Fault::Pass).await;
                    }
                }
            }
        };
        proxy.set(Fault::Pass).await;
        if let Err(e) = &result {
            eprintln!("cut after {n}: {e}");
        }
        failed += usize::from(result.is_err());
    }
    let runs: Vec<Document> = rig
        .scenario
        .db
        .collection::<Document>("flink_job_sync_runs")
        .find(doc! {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let state = |d: &Document| d.get_str("state").unwrap_or_default().to_string();
    let running: Vec<&Document> = runs.iter().filter(|d| state(d) == "running").collect();
    assert!(running.is_empty(), "runs left running: {running:#?}");
    let recorded_failed: Vec<&Document> = runs.iter().filter(|d| state(d) == "failed").collect();
    assert!(
        failed >= 1 && !recorded_failed.is_empty(),
        "some cut must fail a run after its start: {failed} failed, runs {runs:#?}"
    );
    assert!(recorded_failed.len() <= failed, "{runs:#?}");
    for d in recorded_failed {
        let error = d.get_str("error").unwrap_or_default();
        assert!(error.contains("MongoDB"), "the error is recorded: {d}");
        assert!(d.contains_key("finished_at"), "{d}");
    }
}
