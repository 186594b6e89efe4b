//! The HTTP surface: routing, CRUD of Jobs and Pods, subresources, logs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use super::Shared;
use super::errors::{ApiError, FieldError};
use super::patch::{json_patch, merge_patch, strategic_merge_patch};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Key, Res, Store, new_uid, now_rfc3339, random_suffix, str_at, value_at};
use super::table::{IncludeObject, row, table};
use super::validate::{
    default_job, default_pod, generate_job_selector, normalize, validate_job, validate_pod,
    validate_update,
};
use super::{runner, watch};

/// Largest request body accepted (log hook uploads included).
const MAX_BODY: usize = 256 * 1024 * 1024;

type ApiResult = Result<Response, ApiError>;

/// Decoded query string; the last value of a repeated parameter wins.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }
    pub(crate) fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.0.get(k).map(String::as_str) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {k}: {v:?}: must be a boolean"
            ))),
        }
    }
    pub(crate) fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value for {k}: {v:?}: must be an integer"
                    ))
                })
            })
            .transpose()
    }
    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{v}\": supported values: \"All\""
            ))),
        }
    }
}

/// What the client accepts: a Table, or the objects.
pub(crate) fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=Table"))
}

pub(crate) fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn to_json<T: Serialize>(code: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => json_response(code, b),
        Err(e) => ApiError::new(500, "InternalError", e.to_string()).into_response(),
    }
}

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

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("request body could not be read: {e}"),
            )
            .into_response();
        }
    };
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let res = route(&shared, &parts.method, &segs, &query, &parts.headers, body).await;
    let response = match res {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(method = %parts.method, uri = %parts.uri, status = response.status().as_u16(), "request");
    response
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    segs: &[&str],
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult {
    let get_only = |r: Response| {
        if method == Method::GET {
            Ok(r)
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match segs {
        ["version"] => get_only(to_json(StatusCode::OK, &super::discovery::version())),
        ["healthz" | "livez" | "readyz"] => get_only((StatusCode::OK, "ok").into_response()),
        ["api"] => get_only(to_json(
            StatusCode::OK,
            &super::discovery::api_versions(&shared.addr.to_string()),
        )),
        ["api", "v1"] => get_only(to_json(
            StatusCode::OK,
            &super::discovery::core_v1_resources(),
        )),
        ["apis"] => get_only(to_json(StatusCode::OK, &super::discovery::api_group_list())),
        ["apis", "batch"] => get_only(to_json(StatusCode::OK, &super::discovery::batch_group())),
        ["apis", "batch", "v1"] => get_only(to_json(
            StatusCode::OK,
            &super::discovery::batch_v1_resources(),
        )),
        ["openapi", "v3"] => get_only(to_json(StatusCode::OK, &super::openapi::root())),
        ["openapi", "v3", "api", "v1"] => {
            get_only(to_json(StatusCode::OK, &super::openapi::core_v1()))
        }
        ["openapi", "v3", "apis", "batch", "v1"] => {
            get_only(to_json(StatusCode::OK, &super::openapi::batch_v1()))
        }
        ["api", "v1", "namespaces"] => get_only(namespace_list(shared).await),
        ["api", "v1", "namespaces", ns] => {
            get_only(to_json(StatusCode::OK, &namespace(shared, ns).await))
        }
        ["api", "v1", "pods"] => {
            collection(shared, method, Res::Pods, None, q, headers, body).await
        }
        ["apis", "batch", "v1", "jobs"] => {
            collection(shared, method, Res::Jobs, None, q, headers, body).await
        }
        ["api", "v1", "namespaces", ns, "pods"] => {
            collection(shared, method, Res::Pods, Some(ns), q, headers, body).await
        }
        ["apis", "batch", "v1", "namespaces", ns, "jobs"] => {
            collection(shared, method, Res::Jobs, Some(ns), q, headers, body).await
        }
        ["api", "v1", "namespaces", ns, "pods", name] => {
            item(shared, method, Res::Pods, ns, name, q, headers, body).await
        }
        ["apis", "batch", "v1", "namespaces", ns, "jobs", name] => {
            item(shared, method, Res::Jobs, ns, name, q, headers, body).await
        }
        ["api", "v1", "namespaces", ns, "pods", name, "status"] => {
            status(shared, method, Res::Pods, ns, name, q, headers, body).await
        }
        [
            "apis",
            "batch",
            "v1",
            "namespaces",
            ns,
            "jobs",
            name,
            "status",
        ] => status(shared, method, Res::Jobs, ns, name, q, headers, body).await,
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => {
            if method == Method::GET {
                pod_log(shared, ns, name, q).await
            } else {
                Err(ApiError::method_not_allowed())
            }
        }
        ["emulator", "v1", "namespaces", ns, "pods", name, "log"] => {
            log_hook(shared, method, ns, name, q, body).await
        }
        _ => Err(ApiError::not_found_path()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn collection(
    shared: &Arc<Shared>,
    method: &Method,
    res: Res,
    ns: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult {
    match (method, ns) {
        (&Method::GET, _) => {
            if q.flag("watch")? {
                watch::watch(shared, res, ns, q, wants_table(headers)).await
            } else {
                list(shared, res, ns, q, headers).await
            }
        }
        (&Method::POST, Some(ns)) => create(shared, res, ns, q, &body).await,
        (&Method::DELETE, Some(ns)) => delete_collection(shared, res, ns, q, &body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn item(
    shared: &Arc<Shared>,
    method: &Method,
    res: Res,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult {
    match *method {
        Method::GET => get(shared, res, ns, name, q, headers).await,
        Method::PUT => update(shared, res, ns, name, q, &body, false).await,
        Method::PATCH => patch(shared, res, ns, name, q, headers, &body, false).await,
        Method::DELETE => delete(shared, res, ns, name, q, &body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn status(
    shared: &Arc<Shared>,
    method: &Method,
    res: Res,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult {
    match *method {
        Method::GET => get(shared, res, ns, name, q, headers).await,
        Method::PUT => update(shared, res, ns, name, q, &body, true).await,
        Method::PATCH => patch(shared, res, ns, name, q, headers, &body, true).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub(crate) fn parse(res: Res, q: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(res, q.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        Ok(Selectors { labels, fields })
    }
    pub(crate) fn matches(&self, res: Res, obj: &Value) -> bool {
        (self.labels.is_empty() || self.labels.matches(obj))
            && (self.fields.is_empty() || self.fields.matches(res, obj))
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

/// The objects of a list request, in key order, and the list metadata.
pub(crate) fn select(
    store: &Store,
    res: Res,
    ns: Option<&str>,
    sel: &Selectors,
    limit: Option<usize>,
    cont: Option<Key>,
) -> (Vec<Arc<Value>>, Value) {
    use std::ops::Bound;
    let map = store.map(res);
    let ns = ns.or_else(|| sel.fields.equals("metadata.namespace"));
    let by_name = sel.fields.equals("metadata.name");
    // One namespace and one name: a point lookup rather than a scan.
    let exact = ns.zip(by_name);
    let lower = match (&cont, ns, exact) {
        (Some(k), _, _) => Bound::Excluded(k.clone()),
        (None, _, Some((ns, name))) => Bound::Included((ns.to_string(), name.to_string())),
        (None, Some(ns), None) => Bound::Included((ns.to_string(), String::new())),
        (None, None, _) => Bound::Unbounded,
    };
    let mut items = Vec::new();
    let mut next: Option<Key> = None;
    let mut remaining: i64 = 0;
    let mut iter = map.range((lower, Bound::Unbounded));
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

async fn list(
    shared: &Arc<Shared>,
    res: Res,
    ns: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
) -> ApiResult {
    let sel = Selectors::parse(res, q)?;
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let cont = q.get("continue").map(decode_continue).transpose()?;
    let (items, meta) = {
        let store = shared.store.lock().await;
        select(&store, res, ns, &sel, limit, cont)
    };
    if wants_table(headers) {
        let objs: Vec<&Value> = items.iter().map(|a| a.as_ref()).collect();
        let t = table(
            res,
            &objs,
            meta,
            IncludeObject::parse(q.get("includeObject")),
        );
        return Ok(to_json(StatusCode::OK, &t));
    }
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
    let _ = serde_json::to_writer(&mut out, &meta);
    out.extend_from_slice(b",\"items\":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, &ListItem(it));
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(StatusCode::OK, out))
}

async fn get(
    shared: &Arc<Shared>,
    res: Res,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
) -> ApiResult {
    let obj = shared
        .store
        .lock()
        .await
        .get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res, name))?;
    if wants_table(headers) {
        let meta = json!({"resourceVersion": str_at(&obj, &["metadata", "resourceVersion"])});
        let t = table(
            res,
            &[&obj],
            meta,
            IncludeObject::parse(q.get("includeObject")),
        );
        return Ok(to_json(StatusCode::OK, &t));
    }
    Ok(to_json(StatusCode::OK, &*obj))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
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

fn set_meta(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(key.to_string(), v);
    }
}

async fn create(shared: &Arc<Shared>, res: Res, ns: &str, q: &Query, body: &[u8]) -> ApiResult {
    let input = parse_body(body)?;
    let dry_run = q.dry_run()?;
    check_namespace(&input, ns)?;
    let (mut obj, unknown) = normalize(res, &input)?;
    let warnings = unknown_field_warnings(q, &unknown)?;
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let uid = new_uid();
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
    let generate = str_at(&obj, &["metadata", "name"]).is_empty()
        && !str_at(&obj, &["metadata", "generateName"]).is_empty();
    let mut store = shared.store.lock().await;
    if generate {
        let prefix = str_at(&obj, &["metadata", "generateName"]).to_string();
        let mut name = format!("{prefix}{}", random_suffix());
        for _ in 0..8 {
            if !store.contains(res, ns, &name) {
                break;
            }
            name = format!("{prefix}{}", random_suffix());
        }
        set_meta(&mut obj, "name", json!(name));
    }
    let name = str_at(&obj, &["metadata", "name"]).to_string();
    let errs = match res {
        Res::Jobs => {
            default_job(&mut obj);
            let mut errs = generate_job_selector(&mut obj, &uid);
            errs.extend(validate_job(&obj));
            obj["status"] = json!({});
            errs
        }
        Res::Pods => {
            default_pod(&mut obj);
            // The real server resets a created pod's status.
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            validate_pod(&obj)
        }
    };
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
    if res == Res::Jobs && !suspended && shared.runner.is_some() {
        runner::start_job(shared, ns, &name, &uid);
    }
    Ok(with_warnings(
        to_json(StatusCode::CREATED, &*stored),
        &warnings,
    ))
}

/// Applies a full object (PUT body, or the result of a patch) to the stored one.
#[allow(clippy::too_many_arguments)]
fn commit_update(
    store: &mut Store,
    res: Res,
    ns: &str,
    name: &str,
    input: &Value,
    status_only: bool,
    dry_run: bool,
    q: &Query,
) -> Result<(Arc<Value>, Vec<String>), ApiError> {
    let old = store
        .get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res, name))?;
    let body_name = str_at(input, &["metadata", "name"]);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(input, ns)?;
    let body_rv = str_at(input, &["metadata", "resourceVersion"]);
    if !body_rv.is_empty() && body_rv != str_at(&old, &["metadata", "resourceVersion"]) {
        return Err(ApiError::conflict(res, name));
    }
    let body_uid = str_at(input, &["metadata", "uid"]);
    let old_uid = str_at(&old, &["metadata", "uid"]);
    if !body_uid.is_empty() && body_uid != old_uid {
        return Err(ApiError::precondition(
            res,
            name,
            format!(
                "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {old_uid}"
            ),
        ));
    }
    let (obj, unknown) = normalize(res, input)?;
    let warnings = unknown_field_warnings(q, &unknown)?;
    let mut new = if status_only {
        let mut new = (*old).clone();
        new["status"] = obj.get("status").cloned().unwrap_or(json!({}));
        new
    } else {
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
        errs.extend(validate_update(res, &old, &new));
        if !errs.is_empty() {
            return Err(ApiError::invalid(res, name, &errs));
        }
        if res == Res::Jobs && old.get("spec") != new.get("spec") {
            let generation = old["metadata"]
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set_meta(&mut new, "generation", json!(generation + 1));
        }
        new
    };
    if dry_run || *old == new {
        // No-op updates keep the resourceVersion, as the real server does.
        if dry_run {
            return Ok((Arc::new(new), warnings));
        }
        return Ok((old, warnings));
    }
    set_meta(&mut new, "resourceVersion", json!(""));
    Ok((store.put(res, new), warnings))
}

async fn update(
    shared: &Arc<Shared>,
    res: Res,
    ns: &str,
    name: &str,
    q: &Query,
    body: &[u8],
    status_only: bool,
) -> ApiResult {
    let input = parse_body(body)?;
    let dry_run = q.dry_run()?;
    let mut store = shared.store.lock().await;
    let (obj, warnings) =
        commit_update(&mut store, res, ns, name, &input, status_only, dry_run, q)?;
    Ok(with_warnings(to_json(StatusCode::OK, &*obj), &warnings))
}

#[allow(clippy::too_many_arguments)]
async fn patch(
    shared: &Arc<Shared>,
    res: Res,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
    status_only: bool,
) -> ApiResult {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let unsupported = || {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ctype:?}; server-side apply is not emulated)"
            ),
        )
    };
    if !matches!(
        ctype.as_str(),
        "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/json-patch+json"
    ) {
        return Err(unsupported());
    }
    let patch_doc = parse_body(body)?;
    let dry_run = q.dry_run()?;
    let mut store = shared.store.lock().await;
    let old = store
        .get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res, name))?;
    let mut doc = (*old).clone();
    let applied = match ctype.as_str() {
        "application/merge-patch+json" => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            merge_patch(&mut doc, &patch_doc);
            Ok(())
        }
        "application/strategic-merge-patch+json" => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge_patch(&mut doc, &patch_doc)
        }
        _ => json_patch(&mut doc, &patch_doc),
    };
    if let Err(e) = applied {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        ));
    }
    let (obj, warnings) = commit_update(&mut store, res, ns, name, &doc, status_only, dry_run, q)?;
    Ok(with_warnings(to_json(StatusCode::OK, &*obj), &warnings))
}

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
    let propagation = match (policy.as_deref(), orphan) {
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
    };
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

/// Deletes one object (and, for Jobs, handles its pods); returns what the response shows.
fn delete_one(
    store: &mut Store,
    res: Res,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<Value, ApiError> {
    let old = store
        .get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res, name))?;
    let uid = str_at(&old, &["metadata", "uid"]).to_string();
    if let Some(p) = &opts.precondition_uid
        && *p != uid
    {
        return Err(ApiError::precondition(
            res,
            name,
            format!("Precondition failed: UID in precondition: {p}, UID in object meta: {uid}"),
        ));
    }
    let rv = str_at(&old, &["metadata", "resourceVersion"]).to_string();
    if let Some(p) = &opts.precondition_rv
        && *p != rv
    {
        return Err(ApiError::precondition(
            res,
            name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {p}, ResourceVersion in object meta: {rv}"
            ),
        ));
    }
    // Jobs orphan their pods unless told otherwise (batch/v1's default GC policy).
    let policy = opts.propagation.unwrap_or(match res {
        Res::Jobs => Propagation::Orphan,
        Res::Pods => Propagation::Background,
    });
    let mut shown = (*old).clone();
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
    if opts.dry_run {
        return Ok(shown);
    }
    if res == Res::Jobs {
        let owned: Vec<(Key, Arc<Value>)> = store
            .map(Res::Pods)
            .range((ns.to_string(), String::new())..)
            .take_while(|(k, _)| k.0 == ns)
            .filter(|(_, p)| {
                value_at(p, &["metadata", "ownerReferences"])
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                    })
            })
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for (key, pod) in owned {
            if policy == Propagation::Orphan {
                let mut pod = (*pod).clone();
                if let Some(Value::Array(refs)) = pod["metadata"].get_mut("ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
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
    if let Some(gone) = store.remove(res, ns, name)
        && policy == Propagation::Background
    {
        shown = (*gone).clone();
    }
    Ok(shown)
}

async fn delete(
    shared: &Arc<Shared>,
    res: Res,
    ns: &str,
    name: &str,
    q: &Query,
    body: &[u8],
) -> ApiResult {
    let opts = delete_opts(q, body)?;
    let mut store = shared.store.lock().await;
    let shown = delete_one(&mut store, res, ns, name, &opts)?;
    Ok(to_json(StatusCode::OK, &shown))
}

async fn delete_collection(
    shared: &Arc<Shared>,
    res: Res,
    ns: &str,
    q: &Query,
    body: &[u8],
) -> ApiResult {
    let opts = delete_opts(q, body)?;
    let sel = Selectors::parse(res, q)?;
    let mut store = shared.store.lock().await;
    let (items, meta) = select(&store, res, Some(ns), &sel, None, None);
    let mut deleted = Vec::new();
    for it in items {
        let name = str_at(&it, &["metadata", "name"]).to_string();
        match delete_one(&mut store, res, ns, &name, &opts) {
            Ok(v) => deleted.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": deleted});
    Ok(to_json(StatusCode::OK, &list))
}

/// The container a log request is about, checked like the real server does.
fn log_container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let names = |key: &str| -> Vec<String> {
        value_at(pod, &["spec", key])
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| str_at(c, &["name"]).to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    match requested {
        Some(c) if containers.iter().chain(init.iter()).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// 400 when the container has not started yet, as the kubelet answers.
fn check_started(pod: &Value, pod_name: &str, container: &str) -> Result<(), ApiError> {
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| value_at(pod, &["status", k]).and_then(Value::as_array))
        .flatten()
        .find(|cs| str_at(cs, &["name"]) == container);
    let waiting = |reason: &str| {
        Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        )))
    };
    match status.and_then(|s| s.get("state")) {
        Some(state) if state.get("running").is_some() || state.get("terminated").is_some() => {
            Ok(())
        }
        Some(state) if state.get("waiting").is_some() => {
            let reason = str_at(state, &["waiting", "reason"]);
            waiting(if reason.is_empty() {
                "ContainerCreating"
            } else {
                reason
            })
        }
        _ => match str_at(pod, &["status", "phase"]) {
            "" | "Pending" => waiting("ContainerCreating"),
            _ => Ok(()),
        },
    }
}

pub(crate) struct LogOpts {
    container: String,
    tail: Option<u64>,
    limit: Option<u64>,
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    follow: bool,
}

fn log_opts(q: &Query, pod: &Value, name: &str) -> Result<LogOpts, ApiError> {
    let invalid = |field: &str, value: i64, detail: &str| {
        ApiError::invalid(
            Res::Pods,
            name,
            &[FieldError::invalid(field, &value.to_string(), detail)],
        )
    };
    let tail = match q.int("tailLines")? {
        Some(t) if t < 0 => {
            return Err(invalid(
                "tailLines",
                t,
                "must be greater than or equal to 0",
            ));
        }
        t => t.map(|t| t as u64),
    };
    let limit = match q.int("limitBytes")? {
        Some(l) if l < 1 => return Err(invalid("limitBytes", l, "must be greater than 0")),
        l => l.map(|l| l as u64),
    };
    let since_seconds = match q.int("sinceSeconds")? {
        Some(s) if s < 1 => return Err(invalid("sinceSeconds", s, "must be greater than 0")),
        s => s,
    };
    let since_time = q
        .get("sinceTime")
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!("invalid value for sinceTime: {s:?}: {e}"))
                })
        })
        .transpose()?;
    if since_seconds.is_some() && since_time.is_some() {
        return Err(ApiError::bad_request(
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    let since =
        since_time.or_else(|| since_seconds.map(|s| Utc::now() - chrono::Duration::seconds(s)));
    let container = log_container(pod, name, q.get("container"))?;
    if q.flag("previous")? {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    check_started(pod, name, &container)?;
    Ok(LogOpts {
        container,
        tail,
        limit,
        since,
        timestamps: q.flag("timestamps")?,
        follow: q.flag("follow")?,
    })
}

fn truncate(mut bytes: Vec<u8>, limit: Option<u64>) -> Vec<u8> {
    if let Some(l) = limit
        && (bytes.len() as u64) > l
    {
        bytes.truncate(l as usize);
    }
    bytes
}

async fn pod_log(shared: &Arc<Shared>, ns: &str, name: &str, q: &Query) -> ApiResult {
    let key: Key = (ns.to_string(), name.to_string());
    let mut store = shared.store.lock().await;
    let vanishing = shared
        .vanish_on_log_read
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    if let Some(job) = vanishing {
        store.remove(Res::Jobs, ns, &job);
        store.remove(Res::Pods, ns, name);
    }
    let pod = store
        .get(Res::Pods, ns, name)
        .ok_or_else(|| ApiError::not_found(Res::Pods, name))?;
    let opts = log_opts(q, &pod, name)?;
    let (first, offset) = match store.log(&key, &opts.container) {
        Some(log) => {
            let start = log.start_offset(opts.tail, opts.since);
            (log.render(start, opts.timestamps), log.end())
        }
        None => (Vec::new(), 0),
    };
    let first = truncate(first, opts.limit);
    let pod_uid = str_at(&pod, &["metadata", "uid"]).to_string();
    drop(store);
    let text = |b: Body| {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(b)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    if !opts.follow {
        return Ok(text(Body::from(first)));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let budget = opts.limit.map(|l| l.saturating_sub(first.len() as u64));
    let shared2 = shared.clone();
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        follow_log(shared2, key, pod_uid, opts, offset, budget, tx).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok(text(Body::from_stream(stream)))
}

/// Streams what a container writes after `offset` until it terminates or the pod goes.
async fn follow_log(
    shared: Arc<Shared>,
    key: Key,
    pod_uid: String,
    opts: LogOpts,
    mut offset: u64,
    mut budget: Option<u64>,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let notify = {
            let store = shared.store.lock().await;
            store.log_notify.clone()
        };
        let notified = notify.notified();
        let (chunk, done) = {
            let store = shared.store.lock().await;
            let pod = store.get(Res::Pods, &key.0, &key.1);
            let alive = pod
                .as_ref()
                .is_some_and(|p| str_at(p, &["metadata", "uid"]) == pod_uid);
            let terminated = pod.as_ref().is_none_or(|p| {
                let phase = str_at(p, &["status", "phase"]);
                phase == "Succeeded" || phase == "Failed"
            });
            let chunk = match store.log(&key, &opts.container) {
                Some(log) if log.end() > offset => {
                    let c = log.render(offset, opts.timestamps);
                    offset = log.end();
                    c
                }
                _ => Vec::new(),
            };
            (chunk, !alive || terminated)
        };
        if !chunk.is_empty() {
            let chunk = truncate(chunk, budget);
            if let Some(b) = budget.as_mut() {
                *b = b.saturating_sub(chunk.len() as u64);
            }
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        if done || budget == Some(0) {
            return;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
        }
    }
}

/// Emulator-only: PUT replaces, POST appends to a pod container's log.
async fn log_hook(
    shared: &Arc<Shared>,
    method: &Method,
    ns: &str,
    name: &str,
    q: &Query,
    body: Bytes,
) -> ApiResult {
    if *method != Method::PUT && *method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let key: Key = (ns.to_string(), name.to_string());
    let mut store = shared.store.lock().await;
    let pod = store
        .get(Res::Pods, ns, name)
        .ok_or_else(|| ApiError::not_found(Res::Pods, name))?;
    let container = match q.get("container") {
        Some(c) => log_container(&pod, name, Some(c))?,
        None => value_at(&pod, &["spec", "containers"])
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} has no containers")))?,
    };
    if *method == Method::PUT {
        store.log_mut(&key, &container).replace(&body, Utc::now());
        store.log_notify.notify_waiters();
    } else {
        store.append_log(&key, &container, &body);
    }
    let size = store.log(&key, &container).map_or(0, |l| l.end());
    Ok(to_json(
        StatusCode::OK,
        &json!({"pod": name, "container": container, "bytes": size}),
    ))
}

/// Every namespace exists (the emulator does not enforce namespaces): a
/// Namespace object, stable for the emulator's life.
fn namespace_object(ns: &str, created: &str) -> Value {
    use std::hash::{Hash, Hasher};
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

async fn namespace(shared: &Arc<Shared>, ns: &str) -> Value {
    namespace_object(ns, &shared.started)
}

async fn namespace_list(shared: &Arc<Shared>) -> Response {
    let mut names: std::collections::BTreeSet<String> =
        ["default", "kube-node-lease", "kube-public", "kube-system"]
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

/// Used by watches: one event object, as a Table row when asked.
pub(crate) fn event_object(res: Res, obj: &Value, as_table: bool) -> Value {
    if as_table {
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str_at(obj, &["metadata", "resourceVersion"])},
            "columnDefinitions": super::table::column_definitions(res),
            "rows": [row(res, obj, IncludeObject::Metadata)],
        })
    } else {
        obj.clone()
    }
}
