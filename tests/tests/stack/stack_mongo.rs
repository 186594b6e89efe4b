//! The stack's MongoDB-wire store answers the Rust driver as MongoDB does.

use mongodb::bson::{DateTime, doc};
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
