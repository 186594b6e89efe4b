//! One sync run: read the non-final records, observe Kubernetes (for records
//! still waiting for their JobID) and Flink (one overview per cluster, then
//! only the JobIDs absent from it), decide each record with
//! [`plan::decide`], and apply the changed ones as conditional writes. One
//! bad record never fails the run; only an unreadable MongoDB does, and a
//! run that started records its end even then, when it can.
//!
//! - [`request`]: what an invocation asks for, and the scope it records;
//! - [`run`]: one run's own state (its id, its answer, what it has seen);
//! - [`observe`]: the observer, and the [`observe::Sources`] it asks;
//! - [`untracked`]: the running jobs no record claims;
//! - [`outbox`]: the events stored with each write, published at the end.

pub mod observe;
pub mod outbox;
pub mod request;
pub mod run;
pub mod untracked;

use std::collections::HashSet;
use std::time::Instant;

use chrono::Utc;

use crate::adapters::events::Publisher;
use crate::adapters::flink::{FlinkClient, FlinkClusters};
use crate::adapters::k8s::Kubernetes;
use crate::adapters::store::writes::{Outcome, Write, WriteContext};
use crate::adapters::store::{self, Store};
use crate::config::{SyncConfig, SyncSettings};
use crate::error::Error;
use crate::reporting::summary::Summary;
use crate::rules::model::ClusterRef;
use crate::rules::plan::{self, Observed, Plan, SyncRules};
use crate::rules::record::{Record, RecordId};
use crate::runs::sync::observe::{Live, Observer};
pub use crate::runs::sync::request::SyncRequest;
use crate::runs::sync::run::{Run, ms_since, rotate_after};

/// Where each real run's EMF document goes instead of stdout (a test reads
/// what CloudWatch would).
pub type MetricsSink = std::sync::Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

/// The sync function's clients, settings and rule, built once per warm function.
pub struct Syncer {
    store: Store,
    kube: Kubernetes,
    flink: FlinkClusters,
    /// Set when `EVENT_BUS_NAME` is.
    events: Option<Publisher>,
    settings: SyncSettings,
    rules: SyncRules,
    /// `None`: the EMF line is printed on stdout, for CloudWatch.
    metrics: Option<MetricsSink>,
}

/// Builds a [`Syncer`] from clients built elsewhere: the one way to make
/// one, for the functions ([`Syncer::from_config`]) and tests alike.
pub struct SyncerBuilder {
    syncer: Syncer,
}

impl SyncerBuilder {
    /// The Flink clusters followed: one client (the `FLINK_REST_URL`
    /// cluster) or every cluster's.
    pub fn flink(mut self, flink: impl Into<FlinkClusters>) -> Self {
        self.syncer.flink = flink.into();
        self
    }

    /// Publishes state-change events through `events` (none when `None`).
    pub fn events(mut self, events: Option<Publisher>) -> Self {
        self.syncer.events = events;
        self
    }

    /// How a run goes through the records.
    pub fn settings(mut self, settings: SyncSettings) -> Self {
        self.syncer.settings = settings;
        self
    }

    /// The rule's settings.
    pub fn rules(mut self, rules: SyncRules) -> Self {
        self.syncer.rules = rules;
        self
    }

    /// The syncer.
    pub fn build(self) -> Syncer {
        self.syncer
    }
}

impl Syncer {
    /// A builder over a store and a Kubernetes API; no Flink cluster, no
    /// events, default settings and rule until the builder says otherwise.
    pub fn builder(store: Store, kube: Kubernetes) -> SyncerBuilder {
        SyncerBuilder {
            syncer: Syncer {
                store,
                kube,
                flink: FlinkClusters::default(),
                events: None,
                settings: SyncSettings::default(),
                rules: SyncRules::default(),
                metrics: None,
            },
        }
    }

