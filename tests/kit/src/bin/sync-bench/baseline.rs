//! The per-record algorithm of the design note, the baseline sync is
//! measured against: per record, in turn, one `GET /jobs/{id}` and one
//! update; for a record without a JobID, first one Job get, one pod list and
//! one log read. Its writes are the note's (`flink_job_id`, `status`,
//! `flink_state` by `_id`), not the product's: it stands for the design the
//! product replaced, not for the product.

use std::time::Instant;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use mongodb::bson::{Bson, Document, doc};
use test_kit::scenario::NS;

use crate::report::Measure;
use crate::rig::{Bench, get_json, log_params, non_final_docs};

impl Bench {
    /// The note's algorithm over the records of `db`.
    pub async fn baseline(&self, db: &str) -> Measure {
        let coll = self
            .client
            .database(db)
            .collection::<Document>("flink_jobs");
        let jobs: Api<Job> = Api::namespaced(self.kube.clone(), NS);
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let http = reqwest::Client::new();
        self.reset_counts();
        let start = Instant::now();
        let records = non_final_docs(&coll, None).await;
        let mut changed = 0;
        for r in records {
            let job_id = r.get_str("job_id").unwrap_or_default().to_string();
            let mut flink_id = r.get_str("flink_job_id").ok().map(str::to_string);
            if flink_id.is_none() {
                if jobs.get(&job_id).await.is_err() {
                    continue;
                }
                let list = pods
                    .list(&ListParams::default().labels(&format!("job-name={job_id}")))
                    .await;
                if let Some(pod) = list
                    .ok()
                    .and_then(|l| l.items.into_iter().next())
                    .and_then(|p| p.metadata.name)
                {
                    let lp = log_params();
                    let log = pods.logs(&pod, &lp).await.unwrap_or_default();
                    flink_id = flink_job_sync::rules::podlog::submitted_job_ids(log.as_bytes())
                        .first()
                        .map(|i| i.to_string());
                }
            }
            let Some(id) = flink_id else { continue };
            let base = self.flink_url_of(r.get_str("flink_cluster").ok());
            let body = get_json(&http, &format!("{base}/jobs/{id}")).await;
            let state = body["state"].as_str().unwrap_or("RUNNING");
            let status = match state {
                "FINISHED" => "FINISHED",
                _ => "RUNNING",
            };
            coll.update_one(
                doc! {"_id": r.get("_id").cloned().unwrap_or(Bson::Null)},
                doc! {"$set": {"flink_job_id": &id, "status": status, "flink_state": state}},
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            if status != r.get_str("status").unwrap_or_default() {
                changed += 1;
            }
        }
        let wall = start.elapsed();
        self.measure(
            "per-record (design note)",
            wall,
            self.counts.take_all(),
            None,
            Some(changed),
        )
    }
}
