//! The runs collection: one document per real sync run, written when it
//! starts (`state: running`) and when it ends (`complete`, `partial` with
//! where to resume, or `failed` with the error), read for where the next run
//! resumes and for the sync lag.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};

use crate::adapters::store::record::{id_bson, parse_date, record_id, to_bson_date};
use crate::error::Error;
use crate::rules::record::RecordId;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Every record asked for was reached.
    Complete,
    /// Cut short near the deadline: the next run resumes after `resume_after`.
    Partial,
    /// An error ended the run (its text is in `error`).
    Failed,
}

impl RunState {
    /// As stored in `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Complete => "complete",
            RunState::Partial => "partial",
            RunState::Failed => "failed",
        }
    }
}

/// What a run's document says at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// How it ended.
    pub state: RunState,
    /// What it covered (`all`, `selected`, `clusters:<names>`).
    pub scope: String,
    /// Records read and decided.
    pub records_checked: usize,
    /// Records changed.
    pub records_changed: usize,
    /// Writes that met a record changed meanwhile.
    pub conflicts: usize,
    /// Records this run could not observe or write.
    pub errors: usize,
    /// Records that could not be read as records.
    pub malformed: usize,
    /// Status transitions, `FROM->TO` to count.
    pub transitions: BTreeMap<String, u64>,
    /// The run's time.
    pub elapsed_ms: u64,
    /// Where the next run resumes (a partial run), and how many records it left.
    pub resume_after: Option<(RecordId, usize)>,
    /// What ended a failed run.
    pub error: Option<String>,
}

/// The runs collection.
pub struct Runs {
    runs: Collection<Document>,
}

fn int(n: impl TryInto<i64>) -> Bson {
    Bson::Int64(n.try_into().unwrap_or(i64::MAX))
}

impl Runs {
    pub(crate) fn new(runs: Collection<Document>) -> Runs {
        Runs { runs }
    }

    pub(crate) async fn create_index(&self) -> Result<(), Error> {
        let index = mongodb::IndexModel::builder()
            .keys(doc! {"started_at": -1})
            .build();
        self.runs
            .create_index(index)
            .await
            .map_err(Error::mongo("creating the runs index"))?;
        Ok(())
    }

    /// Records a run's start (a real run only).
    pub async fn start(&self, run_id: &str, started: DateTime<Utc>) -> Result<(), Error> {
        self.runs
            .insert_one(doc! {"_id": run_id, "started_at": to_bson_date(started), "state": "running", "dry_run": false})
            .await
            .map_err(Error::mongo("recording the run"))?;
        Ok(())
    }

    /// Records a run's end and figures.
    pub async fn finish(&self, run_id: &str, end: &RunEnd) -> Result<(), Error> {
        let transitions: Document = end
            .transitions
            .iter()
            .map(|(k, v)| (k.clone(), int(*v)))
            .collect();
        let mut set = doc! {
            "finished_at": to_bson_date(Utc::now()),
            "state": end.state.as_str(),
            "scope": &end.scope,
            "records_checked": int(end.records_checked),
            "records_changed": int(end.records_changed),
            "conflicts": int(end.conflicts),
            "errors": int(end.errors),
            "malformed": int(end.malformed),
            "transitions": transitions,
            "elapsed_ms": int(end.elapsed_ms),
        };
        if let Some((after, deferred)) = &end.resume_after {
            set.insert("resume_after", id_bson(after));
            set.insert("records_deferred", int(*deferred));
        }
        if let Some(e) = &end.error {
            set.insert("error", e.as_str());
        }
        self.runs
            .update_one(doc! {"_id": run_id}, doc! {"$set": set})
            .await
            .map_err(Error::mongo("recording the run's end"))?;
        Ok(())
    }

    /// Where to resume: the `_id` the latest run over `scope` (every record,
    /// or some clusters' records) stopped after, when that run was cut short.
    pub async fn resume_point(&self, scope: &str) -> Result<Option<RecordId>, Error> {
        let latest = self
            .runs
            .find_one(doc! {"scope": scope, "finished_at": {"$exists": true}})
            .sort(doc! {"started_at": -1})
            .await
            .map_err(Error::mongo("reading the runs"))?;
        Ok(latest
            .filter(|d| d.get_str("state") == Ok(RunState::Partial.as_str()))
            .and_then(|d| d.get("resume_after").map(record_id)))
    }

    /// When the latest complete run over every non-final record started.
    pub async fn last_full_run(&self) -> Result<Option<DateTime<Utc>>, Error> {
        let found = self
            .runs
            .find_one(doc! {"state": RunState::Complete.as_str(), "scope": "all"})
            .sort(doc! {"started_at": -1})
            .await
            .map_err(Error::mongo("reading the runs"))?;
        Ok(found.and_then(|d| d.get("started_at").and_then(parse_date)))
    }
}