    /// Builds every client once, for all invocations of a warm function.
    pub async fn from_config(cfg: SyncConfig) -> Result<Syncer, Error> {
        let store = Store::connect(&cfg.mongo).await?;
        let kube = Kubernetes::connect(&cfg.kube).await?;
        let events = match cfg.events.bus_name {
            Some(_) => {
                let sdk = crate::adapters::aws::sdk_config().await;
                Publisher::from_settings(&sdk, &cfg.events)
            }
            None => None,
        };
        Ok(Syncer::builder(store, kube)
            .flink(FlinkClusters::from_settings(&cfg.flink)?)
            .events(events)
            .settings(cfg.sync)
            .rules(cfg.rules)
            .build())
    }

    /// Follows the records naming `flink_cluster: name` on `client`.
    pub fn add_cluster(&mut self, name: &str, client: FlinkClient) {
        self.flink.insert(name, client);
    }

    /// Publishes state-change events through `events` (none when `None`).
    pub fn set_events(&mut self, events: Option<Publisher>) {
        self.events = events;
    }

    /// Hands each real run's EMF document to `sink` from now on, instead of
    /// printing it.
    pub fn set_metrics(&mut self, sink: MetricsSink) {
        self.metrics = Some(sink);
    }

    /// Observes Kubernetes through `kube` from now on.
    pub fn set_kubernetes(&mut self, kube: Kubernetes) {
        self.kube = kube;
    }

    /// The records this syncer reads and writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rule's settings this syncer decides with.
    pub fn rules(&self) -> &SyncRules {
        &self.rules
    }

    /// One run over every record asked for, with no deadline.
    pub async fn run(&self, req: &SyncRequest) -> Result<Summary, Error> {
        self.run_until(req, None).await
    }

    /// A run that starts no new chunk of records after `stop_at` (the first
    /// chunk always runs, so every run makes progress). A run cut short is
    /// recorded as partial with the `_id` it stopped after, and the next run
    /// starts there, so every record is reached even when no single run can
    /// cover them all. A payload the deployment cannot honour is refused
    /// before anything is recorded; a run that started and failed is
    /// recorded as failed, with its error.
    pub async fn run_until(
        &self,
        req: &SyncRequest,
        stop_at: Option<Instant>,
    ) -> Result<Summary, Error> {
        let known: Vec<ClusterRef> = self.flink.all().collect();
        req.check_clusters(&known)?;
        let mut run = Run::new(store::new_run_id(), req);
        let span = tracing::info_span!("sync", run_id = %run.id, dry_run = req.dry_run);
        let _enter = span.enter();
        self.store.ensure_indexes().await?;
        if !req.dry_run {
            self.store.runs().start(&run.id, run.started).await?;
        }
        match self.records(req, stop_at, &mut run).await {
            Ok(resume_after) => self.finish(req, resume_after, run).await,
            Err(e) => {
                if !req.dry_run {
                    let end = run.end(req, None, Some(crate::error::chain(&e)));
                    if let Err(not_recorded) = self.store.runs().finish(&run.id, &end).await {
                        tracing::warn!(error = %not_recorded, "the failed run's end could not be recorded");
                    }
                }
                Err(e)
            }
        }
    }

