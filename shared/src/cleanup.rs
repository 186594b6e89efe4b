//! The daily cleanup: delete the product's finished Kubernetes Jobs once they
//! are old enough, never destroying evidence sync still needs. The rule is the
//! pure [`decide`]; [`Cleaner::run`] lists, looks the records up, and deletes
//! with propagation Background (a Job already gone counts as done).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, ListParams};
use mongodb::bson::{Bson, Document, doc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;
use crate::k8s::describe;
use crate::model::{Status, is_dns_subdomain};

/// What cleanup needs to know of a Kubernetes Job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts {
    pub name: String,
    /// When it finished: `completionTime` of a complete Job, the `Failed`
    /// condition's `lastTransitionTime` of a failed one; `None` if not finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What cleanup needs to know of the record submitted as that Job.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFacts {
    pub job_id: String,
    pub status: Option<Status>,
    pub has_flink_job_id: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// Running, suspended, or otherwise not finished.
    NotFinished,
    /// Finished less than the minimum age ago.
    TooRecent,
    /// Its record still waits for sync to read the JobID from the pod log.
    EvidenceNeeded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Delete {
        /// Deleted although its record still waited for its JobID: past the hard maximum age.
        evidence_lost: Option<String>,
    },
    Keep(KeepReason),
}

#[derive(Debug, Clone)]
pub struct CleanupRules {
    pub min_age: Duration,
    pub max_evidence_age: Duration,
}

impl Default for CleanupRules {
    fn default() -> Self {
        CleanupRules {
            min_age: Duration::hours(24),
            max_evidence_age: Duration::days(7),
        }
    }
}

/// The rule for one Job.
pub fn decide(
    job: &JobFacts,
    record: Option<&RecordFacts>,
    now: DateTime<Utc>,
    rules: &CleanupRules,
) -> Decision {
    let Some(finished_at) = job.finished_at else {
        return Decision::Keep(KeepReason::NotFinished);
    };
    let age = now - finished_at;
    if age < rules.min_age {
        return Decision::Keep(KeepReason::TooRecent);
    }
    let waiting = record.filter(|r| !r.has_flink_job_id && !r.status.is_some_and(Status::is_final));
    match waiting {
        None => Decision::Delete {
            evidence_lost: None,
        },
        Some(_) if age < rules.max_evidence_age => Decision::Keep(KeepReason::EvidenceNeeded),
        Some(r) => Decision::Delete {
            evidence_lost: Some(r.job_id.clone()),
        },
    }
}

