//! The floor, and the floor under the product's guards: what a sync run
//! cannot do less of for the same outcome. One find (a projection of the
//! fields a write depends on), one overview per cluster (all at once), the
//! unavoidable log reads (by pod name, without listing), the same health
//! looks as the product's (every job that just ended, and the budget's
//! running jobs; a look's three requests at once), and the same writes, in
//! `update` commands of 500.
//!
//! **Its writes are the product's.** The floor lists each record's changes
//! as the product's [`Change`]s and has the product's statement builder
//! ([`statement`] of a [`Write`]) make the `update` statement of them, so it writes the
//! same fields, history entries and guards as sync, and parses a look's
//! answers with the product's parsers, so its `checkpoint` document is
//! sync's. A floor with statements of its own drifted from the product
//! once (no `health_history`, `restart_samples` or `last_sync_run`, a
//! `checkpoint` of other fields, a restart point where sync writes why
//! there is none) and measured less than sync's writes. What the floor
//! leaves out is the product's overhead, not its writes: whole records, the
//! Kubernetes lists, the run's bookkeeping, and the decision. Which changes
//! a record gets follows from how the fleet was generated (every job
//! healthy at its first look, a finished job's restart point as the
//! product's rule `health::restart_point` finds it), so the floor states
//! them rather than deciding them. `main` checks afterwards that the floor
//! left the records with the fields sync left ([`crate::shape`]).
//!
//! The guarded floor sends the product's statements as they are: each
//! matches the record only as it was read (`status`, `flink_job_id`,
//! `revision`) and bumps `revision`, which keeps concurrent runs and the
//! submitting system from overwriting each other. The plain floor takes
//! those guards off (`_id` alone, no bump, no hint): what separates the two
//! is what the store charges for that safety.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use flink_job_sync::adapters::flink::{parse_checkpoint_config, parse_checkpoints, parse_metric};
use flink_job_sync::adapters::store::new_run_id;
use flink_job_sync::adapters::store::record::record_from_document;
use flink_job_sync::adapters::store::writes::{Write, WriteContext, statement};
use flink_job_sync::rules::health::{self, Checkpoints};
use flink_job_sync::rules::model::{FlinkJobId, FlinkState, Health, Status};
use flink_job_sync::rules::plan::{Change, Plan, Source};
use flink_job_sync::rules::podlog::submitted_job_ids;
use flink_job_sync::rules::record::Record;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use mongodb::bson::{Bson, Document, doc};
use test_kit::scenario::NS;

use crate::report::Measure;
use crate::rig::{Bench, get_bytes, get_json, log_params, non_final_docs};

/// A job as the overview shows it: state, start and end (epoch ms).
type Overview = HashMap<String, (String, i64, i64)>;

/// What one health look read.
struct Look {
    /// `None` when Flink gave no usable answer.
    checkpoints: Option<Checkpoints>,
    restarts: u64,
}

