//! The floor, and the floor under the product's guards: what a sync run
//! cannot do less of for the same outcome. One find (a projection of the
//! fields a write depends on), one overview per cluster (all at once), the
//! unavoidable log reads (by pod name, without listing), the same health
//! looks as the product's (every job that just ended, and the budget's
//! running jobs; a look's three requests at once), and the same changes as
//! the product's, in `update` commands of 500: written unconditionally, or
//! (guarded) under the product's conditions, the record as read (`status`,
//! `flink_job_id`, `revision`) with `revision` bumped, which is what the
//! store charges for safety.

use std::time::Instant;

use flink_job_sync::rules::model::to_bson_date;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use mongodb::bson::{Bson, Document, doc};
use serde_json::Value;
use test_kit::scenario::NS;

use crate::report::Measure;
use crate::rig::{Bench, get_json, log_params, non_final_docs};

impl Bench {
    /// The floor: one find, one overview per cluster, the unavoidable log
    /// reads, the same health looks (every job that just ended, and the
    /// budget's running jobs; their three requests at once), and the same
    /// changes as the product's, in one `update` command per 500. Written
    /// unconditionally, or (`guarded`) under the product's conditions:
    /// the record as read (`status`, `flink_job_id`, `revision`), with
    /// `revision` bumped, which is what the store charges for safety.
    pub async fn floor(&self, db_name: &str, guarded: bool) -> Measure {
        let db = self.client.database(db_name);
        let coll = db.collection::<Document>("flink_jobs");
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let http = reqwest::Client::new();
        self.reset_counts();
        let start = Instant::now();
        let records = non_final_docs(
            &coll,
            Some(doc! {"job_id": 1, "status": 1, "flink_job_id": 1, "flink_cluster": 1, "revision": 1}),
        )
        .await;
        // One overview per cluster, at once (the generated JobIDs are unique
        // across clusters).
        let overviews = futures::future::join_all(self.clusters.iter().map(|c| {
            let url = format!("{}/jobs/overview", c.url);
            let http = &http;
            async move { get_json(http, &url).await }
        }))
        .await;
        let jobs: std::collections::HashMap<String, (String, i64, i64)> = overviews
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
        let pending: Vec<&Document> = records
            .iter()
            .filter(|r| r.get_str("flink_job_id").is_err())
            .collect();
        let logs: Vec<String> = futures::stream::iter(pending.iter().map(|r| {
            let pods = pods.clone();
            let pod = format!("{}-pod0", r.get_str("job_id").unwrap_or_default());
            async move {
                let lp = log_params();
                pods.logs(&pod, &lp).await.unwrap_or_default()
            }
        }))
        .buffered(8)
        .collect()
        .await;
        // The same changes the product writes (status, Flink state and times,
        // the history entry, the health fields; the JobID for records that
        // learn it): what a write of those changes costs at the least,
        // without the product's conditions or (`guarded`) with them.
        let now = to_bson_date(chrono::Utc::now());
        let date = |ms: i64| Bson::DateTime(mongodb::bson::DateTime::from_millis(ms));
        let history = |from: &str, to: &str| {
            doc! {"status_history": {"$each": [{"from": from, "to": to, "at": now.clone(), "source": "flink"}], "$slice": -50}}
        };
        // Health looks: the jobs that just ended, then the budget's share of
        // the running ones.
        let budget = self
            .health_budget
            .unwrap_or(flink_job_sync::rules::health::HealthRules::default().budget);
        let mut looks: Vec<(&Document, &str)> = Vec::new();
        let mut running_picked = 0;
        for r in &records {
            let Ok(id) = r.get_str("flink_job_id") else {
                continue;
            };
            match jobs.get(id) {
                Some((state, _, _)) if state == "FINISHED" => looks.push((r, id)),
                Some(_) if running_picked < budget => {
                    running_picked += 1;
                    looks.push((r, id));
                }
                _ => {}
            }
        }
        let health: std::collections::HashMap<String, Document> =
            futures::stream::iter(looks.into_iter().map(|(r, id)| {
                let base = self
                    .flink_url_of(r.get_str("flink_cluster").ok())
                    .to_string();
                let http = &http;
                let now = now.clone();
                async move { (id.to_string(), floor_look(http, &base, id, now).await) }
            }))
            .buffer_unordered(8)
            .collect()
            .await;
        let mut statements: Vec<Document> = Vec::new();
        let mut push = |r: &Document, mut set: Document, history: Option<Document>| {
            if let Some(h) = r.get_str("flink_job_id").ok().and_then(|id| health.get(id)) {
                set.extend(h.clone());
            }
            let mut u = doc! {"$set": set};
            if let Some(h) = history {
                u.insert("$push", h);
            }
            let mut q = doc! {"_id": r.get("_id").cloned().unwrap_or(Bson::Null)};
            let mut statement = doc! {};
            if guarded {
                q.insert("status", r.get_str("status").unwrap_or_default());
                q.insert(
                    "flink_job_id",
                    r.get("flink_job_id").cloned().unwrap_or(Bson::Null),
                );
                match r.get("revision") {
                    Some(rev) => q.insert("revision", rev.clone()),
                    None => q.insert("revision", doc! {"$exists": false}),
                };
                u.insert("$inc", doc! {"revision": 1_i64});
                statement.insert("hint", doc! {"_id": 1});
            }
            statement.insert("q", q);
            statement.insert("u", u);
            statements.push(statement);
        };
        for r in &records {
            let Ok(id) = r.get_str("flink_job_id") else {
                continue;
            };
            match jobs.get(id) {
                Some((state, start, end)) if state == "FINISHED" => push(
                    r,
                    doc! {"status": "FINISHED", "flink_state": state, "end_time": date(*end),
                    "duration": (end - start) as f64 / 1000.0, "last_synced_at": now.clone()},
                    Some(history("RUNNING", "FINISHED")),
                ),
                _ if health.contains_key(id) => push(r, doc! {}, None),
                _ => {}
            }
        }
        for (r, log) in pending.iter().zip(&logs) {
            let Some(id) = flink_job_sync::rules::podlog::submitted_job_ids(log.as_bytes())
                .first()
                .map(|i| i.to_string())
            else {
                continue;
            };
            let Some((state, start, _)) = jobs.get(&id) else {
                continue;
            };
            push(
                r,
                doc! {"status": "RUNNING", "flink_job_id": &id, "flink_job_ids": [&id],
                "flink_state": state, "start_time": date(*start), "last_synced_at": now.clone()},
                Some(history("CREATED", "RUNNING")),
            );
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

/// The floor's health look at one job: its checkpoints, their config and
/// its restarts, asked at once; the fields a look sets.
async fn floor_look(http: &reqwest::Client, base: &str, id: &str, now: Bson) -> Document {
    let urls = [
        format!("{base}/jobs/{id}/checkpoints"),
        format!("{base}/jobs/{id}/checkpoints/config"),
        format!("{base}/jobs/{id}/metrics?get=numRestarts"),
    ];
    let (checkpoints, config, metrics) = futures::join!(
        get_json(http, &urls[0]),
        get_json(http, &urls[1]),
        get_json(http, &urls[2]),
    );
    let count = |v: &Value| v.as_i64().unwrap_or(0);
    let latest = checkpoints["latest"]["completed"]["external_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let restarts = metrics[0]["value"]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    doc! {"health": "HEALTHY", "health_reasons": [], "health_checked_at": now, "restarts": restarts,
    "checkpoint": {"completed": count(&checkpoints["counts"]["completed"]),
        "failed": count(&checkpoints["counts"]["failed"]), "interval_ms": count(&config["interval"]),
        "latest_path": &latest}, "restart_point": latest}
}
