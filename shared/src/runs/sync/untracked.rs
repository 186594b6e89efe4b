//! Untracked jobs: what the clusters in a full run's scope run (not ended)
//! that no record claims. One overview per cluster (most already read for
//! the records), then a store query about only the JobIDs that neither a
//! record read this run nor a JobID it learned claims. Each is announced
//! once ("Flink Job Untracked") by real runs.

use std::collections::HashSet;

use chrono::Utc;

use crate::adapters::events::{self, Publisher};
use crate::adapters::store::Store;
use crate::error::Error;
use crate::reporting::summary::{UNTRACKED_MAX, Untracked};
use crate::rules::model::ClusterRef;
use crate::runs::sync::observe::{Observer, Sources, running};
use crate::runs::sync::run::Run;

/// Finds the untracked jobs of the clusters in scope, reports them in the
/// run's answer and, in a real run with events, announces the new ones.
pub async fn find<S: Sources>(
    observer: &Observer<'_, S>,
    clusters: Vec<ClusterRef>,
    claimed_here: &HashSet<&str>,
    store: &Store,
    run: &mut Run,
) -> Result<Vec<Untracked>, Error> {
    observer
        .overviews(clusters.iter().cloned(), &mut run.seen)
        .await;
    let mut candidates = Vec::new();
    for cluster in &clusters {
        let Some(Ok(overview)) = run.seen.overviews.get(cluster) else {
            continue;
        };
        for (id, job) in running(overview) {
            if claimed_here.contains(id.as_str()) || run.seen.learned.contains(id.as_str()) {
                continue;
            }
            candidates.push(Untracked {
                cluster: cluster.clone(),
                flink_job_id: id.to_string(),
                name: job.name.clone(),
                state: job.state.clone(),
            });
        }
    }
    // Left: jobs claimed by final records or records out of scope, and the
    // untracked ones; a query about a handful of JobIDs, not every running one.
    let ids: Vec<String> = candidates.iter().map(|u| u.flink_job_id.clone()).collect();
    let claimed = store.records().claimed_job_ids(&ids).await?;
    let mut untracked: Vec<Untracked> = candidates
        .into_iter()
        .filter(|u| !claimed.contains(&u.flink_job_id))
        .collect();
    untracked.sort();
    for u in &untracked {
        tracing::warn!(cluster = %u.cluster, flink_job_id = %u.flink_job_id, name = %u.name, "a running Flink job no record claims");
    }
    run.summary.untracked_count = untracked.len();
    run.summary.untracked = untracked.iter().take(UNTRACKED_MAX).cloned().collect();
    Ok(untracked)
}

/// Publishes one event per untracked job not announced before.
pub async fn announce(
    store: &Store,
    publisher: &Publisher,
    untracked: &[Untracked],
    run: &mut Run,
) {
    let summary = &mut run.summary;
    let due = match store.untracked().to_announce(untracked, Utc::now()).await {
        Ok(due) => due,
        Err(e) => {
            summary.event_errors.push(e.to_string());
            return;
        }
    };
    let pending: Vec<events::Pending> = due.iter().map(events::untracked_event).collect();
    if pending.is_empty() {
        return;
    }
    let (accepted, errors) = publisher.publish(&pending).await;
    summary.event_errors.extend(errors);
    summary.events_published += accepted.len();
    let keys: Vec<String> = due
        .iter()
        .filter(|u| accepted.contains(&events::untracked_event_id(u)))
        .map(Untracked::key)
        .collect();
    if let Err(e) = store.untracked().announced(&keys).await {
        summary.event_errors.push(e.to_string());
    }
}
