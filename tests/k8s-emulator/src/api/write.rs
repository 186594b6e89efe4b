//! POST (create), PUT (replace) and PATCH, of an object or of its `status`
//! subresource, with the real server's defaulting, validation, optimistic
//! concurrency, `dryRun` and `fieldValidation`.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::request::{ApiResult, Query, Req, Target, parse_body, to_json};
use crate::errors::{ApiError, FieldError};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::runner;
use crate::store::{Res, Store, new_uid, now_rfc3339, random_suffix, str_at, value_at};
use crate::validate::{
    default_job, default_pod, generate_job_selector, normalize, validate_job, validate_pod,
    validate_update,
};

/// What a PUT or PATCH writes: the object, or only its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Object,
    Status,
}

/// One update of a stored object.
#[derive(Debug, Clone, Copy)]
struct Update<'a> {
    target: Target<'a>,
    part: Part,
    dry_run: bool,
}

/// Strict / Warn / Ignore handling of unknown fields.
fn unknown_field_warnings(q: &Query, unknown: &[String]) -> Result<Vec<String>, ApiError> {
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    match q.get("fieldValidation") {
        Some("Strict") => {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )))
        }
        Some("Ignore") => Ok(Vec::new()),
        _ => Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect()),
    }
}

fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let v = format!("299 - {}", Value::String(w.clone()));
        if let Ok(hv) = v.parse() {
            r.headers_mut().append(header::WARNING, hv);
        }
    }
    r
}

fn check_namespace(obj: &Value, ns: &str) -> Result<(), ApiError> {
    let body_ns = str_at(obj, &["metadata", "namespace"]);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

pub(super) fn set_meta(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(key.to_string(), v);
    }
}

/// The metadata the server sets on a new object, whatever the client sent.
fn stamp_new_metadata(obj: &mut Value, res: Res, ns: &str, uid: &str) -> Result<(), ApiError> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let now = now_rfc3339();
    let meta = obj["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    meta.insert("namespace".into(), json!(ns));
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(now));
    for k in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "resourceVersion",
    ] {
        meta.remove(k);
    }
    if res == Res::Jobs {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    Ok(())
}

/// `metadata.generateName` without a name: the prefix and a free random suffix.
fn generate_name(store: &Store, obj: &mut Value, res: Res, ns: &str) {
    let generate = str_at(obj, &["metadata", "name"]).is_empty()
        && !str_at(obj, &["metadata", "generateName"]).is_empty();
    if !generate {
        return;
    }
    let prefix = str_at(obj, &["metadata", "generateName"]).to_string();
    let mut name = format!("{prefix}{}", random_suffix());
    for _ in 0..8 {
        if !store.contains(res, ns, &name) {
            break;
        }
        name = format!("{prefix}{}", random_suffix());
    }
    set_meta(obj, "name", json!(name));
}

/// Defaults and validates a new object, whose status the server resets.
fn prepare_new(obj: &mut Value, res: Res, uid: &str) -> Vec<FieldError> {
    match res {
        Res::Jobs => {
            default_job(obj);
            let mut errs = generate_job_selector(obj, uid);
            errs.extend(validate_job(obj));
            obj["status"] = json!({});
            errs
        }
        Res::Pods => {
            default_pod(obj);
            // The real server resets a created pod's status.
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            validate_pod(obj)
        }
    }
}

pub(super) async fn create(req: &Req<'_>, res: Res, ns: &str) -> ApiResult {
    let input = parse_body(req.body)?;
    let dry_run = req.query.dry_run()?;
    check_namespace(&input, ns)?;
    let (mut obj, unknown) = normalize(res, &input)?;
    let warnings = unknown_field_warnings(req.query, &unknown)?;
    let uid = new_uid();
    stamp_new_metadata(&mut obj, res, ns, &uid)?;
    let mut store = req.shared.store.lock().await;
    generate_name(&store, &mut obj, res, ns);
    let name = str_at(&obj, &["metadata", "name"]).to_string();
    let errs = prepare_new(&mut obj, res, &uid);
    if !errs.is_empty() {
        return Err(ApiError::invalid(res, &name, &errs));
    }
    if store.contains(res, ns, &name) {
        return Err(ApiError::already_exists(res, &name));
    }
    if dry_run {
        return Ok(with_warnings(to_json(StatusCode::CREATED, &obj), &warnings));
    }
    let suspended = value_at(&obj, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true);
    let stored = store.put(res, obj);
    drop(store);
    if res == Res::Jobs && !suspended && req.shared.runner.is_some() {
        runner::start_job(req.shared, ns, &name, &uid);
    }
    Ok(with_warnings(
        to_json(StatusCode::CREATED, &*stored),
        &warnings,
    ))
}

