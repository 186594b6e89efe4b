//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (merge
//! patch plus merging of the well-known keyed lists) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// RFC 7386.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The merge key of the lists the Kubernetes types mark `patchStrategy: merge`.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "podIPs" | "hostIPs" => "ip",
        _ => return None,
    })
}

/// Strategic merge patch for the built-in types: objects merge, lists with a
/// known merge key merge element-wise (`$patch: delete|replace` honoured),
/// `finalizers` merge as a set, other lists are replaced.
pub(crate) fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = p.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (k, v) in p {
        if k.starts_with('$') {
            if k == "$patch" && v.as_str() == Some("delete") {
                t.clear();
            }
            continue;
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            let _ = field; // ordering directives are accepted and ignored
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (t.get_mut(field), v) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v) {
            (Some(key), Value::Array(items)) => {
                let slot = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(list) = slot else { continue };
                if items
                    .iter()
                    .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
                {
                    *list = items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect();
                    continue;
                }
                for item in items {
                    let id = item.get(key).cloned();
                    let pos = id
                        .as_ref()
                        .and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            list.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => strategic_merge_patch(&mut list[i], item)?,
                        (None, false) => {
                            if id.is_none() {
                                return Err(format!(
                                    "map: {item} does not contain declared merge key: {key}"
                                ));
                            }
                            let mut fresh = Value::Object(Map::new());
                            strategic_merge_patch(&mut fresh, item)?;
                            list.push(fresh);
                        }
                    }
                }
            }
            (None, Value::Array(items)) if k == "finalizers" => {
                let slot = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                if let Value::Array(list) = slot {
                    for i in items {
                        if !list.contains(i) {
                            list.push(i.clone());
                        }
                    }
                }
            }
            (_, Value::Object(_)) => {
                strategic_merge_patch(t.entry(k.clone()).or_insert(Value::Null), v)?;
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer: {path:?}"));
    };
    Ok(rest.split('/').map(unescape).collect())
}

fn parent<'a>(doc: &'a mut Value, tokens: &[String], path: &str) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: \"{path}\": missing value"))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let tokens = split_pointer(path)?;
    let Some((last, init)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("add operation has invalid index: {last}"))?;
            if i > a.len() {
                return Err(format!(
                    "add operation does not apply: doc is missing path: \"{path}\""
                ));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        )),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let tokens = split_pointer(path)?;
    let Some((last, init)) = tokens.split_last() else {
        return Err("remove operation does not apply to the document root".into());
    };
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    match parent(doc, init, path).map_err(|_| missing())? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn get(doc: &Value, path: &str) -> Result<Value, String> {
    let tokens = split_pointer(path)?;
    let mut cur = doc;
    for t in &tokens {
        cur = match cur {
            Value::Object(m) => m.get(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: \"{path}\""))?;
    }
    Ok(cur.clone())
}

/// RFC 6902: add, remove, replace, move, copy, test.
pub(crate) fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let Value::Array(ops) = ops else {
        return Err("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into());
    };
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation missing path: {op}"))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("{name} operation missing value"))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{name} operation missing from"))
        };
        match name {
            "add" => add(doc, path, value()?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                remove(doc, path)
                    .map_err(|_| format!("replace operation does not apply: doc is missing key: {path}: missing value"))?;
                add(doc, path, value()?)?;
            }
            "move" => {
                let v = remove(doc, from()?)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let v = get(doc, from()?)?;
                add(doc, path, v)?;
            }
            "test" => {
                if get(doc, path)? != value()? {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_merge_merges_conditions_by_type() {
        let mut doc = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "True"}]}});
        let patch = json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "C", "status": "True"}]}});
        assert_eq!(strategic_merge_patch(&mut doc, &patch), Ok(()));
        assert_eq!(
            doc,
            json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}, {"type": "C", "status": "True"}]}})
        );
    }

    #[test]
    fn json_patch_supports_all_operations() {
        let mut doc = json!({"a": [1, 2], "b": {"c": "x"}});
        let ops = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": "y"},
            {"op": "copy", "from": "/b/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/0"},
            {"op": "test", "path": "/e", "value": "y"}
        ]);
        assert_eq!(json_patch(&mut doc, &ops), Ok(()));
        assert_eq!(doc, json!({"a": [2, 3], "b": {"c": "y"}, "e": "y"}));
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/zz"}])).is_err());
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "replace", "path": "/zz", "value": 1}])
            )
            .is_err()
        );
    }
}
