//! The words sync decides in: statuses, Flink states and their mapping, the
//! validated Flink JobID, cluster references, health verdicts and the
//! systems an error comes from. The record itself is [`crate::rules::record`].
//! Nothing here knows how any of it is stored.

use std::fmt;

use chrono::Duration;

/// A record's status. The first three are not final; sync never moves a record
/// out of a final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Submitted; no Flink JobID known yet.
    Created,
    /// Flink runs the job (or is about to).
    Running,
    /// Flink suspended the job (savepoint stop).
    Suspended,
    /// Final: the job finished.
    Finished,
    /// Final: the job, its submission or its Kubernetes Job failed.
    Failed,
    /// Final: the job was cancelled.
    Cancelled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] = [
        Status::Created,
        Status::Running,
        Status::Suspended,
        Status::Finished,
        Status::Failed,
        Status::Cancelled,
    ];
    /// The statuses sync follows.
    pub const NON_FINAL: [Status; 3] = [Status::Created, Status::Running, Status::Suspended];

    /// The status as stored (`RUNNING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Running => "RUNNING",
            Status::Suspended => "SUSPENDED",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// A stored status; `None` for one the product does not know.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// FINISHED, FAILED and CANCELLED: sync never changes them.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Cancelled)
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flink's word for a job's state. States a newer Flink adds pass through
/// as [`FlinkState::Other`]: kept in `flink_state`, mapped to no status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlinkState {
    /// `INITIALIZING`: the JobManager is setting the job up.
    Initializing,
    /// `CREATED`: set up, not yet scheduled.
    Created,
    /// `RUNNING`.
    Running,
    /// `FAILING`: on its way to FAILED or RESTARTING.
    Failing,
    /// `FAILED`: final.
    Failed,
    /// `CANCELLING`.
    Cancelling,
    /// `CANCELED` (Flink's spelling): final.
    Canceled,
    /// `FINISHED`: final.
    Finished,
    /// `RESTARTING`.
    Restarting,
    /// `SUSPENDED`: stopped with a savepoint, may resume.
    Suspended,
    /// `RECONCILING`: a JobManager recovering the job.
    Reconciling,
    /// A state this version does not know, as Flink spelled it.
    Other(String),
}

impl FlinkState {
    const KNOWN: [FlinkState; 11] = [
        FlinkState::Initializing,
        FlinkState::Created,
        FlinkState::Running,
        FlinkState::Failing,
        FlinkState::Failed,
        FlinkState::Cancelling,
        FlinkState::Canceled,
        FlinkState::Finished,
        FlinkState::Restarting,
        FlinkState::Suspended,
        FlinkState::Reconciling,
    ];

    /// Flink's word, as its REST API spells it.
    pub fn parse(s: &str) -> FlinkState {
        FlinkState::KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| FlinkState::Other(s.to_string()))
    }

    /// The word as Flink spells it (`CANCELED`).
    pub fn as_str(&self) -> &str {
        match self {
            FlinkState::Initializing => "INITIALIZING",
            FlinkState::Created => "CREATED",
            FlinkState::Running => "RUNNING",
            FlinkState::Failing => "FAILING",
            FlinkState::Failed => "FAILED",
            FlinkState::Cancelling => "CANCELLING",
            FlinkState::Canceled => "CANCELED",
            FlinkState::Finished => "FINISHED",
            FlinkState::Restarting => "RESTARTING",
            FlinkState::Suspended => "SUSPENDED",
            FlinkState::Reconciling => "RECONCILING",
            FlinkState::Other(s) => s,
        }
    }

    /// The record status this state means; `None` for a state this version
    /// does not know, which then changes nothing but `flink_state`.
    pub fn status(&self) -> Option<Status> {
        Some(match self {
            FlinkState::Initializing | FlinkState::Created => Status::Created,
            FlinkState::Running
            | FlinkState::Cancelling
            | FlinkState::Restarting
            | FlinkState::Failing
            | FlinkState::Reconciling => Status::Running,
            FlinkState::Suspended => Status::Suspended,
            FlinkState::Finished => Status::Finished,
            FlinkState::Failed => Status::Failed,
            FlinkState::Canceled => Status::Cancelled,
            FlinkState::Other(_) => return None,
        })
    }

    /// Whether the job has ended (a state this version does not know has not).
    pub fn ended(&self) -> bool {
        self.status().is_some_and(Status::is_final)
    }

    /// CREATED or INITIALIZING: the job is starting, its tasks not yet running.
    pub fn starting(&self) -> bool {
        matches!(self, FlinkState::Created | FlinkState::Initializing)
    }
}