/// Name, namespace, resourceVersion and uid of the body must match the stored object.
fn check_update_preconditions(old: &Value, input: &Value, t: Target<'_>) -> Result<(), ApiError> {
    let (res, ns, name) = (t.res, t.ns, t.name);
    let body_name = str_at(input, &["metadata", "name"]);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(input, ns)?;
    let body_rv = str_at(input, &["metadata", "resourceVersion"]);
    if !body_rv.is_empty() && body_rv != str_at(old, &["metadata", "resourceVersion"]) {
        return Err(ApiError::conflict(res, name));
    }
    let body_uid = str_at(input, &["metadata", "uid"]);
    let old_uid = str_at(old, &["metadata", "uid"]);
    if !body_uid.is_empty() && body_uid != old_uid {
        return Err(ApiError::precondition(
            res,
            name,
            format!(
                "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    Ok(())
}

/// The object a replace makes of `obj`: the server's metadata and the status
/// kept from `old`, defaulted, validated, with a Job's generation bumped on a
/// spec change.
fn replaced(old: &Value, obj: Value, t: Target<'_>) -> Result<Value, ApiError> {
    let res = t.res;
    let mut new = obj;
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old["metadata"].get(k) {
            Some(v) => set_meta(&mut new, k, v.clone()),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
    new["status"] = old.get("status").cloned().unwrap_or(json!({}));
    let mut errs = match res {
        Res::Jobs => {
            default_job(&mut new);
            validate_job(&new)
        }
        Res::Pods => {
            default_pod(&mut new);
            validate_pod(&new)
        }
    };
    errs.extend(validate_update(res, old, &new));
    if !errs.is_empty() {
        return Err(ApiError::invalid(res, t.name, &errs));
    }
    if res == Res::Jobs && old.get("spec") != new.get("spec") {
        let generation = old["metadata"]
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        set_meta(&mut new, "generation", json!(generation + 1));
    }
    Ok(new)
}

/// Applies a full object (PUT body, or the result of a patch) to the stored one.
fn commit_update(
    store: &mut Store,
    up: Update<'_>,
    input: &Value,
    q: &Query,
) -> Result<(Arc<Value>, Vec<String>), ApiError> {
    let t = up.target;
    let old = store
        .get(t.res, t.ns, t.name)
        .ok_or_else(|| ApiError::not_found(t.res, t.name))?;
    check_update_preconditions(&old, input, t)?;
    let (obj, unknown) = normalize(t.res, input)?;
    let warnings = unknown_field_warnings(q, &unknown)?;
    let mut new = match up.part {
        Part::Status => {
            let mut new = (*old).clone();
            new["status"] = obj.get("status").cloned().unwrap_or(json!({}));
            new
        }
        Part::Object => replaced(&old, obj, t)?,
    };
    if up.dry_run || *old == new {
        // No-op updates keep the resourceVersion, as the real server does.
        if up.dry_run {
            return Ok((Arc::new(new), warnings));
        }
        return Ok((old, warnings));
    }
    set_meta(&mut new, "resourceVersion", json!(""));
    Ok((store.put(t.res, new), warnings))
}

pub(super) async fn update(req: &Req<'_>, target: Target<'_>, part: Part) -> ApiResult {
    let input = parse_body(req.body)?;
    let dry_run = req.query.dry_run()?;
    let up = Update {
        target,
        part,
        dry_run,
    };
    let mut store = req.shared.store.lock().await;
    let (obj, warnings) = commit_update(&mut store, up, &input, req.query)?;
    Ok(with_warnings(to_json(StatusCode::OK, &*obj), &warnings))
}

/// The patch formats the server accepts (server-side apply is not emulated).
#[derive(Debug, Clone, Copy)]
enum PatchType {
    Merge,
    StrategicMerge,
    Json,
}

fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ctype.as_str() {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
        "application/json-patch+json" => Ok(PatchType::Json),
        _ => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ctype:?}; server-side apply is not emulated)"
            ),
        )),
    }
}

/// Patches `doc` in place; a patch that does not apply is Invalid (422).
fn apply_patch(kind: PatchType, doc: &mut Value, patch_doc: &Value) -> Result<(), ApiError> {
    let applied = match kind {
        PatchType::Merge => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            merge_patch(doc, patch_doc);
            Ok(())
        }
        PatchType::StrategicMerge => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge_patch(doc, patch_doc)
        }
        PatchType::Json => json_patch(doc, patch_doc),
    };
    applied.map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

pub(super) async fn patch(req: &Req<'_>, target: Target<'_>, part: Part) -> ApiResult {
    let kind = patch_type(req.headers)?;
    let patch_doc = parse_body(req.body)?;
    let dry_run = req.query.dry_run()?;
    let t = target;
    let mut store = req.shared.store.lock().await;
    let old = store
        .get(t.res, t.ns, t.name)
        .ok_or_else(|| ApiError::not_found(t.res, t.name))?;
    let mut doc = (*old).clone();
    apply_patch(kind, &mut doc, &patch_doc)?;
    let up = Update {
        target,
        part,
        dry_run,
    };
    let (obj, warnings) = commit_update(&mut store, up, &doc, req.query)?;
    Ok(with_warnings(to_json(StatusCode::OK, &*obj), &warnings))
}
