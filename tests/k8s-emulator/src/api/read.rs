//! GET of a collection (a list, paged with `limit` and `continue`) or of one
//! object, as the objects or as the Table kubectl asks for.

use std::ops::Bound;
use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use super::request::{ApiResult, Req, Selectors, Target, json_response, to_json, wants_table};
use crate::errors::ApiError;
use crate::store::{Key, Res, Store, str_at};
use crate::table::{IncludeObject, column_definitions, row, table};

/// Serialises a stored object without `apiVersion`/`kind`, as list items are.
struct ListItem<'a>(&'a Value);

impl Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m {
                    if k != "apiVersion" && k != "kind" {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

fn encode_continue(key: &Key) -> String {
    hex_encode(&format!("{}\u{0}{}", key.0, key.1))
}

fn decode_continue(token: &str) -> Result<Key, ApiError> {
    hex_decode(token)
        .and_then(|s| {
            s.split_once('\u{0}')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .ok_or_else(|| ApiError::bad_request(format!("continue key is not valid: {token}")))
}

/// Where a scan of the store starts: after the `continue` key, at the one
/// object asked for by name, at the namespace, or at the beginning.
fn lower_bound(cont: Option<Key>, ns: Option<&str>, exact: Option<(&str, &str)>) -> Bound<Key> {
    match (cont, ns, exact) {
        (Some(k), _, _) => Bound::Excluded(k),
        (None, _, Some((ns, name))) => Bound::Included((ns.to_string(), name.to_string())),
        (None, Some(ns), None) => Bound::Included((ns.to_string(), String::new())),
        (None, None, _) => Bound::Unbounded,
    }
}

/// The objects of a list request, in key order, and the list metadata.
pub(crate) fn select(
    store: &Store,
    res: Res,
    ns: Option<&str>,
    sel: &Selectors,
    limit: Option<usize>,
    cont: Option<Key>,
) -> (Vec<Arc<Value>>, Value) {
    let map = store.map(res);
    let ns = ns.or_else(|| sel.fields.equals("metadata.namespace"));
    let by_name = sel.fields.equals("metadata.name");
    // One namespace and one name: a point lookup rather than a scan.
    let exact = ns.zip(by_name);
    let mut items = Vec::new();
    let mut next: Option<Key> = None;
    let mut remaining: i64 = 0;
    let mut iter = map.range((lower_bound(cont, ns, exact), Bound::Unbounded));
    for (key, obj) in iter.by_ref() {
        if ns.is_some_and(|ns| key.0 != ns) {
            break;
        }
        if let Some(name) = by_name
            && key.1 != name
        {
            if exact.is_some() {
                break;
            }
            continue;
        }
        if !sel.matches(res, obj) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            next = items.last().map(|o: &Arc<Value>| {
                (
                    str_at(o, &["metadata", "namespace"]).to_string(),
                    str_at(o, &["metadata", "name"]).to_string(),
                )
            });
            remaining = 1;
            break;
        }
        items.push(obj.clone());
    }
    let mut meta = json!({"resourceVersion": store.current_rv().to_string()});
    if let Some(k) = next {
        meta["continue"] = json!(encode_continue(&k));
        if sel.labels.is_empty() && sel.fields.is_empty() {
            remaining += iter
                .take_while(|(k, _)| ns.is_none_or(|ns| k.0 == ns))
                .count() as i64;
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    (items, meta)
}

pub(super) async fn list(req: &Req<'_>, res: Res, ns: Option<&str>) -> ApiResult {
    let q = req.query;
    let sel = Selectors::parse(res, q)?;
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let cont = q.get("continue").map(decode_continue).transpose()?;
    let (items, meta) = {
        let store = req.shared.store.lock().await;
        select(&store, res, ns, &sel, limit, cont)
    };
    if wants_table(req.headers) {
        let objs: Vec<&Value> = items.iter().map(|a| a.as_ref()).collect();
        let t = table(
            res,
            &objs,
            meta,
            IncludeObject::parse(q.get("includeObject")),
        );
        return Ok(to_json(StatusCode::OK, &t));
    }
    Ok(json_response(StatusCode::OK, list_json(res, &meta, &items)))
}

/// `{"kind": "JobList", ...}`, written item by item.
fn list_json(res: Res, meta: &Value, items: &[Arc<Value>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + items.len() * 1024);
    out.extend_from_slice(
        format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":",
            res.list_kind(),
            res.api_version()
        )
        .as_bytes(),
    );
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, meta);
    out.extend_from_slice(b",\"items\":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, &ListItem(it));
    }
    out.extend_from_slice(b"]}");
    out
}

pub(super) async fn get(req: &Req<'_>, t: Target<'_>) -> ApiResult {
    let obj = req
        .shared
        .store
        .lock()
        .await
        .get(t.res, t.ns, t.name)
        .ok_or_else(|| ApiError::not_found(t.res, t.name))?;
    if wants_table(req.headers) {
        let meta = json!({"resourceVersion": str_at(&obj, &["metadata", "resourceVersion"])});
        let table = table(
            t.res,
            &[&obj],
            meta,
            IncludeObject::parse(req.query.get("includeObject")),
        );
        return Ok(to_json(StatusCode::OK, &table));
    }
    Ok(to_json(StatusCode::OK, &*obj))
}

/// Used by watches: one event object, as a Table row when asked.
pub(crate) fn event_object(res: Res, obj: &Value, as_table: bool) -> Value {
    if as_table {
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str_at(obj, &["metadata", "resourceVersion"])},
            "columnDefinitions": column_definitions(res),
            "rows": [row(res, obj, IncludeObject::Metadata)],
        })
    } else {
        obj.clone()
    }
}
