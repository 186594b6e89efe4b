//! The record as sync sees it: statuses, Flink states and their mapping, the
//! validated Flink JobID, and the parsing of a `flink_jobs` document into the
//! facts sync decides on. Parsing is strict about what sync relies on and
//! tolerant of everything else, which it never rewrites.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use mongodb::bson::{Bson, Document, RawDocumentBuf};

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
    pub cluster: String,
    /// Its JobID.
    pub flink_job_id: String,
    /// Its name, as Flink gives it.
    pub name: String,
    /// Its Flink state.
    pub state: String,
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

/// Maps Flink's job state to a record status; `None` for a state this version
/// does not know, which then changes nothing but `flink_state`.
pub fn status_for_flink_state(state: &str) -> Option<Status> {
    Some(match state {
        "INITIALIZING" | "CREATED" => Status::Created,
        "RUNNING" | "CANCELLING" | "RESTARTING" | "FAILING" | "RECONCILING" => Status::Running,
        "SUSPENDED" => Status::Suspended,
        "FINISHED" => Status::Finished,
        "FAILED" => Status::Failed,
        "CANCELED" => Status::Cancelled,
        _ => return None,
    })
}

/// Whether Flink's job state is a final one (a state this version does not
/// know is not).
pub fn flink_state_ended(state: &str) -> bool {
    status_for_flink_state(state).is_some_and(Status::is_final)
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

/// Why a document could not be taken as a record. Named by `job_id` when it has
/// a string one, else by `_id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {id}: {problem}")]
pub struct MalformedRecord {
    /// `job_id "..."`, or `_id ...` without a string job_id.
    pub id: String,
    /// What is wrong, naming the field.
    pub problem: String,
}

/// A record's `_id`: an ObjectId inline (what the submitting system writes),
/// any other value boxed. A run holds every non-final record, and a `Bson`
/// inline would cost each of them about a hundred bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordId {
    /// An ObjectId (what the submitting system writes).
    ObjectId(mongodb::bson::oid::ObjectId),
    /// Any other `_id`.
    Other(Box<Bson>),
}

impl RecordId {
    /// The id of a stored `_id`.
    pub fn from_bson(b: &Bson) -> RecordId {
        match b {
            Bson::ObjectId(o) => RecordId::ObjectId(*o),
            other => RecordId::Other(Box::new(other.clone())),
        }
    }

    /// The `_id` as stored.
    pub fn to_bson(&self) -> Bson {
        match self {
            RecordId::ObjectId(o) => Bson::ObjectId(*o),
            RecordId::Other(b) => (**b).clone(),
        }
    }

    /// A total order in MongoDB's own order across the types an `_id` takes
    /// here (numbers, then strings, then ObjectIds); other types sort first.
    pub fn sort_key(&self) -> (u8, i64, Vec<u8>) {
        match self {
            RecordId::ObjectId(o) => (3, 0, o.bytes().to_vec()),
            RecordId::Other(b) => match &**b {
                Bson::Int32(n) => (1, i64::from(*n), Vec::new()),
                Bson::Int64(n) => (1, *n, Vec::new()),
                Bson::String(s) => (2, 0, s.as_bytes().to_vec()),
                _ => (0, 0, Vec::new()),
            },
        }
    }
}

/// What sync reads of a record. Fields sync does not own are not kept here,
/// and so can never be written back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `_id`.
    pub oid: RecordId,
    /// `job_id`: the submission's id, unique.
    pub job_id: String,
    /// `status`.
    pub status: Status,
    /// `flink_job_id`, once read from the pod log.
    pub flink_job_id: Option<FlinkJobId>,
    /// `submitted_at`.
    pub submitted_at: Option<DateTime<Utc>>,
    /// `k8s_job_name`; the job_id when absent.
    pub k8s_job_name: Option<String>,
    /// `k8s_namespace`; `K8S_NAMESPACE` when absent.
    pub k8s_namespace: Option<String>,
    /// `flink_state`: Flink's own word for the job's state.
    pub flink_state: Option<String>,
    /// `flink_job_ids`: every JobID the pod log announced (the first is
    /// `flink_job_id`); entries that are not JobIDs are dropped.
    pub flink_job_ids: Vec<FlinkJobId>,
    /// `flink_jobs_state`: each job's Flink state, for a record of several jobs.
    pub flink_jobs_state: Option<Document>,
    /// `flink_cluster`: the named cluster (`FLINK_CLUSTERS`) the job runs
    /// on; `None` for the one `FLINK_REST_URL` names.
    pub flink_cluster: Option<String>,
    /// `start_time`, from Flink.
    pub start_time: Option<DateTime<Utc>>,
    /// `end_time`, from Flink.
    pub end_time: Option<DateTime<Utc>>,
    /// `duration` in seconds, from Flink's times.
    pub duration: Option<f64>,
    /// `status_reason`: why the status is what it is.
    pub status_reason: Option<String>,
    /// `sync_error`: why the last run could not observe the record.
    pub sync_error: Option<String>,
    /// `flink_missing_count`: runs in a row Flink did not know the JobID.
    pub flink_missing_count: u32,
    /// `None` for a record sync has never written.
    pub revision: Option<i64>,
    /// `flink_job_id` was stored as `""` rather than null or absent: the
    /// conditional write must match what is stored.
    pub flink_job_id_empty: bool,
    /// `health`, as last judged.
    pub health: Option<Health>,
    /// The codes of `health_reasons`, as last judged.
    pub health_codes: Vec<String>,
    /// `health_checked_at`: the last look at the job's health.
    pub health_checked_at: Option<DateTime<Utc>>,
    /// `restarts`: `numRestarts` as last seen.
    pub restarts: Option<u64>,
    /// `restart_samples`: `[at, restarts]` pairs over the restart window.
    pub restart_samples: Vec<(DateTime<Utc>, u64)>,
    /// `submitter_restarts`: the submitting pod's container restarts, as last seen.
    pub submitter_restarts: Option<u32>,
    /// `checkpoint.failed` as last seen.
    pub checkpoint_failed: Option<u64>,
    /// `checkpoint`, as stored (sync's own field, read leniently).
    pub checkpoint: Option<RawDocumentBuf>,
    /// `restart_point`.
    pub restart_point: Option<String>,
}

