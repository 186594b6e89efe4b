//! Write scope: the fields of a record a run added, removed or changed that
//! are not sync's own ([`OWNED_FIELDS`]). The README promises there are
//! none; the fault rig and the scenario bench check every run against it.

use std::collections::{BTreeMap, BTreeSet};

use flink_job_sync::adapters::store::writes::OWNED_FIELDS;
use mongodb::bson::Document;

/// The fields `after` adds, removes or changes against `before` that sync
/// does not own.
pub fn foreign_changes(before: &Document, after: &Document) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .filter(|k| !OWNED_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Every foreign change between two snapshots of the same records (by any
/// key), one line each; a record that appeared or vanished is not a write.
pub fn foreign_writes<K: Ord + std::fmt::Debug>(
    before: &BTreeMap<K, Document>,
    after: &BTreeMap<K, Document>,
) -> Vec<String> {
    before
        .iter()
        .filter_map(|(k, b)| Some((k, b, after.get(k)?)))
        .flat_map(|(k, b, a)| {
            foreign_changes(b, a)
                .into_iter()
                .map(move |field| format!("{k:?}: wrote {field}, which sync does not own"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn a_field_sync_does_not_own_is_named_whether_added_changed_or_removed() {
        let before = doc! {"job_id": "j", "owner": "a", "status": "CREATED", "note": 1};
        let after = doc! {"job_id": "j", "owner": "b", "status": "RUNNING", "extra": true};
        assert_eq!(foreign_changes(&before, &after), ["extra", "note", "owner"]);
        assert!(foreign_changes(&before, &before).is_empty());
    }
}