/// When a Job finished, read from its status.
pub fn finished_at(job: &Job) -> Option<DateTime<Utc>> {
    use crate::k8s::{to_utc, true_condition};
    let status = job.status.as_ref()?;
    if let Some(complete) = true_condition(job, "Complete") {
        return status
            .completion_time
            .as_ref()
            .and_then(to_utc)
            .or_else(|| complete.last_transition_time.as_ref().and_then(to_utc));
    }
    true_condition(job, "Failed")
        .and_then(|c| c.last_transition_time.as_ref())
        .and_then(to_utc)
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CleanupRequest {
    #[serde(default)]
    pub dry_run: bool,
}

impl CleanupRequest {
    /// The keys a manual cleanup payload may carry.
    pub const KEYS: [&str; 1] = ["dry_run"];
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CleanupSummary {
    pub dry_run: bool,
    pub namespace: String,
    pub jobs_seen: usize,
    /// Deleted (or, in a dry run, to be deleted).
    pub deleted: Vec<String>,
    pub kept: BTreeMap<KeepReason, usize>,
    /// Deleted past the hard maximum age although their record still had no JobID.
    pub evidence_lost: Vec<String>,
    pub errors: Vec<String>,
    pub elapsed_ms: u64,
}

pub struct Cleaner {
    pub jobs: Api<Job>,
    pub namespace: String,
    pub selector: String,
    pub records: mongodb::Collection<Document>,
    pub rules: CleanupRules,
}

impl Cleaner {
    pub async fn from_config(cfg: &Config) -> Result<Cleaner, Error> {
        let client = crate::k8s::KubeObserver::client_for(cfg).await?;
        let store = crate::store::Store::connect(cfg).await?;
        Ok(Cleaner {
            jobs: Api::namespaced(client, &cfg.k8s_namespace),
            namespace: cfg.k8s_namespace.clone(),
            selector: cfg.k8s_job_selector.clone(),
            records: store.records().clone(),
            rules: cfg.cleanup.clone(),
        })
    }

    pub async fn run(&self, req: &CleanupRequest) -> Result<CleanupSummary, Error> {
        let clock = std::time::Instant::now();
        let now = Utc::now();
        let mut summary = CleanupSummary {
            dry_run: req.dry_run,
            namespace: self.namespace.clone(),
            ..Default::default()
        };
        let listed = self
            .jobs
            .list(&ListParams::default().labels(&self.selector))
            .await
            .map_err(Error::kube(format!(
                "listing Jobs in namespace {}",
                self.namespace
            )))?;
        summary.jobs_seen = listed.items.len();
        let facts: Vec<JobFacts> = listed
            .items
            .iter()
            .filter_map(|j| {
                Some(JobFacts {
                    name: j.metadata.name.clone()?,
                    finished_at: finished_at(j),
                })
            })
            .collect();
        // Only Jobs old enough to delete need their record looked up.
        let candidates: Vec<&str> = facts
            .iter()
            .filter(|f| f.finished_at.is_some_and(|t| now - t >= self.rules.min_age))
            .map(|f| f.name.as_str())
            .collect();
        let records = self.records_of(&candidates).await?;
        for job in &facts {
            match decide(job, records.get(&job.name), now, &self.rules) {
                Decision::Keep(reason) => *summary.kept.entry(reason).or_default() += 1,
                Decision::Delete { evidence_lost } => {
                    if let Some(job_id) = &evidence_lost {
                        tracing::warn!(job = %job.name, job_id = %job_id,
                            "deleting a Job whose record never got its Flink JobID: past the hard maximum age");
                    }
                    if !req.dry_run
                        && let Err(e) = self.delete(&job.name).await
                    {
                        tracing::warn!(job = %job.name, error = %e, "delete failed");
                        summary.errors.push(format!("{}: {e}", job.name));
                        continue;
                    }
                    summary.evidence_lost.extend(evidence_lost);
                    summary.deleted.push(job.name.clone());
                }
            }
        }
        summary.elapsed_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(namespace = %summary.namespace, jobs_seen = summary.jobs_seen, deleted = summary.deleted.len(),
            kept = %crate::telemetry::json(&summary.kept), errors = summary.errors.len(), dry_run = req.dry_run, "cleanup run done");
        Ok(summary)
    }

    async fn delete(&self, name: &str) -> Result<(), String> {
        match self.jobs.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }

    /// The records submitted as these Jobs in this namespace, by Job name.
    async fn records_of(&self, names: &[&str]) -> Result<HashMap<String, RecordFacts>, Error> {
        let mut out = HashMap::new();
        for chunk in names.chunks(1000) {
            let filter =
                doc! {"$or": [{"k8s_job_name": {"$in": chunk}}, {"job_id": {"$in": chunk}}]};
            let cursor = self
                .records
                .find(filter)
                .projection(doc! {"job_id": 1, "k8s_job_name": 1, "k8s_namespace": 1, "status": 1, "flink_job_id": 1})
                .await
                .map_err(Error::mongo("reading records of finished Jobs"))?;
            crate::store::each_doc(cursor, "reading records of finished Jobs", |d| {
                let Ok(job_id) = d.get_str("job_id") else {
                    return;
                };
                let name = d.get_str("k8s_job_name").unwrap_or(job_id);
                let ns = d.get_str("k8s_namespace").unwrap_or(&self.namespace);
                if ns != self.namespace || !is_dns_subdomain(name) {
                    return;
                }
                let has_id =
                    matches!(d.get("flink_job_id"), Some(Bson::String(s)) if !s.is_empty());
                let status = d.get_str("status").ok().and_then(Status::parse);
                out.insert(
                    name.to_string(),
                    RecordFacts {
                        job_id: job_id.to_string(),
                        status,
                        has_flink_job_id: has_id,
                    },
                );
            })
            .await?;
        }
        Ok(out)
    }
}

/// The Lambda handler of `cleanup`.
pub async fn handle(
    cleaner: &Cleaner,
    payload: serde_json::Value,
) -> Result<CleanupSummary, Error> {
    let req: CleanupRequest = crate::payload::parse(&payload, &CleanupRequest::KEYS)?;
    cleaner.run(&req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn job(finished_hours_ago: Option<i64>) -> JobFacts {
        JobFacts {
            name: "j".into(),
            finished_at: finished_hours_ago.map(|h| now() - Duration::hours(h)),
        }
    }

    fn record(status: Status, has_id: bool) -> RecordFacts {
        RecordFacts {
            job_id: "j".into(),
            status: Some(status),
            has_flink_job_id: has_id,
        }
    }

    #[test]
    fn cleanup_rule_table() {
        use Decision::*;
        use KeepReason::*;
        let r = CleanupRules::default();
        let rows: Vec<(JobFacts, Option<RecordFacts>, Decision)> = vec![
            (job(None), None, Keep(NotFinished)),
            (
                job(None),
                Some(record(Status::Finished, true)),
                Keep(NotFinished),
            ),
            (job(Some(23)), None, Keep(TooRecent)),
            (
                job(Some(25)),
                None,
                Delete {
                    evidence_lost: None,
                },
            ),
            (
                job(Some(25)),
                Some(record(Status::Running, true)),
                Delete {
                    evidence_lost: None,
                },
            ),
            (
                job(Some(25)),
                Some(record(Status::Failed, false)),
                Delete {
                    evidence_lost: None,
                },
            ),
            (
                job(Some(25)),
                Some(record(Status::Created, false)),
                Keep(EvidenceNeeded),
            ),
            (
                job(Some(24 * 7 - 1)),
                Some(record(Status::Suspended, false)),
                Keep(EvidenceNeeded),
            ),
            (
                job(Some(24 * 7 + 1)),
                Some(record(Status::Created, false)),
                Delete {
                    evidence_lost: Some("j".into()),
                },
            ),
            (
                job(Some(48)),
                Some(RecordFacts {
                    job_id: "j".into(),
                    status: None,
                    has_flink_job_id: false,
                }),
                Keep(EvidenceNeeded),
            ),
        ];
        for (i, (j, rec, want)) in rows.into_iter().enumerate() {
            assert_eq!(decide(&j, rec.as_ref(), now(), &r), want, "row {i}");
        }
    }

    #[test]
    fn failed_job_age_counts_from_the_failed_condition() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"},
            "status": {"conditions": [
                {"type": "FailureTarget", "status": "True", "lastTransitionTime": "2026-11-20T00:00:00Z"},
                {"type": "Failed", "status": "True", "lastTransitionTime": "2026-11-21T00:00:00Z"}]}
        }))
        .unwrap_or_default();
        assert_eq!(
            finished_at(&job).map(|t| t.to_rfc3339()),
            Some("2026-11-21T00:00:00+00:00".to_string())
        );
        let complete: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "y"},
            "status": {"completionTime": "2026-11-22T00:00:00Z", "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-22T00:00:01Z"}]}
        }))
        .unwrap_or_default();
        assert_eq!(
            finished_at(&complete).map(|t| t.to_rfc3339()),
            Some("2026-11-22T00:00:00+00:00".to_string())
        );
        let running: Job = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "z"}, "status": {"active": 1}}),
        )
        .unwrap_or_default();
        assert_eq!(finished_at(&running), None);
    }
}
