//! The observer: what Kubernetes and Flink say of one chunk of records, as
//! the facts [`crate::rules::plan::decide`] takes. It asks each system as
//! little as a run allows: each namespace listed once a run, each cluster's
//! overview read once a run, a lookup only for a JobID absent from its
//! overview, a health look only where [`HealthLooks`] grants one, a root
//! cause only for a job that has just failed. The systems are behind
//! [`Sources`], so the observer is tested without servers.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;

use crate::adapters::flink::FlinkClusters;
use crate::adapters::k8s::{CondensedJob, Kubernetes};
use crate::reporting::summary::Phases;
use crate::rules::health::{self, Checkpoints, HealthFacts, HealthLooks};
use crate::rules::model::{ClusterRef, FlinkJobId, Unobserved};
use crate::rules::plan::{self, FlinkFacts, FlinkJob, JobFacts, K8sFacts, Observed};
use crate::rules::record::Record;
use crate::runs::sync::run::{Overview, Seen, ms_since};

/// What the observer asks of Kubernetes and Flink.
pub trait Sources: Sync {
    /// The namespace of records that name none.
    fn default_namespace(&self) -> &str;
    /// The product's Jobs of a namespace (with their pods), by name.
    fn jobs_in(
        &self,
        ns: &str,
    ) -> impl Future<Output = Result<HashMap<String, CondensedJob>, Unobserved>> + Send;
    /// A listed Job's facts, its started pods' logs read.
    fn job_facts(&self, ns: &str, job: &CondensedJob) -> impl Future<Output = JobFacts> + Send;
    /// A cluster's overview.
    fn overview(&self, cluster: &ClusterRef) -> impl Future<Output = Overview> + Send;
    /// A job absent from its cluster's overview.
    fn job(&self, cluster: &ClusterRef, id: &FlinkJobId)
    -> impl Future<Output = FlinkFacts> + Send;
    /// A look at a job's health (`known`: the checkpoint config already held).
    fn health(
        &self,
        cluster: &ClusterRef,
        id: &FlinkJobId,
        known: Option<&Checkpoints>,
    ) -> impl Future<Output = HealthFacts> + Send;
    /// A failed job's root cause.
    fn root_cause(
        &self,
        cluster: &ClusterRef,
        id: &FlinkJobId,
    ) -> impl Future<Output = Result<Option<String>, Unobserved>> + Send;
}

/// The real systems: the Kubernetes API and every Flink cluster followed.
pub struct Live<'a> {
    /// The Kubernetes API.
    pub kube: &'a Kubernetes,
    /// Every Flink cluster.
    pub flink: &'a FlinkClusters,
}

fn unanswered(e: crate::error::Error) -> Unobserved {
    Unobserved::Unanswered(e.detail())
}

impl Sources for Live<'_> {
    fn default_namespace(&self) -> &str {
        self.kube.namespace()
    }

    async fn jobs_in(&self, ns: &str) -> Result<HashMap<String, CondensedJob>, Unobserved> {
        self.kube.jobs_in(ns).await.map_err(unanswered)
    }

    async fn job_facts(&self, ns: &str, job: &CondensedJob) -> JobFacts {
        self.kube.facts(ns, job).await
    }

    async fn overview(&self, cluster: &ClusterRef) -> Overview {
        let overview = self.flink.client(cluster)?.overview().await;
        overview.map_err(unanswered)
    }

    async fn job(&self, cluster: &ClusterRef, id: &FlinkJobId) -> FlinkFacts {
        match self.flink.client(cluster) {
            Ok(client) => client.job(id).await,
            Err(unknown) => FlinkFacts::Unavailable(unknown),
        }
    }

    async fn health(
        &self,
        cluster: &ClusterRef,
        id: &FlinkJobId,
        known: Option<&Checkpoints>,
    ) -> HealthFacts {
        match self.flink.client(cluster) {
            Ok(client) => client.health(id, known).await,
            Err(unknown) => HealthFacts {
                checkpoints: Err(unknown.clone()),
                restarts: Err(unknown),
                submitter_restarts: None,
            },
        }
    }

    async fn root_cause(
        &self,
        cluster: &ClusterRef,
        id: &FlinkJobId,
    ) -> Result<Option<String>, Unobserved> {
        let cause = self.flink.client(cluster)?.root_cause(id).await;
        cause.map_err(unanswered)
    }
}

