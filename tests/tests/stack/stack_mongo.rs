//! The stack's MongoDB-wire store answers the Rust driver as MongoDB does,
//! and a run leaves the indexes the code declares and the README names.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use mongodb::bson::{Bson, DateTime, Document, doc};
use test_kit::flinkfake::FlinkFake;
use test_kit::scenario::Scenario;
use test_kit::stack::{Stack, unique_name};

#[tokio::test]
async fn record_round_trips_through_the_rust_driver() {
    let stack = Stack::from_env();
    let client = stack.mongo_client().await;
    let db = client.database(&unique_name("fjs_roundtrip"));
    let coll = db.collection::<mongodb::bson::Document>("flink_jobs");
    let submitted = DateTime::from_millis(1_730_444_400_000);
    coll.insert_one(doc! {"job_id": "tpl_1", "status": "CREATED", "flink_job_id": null, "submitted_at": submitted})
        .await
        .expect("insert");
    let updated = coll
        .update_one(
            doc! {"job_id": "tpl_1", "status": "CREATED"},
            doc! {"$set": {"status": "RUNNING"}},
        )
        .await
        .expect("update");
    assert_eq!(updated.modified_count, 1);
    let found = coll
        .find_one(doc! {"job_id": "tpl_1"})
        .await
        .expect("find")
        .expect("the record");
    assert_eq!(found.get_str("status").ok(), Some("RUNNING"));
    assert_eq!(found.get_datetime("submitted_at").ok(), Some(&submitted));
    assert_eq!(found.get("flink_job_id"), Some(&mongodb::bson::Bson::Null));
    db.drop().await.expect("drop the test database");
}

/// An index as compared here: its fields with their directions (`1`, `-1`), and whether it is unique.
type Index = (Vec<(String, i64)>, bool);

fn keys(d: &Document) -> Vec<(String, i64)> {
    d.iter()
        .map(|(k, v)| {
            let dir = match v {
                Bson::Int32(n) => i64::from(*n),
                Bson::Int64(n) => *n,
                Bson::Double(f) => *f as i64,
                other => panic!("index key {k}: {other}"),
            };
            (k.clone(), dir)
        })
        .collect()
}

async fn indexes_of(coll: &mongodb::Collection<Document>) -> BTreeSet<Index> {
    coll.list_indexes()
        .await
        .unwrap_or_else(|e| panic!("listing the indexes of {}: {e}", coll.name()))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_else(|e| panic!("reading the indexes of {}: {e}", coll.name()))
        .into_iter()
        .map(|m| {
            let unique = m.options.and_then(|o| o.unique).unwrap_or(false);
            (keys(&m.keys), unique)
        })
        .collect()
}

/// The README's sentence on the indexes: the backticked fields it names
/// for one collection (from `` on `collection` `` to the next `` on `` or
/// the sentence's end),
/// each with its direction (`descending` after it) and whether it is
/// `unique` (before it).
fn readme_indexes(readme: &str, collection: &str) -> BTreeSet<Index> {
    let start = readme
        .find("Indexes sync ensures")
        .unwrap_or_else(|| panic!("the README has no sentence on the indexes"));
    let paragraph = &readme[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
    let paragraph = paragraph.replace('\n', " ");
    let marker = format!("on `{collection}`");
    let part = paragraph
        .split_once(&marker)
        .unwrap_or_else(|| panic!("the README's indexes name no {marker}: {paragraph}"))
        .1;
    let part = part.split(" on `").next().unwrap_or_default();
    let part = part.split(". ").next().unwrap_or_default();
    let mut out = BTreeSet::new();
    let mut rest = part;
    while let Some((before, after)) = rest.split_once('`') {
        let Some((field, after)) = after.split_once('`') else {
            break;
        };
        let descending = after.trim_start().starts_with("descending");
        let unique = before.trim_end().ends_with("unique");
        out.insert((
            vec![(field.to_string(), if descending { -1 } else { 1 })],
            unique,
        ));
        rest = after;
    }
    out
}

#[tokio::test]
async fn a_run_leaves_the_indexes_the_code_declares_and_the_readme_names() {
    let flink = FlinkFake::with_jobs(Default::default()).serve().await;
    let s = Scenario::new(&flink, &[]).await;
    s.insert(doc! {"job_id": "idx-1", "status": "CREATED", "flink_job_id": null})
        .await;
    s.sync().await;

    let id = (vec![("_id".to_string(), 1)], false);
    let mut declared: BTreeSet<Index> = flink_job_sync::adapters::store::indexes()
        .iter()
        .map(|(k, _)| (keys(k), false))
        .collect();
    declared.insert((vec![("job_id".to_string(), 1)], true));
    let runs_declared = BTreeSet::from([(vec![("started_at".to_string(), -1)], false)]);

    let mut on_records = indexes_of(&s.records).await;
    let mut on_runs = indexes_of(&s.db.collection("flink_job_sync_runs")).await;
    assert!(
        on_records.remove(&id) && on_runs.remove(&id),
        "every collection has its _id index"
    );
    assert_eq!(
        on_records, declared,
        "the records' indexes are what `indexes()` declares, and the unique job_id"
    );
    assert_eq!(on_runs, runs_declared, "the runs collection's one index");

    let readme = std::fs::read_to_string(test_kit::lambda::workspace_root().join("README.md"))
        .unwrap_or_else(|e| panic!("README.md: {e}"));
    assert_eq!(
        readme_indexes(&readme, "flink_jobs"),
        declared,
        "the README names the records' indexes"
    );
    assert_eq!(
        readme_indexes(&readme, "flink_job_sync_runs"),
        runs_declared,
        "the README names the runs' index"
    );
}