impl Bench {
    /// The floor over the records of `db_name`; `guarded`: under the
    /// product's guards.
    pub async fn floor(&self, db_name: &str, guarded: bool) -> Measure {
        let defaults = crate::product::defaults();
        let db = self.client.database(db_name);
        let coll = db.collection::<Document>("flink_jobs");
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let http = reqwest::Client::new();
        self.reset_counts();
        let start = Instant::now();
        let docs = non_final_docs(
            &coll,
            Some(doc! {"job_id": 1, "status": 1, "flink_job_id": 1, "flink_cluster": 1, "revision": 1}),
        )
        .await;
        // As the product reads them: a malformed record is skipped.
        let records: Vec<Record> = docs
            .iter()
            .filter_map(|d| record_from_document(d).ok())
            .collect();
        // One overview per cluster, at once (the generated JobIDs are unique
        // across clusters).
        let overviews = futures::future::join_all(self.clusters.iter().map(|c| {
            let url = format!("{}/jobs/overview", c.url);
            let http = &http;
            async move { get_json(http, &url).await }
        }))
        .await;
        let jobs: Overview = overviews
            .iter()
            .flat_map(|o| o["jobs"].as_array().into_iter().flatten())
            .filter_map(|j| {
                Some((
                    j["jid"].as_str()?.to_string(),
                    (
                        j["state"].as_str()?.to_string(),
                        j["start-time"].as_i64()?,
                        j["end-time"].as_i64()?,
                    ),
                ))
            })
            .collect();
        let pending: Vec<&Record> = records
            .iter()
            .filter(|r| r.flink_job_id.is_none())
            .collect();
        let logs: Vec<String> = futures::stream::iter(pending.iter().map(|r| {
            let pods = pods.clone();
            let pod = crate::seed::pod_name(&r.job_id);
            async move {
                let lp = log_params();
                pods.logs(&pod, &lp).await.unwrap_or_default()
            }
        }))
        .buffered(defaults.concurrency)
        .collect()
        .await;
        // Health looks: the jobs that just ended, then the budget's share of
        // the running ones.
        let budget = self.health_budget.unwrap_or(defaults.health_budget);
        let mut looks: Vec<(&Record, &FlinkJobId)> = Vec::new();
        let mut running_picked = 0;
        for r in &records {
            let Some(id) = &r.flink_job_id else { continue };
            match jobs.get(id.as_str()) {
                Some((state, _, _)) if FlinkState::parse(state).ended() => looks.push((r, id)),
                Some(_) if running_picked < budget => {
                    running_picked += 1;
                    looks.push((r, id));
                }
                _ => {}
            }
        }
        let looked: HashMap<String, Look> =
            futures::stream::iter(looks.into_iter().map(|(r, id)| {
                let base = self
                    .flink_url_of(match &r.flink_cluster {
                        flink_job_sync::rules::model::ClusterRef::Default => None,
                        flink_job_sync::rules::model::ClusterRef::Named(n) => Some(n.as_str()),
                    })
                    .to_string();
                let http = &http;
                async move { (id.to_string(), look(http, &base, id.as_str()).await) }
            }))
            .buffer_unordered(defaults.concurrency)
            .collect()
            .await;
        let now = Utc::now();
        let run_id = new_run_id();
        let mut statements: Vec<Document> = Vec::new();
        let mut push = |record: &Record, changes: Vec<Change>| {
            let plan = Plan {
                changes,
                ..Default::default()
            };
            if let Some(w) = Write::new(record, &plan, now) {
                let ctx = WriteContext {
                    run_id: &run_id,
                    history_max: defaults.history_max,
                };
                let statement = statement(&w, ctx);
                statements.push(if guarded {
                    statement
                } else {
                    unguarded(statement)
                });
            }
        };
        for r in &records {
            let Some(id) = &r.flink_job_id else { continue };
            let job = jobs.get(id.as_str());
            let look = looked.get(id.as_str());
            let mut changes = match job {
                Some((state, start, end)) if FlinkState::parse(state).ended() => {
                    ended(r.status, state, *start, *end)
                }
                _ => Vec::new(),
            };
            if let Some(look) = look {
                changes.extend(look_changes(
                    look,
                    now,
                    job.map(|(state, _, _)| state.as_str()),
                ));
            }
            if !changes.is_empty() {
                push(r, changes);
            }
        }
        for (r, log) in pending.iter().zip(&logs) {
            let ids = submitted_job_ids(log.as_bytes());
            let Some(first) = ids.first().cloned() else {
                continue;
            };
            let Some((state, start, _)) = jobs.get(first.as_str()) else {
                continue;
            };
            let mut changes = vec![
                Change::FlinkJobId { first, all: ids },
                Change::FlinkState(FlinkState::parse(state)),
                Change::Status {
                    from: r.status,
                    to: Status::Running,
                    source: Source::Flink,
                },
            ];
            changes.extend(epoch(*start).map(Change::StartTime));
            push(r, changes);
        }
        let changed = statements.len() as u64;
        for chunk in statements.chunks(500) {
            db.run_command(
                doc! {"update": "flink_jobs", "updates": chunk.to_vec(), "ordered": false},
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let wall = start.elapsed();
        self.measure(
            if guarded {
                "floor, product's guards"
            } else {
                "floor (minimal calls)"
            },
            wall,
            self.counts.take_all(),
            None,
            Some(changed),
        )
    }
}

/// The changes of a record (status `from`) whose job has ended (`state`):
/// its state, status, end and duration, as sync writes them.
fn ended(from: Status, state: &str, start_ms: i64, end_ms: i64) -> Vec<Change> {
    let mut changes = vec![Change::FlinkState(FlinkState::parse(state))];
    if let Some(to) = FlinkState::parse(state).status().filter(|to| *to != from) {
        changes.push(Change::Status {
            from,
            to,
            source: Source::Flink,
        });
    }
    changes.extend(epoch(end_ms).map(Change::EndTime));
    if start_ms > 0 && end_ms > 0 {
        changes.push(Change::Duration((end_ms - start_ms).max(0) as f64 / 1000.0));
    }
    changes
}

/// A first look's changes at a healthy job: when it was looked at, its
/// checkpoints and restarts, a first restart sample, the restart point of a
/// job that ended, and its verdict.
fn look_changes(look: &Look, now: DateTime<Utc>, state: Option<&str>) -> Vec<Change> {
    let mut changes = vec![Change::HealthCheckedAt(now)];
    if let Some(c) = &look.checkpoints {
        changes.push(Change::Checkpoint(Some(c.clone())));
    }
    changes.push(Change::Restarts(look.restarts));
    changes.push(Change::RestartSamples(vec![(now, look.restarts)]));
    if let Some(state) = state.filter(|s| FlinkState::parse(s).ended()) {
        changes.push(Change::RestartPoint(health::restart_point(
            &FlinkState::parse(state),
            look.checkpoints.as_ref(),
        )));
    }
    changes.push(Change::Health {
        from: None,
        to: Health::Healthy,
        reasons: Vec::new(),
    });
    changes
}

/// The floor's health look at one job: its checkpoints, their config and
/// its restarts, asked at once, read by the product's parsers.
async fn look(http: &reqwest::Client, base: &str, id: &str) -> Look {
    let urls = [
        format!("{base}/jobs/{id}/checkpoints"),
        format!("{base}/jobs/{id}/checkpoints/config"),
        format!("{base}/jobs/{id}/metrics?get=numRestarts"),
    ];
    let (checkpoints, config, metrics) = futures::join!(
        get_bytes(http, &urls[0]),
        get_bytes(http, &urls[1]),
        get_bytes(http, &urls[2]),
    );
    let mut checkpoints = parse_checkpoints(&checkpoints).ok().flatten();
    if let (Some(c), Ok((interval, retention))) =
        (checkpoints.as_mut(), parse_checkpoint_config(&config))
    {
        c.interval_ms = Some(interval);
        c.retention = retention;
    }
    Look {
        checkpoints,
        restarts: parse_metric(&metrics, "numRestarts")
            .ok()
            .flatten()
            .unwrap_or(0),
    }
}

/// The product's statement without its guards: matched by `_id` alone,
/// `revision` not bumped, and no hint (an `_id` filter needs none).
fn unguarded(mut statement: Document) -> Document {
    let id = statement
        .get_document("q")
        .ok()
        .and_then(|q| q.get("_id"))
        .cloned()
        .unwrap_or(Bson::Null);
    statement.insert("q", doc! {"_id": id});
    statement.remove("hint");
    if let Ok(update) = statement.get_document_mut("u") {
        if let Ok(inc) = update.get_document_mut("$inc") {
            inc.remove("revision");
        }
        if update.get_document("$inc").is_ok_and(Document::is_empty) {
            update.remove("$inc");
        }
    }
    statement
}

/// Epoch milliseconds as a time; `None` for Flink's "none" (0 or -1).
fn epoch(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0)
        .then(|| Utc.timestamp_millis_opt(ms).single())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_floor_takes_off_the_guards_and_nothing_else() {
        let guarded = doc! {
            "q": {"_id": 7, "status": "RUNNING", "flink_job_id": "j", "revision": 3_i64},
            "u": {"$set": {"status": "FINISHED"}, "$inc": {"revision": 1_i64}, "$push": {"status_history": {"$each": []}}},
            "multi": false, "upsert": false, "hint": {"_id": 1},
        };
        let plain = unguarded(guarded);
        assert_eq!(
            plain,
            doc! {
                "q": {"_id": 7},
                "u": {"$set": {"status": "FINISHED"}, "$push": {"status_history": {"$each": []}}},
                "multi": false, "upsert": false,
            }
        );
    }

    #[test]
    fn a_finished_job_changes_state_status_end_and_duration() {
        let changes = ended(Status::Running, "FINISHED", 1_000, 61_000);
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0], Change::FlinkState(FlinkState::Finished));
        assert!(matches!(
            changes[1],
            Change::Status {
                from: Status::Running,
                to: Status::Finished,
                source: Source::Flink
            }
        ));
        assert_eq!(changes[3], Change::Duration(60.0));
    }
}