impl From<&str> for FlinkState {
    fn from(s: &str) -> Self {
        FlinkState::parse(s)
    }
}

impl fmt::Display for FlinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for FlinkState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The name a run's `clusters` scope, the untracked report and the logs use
/// for the cluster `FLINK_REST_URL` names (records without `flink_cluster`).
pub const DEFAULT_CLUSTER: &str = "default";

/// Which Flink cluster a record's job runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ClusterRef {
    /// The one `FLINK_REST_URL` names: the record has no `flink_cluster`.
    #[default]
    Default,
    /// One of `FLINK_CLUSTERS`, by the name the record's `flink_cluster` gives.
    Named(String),
}

impl ClusterRef {
    /// The cluster a scope or report names: [`DEFAULT_CLUSTER`] is the default one.
    pub fn from_name(name: &str) -> ClusterRef {
        if name == DEFAULT_CLUSTER {
            ClusterRef::Default
        } else {
            ClusterRef::Named(name.to_string())
        }
    }

    /// Its name in scopes, reports and logs ([`DEFAULT_CLUSTER`] for the default).
    pub fn name(&self) -> &str {
        match self {
            ClusterRef::Default => DEFAULT_CLUSTER,
            ClusterRef::Named(n) => n,
        }
    }
}

impl fmt::Display for ClusterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for ClusterRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A job's health, as sync last judged it (`health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Health {
    /// Nothing wrong seen.
    Healthy,
    /// Something wrong: `health_reasons` say what.
    Degraded,
    /// Flink gave no trustworthy answer to the health requests.
    Unknown,
}

impl Health {
    /// The value as stored (`DEGRADED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "HEALTHY",
            Health::Degraded => "DEGRADED",
            Health::Unknown => "UNKNOWN",
        }
    }

    /// A stored value; `None` for one the product does not know.
    pub fn parse(s: &str) -> Option<Health> {
        [Health::Healthy, Health::Degraded, Health::Unknown]
            .into_iter()
            .find(|h| h.as_str() == s)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a job is not healthy: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReason {
    /// `restart_loop`, `checkpoints_failing`, `tasks_not_running`,
    /// `stuck_starting`, `submitter_restarting` or `unobservable`.
    pub code: String,
    /// What was seen, in words.
    pub message: String,
}

/// A job a cluster runs that no record claims.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Untracked {
    /// The cluster (`default` for `FLINK_REST_URL`'s).
    pub cluster: ClusterRef,
    /// Its JobID.
    pub flink_job_id: String,
    /// Its name, as Flink gives it.
    pub name: String,
    /// Its Flink state.
    pub state: FlinkState,
}

impl Untracked {
    /// Its key in the untracked collection.
    pub fn key(&self) -> String {
        format!("{}/{}", self.cluster, self.flink_job_id)
    }
}

/// The system a per-record error comes from. It names the error in
/// `sync_error` (`"flink: ..."`) and the run's answer (`"system"`), and the
/// metrics count errors by it; no one reads it back out of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// Flink's REST API.
    Flink,
    /// The Kubernetes API.
    Kubernetes,
    /// MongoDB.
    MongoDb,
}

impl System {
    /// The name stored in `sync_error` and metrics (`flink`).
    pub fn as_str(self) -> &'static str {
        match self {
            System::Flink => "flink",
            System::Kubernetes => "kubernetes",
            System::MongoDb => "mongodb",
        }
    }
}

impl serde::Serialize for System {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why something could not be observed for a record this run. Its text is
/// what the record's `sync_error` and the run's answer say after the system.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unobserved {
    /// The server gave no trustworthy answer (timeout, refused, 5xx,
    /// garbled JSON), in the adapter's words.
    #[error("{0}")]
    Unanswered(String),
    /// The record names a cluster this deployment does not follow.
    #[error("{}", unknown_cluster(cluster, known))]
    UnknownCluster {
        /// The cluster the record names.
        cluster: ClusterRef,
        /// The clusters this deployment follows, by name.
        known: Vec<String>,
    },
    /// Another record read this run claims the same JobID: neither follows it.
    #[error("JobID {flink_job_id} is also claimed by record {}: not followed until one record lets it go", others.join(", "))]
    SharedJobId {
        /// The JobID claimed twice.
        flink_job_id: FlinkJobId,
        /// The other records' job_ids.
        others: Vec<String>,
    },
    /// The namespace's Job list was not read this run.
    #[error("namespace {0} was not listed")]
    NotListed(String),
    /// Other records have this record's `job_id` (a collection older than
    /// the unique index on it): none of them is synced, so no record is
    /// decided, reported or announced on another's account.
    #[error(
        "job_id {:?} is shared by {count} records: none of them is synced until only one has it",
        truncate(job_id, 80)
    )]
    SharedJobIdOfRecord {
        /// The shared job_id.
        job_id: String,
        /// How many records read have it.
        count: usize,
    },
}

