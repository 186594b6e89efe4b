//! One sync run: read the non-final records, observe Kubernetes (for records
//! still waiting for their JobID) and Flink (one overview, then only the
//! JobIDs absent from it), decide each record with [`plan::decide`], and apply
//! the changed ones as conditional writes. One bad record never fails the run;
//! only an unreadable MongoDB does.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use futures::StreamExt;
use mongodb::bson::{Document, doc};
use serde::Deserialize;

use crate::adapters::events::{self, Publisher};
use crate::adapters::flink::{FlinkClient, FlinkClusters};
use crate::adapters::k8s::{CondensedJob, Kubernetes};
use crate::adapters::store::{self, Store, Write};
use crate::config::{DEFAULT_CLUSTER, SyncConfig, SyncSettings};
use crate::error::Error;
use crate::reporting::summary::{
    DuplicateJobId, MalformedReport, Phases, RecordError, Summary, UNTRACKED_MAX, Untracked,
    WOULD_CHANGE_MAX, WouldChange,
};
use crate::rules::health;
use crate::rules::health::HealthFacts;
use crate::rules::model::{FlinkJobId, Record, System, flink_state_ended, to_bson_date};
use crate::rules::plan::{self, FlinkFacts, K8sFacts, Observed, Plan, SyncRules};

/// What an invocation asks for. The scheduled event carries none of these
/// fields and so means "everything, for real".
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Sync only these records (a manual run); all non-final ones when absent.
    #[serde(default)]
    pub job_ids: Option<Vec<String>>,
    /// Decide and report, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Sync only the records of these clusters (`FLINK_CLUSTERS` names, or
    /// `"default"` for the records without `flink_cluster`): one schedule
    /// per cluster scales a large fleet out.
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
}

impl SyncRequest {
    /// The keys a manual sync payload may carry.
    pub const KEYS: [&str; 3] = ["job_ids", "dry_run", "clusters"];

    /// What the run covers, as recorded in the runs collection: `all`,
    /// `selected` (job_ids), or `clusters:<names>`, so runs scoped to
    /// different clusters resume each where it stopped.
    pub fn scope(&self) -> String {
        match (&self.job_ids, &self.clusters) {
            (Some(_), _) => "selected".to_string(),
            (None, None) => "all".to_string(),
            (None, Some(clusters)) => {
                let mut names = clusters.clone();
                names.sort();
                names.dedup();
                format!("clusters:{}", names.join(","))
            }
        }
    }

    /// Reads a manual payload or an EventBridge scheduled event.
    pub fn from_payload(v: &serde_json::Value) -> Result<SyncRequest, Error> {
        let req: SyncRequest = crate::runs::payload::parse(v, &SyncRequest::KEYS)?;
        if let Some(ids) = &req.job_ids {
            if ids.is_empty() {
                return Err(Error::Input(
                    "payload: job_ids is empty (leave it out to sync every non-final record)"
                        .into(),
                ));
            }
            if ids.len() > 10_000 {
                return Err(Error::Input(
                    "payload: job_ids holds more than 10000 entries".into(),
                ));
            }
            if ids.iter().any(|i| i.is_empty() || i.len() > 512) {
                return Err(Error::Input(
                    "payload: job_ids entries must be 1 to 512 bytes".into(),
                ));
            }
        }
        if let Some(clusters) = &req.clusters {
            if clusters.is_empty() {
                return Err(Error::Input(
                    "payload: clusters is empty (leave it out to sync every cluster)".into(),
                ));
            }
            if let Some(bad) = clusters.iter().find(|c| !crate::config::is_cluster_name(c)) {
                return Err(Error::Input(format!(
                    "payload: clusters holds {:?}, which is not a cluster name",
                    crate::rules::model::truncate(bad, 80)
                )));
            }
        }
        Ok(req)
    }
}

