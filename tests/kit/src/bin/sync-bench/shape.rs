//! Whether the floor left the records as sync did: the fields each record
//! holds (their paths, into embedded documents and arrays of documents),
//! and how many records hold each set. Read after the runs, outside their
//! times, so a floor that writes less than sync is caught rather than
//! measured.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use mongodb::bson::{Bson, Document, doc};

/// Records by the set of field paths they hold.
pub type Shape = BTreeMap<BTreeSet<String>, u64>;

/// The shape of the records of `db`.
pub async fn of(db: &mongodb::Database) -> Shape {
    let mut cursor = db
        .collection::<Document>("flink_jobs")
        .find(doc! {})
        .await
        .unwrap_or_else(|e| panic!("reading the records' shape: {e}"));
    let mut shape = Shape::new();
    while let Some(d) = cursor.next().await {
        let d = d.unwrap_or_else(|e| panic!("reading the records' shape: {e}"));
        let mut fields = BTreeSet::new();
        paths("", &d, &mut fields);
        *shape.entry(fields).or_default() += 1;
    }
    shape
}

fn paths(prefix: &str, d: &Document, out: &mut BTreeSet<String>) {
    for (k, v) in d {
        let path = format!("{prefix}{k}");
        match v {
            Bson::Document(inner) => paths(&format!("{path}."), inner, out),
            Bson::Array(items) => {
                for item in items {
                    if let Bson::Document(inner) = item {
                        paths(&format!("{path}[]."), inner, out);
                    }
                }
            }
            _ => {}
        }
        out.insert(path);
    }
}

/// What differs between the records after sync and after the floor,
/// leaving `ignored` paths aside; empty when nothing does.
pub fn differences(sync: &Shape, floor: &Shape, ignored: &[&str]) -> Vec<String> {
    let strip = |s: &Shape| -> Shape {
        let mut out = Shape::new();
        for (fields, n) in s {
            let kept = fields
                .iter()
                .filter(|f| !ignored.contains(&f.as_str()))
                .cloned()
                .collect();
            *out.entry(kept).or_default() += n;
        }
        out
    };
    let (sync, floor) = (strip(sync), strip(floor));
    if sync == floor {
        return Vec::new();
    }
    let all = |s: &Shape| -> BTreeSet<String> { s.keys().flatten().cloned().collect() };
    let (in_sync, in_floor) = (all(&sync), all(&floor));
    let mut out = Vec::new();
    let only_sync: Vec<&String> = in_sync.difference(&in_floor).collect();
    if !only_sync.is_empty() {
        out.push(format!("only sync wrote {only_sync:?}"));
    }
    let only_floor: Vec<&String> = in_floor.difference(&in_sync).collect();
    if !only_floor.is_empty() {
        out.push(format!("only the floor wrote {only_floor:?}"));
    }
    if out.is_empty() {
        out.push(format!(
            "the same fields, on other records: sync {:?}, floor {:?}",
            sync.values().collect::<Vec<_>>(),
            floor.values().collect::<Vec<_>>()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(docs: &[Document]) -> Shape {
        let mut shape = Shape::new();
        for d in docs {
            let mut fields = BTreeSet::new();
            paths("", d, &mut fields);
            *shape.entry(fields).or_default() += 1;
        }
        shape
    }

    #[test]
    fn a_field_only_one_side_wrote_is_named_and_ignored_ones_are_not() {
        let sync =
            shape_of(&[doc! {"_id": 1, "revision": 1, "h": [{"at": 1, "to": "X"}], "c": {"n": 1}}]);
        let floor = shape_of(&[doc! {"_id": 1, "h": [{"at": 1}], "c": {"n": 1, "m": 2}}]);
        let found = differences(&sync, &floor, &["revision"]);
        assert_eq!(
            found,
            vec![
                r#"only sync wrote ["h[].to"]"#.to_string(),
                r#"only the floor wrote ["c.m"]"#.to_string()
            ]
        );
        assert!(differences(&sync, &sync, &[]).is_empty());
    }

    #[test]
    fn the_same_fields_on_a_different_number_of_records_differ() {
        let one = shape_of(&[doc! {"_id": 1, "a": 1}, doc! {"_id": 2}]);
        let two = shape_of(&[doc! {"_id": 1, "a": 1}, doc! {"_id": 2, "a": 1}]);
        assert_eq!(differences(&one, &two, &[]).len(), 1);
    }
}
