//! A record as a test needs it, built field by field in the rules' own
//! types (no storage format in between).

use chrono::{DateTime, Duration, TimeZone, Utc};
use flink_job_sync::rules::model::{FlinkJobId, FlinkState, Status};
use flink_job_sync::rules::record::{Record, RecordId};

/// The time the rule tests decide at.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// A JobID from a test constant.
pub fn id(s: &str) -> FlinkJobId {
    FlinkJobId::parse(s).expect("valid id")
}

/// A time from epoch milliseconds.
pub fn at_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// A record as the submitting system writes it (`tpl-1`, CREATED, no
/// JobID), submitted a minute before [`now`]; each setter adds what an
/// earlier run would have stored.
pub struct RecordBuilder(Record);

impl RecordBuilder {
    pub fn new() -> Self {
        let mut r = Record::new(RecordId::String("oid-1".into()), "tpl-1", Status::Created);
        r.submitted_at = Some(now() - Duration::minutes(1));
        RecordBuilder(r)
    }

    pub fn status(mut self, s: Status) -> Self {
        self.0.status = s;
        self
    }

    pub fn flink_job_id(mut self, s: &str) -> Self {
        self.0.flink_job_id = Some(id(s));
        self
    }

    pub fn flink_state(mut self, s: &str) -> Self {
        self.0.flink_state = Some(FlinkState::parse(s));
        self
    }

    pub fn submitted_ago(mut self, d: Duration) -> Self {
        self.0.submitted_at = Some(now() - d);
        self
    }

    /// Any other stored field.
    pub fn with(mut self, set: impl FnOnce(&mut Record)) -> Self {
        set(&mut self.0);
        self
    }

    pub fn build(self) -> Record {
        self.0
    }
}
