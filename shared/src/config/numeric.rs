//! The settings made of numbers only (the sync run's and the rules'), built
//! by one function each from any reader of numbers: the environment's
//! reader, or the declared defaults, which makes them the settings'
//! `Default` impls (so `SyncRules::default()` is what an empty environment
//! gives).

use std::convert::Infallible;

use crate::config::declared::{
    CLEANUP_MAX_EVIDENCE_AGE_HOURS, CLEANUP_MIN_AGE_HOURS, FLINK_MISSING_THRESHOLD, HEALTH_BUDGET,
    HEALTH_CHECKPOINT_AGE_FACTOR, HEALTH_RESTART_WINDOW_SECONDS, HEALTH_RESTARTS_MIN,
    HEALTH_TASKS_GRACE_SECONDS, JOB_NOT_FOUND_GRACE_SECONDS, LOG_CONCURRENCY, Number,
    POD_WAITING_GRACE_SECONDS, STATUS_HISTORY_MAX, STATUS_REASON_MAX_BYTES, SYNC_CHUNK_SIZE,
    Setting,
};
use crate::config::settings::SyncSettings;
use crate::rules::cleanup::CleanupRules;
use crate::rules::health::HealthRules;
use crate::rules::plan::SyncRules;

/// Reads one number setting: its value within its declared range, or why not.
pub(crate) type ReadNumber<'a, E> = &'a dyn Fn(&Setting<Number>) -> Result<u64, E>;

/// The declared default: what an empty environment gives.
fn declared(setting: &Setting<Number>) -> Result<u64, Infallible> {
    Ok(setting.kind.default)
}

// The casts below are lossless: each declared range fits the field's type.
fn seconds(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(s as i64)
}

fn hours(h: u64) -> chrono::Duration {
    chrono::Duration::hours(h as i64)
}

/// How a sync run goes through the records.
pub(crate) fn sync_settings<E>(n: ReadNumber<'_, E>) -> Result<SyncSettings, E> {
    Ok(SyncSettings {
        chunk_size: n(&SYNC_CHUNK_SIZE)? as usize,
        concurrency: n(&LOG_CONCURRENCY)? as usize,
        history_max: n(&STATUS_HISTORY_MAX)? as usize,
    })
}

/// The sync rule's graces and limits, with the health rule's.
pub(crate) fn sync_rules<E>(n: ReadNumber<'_, E>) -> Result<SyncRules, E> {
    Ok(SyncRules {
        job_not_found_grace: seconds(n(&JOB_NOT_FOUND_GRACE_SECONDS)?),
        pod_waiting_grace: seconds(n(&POD_WAITING_GRACE_SECONDS)?),
        missing_threshold: n(&FLINK_MISSING_THRESHOLD)? as u32,
        reason_max_bytes: n(&STATUS_REASON_MAX_BYTES)? as usize,
        health: health_rules(n)?,
    })
}

/// The health rule's thresholds.
pub(crate) fn health_rules<E>(n: ReadNumber<'_, E>) -> Result<HealthRules, E> {
    Ok(HealthRules {
        restarts_min: n(&HEALTH_RESTARTS_MIN)?,
        restart_window: seconds(n(&HEALTH_RESTART_WINDOW_SECONDS)?),
        checkpoint_age_factor: n(&HEALTH_CHECKPOINT_AGE_FACTOR)? as u32,
        tasks_grace: seconds(n(&HEALTH_TASKS_GRACE_SECONDS)?),
        budget: n(&HEALTH_BUDGET)? as usize,
    })
}

/// The cleanup rule's ages.
pub(crate) fn cleanup_rules<E>(n: ReadNumber<'_, E>) -> Result<CleanupRules, E> {
    Ok(CleanupRules {
        min_age: hours(n(&CLEANUP_MIN_AGE_HOURS)?),
        max_evidence_age: hours(n(&CLEANUP_MAX_EVIDENCE_AGE_HOURS)?),
    })
}

impl Default for SyncSettings {
    fn default() -> Self {
        let Ok(settings) = sync_settings(&declared);
        settings
    }
}

impl Default for SyncRules {
    fn default() -> Self {
        let Ok(rules) = sync_rules(&declared);
        rules
    }
}

impl Default for HealthRules {
    fn default() -> Self {
        let Ok(rules) = health_rules(&declared);
        rules
    }
}

impl Default for CleanupRules {
    fn default() -> Self {
        let Ok(rules) = cleanup_rules(&declared);
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_chunk_size_default_comes_from_its_declaration() {
        assert_eq!(SyncSettings::default().chunk_size, 1000);
        assert_eq!(
            SyncSettings::default().chunk_size as u64,
            SYNC_CHUNK_SIZE.kind.default
        );
    }

    #[test]
    fn the_rules_defaults_are_the_declared_ones_in_their_units() {
        let sync = SyncRules::default();
        assert_eq!(sync.job_not_found_grace, chrono::Duration::minutes(10));
        assert_eq!(sync.pod_waiting_grace, chrono::Duration::minutes(5));
        assert_eq!(sync.missing_threshold, 3);
        assert_eq!(sync.reason_max_bytes, 2048);
        let health = HealthRules::default();
        assert_eq!(health.restart_window, chrono::Duration::minutes(15));
        assert_eq!(health.budget, 200);
        assert_eq!(format!("{:?}", sync.health), format!("{health:?}"));
        let cleanup = CleanupRules::default();
        assert_eq!(cleanup.min_age, chrono::Duration::hours(24));
        assert_eq!(cleanup.max_evidence_age, chrono::Duration::days(7));
    }
}
