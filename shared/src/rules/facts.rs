//! What the adapters observed of a record's Kubernetes Job and Flink job,
//! in the rules' own types: the input of [`crate::rules::plan::decide`]. An
//! observation that got no trustworthy answer says why in an [`Unobserved`].

use chrono::{DateTime, Utc};

use crate::rules::health::{HealthFacts, Tasks};
pub use crate::rules::model::Unobserved;
use crate::rules::model::{FlinkJobId, FlinkState};

/// What was seen of the record's Kubernetes Job.
#[derive(Debug, Clone, PartialEq)]
pub enum K8sFacts {
    /// The namespace's Job list could not be read.
    Unavailable(Unobserved),
    /// The list was read and has no Job of that name.
    NoJob,
    /// The Job, with its pods and logs.
    Job(JobFacts),
}

/// What was seen of a record's Kubernetes Job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobFacts {
    /// The Job's name.
    pub name: String,
    /// Condition `Complete` is true.
    pub complete: bool,
    /// Condition `Failed` is true: its reason and message.
    pub failed: Option<String>,
    /// The newest pod of the Job.
    pub pod: Option<PodFacts>,
    /// Its started pods' logs.
    pub log: LogFacts,
}

/// The Job's newest pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodFacts {
    /// The pod's name.
    pub name: String,
    /// A container waiting: reason, message, and since when (pod creation).
    pub waiting: Option<Waiting>,
    /// Exit code of the terminated container.
    pub exit_code: Option<i32>,
}

/// A container waiting to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// Kubernetes' reason (`ImagePullBackOff`).
    pub reason: String,
    /// Kubernetes' message.
    pub message: String,
    /// Since when: the pod's creation.
    pub since: Option<DateTime<Utc>>,
}

/// The pod logs of the Job, read from its pods that have started.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LogFacts {
    /// No pod has started, or the Job has no pod at all.
    #[default]
    NotStarted,
    /// The logs were read: the JobIDs they announce and their last lines.
    Read {
        /// The JobIDs announced, oldest pod first, without repeats.
        ids: Vec<FlinkJobId>,
        /// The newest log's last lines, for a failure's reason.
        tail: String,
    },
    /// A pod has started but its log could not be read this time.
    Unreadable(Unobserved),
}

/// What was seen of the Flink job.
#[derive(Debug, Clone, PartialEq)]
pub enum FlinkFacts {
    /// The JobManager (or History Server) knows the job.
    Found(FlinkJob),
    /// The JobManager answered, and no source knows the job: a trusted miss.
    Missing,
    /// No trustworthy answer, or no cluster to ask.
    Unavailable(Unobserved),
}

/// A job as Flink reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlinkJob {
    /// Flink's state (`RUNNING`); unknown states pass through.
    pub state: FlinkState,
    /// Epoch milliseconds; -1 (or any value ≤ 0) when Flink has none.
    pub start_ms: i64,
    /// Epoch milliseconds; -1 (or any value ≤ 0) while running.
    pub end_ms: i64,
    /// Root cause from `/jobs/{id}/exceptions`, fetched for failed jobs.
    pub root_cause: Option<String>,
    /// Task counts, from the overview.
    pub tasks: Option<Tasks>,
    /// When the job's state last changed (epoch ms; ≤ 0 when unknown).
    pub last_modification_ms: i64,
    /// The job's name (at most 200 bytes), as the overview gives it.
    pub name: String,
}

/// Everything observed for one record in this run. `flink` describes the
/// record's JobID, or the one the log just revealed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The Kubernetes facts; `None` when not looked at (the JobID is known).
    pub k8s: Option<K8sFacts>,
    /// The Flink facts; `None` when there is no JobID to follow.
    pub flink: Option<FlinkFacts>,
    /// A look at the job's health; `None` when not looked at this run.
    pub health: Option<HealthFacts>,
    /// The other jobs of a record whose pod log announced several.
    pub others: Vec<(FlinkJobId, FlinkFacts)>,
    /// Why the record cannot be decided on its own facts (another record
    /// has its job_id); nothing else is observed then.
    pub conflict: Option<Unobserved>,
}