fn ms_since(t: std::time::Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The sync function's clients, settings and rule, built once per warm function.
pub struct Syncer {
    store: Store,
    kube: Kubernetes,
    flink: FlinkClusters,
    /// Set when `EVENT_BUS_NAME` is.
    events: Option<Publisher>,
    settings: SyncSettings,
    rules: SyncRules,
}

impl Syncer {
    /// A syncer over clients built elsewhere (tests point them at their own
    /// servers): one Flink client (the `FLINK_REST_URL` cluster) or every
    /// cluster's. It publishes no events until [`Syncer::set_events`].
    pub fn new(
        store: Store,
        kube: Kubernetes,
        flink: impl Into<FlinkClusters>,
        settings: SyncSettings,
        rules: SyncRules,
    ) -> Syncer {
        Syncer {
            store,
            kube,
            flink: flink.into(),
            events: None,
            settings,
            rules,
        }
    }

    /// Builds every client once, for all invocations of a warm function.
    pub async fn from_config(cfg: SyncConfig) -> Result<Syncer, Error> {
        let store = Store::connect(&cfg.mongo).await?;
        let kube = Kubernetes::connect(&cfg.kube).await?;
        let mut syncer = Syncer {
            store,
            kube,
            flink: FlinkClusters::from_settings(&cfg.flink)?,
            events: None,
            settings: cfg.sync,
            rules: cfg.rules,
        };
        if cfg.events.bus_name.is_some() {
            let sdk = crate::adapters::aws::sdk_config().await;
            syncer.set_events(Publisher::from_settings(&sdk, &cfg.events));
        }
        Ok(syncer)
    }

    /// Follows the records naming `flink_cluster: name` on `client`.
    pub fn add_cluster(&mut self, name: &str, client: FlinkClient) {
        self.flink.insert(name, client);
    }

    /// Publishes state-change events through `events` (none when `None`).
    pub fn set_events(&mut self, events: Option<Publisher>) {
        self.events = events;
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
    /// cover them all. Every record is whole: a chunk's writes are per-record
    /// conditional writes, applied before the next chunk starts.
    pub async fn run_until(
        &self,
        req: &SyncRequest,
        stop_at: Option<std::time::Instant>,
    ) -> Result<Summary, Error> {
        let started = Utc::now();
        let clock = std::time::Instant::now();
        let run_id = store::new_run_id();
        let span = tracing::info_span!("sync", run_id = %run_id, dry_run = req.dry_run);
        let _enter = span.enter();
        self.store.ensure_indexes().await?;
        if !req.dry_run {
            self.store.start_run(&run_id, started, false).await?;
        }
        let read_started = std::time::Instant::now();
        if let Some(clusters) = &req.clusters {
            self.check_clusters(clusters)?;
        }
        let (mut records, malformed) = self
            .store
            .non_final_records(req.job_ids.as_deref(), req.clusters.as_deref())
            .await?;
        let mut summary = Summary {
            run_id: run_id.clone(),
            dry_run: req.dry_run,
            ..Default::default()
        };
        summary.phases_ms.read = ms_since(read_started);
        for e in malformed {
            tracing::warn!(record = %e.id, problem = %e.problem, "malformed record skipped");
            summary.malformed.push(MalformedReport {
                job_id: e.id,
                error: e.problem,
            });
        }
        if let Some(ids) = &req.job_ids {
            self.sort_unsynced_requests(ids, &records, &mut summary)
                .await?;
        }
        if req.job_ids.is_none()
            && let Some(after) = self.store.resume_point(&req.scope()).await?
        {
            rotate_after(&mut records, &after);
        }
        let mut cache = ObserveCache {
            health_budget_left: self.rules.health.budget,
            duplicates: duplicates(&records, &mut summary),
            ..Default::default()
        };
        // The JobIDs the records read claim: most of what the clusters run,
        // so the untracked query need only ask about the rest.
        let claimed_here: HashSet<&str> = records
            .iter()
            .flat_map(|r| r.flink_job_id.iter().chain(&r.flink_job_ids))
            .map(FlinkJobId::as_str)
            .collect();
        let mut resume_after = None;
        let chunk_size = self.settings.chunk_size.max(1);
        for (i, chunk) in records.chunks(chunk_size).enumerate() {
            if i > 0 && stop_at.is_some_and(|t| std::time::Instant::now() >= t) {
                summary.records_deferred = records.len() - i * chunk_size;
                resume_after = records.get(i * chunk_size - 1).map(|r| r.oid.to_bson());
                tracing::warn!(
                    deferred = summary.records_deferred,
                    "near the deadline: the rest waits for the next run"
                );
                break;
            }
            summary.records_checked += chunk.len();
            self.sync_chunk(&records, chunk, req, &run_id, &mut cache, &mut summary)
                .await?;
        }
        if req.job_ids.is_none() && resume_after.is_none() {
            self.find_untracked(req, &claimed_here, &mut cache, &mut summary)
                .await?;
        }
        self.finish(req, &run_id, clock, resume_after, summary)
            .await
    }

    /// The jobs the clusters in scope run (not final) that no record
    /// claims: one overview per cluster (most already read), then a query
    /// (one per indexed field) about the jobs neither a record read this run
    /// (`claimed_here`) nor a JobID it learned and wrote (`cache.learned`)
    /// claims. Each is announced once ("Flink Job Untracked") by real runs.
    async fn find_untracked(
        &self,
        req: &SyncRequest,
        claimed_here: &HashSet<&str>,
        cache: &mut ObserveCache,
        summary: &mut Summary,
    ) -> Result<(), Error> {
        let in_scope: Vec<Option<String>> = self
            .flink
            .client(None)
            .is_ok()
            .then_some(None)
            .into_iter()
            .chain(self.flink.names().map(|n| Some(n.to_string())))
            .filter(|c| match &req.clusters {
                None => true,
                Some(scope) => scope
                    .iter()
                    .any(|s| *s == c.as_deref().unwrap_or(DEFAULT_CLUSTER)),
            })
            .collect();
        self.fetch_overviews(in_scope.iter().cloned(), cache).await;
        let mut running = Vec::new();
        for cluster in &in_scope {
            let Some(Ok(overview)) = cache.overviews.get(cluster) else {
                continue;
            };
            for (id, job) in overview {
                if !flink_state_ended(&job.state) {
                    running.push(Untracked {
                        cluster: cluster.as_deref().unwrap_or(DEFAULT_CLUSTER).to_string(),
                        flink_job_id: id.to_string(),
                        name: job.name.clone(),
                        state: job.state.clone(),
                    });
                }
            }
        }
        running.retain(|u| {
            !claimed_here.contains(u.flink_job_id.as_str())
                && !cache.learned.contains(&u.flink_job_id)
        });
        // Left: jobs claimed by final records or records out of scope, and
        // the untracked ones; a query about a handful of JobIDs rather than
        // every running one.
        let ids: Vec<String> = running.iter().map(|u| u.flink_job_id.clone()).collect();
        let claimed = self.store.claimed_job_ids(&ids).await?;
        let mut untracked: Vec<Untracked> = running
            .into_iter()
            .filter(|u| !claimed.contains(&u.flink_job_id))
            .collect();
        untracked.sort();
        for u in &untracked {
            tracing::warn!(cluster = %u.cluster, flink_job_id = %u.flink_job_id, name = %u.name, "a running Flink job no record claims");
        }
        summary.untracked_count = untracked.len();
        summary.untracked = untracked.iter().take(UNTRACKED_MAX).cloned().collect();
        if !req.dry_run
            && let Some(publisher) = &self.events
        {
            self.announce_untracked(publisher, &untracked, summary)
                .await;
        }
        Ok(())
    }

    /// Publishes one event per untracked job not announced before.
    async fn announce_untracked(
        &self,
        publisher: &Publisher,
        untracked: &[Untracked],
        summary: &mut Summary,
    ) {
        let due = match self
            .store
            .untracked_to_announce(untracked, Utc::now())
            .await
        {
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
        if let Err(e) = self.store.untracked_announced(&keys).await {
            summary.event_errors.push(e.to_string());
        }
    }

    /// Refuses a scope naming a cluster this deployment does not follow.
    fn check_clusters(&self, clusters: &[String]) -> Result<(), Error> {
        let known: Vec<&str> = self
            .flink
            .client(None)
            .is_ok()
            .then_some(DEFAULT_CLUSTER)
            .into_iter()
            .chain(self.flink.names())
            .collect();
        match clusters.iter().find(|c| !known.contains(&c.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(Error::Input(format!(
                "payload: clusters names {unknown:?}, which this deployment does not follow (known: {})",
                known.join(", ")
            ))),
        }
    }

    /// Says which requested job_ids this run will not sync: those no record
    /// has (`not_found`) and those whose record is final (`already_final`).
    /// A malformed record is reported as such, not here.
    async fn sort_unsynced_requests(
        &self,
        ids: &[String],
        records: &[Record],
        summary: &mut Summary,
    ) -> Result<(), Error> {
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

    /// Observes, decides and writes one chunk of records (`all`: every
    /// record the run read, among which the health budget is chosen).
    async fn sync_chunk(
        &self,
        all: &[Record],
        records: &[Record],
        req: &SyncRequest,
        run_id: &str,
        cache: &mut ObserveCache,
        summary: &mut Summary,
    ) -> Result<(), Error> {
        let observed = self
            .observe(all, records, cache, &mut summary.phases_ms)
            .await;
        let write_started = std::time::Instant::now();
        let (writes, plans) = self.decide(records, &observed, run_id, summary);
        let written: Vec<String> = if req.dry_run {
            would_change(records, &plans, summary);
            writes.into_iter().map(|w| w.job_id).collect()
        } else {
            self.write(writes, run_id, summary).await?
        };
        for job_id in &written {
            // JobIDs just learned from pod logs and written (or, in a dry
            // run, that would be): their records claim them now.
            let learned = plans
                .get(job_id.as_str())
                .into_iter()
                .flat_map(|p| &p.changes);
            for change in learned {
                if let plan::Change::FlinkJobId { all, .. } = change {
                    cache.learned.extend(all.iter().map(|id| id.to_string()));
                }
            }
            if let Some((from, to, source)) =
                plans.get(job_id.as_str()).and_then(|p| p.transition())
            {
                if req.dry_run {
                    tracing::info!(job_id = %job_id, from = %from, to = %to, source = source.as_str(), "status would change (dry run)");
                } else {
                    tracing::info!(job_id = %job_id, from = %from, to = %to, source = source.as_str(), "status changed");
                }
                *summary
                    .transitions
                    .entry(format!("{from}->{to}"))
                    .or_default() += 1;
            }
        }
        // A look's own bookkeeping is written, not counted as a change.
        summary.records_changed += written
            .iter()
            .filter(|j| plans.get(j.as_str()).is_some_and(|p| !p.is_bookkeeping()))
            .count();
        summary.phases_ms.write += ms_since(write_started);
        Ok(())
    }

    /// Each record's plan and, for the ones that change, its conditional
    /// write (with its event when events are published).
    fn decide(
        &self,
        records: &[Record],
        observed: &[Observed],
        run_id: &str,
        summary: &mut Summary,
    ) -> (Vec<Write>, HashMap<String, Plan>) {
        let now = Utc::now();
        let mut writes: Vec<Write> = Vec::new();
        let mut plans: HashMap<String, Plan> = HashMap::new();
        for (record, obs) in records.iter().zip(observed) {
            let plan = plan::decide(record, obs, now, &self.rules);
            count_health(record, &plan, summary);
            if let Some(state) = &plan.unknown_flink_state {
                tracing::warn!(job_id = %record.job_id, flink_state = %state, "unknown Flink state: status left as it is");
            }
            for c in &plan.changes {
                if let plan::Change::SyncError(Some(e)) = c {
                    summary.errors.push(RecordError {
                        job_id: record.job_id.clone(),
                        system: e.system,
                        error: e.text.clone(),
                    });
                }
            }
            let Some(mut w) =
                store::write_for(record, &plan, now, run_id, self.settings.history_max)
            else {
                continue;
            };
            if self.events.is_some() {
                let revision = record.revision.unwrap_or(0) + 1;
                let state = events::pending_event(record, &plan, revision, now);
                let health = events::pending_health_event(record, &plan, revision, now);
                for event in state.into_iter().chain(health) {
                    store::add_pending_event(&mut w, event);
                }
            }
            plans.insert(w.job_id.clone(), plan);
            writes.push(w);
        }
        (writes, plans)
    }

    /// Applies the writes; returns the job_ids written.
    async fn write(
        &self,
        writes: Vec<Write>,
        run_id: &str,
        summary: &mut Summary,
    ) -> Result<Vec<String>, Error> {
        let applied = self.store.apply(writes, run_id).await?;
        for job_id in &applied.conflicts {
            tracing::info!(job_id = %job_id, "record changed meanwhile: left alone");
        }
        summary.conflicts += applied.conflicts.len();
        for (job_id, e) in applied.failed {
            summary.errors.push(RecordError {
                job_id,
                system: System::MongoDb,
                error: format!("MongoDB refused the write: {e}"),
            });
        }
        Ok(applied.written)
    }

    async fn finish(
        &self,
        req: &SyncRequest,
        run_id: &str,
        clock: std::time::Instant,
        resume_after: Option<mongodb::bson::Bson>,
        mut summary: Summary,
    ) -> Result<Summary, Error> {
        let finish_started = std::time::Instant::now();
        if !req.dry_run
            && let Some(publisher) = &self.events
        {
            self.publish_pending(publisher, &mut summary).await;
        }
        summary.complete = resume_after.is_none();
        summary.phases_ms.finish = ms_since(finish_started);
        summary.elapsed_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !req.dry_run {
            let transitions: Document = summary
                .transitions
                .iter()
                .map(|(k, v)| (k.clone(), mongodb::bson::Bson::Int64(*v as i64)))
                .collect();
            let mut record = doc! {
                "finished_at": to_bson_date(Utc::now()),
                "state": if summary.complete { "complete" } else { "partial" },
                "scope": req.scope(),
                "records_checked": summary.records_checked as i64,
                "records_changed": summary.records_changed as i64,
                "conflicts": summary.conflicts as i64,
                "errors": summary.errors.len() as i64,
                "malformed": summary.malformed.len() as i64,
                "transitions": transitions,
                "elapsed_ms": summary.elapsed_ms as i64,
            };
            if let Some(after) = resume_after {
                record.insert("resume_after", after);
                record.insert("records_deferred", summary.records_deferred as i64);
            }
            if let Err(e) = self.store.finish_run(run_id, record).await {
                tracing::warn!(error = %e, "the run's end could not be recorded");
            }
            let lag = match self.store.last_full_run().await {
                Ok(last) => last.map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0),
                Err(e) => {
                    tracing::warn!(error = %e, "sync lag unknown");
                    None
                }
            };
            // CloudWatch reads EMF from stdout; it must be a line of its own.
            println!(
                "{}",
                crate::reporting::metrics::emf(&summary, lag, Utc::now())
            );
        }
        Ok(summary)
    }

    /// Publishes every pending event (this run's and leftovers), and pulls
    /// the accepted ones from their records. Failures leave them pending.
    async fn publish_pending(&self, publisher: &Publisher, summary: &mut Summary) {
        let pending = match self.store.pending_events().await {
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
        if let Err(e) = self.store.ack_events(&pending, &accepted).await {
            // Accepted but still stored: published again next run, with the
            // same event_id for consumers to drop.
            summary.event_errors.push(e.to_string());
        }
        summary.events_published = accepted.len();
        summary.events_pending = pending.len() - accepted.len();
    }

    /// Observes Kubernetes for the records still waiting for a JobID, then
    /// Flink for every JobID known or just found. Returns one entry per record.
    async fn observe(
        &self,
        all: &[Record],
        records: &[Record],
        cache: &mut ObserveCache,
        phases: &mut Phases,
    ) -> Vec<Observed> {
        let k8s_started = std::time::Instant::now();
        let mut observed = vec![Observed::default(); records.len()];
        self.observe_kubernetes(records, cache, &mut observed).await;
        phases.kubernetes += ms_since(k8s_started);
        let flink_started = std::time::Instant::now();
        let follow: Vec<(usize, FlinkJobId)> = records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                plan::flink_job_id_to_follow(r, observed[i].k8s.as_ref()).map(|id| (i, id.clone()))
            })
            .collect();
        let others: Vec<(usize, FlinkJobId)> = records
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                plan::other_flink_job_ids(r, observed[i].k8s.as_ref())
                    .into_iter()
                    .map(move |id| (i, id))
            })
            .collect();
        if !follow.is_empty() {
            let asked: Vec<(usize, FlinkJobId)> = follow.iter().chain(&others).cloned().collect();
            let facts = self.observe_flink(records, &asked, cache).await;
            if cache.health_due.is_none() {
                // Once a run, when Flink is first asked: the budget goes to
                // jobs the overviews show running (a job that just ended is
                // looked at anyway, outside the budget).
                let clusters = all
                    .iter()
                    .filter(|r| r.flink_job_id.is_some())
                    .map(|r| r.flink_cluster.clone());
                self.fetch_overviews(clusters, cache).await;
                let due = health::due(all, self.rules.health.budget, |r| {
                    cache.shows_running(r) && !cache.duplicates.contains_key(&r.job_id)
                });
                cache.health_due = Some(due);
            }
            // `asked` is the followed JobIDs, then the others.
            for (n, ((i, id), f)) in asked.into_iter().zip(facts).enumerate() {
                if n < follow.len() {
                    observed[i].flink = Some(f);
                } else {
                    observed[i].others.push((id, f));
                }
            }
            self.observe_health(records, &follow, cache, &mut observed)
                .await;
            self.add_root_causes(records, follow, &mut observed).await;
        }
        phases.flink += ms_since(flink_started);
        observed
    }

    /// The Kubernetes facts of the records still waiting for a JobID: each
    /// namespace listed once per run, then the logs of their started pods.
    async fn observe_kubernetes(
        &self,
        records: &[Record],
        cache: &mut ObserveCache,
        observed: &mut [Observed],
    ) {
        let default_ns = self.kube.namespace();
        let waiting: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].flink_job_id.is_none())
            .collect();
        let namespaces: HashSet<&str> = waiting
            .iter()
            .map(|&i| records[i].namespace(default_ns))
            .filter(|ns| !cache.listed.contains_key(*ns))
            .collect();
        let fresh = futures::future::join_all(namespaces.into_iter().map(|ns| async move {
            let jobs = self.kube.jobs_in(ns).await.map_err(|e| e.detail());
            (ns.to_string(), jobs)
        }))
        .await;
        cache.listed.extend(fresh);
        let listed = &cache.listed;
        let facts = futures::stream::iter(waiting.iter().map(|&i| {
            let record = &records[i];
            let ns = record.namespace(default_ns);
            async move {
                let facts = match listed.get(ns) {
                    Some(Err(e)) => K8sFacts::Unavailable(e.clone()),
                    None => K8sFacts::Unavailable(format!("namespace {ns} was not listed")),
                    Some(Ok(jobs)) => match jobs.get(record.k8s_job_name()) {
                        None => K8sFacts::NoJob,
                        Some(job) => K8sFacts::Job(self.kube.facts(ns, job).await),
                    },
                };
                (i, facts)
            }
        }))
        .buffer_unordered(self.settings.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
        for (i, f) in facts {
            observed[i].k8s = Some(f);
        }
    }

    /// Fetches, at once, the overview of each of `clusters` this run has
    /// not read yet (`None`: the `FLINK_REST_URL` cluster). A cluster that is
    /// down or unknown keeps its error, for its own records only.
    async fn fetch_overviews(
        &self,
        clusters: impl IntoIterator<Item = Option<String>>,
        cache: &mut ObserveCache,
    ) {
        let missing: HashSet<Option<String>> = clusters
            .into_iter()
            .filter(|c| !cache.overviews.contains_key(c))
            .collect();
        let fresh = futures::future::join_all(missing.into_iter().map(|cluster| async move {
            let overview = match self.flink.client(cluster.as_deref()) {
                Ok(client) => client.overview().await.map_err(|e| e.detail()),
                Err(unknown) => Err(unknown),
            };
            if let Err(e) = &overview {
                tracing::warn!(cluster = cluster.as_deref().unwrap_or(DEFAULT_CLUSTER), error = %e, "Flink overview unavailable");
            }
            (cluster, overview)
        }))
        .await;
        cache.overviews.extend(fresh);
    }

    /// The Flink facts of the JobIDs to follow: one overview per cluster
    /// and run (the clusters fetched at once), then a lookup of each JobID
    /// absent from its cluster's overview. A cluster that is down or
    /// unknown touches only its own records.
    async fn observe_flink(
        &self,
        records: &[Record],
        follow: &[(usize, FlinkJobId)],
        cache: &mut ObserveCache,
    ) -> Vec<FlinkFacts> {
        let cluster_of = |i: usize| records[i].flink_cluster.clone();
        self.fetch_overviews(follow.iter().map(|(i, _)| cluster_of(*i)), cache)
            .await;
        let mut out: Vec<Option<FlinkFacts>> = Vec::with_capacity(follow.len());
        let mut absent = Vec::new();
        for (n, (i, id)) in follow.iter().enumerate() {
            if let Some(why) = cache.duplicates.get(&records[*i].job_id) {
                out.push(Some(FlinkFacts::Unavailable(why.clone())));
                continue;
            }
            out.push(match &cache.overviews[&cluster_of(*i)] {
                Err(e) => Some(FlinkFacts::Unavailable(e.clone())),
                Ok(overview) => match overview.get(id) {
                    Some(job) => Some(FlinkFacts::Found(job.clone())),
                    None => {
                        absent.push((n, *i, id));
                        None
                    }
                },
            });
        }
        let looked_up: Vec<(usize, FlinkFacts)> =
            futures::stream::iter(absent.into_iter().map(|(n, i, id)| async move {
                let facts = match self.flink.client(records[i].flink_cluster.as_deref()) {
                    Ok(client) => client.job(id).await,
                    Err(unknown) => FlinkFacts::Unavailable(unknown),
                };
                (n, facts)
            }))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (n, f) in looked_up {
            out[n] = Some(f);
        }
        out.into_iter()
            .map(|f| f.unwrap_or(FlinkFacts::Missing))
            .collect()
    }

    /// A health look at each job that needs one: every job that has just
    /// ended (for its restart point), and the running jobs this run's budget
    /// picked, oldest-checked first. Their submitting pods are seen from the
    /// namespace lists (one per namespace and run).
    async fn observe_health(
        &self,
        records: &[Record],
        follow: &[(usize, FlinkJobId)],
        cache: &mut ObserveCache,
        observed: &mut [Observed],
    ) {
        let mut looks: Vec<(usize, &FlinkJobId)> = Vec::new();
        for (i, id) in follow {
            let Some(FlinkFacts::Found(job)) = &observed[*i].flink else {
                continue;
            };
            let record = &records[*i];
            let due = cache.health_due.as_ref();
            if !due.is_some_and(|due| health::needs_look(record, &job.state, due)) {
                continue;
            }
            let ended = flink_state_ended(&job.state);
            if !ended {
                // A running job's look is the budget's.
                if cache.health_budget_left == 0 {
                    continue;
                }
                cache.health_budget_left -= 1;
            }
            looks.push((*i, id));
        }
        if looks.is_empty() {
            return;
        }
        let default_ns = self.kube.namespace();
        let namespaces: HashSet<&str> = looks
            .iter()
            .map(|(i, _)| records[*i].namespace(default_ns))
            .filter(|ns| !cache.listed.contains_key(*ns))
            .collect();
        for ns in namespaces {
            let jobs = self.kube.jobs_in(ns).await.map_err(|e| e.detail());
            cache.listed.insert(ns.to_string(), jobs);
        }
        // The JobManager caches a job's checkpoint figures for about 3 s: a
        // job that ended just now is asked once that has passed, since its
        // record is final after this run and never looked at again.
        let settle = looks
            .iter()
            .filter_map(|(i, _)| match &observed[*i].flink {
                Some(FlinkFacts::Found(job)) => health::settle_wait(job.end_ms, Utc::now()),
                _ => None,
            })
            .max();
        // At most once a run: a fleet that ends jobs all the time must not
        // wait in every chunk.
        if let Some(wait) = settle.filter(|_| !cache.settled) {
            tokio::time::sleep(wait).await;
            cache.settled = true;
        }
        let listed = &cache.listed;
        let facts = futures::stream::iter(looks.into_iter().map(|(i, id)| {
            let record = &records[i];
            let known = health::stored_config(record);
            let submitter = match listed.get(record.namespace(default_ns)) {
                Some(Ok(jobs)) => jobs
                    .get(record.k8s_job_name())
                    .and_then(|j| j.submitter_restarts),
                _ => None,
            };
            async move {
                let mut facts = match self.flink.client(record.flink_cluster.as_deref()) {
                    Ok(client) => client.health(id, known.as_ref()).await,
                    Err(unknown) => HealthFacts {
                        checkpoints: Err(unknown.clone()),
                        restarts: Err(unknown),
                        submitter_restarts: None,
                    },
                };
                facts.submitter_restarts = submitter;
                (i, facts)
            }
        }))
        .buffer_unordered(self.settings.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
        for (i, f) in facts {
            observed[i].health = Some(f);
        }
    }

    /// The root cause of each job the rule will want one for.
    async fn add_root_causes(
        &self,
        records: &[Record],
        follow: Vec<(usize, FlinkJobId)>,
        observed: &mut [Observed],
    ) {
        let failing = follow
            .into_iter()
            .filter(|(i, _)| plan::needs_root_cause(&records[*i], observed[*i].flink.as_ref()));
        let causes = futures::stream::iter(failing.map(|(i, id)| async move {
            let cause = match self.flink.client(records[i].flink_cluster.as_deref()) {
                Ok(client) => client.root_cause(&id).await.map_err(|e| e.detail()),
                Err(unknown) => Err(unknown),
            };
            (i, cause)
        }))
        .buffer_unordered(self.settings.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
        for (i, cause) in causes {
            if let Some(FlinkFacts::Found(job)) = &mut observed[i].flink {
                job.root_cause = match cause {
                    Ok(c) => c,
                    Err(e) => Some(format!(
                        "Flink reports the job FAILED (root cause unavailable: {e})"
                    )),
                };
            }
        }
        // A record of several jobs: the root cause of its other failed jobs.
        let mut other_failed = Vec::new();
        for (i, o) in observed.iter().enumerate() {
            for (n, (id, f)) in o.others.iter().enumerate() {
                if plan::needs_root_cause(&records[i], Some(f)) {
                    other_failed.push((i, n, id.clone()));
                }
            }
        }
        for (i, n, id) in other_failed {
            let cause = match self.flink.client(records[i].flink_cluster.as_deref()) {
                Ok(client) => client.root_cause(&id).await.map_err(|e| e.detail()),
                Err(unknown) => Err(unknown),
            };
            if let Some((_, FlinkFacts::Found(job))) = observed[i].others.get_mut(n) {
                job.root_cause = cause.unwrap_or_else(|e| {
                    Some(format!(
                        "Flink reports the job FAILED (root cause unavailable: {e})"
                    ))
                });
            }
        }
    }
}

/// The JobIDs more than one of the records read claims: reported, and
/// neither record follows the job (neither changes on the other's account).
fn duplicates(records: &[Record], summary: &mut Summary) -> HashMap<String, String> {
    let mut by_id: HashMap<&FlinkJobId, Vec<&str>> = HashMap::new();
    for r in records {
        if let Some(id) = &r.flink_job_id {
            by_id.entry(id).or_default().push(&r.job_id);
        }
    }
    let mut out = HashMap::new();
    let mut found: Vec<DuplicateJobId> = by_id
        .into_iter()
        .filter(|(_, claimants)| claimants.len() > 1)
        .map(|(id, claimants)| {
            let mut job_ids: Vec<String> = claimants.iter().map(|j| j.to_string()).collect();
            job_ids.sort();
            tracing::warn!(flink_job_id = %id, job_ids = ?job_ids, "several records claim one JobID: none of them follows it");
            for j in &job_ids {
                let others: Vec<&str> = job_ids.iter().filter(|o| *o != j).map(String::as_str).collect();
                out.insert(
                    j.clone(),
                    format!("JobID {id} is also claimed by record {}: not followed until one record lets it go", others.join(", ")),
                );
            }
            DuplicateJobId {
                flink_job_id: id.to_string(),
                job_ids,
            }
        })
        .collect();
    found.sort_by(|a, b| a.flink_job_id.cmp(&b.flink_job_id));
    summary.duplicate_job_ids = found;
    out
}

/// Counts one decided record's health: whether it was looked at, whether
/// the verdict changed, and, for a job still running after this run, its
/// verdict (new or kept), so the degraded figures cover every non-final
/// record read, not only this run's looks.
fn count_health(record: &Record, plan: &Plan, summary: &mut Summary) {
    use crate::rules::model::Health;
    if plan
        .changes
        .iter()
        .any(|c| matches!(c, plan::Change::HealthCheckedAt(_)))
    {
        summary.health_checked += 1;
    }
    let changed = plan.changes.iter().find_map(|c| match c {
        plan::Change::Health { to, reasons, .. } => Some((*to, reasons)),
        _ => None,
    });
    if changed.is_some() {
        summary.health_changes += 1;
    }
    let ends = plan.transition().is_some_and(|(_, to, _)| to.is_final());
    let (health, codes): (Option<Health>, Vec<&str>) = match changed {
        Some((to, reasons)) => (Some(to), reasons.iter().map(|r| r.code.as_str()).collect()),
        None => (
            record.health,
            record.health_codes.iter().map(String::as_str).collect(),
        ),
    };
    if ends || health != Some(Health::Degraded) {
        return;
    }
    summary.degraded_jobs += 1;
    for code in codes {
        *summary.degraded.entry(code.to_string()).or_default() += 1;
    }
}

/// A dry run's list of what it would change, up to [`WOULD_CHANGE_MAX`].
fn would_change(records: &[Record], plans: &HashMap<String, Plan>, summary: &mut Summary) {
    let room = WOULD_CHANGE_MAX.saturating_sub(summary.would_change.len());
    summary.would_change.extend(
        records
            .iter()
            .filter_map(|r| Some((r, plans.get(r.job_id.as_str())?)))
            .filter(|(_, p)| !p.is_bookkeeping())
            .take(room)
            .map(|(r, p)| WouldChange {
                job_id: r.job_id.clone(),
                from: r.status,
                to: p.transition().map_or(r.status, |(_, to, _)| to),
                reason: p.reason(),
            }),
    );
}

/// The Lambda handler: the payload in, the summary out (and logged).
pub async fn handle(
    syncer: &Syncer,
    payload: serde_json::Value,
    stop_at: Option<std::time::Instant>,
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

/// What one run fetches once and every chunk reuses: the namespaces' Job and
/// pod lists, and Flink's overview.
#[derive(Default)]
struct ObserveCache {
    listed: HashMap<String, Result<HashMap<String, CondensedJob>, String>>,
    /// Each cluster's overview (`None`: the `FLINK_REST_URL` one).
    overviews: HashMap<Option<String>, Result<HashMap<FlinkJobId, plan::FlinkJob>, String>>,
    /// The running records this run's health budget picked.
    /// Chosen when Flink is first asked in a run.
    health_due: Option<HashSet<String>>,
    /// Running jobs the budget still allows this run.
    health_budget_left: usize,
    /// This run already waited for Flink's caches to settle.
    settled: bool,
    /// Records whose JobID another record read claims too, with why.
    duplicates: HashMap<String, String>,
    /// The JobIDs this run learned from pod logs and wrote (or, in a dry
    /// run, would write) to their records.
    learned: HashSet<String>,
}

impl ObserveCache {
    /// Whether the record's cluster overview shows its job not ended.
    fn shows_running(&self, record: &Record) -> bool {
        let Some(id) = &record.flink_job_id else {
            return false;
        };
        match self.overviews.get(&record.flink_cluster) {
            Some(Ok(overview)) => overview
                .get(id)
                .is_some_and(|job| !flink_state_ended(&job.state)),
            _ => false,
        }
    }
}

/// Puts the records after `after` (in `_id` order) first, so a run resumes
/// where the previous one stopped and then wraps around.
fn rotate_after(records: &mut [Record], after: &mongodb::bson::Bson) {
    let after = crate::rules::model::RecordId::from_bson(after).sort_key();
    if let Some(pos) = records.iter().position(|r| r.oid.sort_key() > after) {
        records.rotate_left(pos);
    }
}

/// When a run should start no new chunk: 80 % into the time Lambda gives it
/// (`deadline_ms`, epoch milliseconds), leaving the rest for the chunk under
/// way, the events and the run's record.
pub fn stop_at(deadline_ms: u64) -> Option<std::time::Instant> {
    let deadline = std::time::UNIX_EPOCH + std::time::Duration::from_millis(deadline_ms);
    let remaining = deadline.duration_since(std::time::SystemTime::now()).ok()?;
    Some(std::time::Instant::now() + remaining.mul_f64(0.8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_scoped_to_clusters_keep_a_scope_of_their_own() {
        let scoped = |c: &[&str]| SyncRequest {
            clusters: Some(c.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(SyncRequest::default().scope(), "all");
        assert_eq!(
            scoped(&["prod", "default", "prod"]).scope(),
            "clusters:default,prod"
        );
        assert_eq!(
            scoped(&["default", "prod"]).scope(),
            scoped(&["prod", "default"]).scope()
        );
        let selected = SyncRequest {
            job_ids: Some(vec!["a".into()]),
            ..scoped(&["prod"])
        };
        assert_eq!(selected.scope(), "selected");
    }
}
