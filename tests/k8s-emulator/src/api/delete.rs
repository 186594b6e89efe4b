//! DELETE of one object or of a collection: `DeleteOptions` (propagation,
//! preconditions, `dryRun`) and what a deleted Job does to its pods.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::read::select;
use super::request::{ApiResult, Query, Req, Selectors, Target, parse_body, to_json};
use super::write::set_meta;
use crate::errors::ApiError;
use crate::store::{Key, Res, Store, now_rfc3339, str_at, value_at};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    Orphan,
    Background,
    Foreground,
}

struct DeleteOpts {
    propagation: Option<Propagation>,
    precondition_uid: Option<String>,
    precondition_rv: Option<String>,
    dry_run: bool,
}

/// `propagationPolicy`, else the older `orphanDependents`.
fn propagation(
    policy: Option<&str>,
    orphan: Option<bool>,
) -> Result<Option<Propagation>, ApiError> {
    Ok(match (policy, orphan) {
        (Some("Orphan"), _) => Some(Propagation::Orphan),
        (Some("Background"), _) => Some(Propagation::Background),
        (Some("Foreground"), _) => Some(Propagation::Foreground),
        (Some(other), _) => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            ));
        }
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    })
}

/// The options of a DELETE, from its body (a `DeleteOptions`) or its query.
fn delete_opts(q: &Query, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_body(body)?
    };
    let policy = b
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or_else(|| q.get("propagationPolicy"))
        .map(str::to_string);
    let orphan = b
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| q.get("orphanDependents").map(|v| v == "true"));
    let propagation = propagation(policy.as_deref(), orphan)?;
    let dry_run = match b.get("dryRun").and_then(Value::as_array) {
        Some(a) => a.iter().any(|v| v.as_str() == Some("All")),
        None => q.dry_run()?,
    };
    Ok(DeleteOpts {
        propagation,
        precondition_uid: value_at(&b, &["preconditions", "uid"])
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_rv: value_at(&b, &["preconditions", "resourceVersion"])
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run,
    })
}

/// The uid and resourceVersion preconditions of the options.
fn check_preconditions(old: &Value, t: Target<'_>, opts: &DeleteOpts) -> Result<(), ApiError> {
    let uid = str_at(old, &["metadata", "uid"]);
    if let Some(p) = &opts.precondition_uid
        && *p != uid
    {
        return Err(ApiError::precondition(
            t.res,
            t.name,
            format!("Precondition failed: UID in precondition: {p}, UID in object meta: {uid}"),
        ));
    }
    let rv = str_at(old, &["metadata", "resourceVersion"]);
    if let Some(p) = &opts.precondition_rv
        && *p != rv
    {
        return Err(ApiError::precondition(
            t.res,
            t.name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {p}, ResourceVersion in object meta: {rv}"
            ),
        ));
    }
    Ok(())
}

/// What the response shows of an object being deleted: the object, marked
/// with the finalizer of a foreground or (for Jobs) orphan deletion.
fn shown_while_deleting(old: &Value, res: Res, policy: Propagation) -> Value {
    let mut shown = old.clone();
    match policy {
        Propagation::Foreground => {
            set_meta(&mut shown, "deletionTimestamp", json!(now_rfc3339()));
            set_meta(&mut shown, "finalizers", json!(["foregroundDeletion"]));
        }
        Propagation::Orphan if res == Res::Jobs => {
            set_meta(&mut shown, "deletionTimestamp", json!(now_rfc3339()));
            set_meta(&mut shown, "finalizers", json!(["orphan"]));
        }
        _ => {}
    }
    shown
}

/// The pods of namespace `ns` owned by the object of uid `owner`.
fn owned_pods(store: &Store, ns: &str, owner: &str) -> Vec<(Key, Arc<Value>)> {
    store
        .map(Res::Pods)
        .range((ns.to_string(), String::new())..)
        .take_while(|(k, _)| k.0 == ns)
        .filter(|(_, p)| {
            value_at(p, &["metadata", "ownerReferences"])
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner))
                })
        })
        .map(|(k, p)| (k.clone(), p.clone()))
        .collect()
}

/// A deleted Job's pods: orphaned (their owner reference removed) or deleted.
fn release_pods(store: &mut Store, ns: &str, job_uid: &str, policy: Propagation) {
    for (key, pod) in owned_pods(store, ns, job_uid) {
        if policy == Propagation::Orphan {
            let mut pod = (*pod).clone();
            if let Some(Value::Array(refs)) = pod["metadata"].get_mut("ownerReferences") {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(job_uid));
                if refs.is_empty()
                    && let Some(m) = pod["metadata"].as_object_mut()
                {
                    m.remove("ownerReferences");
                }
            }
            store.put(Res::Pods, pod);
        } else {
            store.remove(Res::Pods, &key.0, &key.1);
        }
    }
}

/// Deletes one object (and, for Jobs, handles its pods); returns what the response shows.
fn delete_one(store: &mut Store, t: Target<'_>, opts: &DeleteOpts) -> Result<Value, ApiError> {
    let old = store
        .get(t.res, t.ns, t.name)
        .ok_or_else(|| ApiError::not_found(t.res, t.name))?;
    check_preconditions(&old, t, opts)?;
    // Jobs orphan their pods unless told otherwise (batch/v1's default GC policy).
    let policy = opts.propagation.unwrap_or(match t.res {
        Res::Jobs => Propagation::Orphan,
        Res::Pods => Propagation::Background,
    });
    let mut shown = shown_while_deleting(&old, t.res, policy);
    if opts.dry_run {
        return Ok(shown);
    }
    if t.res == Res::Jobs {
        let uid = str_at(&old, &["metadata", "uid"]);
        release_pods(store, t.ns, uid, policy);
    }
    if let Some(gone) = store.remove(t.res, t.ns, t.name)
        && policy == Propagation::Background
    {
        shown = (*gone).clone();
    }
    Ok(shown)
}

pub(super) async fn delete(req: &Req<'_>, t: Target<'_>) -> ApiResult {
    let opts = delete_opts(req.query, req.body)?;
    let mut store = req.shared.store.lock().await;
    let shown = delete_one(&mut store, t, &opts)?;
    Ok(to_json(StatusCode::OK, &shown))
}

pub(super) async fn delete_collection(req: &Req<'_>, res: Res, ns: &str) -> ApiResult {
    let opts = delete_opts(req.query, req.body)?;
    let sel = Selectors::parse(res, req.query)?;
    let mut store = req.shared.store.lock().await;
    let (items, meta) = select(&store, res, Some(ns), &sel, None, None);
    let mut deleted = Vec::new();
    for it in items {
        let name = str_at(&it, &["metadata", "name"]);
        match delete_one(&mut store, Target::new(res, ns, name), &opts) {
            Ok(v) => deleted.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": deleted});
    Ok(to_json(StatusCode::OK, &list))
}

/// Deletes one object at once as another client would (a Job with its
/// pods, in the background); nothing when it is not there. For the test
/// hook [`crate::hooks::Intercept::VanishFirst`].
pub(crate) fn delete_now(store: &mut Store, res: Res, ns: &str, name: &str) {
    let opts = DeleteOpts {
        propagation: Some(Propagation::Background),
        precondition_uid: None,
        precondition_rv: None,
        dry_run: false,
    };
    let _ = delete_one(store, Target::new(res, ns, name), &opts);
}
