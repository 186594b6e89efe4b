//! The reads of `flink_jobs`: the non-final records a sync run decides on,
//! which requested records are final, which records claim running JobIDs,
//! what cleanup needs of the records of finished Jobs, and the monitoring's
//! aggregations.

use std::collections::{HashMap, HashSet};

use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};

use crate::adapters::store::cursor::each_doc;
use crate::adapters::store::record::{RecordDoc, projection};
use crate::error::Error;
use crate::rules::cleanup::RecordFacts;
use crate::rules::model::{ClusterRef, Status, is_dns_subdomain};
use crate::rules::record::{MalformedRecord, Record};

/// Reads of the records collection.
pub struct Records {
    records: Collection<Document>,
}

impl Records {
    pub(crate) fn new(records: Collection<Document>) -> Records {
        Records { records }
    }

    pub(crate) fn collection(&self) -> &Collection<Document> {
        &self.records
    }

    /// The non-final records (all, or those named, or those of some
    /// clusters), in `_id` order, parsed as they stream in (each document
    /// is dropped once parsed, so a run never holds two copies of the
    /// fleet), and the ones that could not be parsed.
    pub async fn non_final(
        &self,
        job_ids: Option<&[String]>,
        clusters: Option<&[ClusterRef]>,
    ) -> Result<(Vec<Record>, Vec<MalformedRecord>), Error> {
        const CONTEXT: &str = "reading non-final records";
        let statuses: Vec<&str> = Status::NON_FINAL.iter().map(|s| s.as_str()).collect();
        let mut filter = doc! {"status": {"$in": statuses}};
        if let Some(ids) = job_ids {
            filter.insert("job_id", doc! {"$in": ids});
        }
        if let Some(clusters) = clusters {
            filter.insert("$or", cluster_scope(clusters));
        }
        let cursor = self
            .records
            .clone_with_type::<RecordDoc>()
            .find(filter)
            .projection(projection())
            .batch_size(1000)
            .await
            .map_err(Error::mongo(CONTEXT))?;
        let mut records = Vec::new();
        let mut malformed = Vec::new();
        each_doc(cursor, CONTEXT, |d| match d.into_record() {
            Ok(r) => records.push(r),
            Err(e) => malformed.push(e),
        })
        .await?;
        // Sorted here rather than by the server: the order only has to be
        // stable for resuming, and a server-side sort costs the store a
        // blocking sort of the whole result.
        records.sort_by(|a, b| a.oid.sort_key().cmp(&b.oid.sort_key()));
        Ok((records, malformed))
    }

    /// Of these job_ids, the ones whose record has a final status (one
    /// query on the `job_id` index; a manual run's answer says which
    /// requested records it left alone for being final).
    pub async fn final_job_ids(&self, job_ids: &[String]) -> Result<Vec<String>, Error> {
        const CONTEXT: &str = "reading final records among the requested";
        let statuses: Vec<&str> = Status::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect();
        let filter = doc! {"job_id": {"$in": job_ids}, "status": {"$in": statuses}};
        let cursor = self
            .records
            .find(filter)
            .projection(doc! {"_id": 0, "job_id": 1})
            .await
            .map_err(Error::mongo(CONTEXT))?;
        let mut out = Vec::new();
        each_doc(cursor, CONTEXT, |d| {
            if let Ok(id) = d.get_str("job_id") {
                out.push(id.to_string());
            }
        })
        .await?;
        Ok(out)
    }

    /// Of these JobIDs, the ones some record claims (as `flink_job_id` or
    /// among `flink_job_ids`), final records included: one query per field,
    /// each on its index. (An `$or` of the two would be one query, but not
    /// every server unions indexes for it: SecantusDB scans the collection,
    /// 21 s at 10,000 records and 500 JobIDs against 0.67 s for the two.)
    pub async fn claimed_job_ids(&self, ids: &[String]) -> Result<HashSet<String>, Error> {
        const CONTEXT: &str = "reading which records claim the running jobs";
        let mut claimed = HashSet::new();
        for chunk in ids.chunks(10_000) {
            for field in ["flink_job_id", "flink_job_ids"] {
                let cursor = self
                    .records
                    .find(doc! {field: {"$in": chunk}})
                    .projection(doc! {"_id": 0, field: 1})
                    .await
                    .map_err(Error::mongo(CONTEXT))?;
                each_doc(cursor, CONTEXT, |d| {
                    let all = d.get_array("flink_job_ids").into_iter().flatten();
                    let ids = d.get("flink_job_id").into_iter().chain(all);
                    claimed.extend(ids.filter_map(Bson::as_str).map(str::to_string));
                })
                .await?;
            }
        }
        Ok(claimed)
    }

    /// What cleanup needs of the records submitted as these Jobs of
    /// namespace `ns`, by Job name. A record names its Job by
    /// `k8s_job_name`, else by its `job_id`.
    pub async fn of_jobs(
        &self,
        names: &[&str],
        ns: &str,
    ) -> Result<HashMap<String, RecordFacts>, Error> {
        const CONTEXT: &str = "reading records of finished Jobs";
        let mut out = HashMap::new();
        for chunk in names.chunks(1000) {
            let filter =
                doc! {"$or": [{"k8s_job_name": {"$in": chunk}}, {"job_id": {"$in": chunk}}]};
            let cursor = self
                .records
                .find(filter)
                .projection(doc! {"job_id": 1, "k8s_job_name": 1, "k8s_namespace": 1, "status": 1, "flink_job_id": 1})
                .await
                .map_err(Error::mongo(CONTEXT))?;
            each_doc(cursor, CONTEXT, |d| {
                if let Some((name, facts)) = job_record(&d, ns) {
                    out.insert(name, facts);
                }
            })
            .await?;
        }
        Ok(out)
    }

    /// Runs an aggregation over the records (the monitoring's pipelines).
    pub async fn aggregate(
        &self,
        pipeline: Vec<Document>,
        context: &str,
    ) -> Result<Vec<Document>, Error> {
        let cursor = self
            .records
            .aggregate(pipeline)
            .await
            .map_err(Error::mongo(context))?;
        let mut out = Vec::new();
        each_doc(cursor, context, |d| out.push(d)).await?;
        Ok(out)
    }
}

/// The records of these clusters: by `flink_cluster`, and, for the default
/// cluster, the records that name none.
fn cluster_scope(clusters: &[ClusterRef]) -> Vec<Document> {
    let named: Vec<&str> = clusters
        .iter()
        .filter_map(|c| match c {
            ClusterRef::Named(n) => Some(n.as_str()),
            ClusterRef::Default => None,
        })
        .collect();
    let mut any = vec![doc! {"flink_cluster": {"$in": named}}];
    if clusters.contains(&ClusterRef::Default) {
        // Null matches a missing field too.
        any.push(doc! {"flink_cluster": null});
    }
    any
}

/// A record as cleanup reads it, keyed by its Job's name; `None` for a
/// record of another namespace or one whose Job name cannot be a name.
fn job_record(d: &Document, ns: &str) -> Option<(String, RecordFacts)> {
    let job_id = d.get_str("job_id").ok()?;
    let name = d.get_str("k8s_job_name").unwrap_or(job_id);
    let record_ns = d.get_str("k8s_namespace").unwrap_or(ns);
    if record_ns != ns || !is_dns_subdomain(name) {
        return None;
    }
    let facts = RecordFacts {
        job_id: job_id.to_string(),
        status: d.get_str("status").ok().and_then(Status::parse),
        has_flink_job_id: matches!(d.get("flink_job_id"), Some(Bson::String(s)) if !s.is_empty()),
    };
    Some((name.to_string(), facts))
}
