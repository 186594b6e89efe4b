//! Namespaces: every namespace exists (the emulator does not enforce them);
//! the list shows Kubernetes' four and every namespace holding an object.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::request::to_json;
use crate::Shared;
use crate::store::Res;

/// A Namespace object, stable for the emulator's life.
fn namespace_object(ns: &str, created: &str) -> Value {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ns.hash(&mut h);
    let a = h.finish();
    "uid".hash(&mut h);
    let b = h.finish();
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns,
            "uid": format!("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff, 0x8000 | ((b >> 48) & 0x3fff), b & 0xffff_ffff_ffff),
            "resourceVersion": "1",
            "creationTimestamp": created,
            "labels": {"kubernetes.io/metadata.name": ns},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// `GET /api/v1/namespaces/{ns}`.
pub(super) fn get(shared: &Shared, ns: &str) -> Response {
    to_json(StatusCode::OK, &namespace_object(ns, &shared.started))
}

/// `GET /api/v1/namespaces`.
pub(super) async fn list(shared: &Shared) -> Response {
    let mut names: BTreeSet<String> = ["default", "kube-node-lease", "kube-public", "kube-system"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rv = {
        let store = shared.store.lock().await;
        for res in [Res::Jobs, Res::Pods] {
            let map = store.map(res);
            let mut last: Option<&str> = None;
            for (k, _) in map.iter() {
                if last != Some(k.0.as_str()) {
                    names.insert(k.0.clone());
                    last = Some(k.0.as_str());
                }
            }
        }
        store.current_rv()
    };
    let items: Vec<Value> = names
        .iter()
        .map(|n| namespace_object(n, &shared.started))
        .collect();
    to_json(
        StatusCode::OK,
        &json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    )
}
