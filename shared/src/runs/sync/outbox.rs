//! The run's side of the outbox: each write carries the events of its own
//! changes (so no transition is lost and none is announced that did not
//! happen), and the run's end publishes every pending event, this run's and
//! earlier runs' leftovers, pulling the accepted ones from their records.

use chrono::{DateTime, Utc};

use crate::adapters::events::{self, Publisher};
use crate::adapters::store::Store;
use crate::adapters::store::writes::Write;
use crate::reporting::summary::Summary;
use crate::rules::plan::Plan;
use crate::rules::record::Record;

/// Stores with the write the events its plan makes: a status change and a
/// health change, each with an id unique to the write's revision.
pub fn attach(write: &mut Write, record: &Record, plan: &Plan, now: DateTime<Utc>) {
    let revision = write.revision_after();
    let state = events::pending_event(record, plan, revision, now);
    let health = events::pending_health_event(record, plan, revision, now);
    write.events.extend(state.into_iter().chain(health));
}

/// Publishes every pending event and pulls the accepted ones from their
/// records. Failures leave them pending for the next run.
pub async fn publish(store: &Store, publisher: &Publisher, summary: &mut Summary) {
    let pending = match store.outbox().pending().await {
        Ok(p) => p,
        Err(e) => {
            summary.event_errors.push(e.to_string());
            return;
        }
    };
    if pending.is_empty() {
        return;
    }
    let (accepted, errors) = publisher.publish(&pending).await;
    for e in &errors {
        tracing::warn!(error = %e, "event not published: kept pending for the next run");
    }
    summary.event_errors.extend(errors);
    if let Err(e) = store.outbox().ack(&pending, &accepted).await {
        // Accepted but still stored: published again next run, with the
        // same event_id for consumers to drop.
        summary.event_errors.push(e.to_string());
    }
    // Added to the untracked announcements this run published before.
    summary.events_published += accepted.len();
    summary.events_pending = pending.len() - accepted.len();
}