impl Record {
    /// The Kubernetes Job this record was submitted as.
    pub fn k8s_job_name(&self) -> &str {
        self.k8s_job_name.as_deref().unwrap_or(&self.job_id)
    }

    /// The namespace of its Job: its own, else `default`.
    pub fn namespace<'a>(&'a self, default: &'a str) -> &'a str {
        self.k8s_namespace.as_deref().unwrap_or(default)
    }

    /// When the record was submitted: `submitted_at`, else the creation time an
    /// ObjectId `_id` carries.
    pub fn submitted(&self) -> Option<DateTime<Utc>> {
        self.submitted_at.or_else(|| match &self.oid {
            RecordId::ObjectId(oid) => Utc
                .timestamp_millis_opt(oid.timestamp().timestamp_millis())
                .single(),
            _ => None,
        })
    }

    /// Reads a stored document; a field of the wrong type, an unknown
    /// status or a name that cannot be a Kubernetes name makes it malformed.
    pub fn from_document(doc: &Document) -> Result<Record, MalformedRecord> {
        let oid = doc.get("_id").unwrap_or(&Bson::Null);
        let job_id = match doc.get("job_id") {
            Some(Bson::String(s)) if !s.is_empty() => s.clone(),
            other => {
                return Err(MalformedRecord {
                    id: format!("_id {}", display_id(oid)),
                    problem: format!(
                        "job_id must be a non-empty string, found {}",
                        bson_kind(other)
                    ),
                });
            }
        };
        let f = Fields {
            doc,
            // A report goes to logs and the runs collection: however long
            // the stored values, it stays short.
            id: format!("job_id {:?}", truncate(&job_id, 80)),
        };
        // Checked in this order, so a record with several faults reports the same one.
        let status = f.status()?;
        let (flink_job_id, flink_job_id_empty) = f.flink_job_id()?;
        Ok(Record {
            oid: RecordId::from_bson(oid),
            status,
            flink_job_id,
            flink_job_id_empty,
            k8s_job_name: f.name("k8s_job_name", is_dns_subdomain, "a Kubernetes name")?,
            k8s_namespace: f.name("k8s_namespace", is_dns_label, "a Kubernetes namespace")?,
            submitted_at: f.date("submitted_at")?,
            flink_state: f.string("flink_state")?,
            flink_cluster: f.string("flink_cluster")?,
            flink_job_ids: doc
                .get_array("flink_job_ids")
                .into_iter()
                .flatten()
                .filter_map(|v| FlinkJobId::parse(v.as_str()?))
                .collect(),
            flink_jobs_state: doc.get_document("flink_jobs_state").ok().cloned(),
            start_time: f.date("start_time")?,
            end_time: f.date("end_time")?,
            duration: f.number("duration")?,
            status_reason: f.string("status_reason")?,
            sync_error: f.string("sync_error")?,
            flink_missing_count: f.count("flink_missing_count"),
            revision: f.integer("revision")?,
            health: doc.get_str("health").ok().and_then(Health::parse),
            health_codes: f.reason_codes(),
            health_checked_at: doc.get("health_checked_at").and_then(parse_date),
            restarts: f.count_u64("restarts"),
            restart_samples: f.samples(),
            submitter_restarts: f
                .count_u64("submitter_restarts")
                .and_then(|n| u32::try_from(n).ok()),
            checkpoint_failed: doc
                .get_document("checkpoint")
                .ok()
                .and_then(|c| whole(c.get("failed"))),
            // Kept as its bytes: an owned `Document` of a few fields costs
            // about a kilobyte, held for every record for the whole run, and
            // only the records a run looks at read it.
            checkpoint: doc
                .get_document("checkpoint")
                .ok()
                .and_then(|d| RawDocumentBuf::from_document(d).ok()),
            restart_point: doc.get_str("restart_point").ok().map(str::to_string),
            job_id,
        })
    }
}