    /// Reads the records asked for and syncs them chunk by chunk; returns
    /// the `_id` the run stopped after, when the deadline cut it short.
    async fn records(
        &self,
        req: &SyncRequest,
        stop_at: Option<Instant>,
        run: &mut Run,
    ) -> Result<Option<RecordId>, Error> {
        let read_started = Instant::now();
        let scope = req.cluster_scope();
        let (mut records, malformed) = self
            .store
            .records()
            .non_final(req.job_ids.as_deref(), scope.as_deref())
            .await?;
        run.summary.phases_ms.read = ms_since(read_started);
        run.malformed(malformed);
        if let Some(ids) = &req.job_ids {
            self.sort_unsynced_requests(ids, &records, run).await?;
        } else if let Some(after) = self.store.runs().resume_point(&req.scope()).await? {
            rotate_after(&mut records, &after);
        }
        run.seen.conflicts = run::conflicts(&records, &mut run.summary);
        let live = Live {
            kube: &self.kube,
            flink: &self.flink,
        };
        let observer = Observer {
            sources: &live,
            concurrency: self.settings.concurrency,
            health_budget: self.rules.health.budget,
        };
        let chunk_size = self.settings.chunk_size.max(1);
        for (i, chunk) in records.chunks(chunk_size).enumerate() {
            if i > 0 && stop_at.is_some_and(|t| Instant::now() >= t) {
                run.summary.records_deferred = records.len() - i * chunk_size;
                tracing::warn!(
                    deferred = run.summary.records_deferred,
                    "near the deadline: the rest waits for the next run"
                );
                return Ok(records.get(i * chunk_size - 1).map(|r| r.oid.clone()));
            }
            run.summary.records_checked += chunk.len();
            self.sync_chunk(&observer, &records, chunk, run).await?;
        }
        if req.job_ids.is_none() {
            self.untracked(&observer, req, &records, run).await?;
        }
        Ok(None)
    }

    /// Observes, decides and writes one chunk of records (`all`: every
    /// record the run read, among which the health budget is chosen).
    async fn sync_chunk(
        &self,
        observer: &Observer<'_, Live<'_>>,
        all: &[Record],
        chunk: &[Record],
        run: &mut Run,
    ) -> Result<(), Error> {
        let observed = observer
            .observe(all, chunk, &mut run.seen, &mut run.summary.phases_ms)
            .await;
        let write_started = Instant::now();
        let (decided, writes) = self.decide(chunk, &observed, run);
        let outcomes = if run.dry_run {
            vec![Outcome::Written; writes.len()]
        } else {
            let ctx = WriteContext {
                run_id: &run.id,
                history_max: self.settings.history_max,
            };
            self.store.writer().apply(&writes, ctx).await?
        };
        for ((record, plan), outcome) in decided.iter().zip(outcomes) {
            match outcome {
                Outcome::Written => run.written(record, plan),
                Outcome::Conflict => {
                    tracing::info!(job_id = %record.job_id, "record changed meanwhile: left alone");
                    run.summary.conflicts += 1;
                }
                Outcome::Refused(why) => run.refused(record, why),
            }
        }
        run.summary.phases_ms.write += ms_since(write_started);
        Ok(())
    }

