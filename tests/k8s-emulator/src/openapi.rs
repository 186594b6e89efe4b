//! A minimal OpenAPI v3 surface: enough for kubectl to learn that the server
//! validates fields itself (`fieldValidation`), so `kubectl create -f`
//! leaves validation to the server instead of failing to download schemas.

use serde_json::{Map, Value, json};

const HASH_CORE: &str = "E0A2F5B3C9D1A7E4F6B8C0D2E4F6A8B0C2D4E6F8A0B2C4D6E8F0A2B4C6D8E0F2";
const HASH_BATCH: &str = "F1B3D5E7A9C1E3F5A7B9D1F3A5C7E9B1D3F5A7C9E1B3D5F7A9C1E3F5A7B9D1F3";

pub(crate) fn root() -> Value {
    json!({"paths": {
        "api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={HASH_CORE}")},
        "apis/batch/v1": {"serverRelativeURL": format!("/openapi/v3/apis/batch/v1?hash={HASH_BATCH}")},
    }})
}

fn param(name: &str, location: &str) -> Value {
    json!({"name": name, "in": location, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(id: &str, action: &str, group: &str, kind: &str, query: &[&str]) -> Value {
    let mut params: Vec<Value> = query.iter().map(|q| param(q, "query")).collect();
    params.push(param("namespace", "path"));
    json!({
        "operationId": id,
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": group, "version": "v1", "kind": kind},
    })
}

fn resource_paths(
    prefix: &str,
    plural: &str,
    group: &str,
    kind: &str,
    id: &str,
) -> Map<String, Value> {
    let write = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
    let read = ["pretty"];
    let mut paths = Map::new();
    let item_path = format!("{prefix}/namespaces/{{namespace}}/{plural}/{{name}}");
    let mut item = Map::new();
    item.insert(
        "get".into(),
        operation(&format!("read{id}"), "get", group, kind, &read),
    );
    item.insert(
        "put".into(),
        operation(&format!("replace{id}"), "put", group, kind, &write),
    );
    item.insert(
        "patch".into(),
        operation(&format!("patch{id}"), "patch", group, kind, &write),
    );
    item.insert(
        "delete".into(),
        operation(&format!("delete{id}"), "delete", group, kind, &["dryRun"]),
    );
    item.insert("parameters".into(), json!([param("name", "path")]));
    paths.insert(item_path, Value::Object(item));
    let list_path = format!("{prefix}/namespaces/{{namespace}}/{plural}");
    let mut list = Map::new();
    list.insert(
        "get".into(),
        operation(&format!("list{id}"), "list", group, kind, &read),
    );
    list.insert(
        "post".into(),
        operation(&format!("create{id}"), "post", group, kind, &write),
    );
    paths.insert(list_path, Value::Object(list));
    let status_path = format!("{prefix}/namespaces/{{namespace}}/{plural}/{{name}}/status");
    let mut status = Map::new();
    status.insert(
        "patch".into(),
        operation(&format!("patch{id}Status"), "patch", group, kind, &write),
    );
    status.insert(
        "put".into(),
        operation(&format!("replace{id}Status"), "put", group, kind, &write),
    );
    paths.insert(status_path, Value::Object(status));
    paths
}

fn document(paths: Map<String, Value>) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

pub(crate) fn core_v1() -> Value {
    document(resource_paths(
        "/api/v1",
        "pods",
        "",
        "Pod",
        "CoreV1NamespacedPod",
    ))
}

pub(crate) fn batch_v1() -> Value {
    document(resource_paths(
        "/apis/batch/v1",
        "jobs",
        "batch",
        "Job",
        "BatchV1NamespacedJob",
    ))
}