/// A stored document read field by field; every problem names the record.
struct Fields<'a> {
    doc: &'a Document,
    id: String,
}

impl Fields<'_> {
    fn bad(&self, problem: String) -> MalformedRecord {
        MalformedRecord {
            id: self.id.clone(),
            problem,
        }
    }

    fn status(&self) -> Result<Status, MalformedRecord> {
        match self.doc.get("status") {
            Some(Bson::String(s)) => Status::parse(s)
                .ok_or_else(|| self.bad(format!("unknown status {:?}", truncate(s, 40)))),
            other => Err(self.bad(format!(
                "status must be a string, found {}",
                bson_kind(other)
            ))),
        }
    }

    /// The JobID, and whether it is stored as `""` (the conditional write
    /// must match what is stored).
    fn flink_job_id(&self) -> Result<(Option<FlinkJobId>, bool), MalformedRecord> {
        match self.doc.get("flink_job_id").unwrap_or(&Bson::Null) {
            Bson::Null => Ok((None, false)),
            Bson::String(s) if s.is_empty() => Ok((None, true)),
            Bson::String(s) => FlinkJobId::parse(s)
                .map(|id| (Some(id), false))
                .ok_or_else(|| {
                    self.bad(format!(
                        "flink_job_id {:?} is not 32 lowercase hex digits",
                        truncate(s, 80)
                    ))
                }),
            other => Err(self.bad(format!(
                "flink_job_id must be a string or null, found {}",
                bson_kind(Some(other))
            ))),
        }
    }

    fn string(&self, field: &str) -> Result<Option<String>, MalformedRecord> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            other => Err(self.bad(format!(
                "{field} must be a string, found {}",
                bson_kind(other)
            ))),
        }
    }

    /// A string that goes into a Kubernetes URL, so it must pass `valid`.
    fn name(
        &self,
        field: &str,
        valid: fn(&str) -> bool,
        what: &str,
    ) -> Result<Option<String>, MalformedRecord> {
        match self.string(field)? {
            Some(name) if !valid(&name) => {
                Err(self.bad(format!("{field} {:?} is not {what}", truncate(&name, 80))))
            }
            name => Ok(name),
        }
    }

    fn date(&self, field: &str) -> Result<Option<DateTime<Utc>>, MalformedRecord> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(v) => parse_date(v)
                .map(Some)
                .ok_or_else(|| self.bad(format!("{field} is not a date: {}", bson_kind(Some(v))))),
        }
    }

    fn number(&self, field: &str) -> Result<Option<f64>, MalformedRecord> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::Double(d)) => Ok(Some(*d)),
            Some(Bson::Int32(i)) => Ok(Some(f64::from(*i))),
            Some(Bson::Int64(i)) => Ok(Some(*i as f64)),
            other => Err(self.bad(format!(
                "{field} must be a number, found {}",
                bson_kind(other)
            ))),
        }
    }

    fn integer(&self, field: &str) -> Result<Option<i64>, MalformedRecord> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::Int64(i)) => Ok(Some(*i)),
            Some(Bson::Int32(i)) => Ok(Some(i64::from(*i))),
            other => Err(self.bad(format!(
                "{field} must be an integer, found {}",
                bson_kind(other)
            ))),
        }
    }

    /// `health_reasons[].code`; sync's own field: anything unreadable is none.
    fn reason_codes(&self) -> Vec<String> {
        let reasons = self.doc.get_array("health_reasons").into_iter().flatten();
        reasons
            .filter_map(|r| r.as_document()?.get_str("code").ok())
            .map(str::to_string)
            .collect()
    }

    /// `restart_samples`: `[date, count]` pairs; unreadable ones are dropped.
    fn samples(&self) -> Vec<(DateTime<Utc>, u64)> {
        let samples = self.doc.get_array("restart_samples").into_iter().flatten();
        samples
            .filter_map(|s| {
                let pair = s.as_array()?;
                Some((parse_date(pair.first()?)?, whole(pair.get(1))?))
            })
            .collect()
    }

    /// A non-negative whole number sync owns; anything else is none.
    fn count_u64(&self, field: &str) -> Option<u64> {
        whole(self.doc.get(field))
    }

    /// A counter sync owns: anything unreadable counts from zero again.
    fn count(&self, field: &str) -> u32 {
        match self.doc.get(field) {
            Some(Bson::Int32(i)) => u32::try_from(*i).unwrap_or(0),
            Some(Bson::Int64(i)) => u32::try_from(*i).unwrap_or(0),
            _ => 0,
        }
    }
}

