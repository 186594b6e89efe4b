//! What a sync invocation asks for: every non-final record (the schedule),
//! some records (`job_ids`), some clusters' records (`clusters`), for real
//! or as a dry run; and the scope a run records, so runs over different
//! clusters resume each where it stopped.

use serde::Deserialize;

use crate::config::is_cluster_name;
use crate::error::Error;
use crate::rules::model::{ClusterRef, truncate};

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

    /// The clusters the run is scoped to, if it is.
    pub fn cluster_scope(&self) -> Option<Vec<ClusterRef>> {
        self.clusters
            .as_ref()
            .map(|names| names.iter().map(|n| ClusterRef::from_name(n)).collect())
    }

    /// Whether records of `cluster` are in the run's scope.
    pub fn covers(&self, cluster: &ClusterRef) -> bool {
        self.clusters
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == cluster.name()))
    }

    /// Refuses a scope naming a cluster this deployment does not follow.
    pub fn check_clusters(&self, known: &[ClusterRef]) -> Result<(), Error> {
        let Some(clusters) = &self.clusters else {
            return Ok(());
        };
        let names: Vec<&str> = known.iter().map(ClusterRef::name).collect();
        match clusters.iter().find(|c| !names.contains(&c.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(Error::Input(format!(
                "payload: clusters names {unknown:?}, which this deployment does not follow (known: {})",
                names.join(", ")
            ))),
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
            if let Some(bad) = clusters.iter().find(|c| !is_cluster_name(c)) {
                return Err(Error::Input(format!(
                    "payload: clusters holds {:?}, which is not a cluster name",
                    truncate(bad, 80)
                )));
            }
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job_ids(ids: Vec<String>) -> Result<SyncRequest, String> {
        SyncRequest::from_payload(&json!({ "job_ids": ids })).map_err(|e| e.to_string())
    }

    #[test]
    fn job_ids_may_hold_10000_entries_and_no_more() {
        let ids = |n: usize| (0..n).map(|i| format!("tpl-{i}")).collect::<Vec<_>>();
        let ok = job_ids(ids(10_000)).unwrap_or_else(|e| panic!("10000 entries: {e}"));
        assert_eq!(ok.job_ids.map(|i| i.len()), Some(10_000));
        let e = job_ids(ids(10_001))
            .err()
            .unwrap_or_else(|| panic!("10001 entries are refused"));
        assert!(e.contains("job_ids") && e.contains("10000"), "{e}");
        let e = job_ids(Vec::new()).expect_err("an empty job_ids is refused");
        assert!(e.contains("job_ids is empty"), "{e}");
    }

    #[test]
    fn each_job_id_is_1_to_512_bytes_counted_in_bytes_not_characters() {
        for ok in ["a".repeat(512), "é".repeat(256), "a".to_string()] {
            job_ids(vec!["x".into(), ok.clone()])
                .unwrap_or_else(|e| panic!("{} bytes: {e}", ok.len()));
        }
        // "é" is 2 bytes: 256 of them are 512 bytes, 257 are 514.
        for refused in ["a".repeat(513), "é".repeat(257), String::new()] {
            let e = job_ids(vec!["x".into(), refused.clone()])
                .err()
                .unwrap_or_else(|| panic!("{} bytes are refused", refused.len()));
            assert!(e.contains("job_ids") && e.contains("1 to 512 bytes"), "{e}");
        }
    }

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

    #[test]
    fn a_scope_naming_an_unknown_cluster_is_refused_with_the_known_ones() {
        let req = SyncRequest {
            clusters: Some(vec!["default".into(), "nope".into()]),
            ..Default::default()
        };
        let known = [ClusterRef::Default, ClusterRef::Named("prod".into())];
        let e = req.check_clusters(&known).expect_err("nope is unknown");
        assert!(e.to_string().contains("\"nope\""), "{e}");
        assert!(e.to_string().contains("default, prod"), "{e}");
        assert!(req.covers(&ClusterRef::Default));
        assert!(!req.covers(&ClusterRef::Named("prod".into())));
        assert!(SyncRequest::default().covers(&ClusterRef::Named("x".into())));
    }
}
