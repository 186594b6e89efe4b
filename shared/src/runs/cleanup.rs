//! The daily cleanup run: list the product's Jobs, look up the records of
//! those old enough to go, decide each with [`crate::rules::cleanup::decide`]
//! and delete with propagation Background (a Job already gone counts as
//! done). A Job that cannot be deleted is reported and the run goes on.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::adapters::k8s::Kubernetes;
use crate::adapters::store::Store;
use crate::config::CleanupConfig;
use crate::error::Error;
use crate::rules::cleanup::{CleanupRules, Decision, KeepReason, decide};

/// What a cleanup invocation asks for.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CleanupRequest {
    /// Decide and report, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

impl CleanupRequest {
    /// The keys a manual cleanup payload may carry.
    pub const KEYS: [&str; 1] = ["dry_run"];
}

/// What a cleanup run did (the invocation's answer).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CleanupSummary {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// The namespace cleaned.
    pub namespace: String,
    /// The product's Jobs listed.
    pub jobs_seen: usize,
    /// Deleted (or, in a dry run, to be deleted).
    pub deleted: Vec<String>,
    /// Jobs kept, by reason.
    pub kept: BTreeMap<KeepReason, usize>,
    /// Deleted past the hard maximum age although their record still had no JobID.
    pub evidence_lost: Vec<String>,
    /// Jobs that could not be deleted, with why.
    pub errors: Vec<String>,
    /// The run's wall time.
    pub elapsed_ms: u64,
}

/// The cleanup function's clients and rule, built once per warm function.
pub struct Cleaner {
    kube: Kubernetes,
    store: Store,
    rules: CleanupRules,
}

impl Cleaner {
    /// A cleaner over clients built elsewhere (tests point them at their own servers).
    pub fn new(kube: Kubernetes, store: Store, rules: CleanupRules) -> Cleaner {
        Cleaner { kube, store, rules }
    }

    /// Builds the clients from the cleanup function's configuration.
    pub async fn from_config(cfg: &CleanupConfig) -> Result<Cleaner, Error> {
        let kube = Kubernetes::connect(&cfg.kube).await?;
        let store = Store::connect(&cfg.mongo).await?;
        Ok(Cleaner::new(kube, store, cfg.cleanup.clone()))
    }

    /// One run over the namespace's Jobs.
    pub async fn run(&self, req: &CleanupRequest) -> Result<CleanupSummary, Error> {
        let clock = std::time::Instant::now();
        let now = Utc::now();
        let namespace = self.kube.namespace();
        let jobs = self.kube.job_ends(namespace).await?;
        let mut summary = CleanupSummary {
            dry_run: req.dry_run,
            namespace: namespace.to_string(),
            jobs_seen: jobs.len(),
            ..Default::default()
        };
        // Only Jobs old enough to delete need their record looked up.
        let candidates: Vec<&str> = jobs
            .iter()
            .filter(|j| j.finished_at.is_some_and(|t| now - t >= self.rules.min_age))
            .map(|j| j.name.as_str())
            .collect();
        let records = self.store.records().of_jobs(&candidates, namespace).await?;
        for job in &jobs {
            let evidence_lost = match decide(job, records.get(&job.name), now, &self.rules) {
                Decision::Keep(reason) => {
                    *summary.kept.entry(reason).or_default() += 1;
                    continue;
                }
                Decision::Delete { evidence_lost } => evidence_lost,
            };
            if let Some(job_id) = &evidence_lost {
                tracing::warn!(job = %job.name, job_id = %job_id,
                    "deleting a Job whose record never got its Flink JobID: past the hard maximum age");
            }
            if !req.dry_run
                && let Err(e) = self.kube.delete_job(namespace, &job.name).await
            {
                // The detail names the Job: "deleting Job x: HTTP 500 ...".
                tracing::warn!(job = %job.name, error = %e.detail(), "delete failed");
                summary.errors.push(e.detail());
                continue;
            }
            summary.evidence_lost.extend(evidence_lost);
            summary.deleted.push(job.name.clone());
        }
        summary.elapsed_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(namespace = %summary.namespace, jobs_seen = summary.jobs_seen, deleted = summary.deleted.len(),
            kept = %crate::reporting::telemetry::json(&summary.kept), errors = summary.errors.len(), dry_run = req.dry_run, "cleanup run done");
        Ok(summary)
    }
}

/// The Lambda handler of `cleanup`.
pub async fn handle(
    cleaner: &Cleaner,
    payload: serde_json::Value,
) -> Result<CleanupSummary, Error> {
    let req: CleanupRequest = crate::runs::payload::parse(&payload, &CleanupRequest::KEYS)?;
    cleaner.run(&req).await
}