/// Reads a BSON date, or an ISO-8601 string with or without an offset (a
/// string without one is taken as UTC, as the submitting system writes UTC).
pub fn parse_date(v: &Bson) -> Option<DateTime<Utc>> {
    match v {
        Bson::DateTime(d) => Utc.timestamp_millis_opt(d.timestamp_millis()).single(),
        Bson::String(s) => {
            let s = s.trim();
            if let Ok(d) = DateTime::parse_from_rfc3339(s) {
                return Some(d.with_timezone(&Utc));
            }
            for fmt in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
            ] {
                if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Some(Utc.from_utc_datetime(&n));
                }
            }
            None
        }
        _ => None,
    }
}

/// A BSON date (milliseconds, as MongoDB stores them).
pub fn to_bson_date(d: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(d.timestamp_millis()))
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

fn display_id(id: &Bson) -> String {
    match id {
        Bson::ObjectId(o) => o.to_hex(),
        Bson::String(s) => truncate(s, 80).to_string(),
        other => truncate(&other.to_string(), 80).to_string(),
    }
}

/// A non-negative whole number, however MongoDB stored it.
pub fn whole(v: Option<&Bson>) -> Option<u64> {
    match v? {
        Bson::Int32(i) => u64::try_from(*i).ok(),
        Bson::Int64(i) => u64::try_from(*i).ok(),
        Bson::Double(d) if d.fract() == 0.0 && *d >= 0.0 && *d < 9.0e15 => Some(*d as u64),
        _ => None,
    }
}

/// What a stored value is, in words, for a malformed-record report.
fn bson_kind(v: Option<&Bson>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(Bson::Null) => "null".to_string(),
        Some(Bson::String(s)) => format!("the string {:?}", truncate(s, 40)),
        Some(other) => format!("{:?}", other.element_type()),
    }
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
    use mongodb::bson::{doc, oid::ObjectId};

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
            assert_eq!(status_for_flink_state(flink), Some(status), "{flink}");
        }
        assert_eq!(
            status_for_flink_state("CANCELLED"),
            None,
            "Flink spells it CANCELED"
        );
        assert_eq!(status_for_flink_state("running"), None);
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

    #[test]
    fn record_with_string_dates_parses_as_utc() {
        let d = doc! {"_id": ObjectId::new(), "job_id": "j1", "status": "CREATED", "flink_job_id": null,
        "submitted_at": "2025-11-01T12:00:00", "start_time": "2025-11-01T12:00:30+08:00"};
        let r = Record::from_document(&d).expect("parses");
        assert_eq!(
            r.submitted_at.map(|d| d.to_rfc3339()),
            Some("2025-11-01T12:00:00+00:00".to_string())
        );
        assert_eq!(
            r.start_time.map(|d| d.to_rfc3339()),
            Some("2025-11-01T04:00:30+00:00".to_string())
        );
        assert_eq!(r.k8s_job_name(), "j1");
    }

    #[test]
    fn malformed_records_are_named_by_job_id_or_object_id() {
        let oid = ObjectId::new();
        let e = Record::from_document(&doc! {"_id": oid, "job_id": 42, "status": "CREATED"})
            .expect_err("bad job_id");
        assert!(e.id.contains(&oid.to_hex()), "{e}");
        assert!(e.problem.contains("job_id"), "{e}");
        let e = Record::from_document(&doc! {"_id": oid, "job_id": "j", "status": "DONE"})
            .expect_err("bad status");
        assert_eq!(e.id, "job_id \"j\"");
        let e = Record::from_document(
            &doc! {"job_id": "j", "status": "CREATED", "flink_job_id": "../x"},
        )
        .expect_err("bad flink id");
        assert!(e.problem.contains("32 lowercase hex"), "{e}");
        let e = Record::from_document(
            &doc! {"job_id": "j", "status": "CREATED", "submitted_at": "yesterday"},
        )
        .expect_err("bad date");
        assert!(e.problem.contains("submitted_at"), "{e}");
        let e = Record::from_document(
            &doc! {"job_id": "j", "status": "CREATED", "k8s_job_name": "a/b"},
        )
        .expect_err("bad name");
        assert!(e.problem.contains("k8s_job_name"), "{e}");
    }

    #[test]
    fn submitted_falls_back_to_the_object_id_time() {
        let oid = ObjectId::new();
        let r = Record::from_document(&doc! {"_id": oid, "job_id": "j", "status": "CREATED"})
            .expect("parses");
        assert_eq!(
            r.submitted().map(|d| d.timestamp()),
            Some(oid.timestamp().timestamp_millis() / 1000)
        );
    }
}