fn unknown_cluster(cluster: &ClusterRef, known: &[String]) -> String {
    match cluster {
        ClusterRef::Default => {
            "the record names no flink_cluster and FLINK_REST_URL is not set".to_string()
        }
        ClusterRef::Named(name) => format!(
            "flink_cluster {:?} is not in FLINK_CLUSTERS (known: {})",
            truncate(name, 80),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ),
    }
}

/// A Flink JobID: exactly 32 lowercase hex digits. Only this type goes into a
/// Flink URL, so nothing read from a log or a record reaches one unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlinkJobId(String);

impl FlinkJobId {
    /// 32 lowercase hex digits, else `None`: nothing else may reach a URL.
    pub fn parse(s: &str) -> Option<FlinkJobId> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| FlinkJobId(s.to_string()))
    }

    /// The JobID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlinkJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// DNS-1123 subdomain, as Kubernetes requires of object names.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| is_dns_label_chars(l, 63))
}

/// DNS-1123 label, as Kubernetes requires of namespaces.
pub fn is_dns_label(s: &str) -> bool {
    is_dns_label_chars(s, 63)
}

fn is_dns_label_chars(l: &str, max: usize) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A duration as a person says it: `45s`, `10m`, `1h02m`, `3d04h`.
pub fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (days, hours, mins, secs) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m{s:02}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h{m:02}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d{h:02}h"),
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flink_state_of_the_mapping_table_maps_as_specified() {
        let table = [
            ("CREATED", Status::Created),
            ("INITIALIZING", Status::Created),
            ("RUNNING", Status::Running),
            ("CANCELLING", Status::Running),
            ("RESTARTING", Status::Running),
            ("FAILING", Status::Running),
            ("RECONCILING", Status::Running),
            ("SUSPENDED", Status::Suspended),
            ("FINISHED", Status::Finished),
            ("FAILED", Status::Failed),
            ("CANCELED", Status::Cancelled),
        ];
        for (flink, status) in table {
            assert_eq!(FlinkState::parse(flink).status(), Some(status), "{flink}");
            assert_eq!(FlinkState::parse(flink).as_str(), flink, "round trip");
        }
        assert_eq!(
            FlinkState::parse("CANCELLED").status(),
            None,
            "Flink spells it CANCELED"
        );
        assert_eq!(FlinkState::parse("running").status(), None);
        assert_eq!(
            FlinkState::parse("DRAINING"),
            FlinkState::Other("DRAINING".into()),
            "a state a newer Flink adds passes through as it is spelled"
        );
        assert!(!FlinkState::parse("DRAINING").ended());
    }

    #[test]
    fn only_final_statuses_are_final() {
        let finals: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(
            finals,
            [Status::Finished, Status::Failed, Status::Cancelled]
        );
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_default_cluster_is_named_default_everywhere() {
        assert_eq!(ClusterRef::from_name("default"), ClusterRef::Default);
        assert_eq!(ClusterRef::Default.name(), DEFAULT_CLUSTER);
        assert_eq!(
            ClusterRef::from_name("prod"),
            ClusterRef::Named("prod".into())
        );
        assert_eq!(ClusterRef::Named("prod".into()).to_string(), "prod");
    }

    #[test]
    fn flink_job_id_accepts_only_32_lowercase_hex() {
        assert!(FlinkJobId::parse("ef163bff25523543d6699ac3c0e9b72e").is_some());
        for bad in [
            "",
            "EF163BFF25523543D6699AC3C0E9B72E",
            "ef163bff25523543d6699ac3c0e9b72",
            "ef163bff25523543d6699ac3c0e9b72e0",
            "../../jobs/x/cancel0000000000000",
            "ef163bff25523543d6699ac3c0e9b72g",
        ] {
            assert!(FlinkJobId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