/// Observes chunks of records through `sources`, `concurrency` requests at a time.
pub struct Observer<'a, S> {
    /// Where the facts come from.
    pub sources: &'a S,
    /// Requests of one kind in flight at once.
    pub concurrency: usize,
    /// Running jobs a run looks at (`HEALTH_BUDGET`).
    pub health_budget: usize,
}

/// A record of the chunk and the JobID asked about for it.
type Ask = (usize, FlinkJobId);

impl<S: Sources> Observer<'_, S> {
    /// Observes Kubernetes for the records still waiting for a JobID, then
    /// Flink for every JobID known or just found. Returns one entry per
    /// record of `chunk`; `all` is every record the run read, among which
    /// the health budget is chosen.
    pub async fn observe(
        &self,
        all: &[Record],
        chunk: &[Record],
        seen: &mut Seen,
        phases: &mut Phases,
    ) -> Vec<Observed> {
        let k8s_started = Instant::now();
        let mut observed = vec![Observed::default(); chunk.len()];
        for (o, r) in observed.iter_mut().zip(chunk) {
            o.conflict = seen
                .conflicts
                .get(&r.oid)
                .filter(|c| matches!(c, Unobserved::SharedJobIdOfRecord { .. }))
                .cloned();
        }
        self.kubernetes(chunk, seen, &mut observed).await;
        phases.kubernetes += ms_since(k8s_started);
        let flink_started = Instant::now();
        let follow: Vec<Ask> = (0..chunk.len())
            .filter(|&i| observed[i].conflict.is_none())
            .filter_map(|i| {
                plan::flink_job_id_to_follow(&chunk[i], observed[i].k8s.as_ref())
                    .map(|id| (i, id.clone()))
            })
            .collect();
        if !follow.is_empty() {
            self.flink(all, chunk, &follow, seen, &mut observed).await;
            self.health(chunk, &follow, seen, &mut observed).await;
            self.root_causes(chunk, &mut observed).await;
        }
        phases.flink += ms_since(flink_started);
        observed
    }

    /// The Kubernetes facts of the records still waiting for a JobID: each
    /// namespace listed once per run, then the logs of their started pods.
    async fn kubernetes(&self, chunk: &[Record], seen: &mut Seen, observed: &mut [Observed]) {
        let waiting: Vec<usize> = (0..chunk.len())
            .filter(|&i| chunk[i].flink_job_id.is_none() && observed[i].conflict.is_none())
            .collect();
        self.list(waiting.iter().map(|&i| &chunk[i]), seen).await;
        let default_ns = self.sources.default_namespace();
        let listed = &seen.listed;
        let facts = futures::stream::iter(waiting.iter().map(|&i| {
            let record = &chunk[i];
            let ns = record.namespace(default_ns);
            async move {
                let facts = match listed.get(ns) {
                    Some(Err(e)) => K8sFacts::Unavailable(e.clone()),
                    None => K8sFacts::Unavailable(Unobserved::NotListed(ns.to_string())),
                    Some(Ok(jobs)) => match jobs.get(record.k8s_job_name()) {
                        None => K8sFacts::NoJob,
                        Some(job) => K8sFacts::Job(self.sources.job_facts(ns, job).await),
                    },
                };
                (i, facts)
            }
        }))
        .buffer_unordered(self.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
        for (i, f) in facts {
            observed[i].k8s = Some(f);
        }
    }

    /// Lists, at once, the namespaces of `records` this run has not listed yet.
    async fn list<'r>(&self, records: impl Iterator<Item = &'r Record>, seen: &mut Seen) {
        let default_ns = self.sources.default_namespace();
        let namespaces: HashSet<&str> = records
            .map(|r| r.namespace(default_ns))
            .filter(|ns| !seen.listed.contains_key(*ns))
            .collect();
        let fresh = futures::future::join_all(
            namespaces
                .into_iter()
                .map(|ns| async move { (ns.to_string(), self.sources.jobs_in(ns).await) }),
        )
        .await;
        seen.listed.extend(fresh);
    }

    /// Reads, at once, the overview of each of `clusters` this run has not
    /// read yet. A cluster that is down or unknown keeps its error, for its
    /// own records only.
    pub async fn overviews(&self, clusters: impl IntoIterator<Item = ClusterRef>, seen: &mut Seen) {
        let missing: HashSet<ClusterRef> = clusters
            .into_iter()
            .filter(|c| !seen.overviews.contains_key(c))
            .collect();
        let fresh = futures::future::join_all(missing.into_iter().map(|cluster| async move {
            let overview = self.sources.overview(&cluster).await;
            if let Err(e) = &overview {
                tracing::warn!(cluster = %cluster, error = %e, "Flink overview unavailable");
            }
            (cluster, overview)
        }))
        .await;
        seen.overviews.extend(fresh);
    }

    /// The Flink facts of every JobID followed (and of a record's other
    /// jobs): from its cluster's overview, else by a lookup of its own.
    /// Chooses the run's health looks when Flink is first asked.
    async fn flink(
        &self,
        all: &[Record],
        chunk: &[Record],
        follow: &[Ask],
        seen: &mut Seen,
        observed: &mut [Observed],
    ) {
        let others: Vec<Ask> = follow
            .iter()
            .flat_map(|(i, _)| {
                plan::other_flink_job_ids(&chunk[*i], observed[*i].k8s.as_ref())
                    .into_iter()
                    .map(move |id| (*i, id))
            })
            .collect();
        let asked: Vec<Ask> = follow.iter().chain(&others).cloned().collect();
        let facts = self.flink_facts(chunk, &asked, seen).await;
        if seen.health.is_none() {
            // Once a run: the budget goes to jobs the overviews show running
            // (a job that just ended is looked at anyway, outside the budget).
            let clusters = all
                .iter()
                .filter(|r| r.flink_job_id.is_some())
                .map(|r| r.flink_cluster.clone());
            self.overviews(clusters, seen).await;
            let looks = HealthLooks::choose(all, self.health_budget, |r| {
                seen.shows_running(r) && !seen.conflicts.contains_key(&r.oid)
            });
            seen.health = Some(looks);
        }
        // `asked` is the followed JobIDs, then the others.
        for (n, ((i, id), f)) in asked.into_iter().zip(facts).enumerate() {
            if n < follow.len() {
                observed[i].flink = Some(f);
            } else {
                observed[i].others.push((id, f));
            }
        }
    }

    /// One answer per JobID asked: from its cluster's overview (one per
    /// cluster and run), else a lookup of its own, at most `concurrency` at
    /// once. A cluster that is down or unknown touches only its own records.
    async fn flink_facts(
        &self,
        chunk: &[Record],
        asked: &[Ask],
        seen: &mut Seen,
    ) -> Vec<FlinkFacts> {
        let cluster_of = |i: usize| chunk[i].flink_cluster.clone();
        self.overviews(asked.iter().map(|(i, _)| cluster_of(*i)), seen)
            .await;
        let mut out: Vec<Option<FlinkFacts>> = Vec::with_capacity(asked.len());
        let mut absent = Vec::new();
        for (n, (i, id)) in asked.iter().enumerate() {
            if let Some(why) = seen.conflicts.get(&chunk[*i].oid) {
                out.push(Some(FlinkFacts::Unavailable(why.clone())));
                continue;
            }
            out.push(match &seen.overviews[&chunk[*i].flink_cluster] {
                Err(e) => Some(FlinkFacts::Unavailable(e.clone())),
                Ok(overview) => overview
                    .get(id)
                    .cloned()
                    .map(FlinkFacts::Found)
                    .or_else(|| {
                        absent.push((n, *i, id));
                        None
                    }),
            });
        }
        let looked_up: Vec<(usize, FlinkFacts)> =
            futures::stream::iter(absent.into_iter().map(|(n, i, id)| async move {
                (n, self.sources.job(&chunk[i].flink_cluster, id).await)
            }))
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for (n, f) in looked_up {
            out[n] = Some(f);
        }
        out.into_iter()
            .map(|f| f.unwrap_or(FlinkFacts::Missing))
            .collect()
    }

    /// A health look at each job [`HealthLooks`] grants one. Their
    /// submitting pods are seen from the namespace lists (one per namespace
    /// and run).
    async fn health(
        &self,
        chunk: &[Record],
        follow: &[Ask],
        seen: &mut Seen,
        observed: &mut [Observed],
    ) {
        let mut looks: Vec<&Ask> = Vec::new();
        for ask in follow {
            let Some(FlinkFacts::Found(job)) = &observed[ask.0].flink else {
                continue;
            };
            if seen
                .health
                .as_mut()
                .is_some_and(|h| h.take(&chunk[ask.0], &job.state))
            {
                looks.push(ask);
            }
        }
        if looks.is_empty() {
            return;
        }
        self.list(looks.iter().map(|(i, _)| &chunk[*i]), seen).await;
        self.settle(looks.iter().map(|(i, _)| &observed[*i]), seen)
            .await;
        let default_ns = self.sources.default_namespace();
        let listed = &seen.listed;
        let facts = futures::stream::iter(looks.into_iter().map(|(i, id)| {
            let record = &chunk[*i];
            let submitter = match listed.get(record.namespace(default_ns)) {
                Some(Ok(jobs)) => jobs
                    .get(record.k8s_job_name())
                    .and_then(|j| j.submitter_restarts),
                _ => None,
            };
            async move {
                let known = health::stored_config(record);
                let cluster = &record.flink_cluster;
                let mut facts = self.sources.health(cluster, id, known.as_ref()).await;
                facts.submitter_restarts = submitter;
                (*i, facts)
            }
        }))
        .buffer_unordered(self.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
        for (i, f) in facts {
            observed[i].health = Some(f);
        }
    }

    /// The JobManager caches a job's checkpoint figures for about 3 s: a
    /// job that ended just now is asked once that has passed, since its
    /// record is final after this run and never looked at again. At most
    /// once a run: a fleet that ends jobs all the time must not wait in
    /// every chunk.
    async fn settle<'o>(&self, looked: impl Iterator<Item = &'o Observed>, seen: &mut Seen) {
        let wait = looked
            .filter_map(|o| match &o.flink {
                Some(FlinkFacts::Found(job)) => health::settle_wait(job.end_ms, Utc::now()),
                _ => None,
            })
            .max();
        if let Some(wait) = wait.filter(|_| !seen.settled) {
            tokio::time::sleep(wait).await;
            seen.settled = true;
        }
    }

    /// The root cause of each failed job the rule will want one for: a
    /// record's followed job and its other jobs alike, by one path.
    async fn root_causes(&self, chunk: &[Record], observed: &mut [Observed]) {
        // (record, which job: None for the followed one, Some(n) for others[n])
        let mut failing: Vec<(usize, Option<usize>, FlinkJobId)> = Vec::new();
        for (i, o) in observed.iter().enumerate() {
            let record = &chunk[i];
            if plan::needs_root_cause(record, o.flink.as_ref())
                && let Some(id) = plan::flink_job_id_to_follow(record, o.k8s.as_ref())
            {
                failing.push((i, None, id.clone()));
            }
            for (n, (id, f)) in o.others.iter().enumerate() {
                if plan::needs_root_cause(record, Some(f)) {
                    failing.push((i, Some(n), id.clone()));
                }
            }
        }
        let causes = futures::stream::iter(failing.into_iter().map(|(i, which, id)| async move {
            let cause = self.sources.root_cause(&chunk[i].flink_cluster, &id).await;
            (i, which, cause)
        }))
        .buffer_unordered(self.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
        for (i, which, cause) in causes {
            let facts = match which {
                None => observed[i].flink.as_mut(),
                Some(n) => observed[i].others.get_mut(n).map(|(_, f)| f),
            };
            if let Some(FlinkFacts::Found(job)) = facts {
                job.root_cause = root_cause_text(cause);
            }
        }
    }
}

/// A root cause as the record keeps it: Flink's words, or why there are none.
fn root_cause_text(cause: Result<Option<String>, Unobserved>) -> Option<String> {
    cause.unwrap_or_else(|e| {
        Some(format!(
            "Flink reports the job FAILED (root cause unavailable: {e})"
        ))
    })
}

/// The jobs of an overview that have not ended.
pub fn running(
    overview: &HashMap<FlinkJobId, FlinkJob>,
) -> impl Iterator<Item = (&FlinkJobId, &FlinkJob)> {
    overview.iter().filter(|(_, job)| !job.state.ended())
}

#[cfg(test)]
mod tests;