    /// The records that change, with their plans, and their conditional
    /// writes (with their events when events are published), in step.
    fn decide<'r>(
        &self,
        chunk: &'r [Record],
        observed: &[Observed],
        run: &mut Run,
    ) -> (Vec<(&'r Record, Plan)>, Vec<Write>) {
        let now = Utc::now();
        let mut decided = Vec::new();
        let mut writes = Vec::new();
        for (record, obs) in chunk.iter().zip(observed) {
            let plan = plan::decide(record, obs, now, &self.rules);
            run.decided(record, &plan);
            let Some(mut write) = Write::new(record, &plan, now) else {
                continue;
            };
            if self.events.is_some() {
                outbox::attach(&mut write, record, &plan, now);
            }
            decided.push((record, plan));
            writes.push(write);
        }
        (decided, writes)
    }

    /// Says which requested job_ids this run will not sync: those no record
    /// has (`not_found`) and those whose record is final (`already_final`).
    /// A malformed record is reported as such, not here.
    async fn sort_unsynced_requests(
        &self,
        ids: &[String],
        records: &[Record],
        run: &mut Run,
    ) -> Result<(), Error> {
        let summary = &mut run.summary;
        let seen: HashSet<&str> = records
            .iter()
            .map(|r| r.job_id.as_str())
            .chain(summary.malformed.iter().map(|m| m.job_id.as_str()))
            .collect();
        let unseen: Vec<String> = ids
            .iter()
            .filter(|i| !seen.contains(i.as_str()))
            .cloned()
            .collect();
        if unseen.is_empty() {
            return Ok(());
        }
        let finals: HashSet<String> = self
            .store
            .records()
            .final_job_ids(&unseen)
            .await?
            .into_iter()
            .collect();
        for id in unseen {
            if finals.contains(&id) {
                summary.already_final.push(id);
            } else {
                summary.not_found.push(id);
            }
        }
        Ok(())
    }

    /// The untracked jobs of a full run's clusters, announced by real runs.
    async fn untracked(
        &self,
        observer: &Observer<'_, Live<'_>>,
        req: &SyncRequest,
        records: &[Record],
        run: &mut Run,
    ) -> Result<(), Error> {
        // The JobIDs the records read claim: most of what the clusters run,
        // so the untracked query need only ask about the rest.
        let claimed_here: HashSet<&str> = records
            .iter()
            .flat_map(|r| r.flink_job_id.iter().chain(&r.flink_job_ids))
            .map(|id| id.as_str())
            .collect();
        let clusters: Vec<ClusterRef> = self.flink.all().filter(|c| req.covers(c)).collect();
        let found = untracked::find(observer, clusters, &claimed_here, &self.store, run).await?;
        if !req.dry_run
            && let Some(publisher) = &self.events
        {
            untracked::announce(&self.store, publisher, &found, run).await;
        }
        Ok(())
    }

    /// Publishes the events, records the run's end and prints its metrics.
    async fn finish(
        &self,
        req: &SyncRequest,
        resume_after: Option<RecordId>,
        mut run: Run,
    ) -> Result<Summary, Error> {
        let finish_started = Instant::now();
        if !req.dry_run
            && let Some(publisher) = &self.events
        {
            outbox::publish(&self.store, publisher, &mut run.summary).await;
        }
        run.summary.complete = resume_after.is_none();
        run.summary.phases_ms.finish = ms_since(finish_started);
        run.summary.elapsed_ms = run.elapsed_ms();
        if !req.dry_run {
            let end = run.end(req, resume_after, None);
            if let Err(e) = self.store.runs().finish(&run.id, &end).await {
                tracing::warn!(error = %e, "the run's end could not be recorded");
            }
            let lag = match self.store.runs().last_full_run().await {
                Ok(last) => last.map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0),
                Err(e) => {
                    tracing::warn!(error = %e, "sync lag unknown");
                    None
                }
            };
            let metrics = crate::reporting::metrics::emf(&run.summary, lag, Utc::now());
            match &self.metrics {
                Some(sink) => sink(&metrics),
                // CloudWatch reads EMF from stdout; it must be a line of its own.
                None => println!("{metrics}"),
            }
        }
        Ok(run.summary)
    }
}

/// The Lambda handler: the payload in, the summary out (and logged).
pub async fn handle(
    syncer: &Syncer,
    payload: serde_json::Value,
    stop_at: Option<Instant>,
) -> Result<Summary, Error> {
    let req = SyncRequest::from_payload(&payload)?;
    let summary = syncer.run_until(&req, stop_at).await?;
    tracing::info!(
        run_id = %summary.run_id,
        records_checked = summary.records_checked,
        records_changed = summary.records_changed,
        conflicts = summary.conflicts,
        errors = summary.errors.len(),
        malformed = summary.malformed.len(),
        elapsed_ms = summary.elapsed_ms,
        phases_ms = %crate::reporting::telemetry::json(&summary.phases_ms),
        transitions = %crate::reporting::telemetry::json(&summary.transitions),
        "sync run done"
    );
    Ok(summary)
}

/// When a run should start no new chunk: 80 % into the time Lambda gives it
/// (`deadline_ms`, epoch milliseconds), leaving the rest for the chunk under
/// way, the events and the run's record.
pub fn stop_at(deadline_ms: u64) -> Option<Instant> {
    let deadline = std::time::UNIX_EPOCH + std::time::Duration::from_millis(deadline_ms);
    let remaining = deadline.duration_since(std::time::SystemTime::now()).ok()?;
    Some(Instant::now() + remaining.mul_f64(0.8))
}
