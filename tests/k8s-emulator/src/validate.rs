//! Decoding, defaulting and validation of Jobs and Pods, after the real
//! API server's `SetDefaults_*`, `PrepareForCreate` and `Validate*`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Map, Value, json};

use super::errors::{ApiError, FieldError};
use super::store::{Res, str_at, value_at, value_at_mut};

pub(crate) const LABEL_CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub(crate) const LABEL_JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub(crate) const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub(crate) const LEGACY_JOB_NAME: &str = "job-name";

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
}

pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
                && is_lower_alnum(b[0])
                && is_lower_alnum(b[b.len() - 1])
        })
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| ok(c) || matches!(c, b'-' | b'_' | b'.'))
        && ok(&b[0])
        && ok(&b[b.len() - 1])
}

/// A label key: `[prefix/]name`.
pub(crate) fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty() && is_dns1123_subdomain(prefix) && is_name_part(name)
        }
        None => is_name_part(s),
    }
}

pub(crate) fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_name_part(s)
}

/// Decodes into the typed object and back: the stored form, with unknown
/// fields dropped (their paths are returned for warnings / strict validation).
pub(crate) fn normalize(res: Res, input: &Value) -> Result<(Value, Vec<String>), ApiError> {
    if !input.is_object() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: the body is not a JSON object",
            kind = res.kind()
        )));
    }
    for (field, want) in [("apiVersion", res.api_version()), ("kind", res.kind())] {
        if let Some(v) = input.get(field) {
            match v.as_str() {
                Some(s) if s == want || s.is_empty() => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "the {field} in the data ({}) does not match the expected {field} ({want})",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )));
                }
            }
        }
    }
    let decode_err = |e: serde_json::Error| {
        ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: {e}",
            kind = res.kind()
        ))
    };
    let out = match res {
        Res::Jobs => {
            let job: Job = serde_json::from_value(input.clone()).map_err(decode_err)?;
            serde_json::to_value(job)
        }
        Res::Pods => {
            let pod: Pod = serde_json::from_value(input.clone()).map_err(decode_err)?;
            serde_json::to_value(pod)
        }
    }
    .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?;
    let mut unknown = Vec::new();
    unknown_fields(input, &out, "", &mut unknown);
    Ok((out, unknown))
}

fn unknown_fields(input: &Value, out: &Value, prefix: &str, acc: &mut Vec<String>) {
    match (input, out) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match o.get(k) {
                    Some(ov) => unknown_fields(v, ov, &path, acc),
                    None if v.is_null() => {}
                    None if prefix.starts_with("metadata.labels")
                        || prefix.starts_with("metadata.annotations") => {}
                    None => acc.push(path),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                unknown_fields(iv, ov, &format!("{prefix}[{n}]"), acc);
            }
        }
        _ => {}
    }
}

fn obj_mut<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let slot = value_at_mut(v, path);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn default_field(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn default_containers(spec: &mut Map<String, Value>, key: &str) {
    let Some(Value::Array(containers)) = spec.get_mut(key) else {
        return;
    };
    for c in containers.iter_mut().filter_map(Value::as_object_mut) {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let last = image.rsplit('/').next().unwrap_or("");
        let policy = if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) {
            "IfNotPresent"
        } else {
            "Always"
        };
        default_field(c, "imagePullPolicy", json!(policy));
        default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
        default_field(c, "terminationMessagePolicy", json!("File"));
        default_field(c, "resources", json!({}));
        if let Some(Value::Array(ports)) = c.get_mut("ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                default_field(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// `SetDefaults_PodSpec` (the part that matters to clients).
fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    default_containers(spec, "containers");
    default_containers(spec, "initContainers");
}

/// Defaults of a Pod created through the API (defaulting plus the default admission plugins).
pub(crate) fn default_pod(obj: &mut Value) {
    let spec = obj_mut(obj, &["spec"]);
    default_pod_spec(spec);
    default_field(spec, "enableServiceLinks", json!(true));
    default_field(spec, "priority", json!(0));
    default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default_field(spec, "serviceAccountName", json!("default"));
    let sa = spec
        .get("serviceAccountName")
        .cloned()
        .unwrap_or(json!("default"));
    default_field(spec, "serviceAccount", sa);
    default_field(
        spec,
        "tolerations",
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ]),
    );
}

/// `SetDefaults_Job`.
pub(crate) fn default_job(obj: &mut Value) {
    let template_labels = value_at(obj, &["spec", "template", "metadata", "labels"])
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = template_labels {
        let meta = obj_mut(obj, &["metadata"]);
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            meta.insert("labels".into(), labels);
        }
    }
    let spec = obj_mut(obj, &["spec"]);
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default_field(spec, "parallelism", json!(1));
    if spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null())
    {
        default_field(spec, "backoffLimit", json!(i32::MAX));
    } else {
        default_field(spec, "backoffLimit", json!(6));
    }
    default_field(spec, "completionMode", json!("NonIndexed"));
    default_field(spec, "suspend", json!(false));
    let replacement = if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null()) {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_field(spec, "podReplacementPolicy", json!(replacement));
    default_pod_spec(obj_mut(obj, &["spec", "template", "spec"]));
}

/// The Job strategy's `PrepareForCreate`: the generated selector and template labels.
pub(crate) fn generate_job_selector(obj: &mut Value, uid: &str) -> Vec<FieldError> {
    let name = str_at(obj, &["metadata", "name"]).to_string();
    let manual = value_at(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true);
    if manual {
        return Vec::new();
    }
    let given = value_at(obj, &["spec", "selector"]).cloned();
    if let Some(sel) =
        given.filter(|s| !s.is_null() && s.as_object().is_some_and(|m| !m.is_empty()))
    {
        return vec![FieldError::invalid(
            "spec.selector",
            &sel.to_string(),
            "`selector` not auto-generated",
        )];
    }
    obj_mut(obj, &["spec"]).insert(
        "selector".into(),
        json!({"matchLabels": {LABEL_CONTROLLER_UID: uid}}),
    );
    let labels = obj_mut(obj, &["spec", "template", "metadata", "labels"]);
    labels.insert(LABEL_CONTROLLER_UID.into(), json!(uid));
    labels.insert(LABEL_JOB_NAME.into(), json!(name));
    labels.insert(LEGACY_CONTROLLER_UID.into(), json!(uid));
    labels.insert(LEGACY_JOB_NAME.into(), json!(name));
    Vec::new()
}

pub(crate) fn validate_meta(obj: &Value, errs: &mut Vec<FieldError>) {
    let name = str_at(obj, &["metadata", "name"]);
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(
            "metadata.name",
            &format!("\"{name}\""),
            SUBDOMAIN_MSG,
        ));
    }
    for (field, what) in [
        ("labels", "metadata.labels"),
        ("annotations", "metadata.annotations"),
    ] {
        if let Some(m) = value_at(obj, &["metadata", field]).and_then(Value::as_object) {
            for (k, v) in m {
                if !is_qualified_name(k) {
                    errs.push(FieldError::invalid(
                        what,
                        &format!("\"{k}\""),
                        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                    ));
                } else if field == "labels" && !is_label_value(v.as_str().unwrap_or("")) {
                    errs.push(FieldError::invalid(
                        what,
                        &v.to_string(),
                        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                    ));
                }
            }
        }
    }
}

fn validate_pod_spec(
    spec: Option<&Value>,
    path: &str,
    restart_allowed: &[&str],
    errs: &mut Vec<FieldError>,
) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => errs.push(FieldError::required(format!("{path}.containers"), "")),
        Some(cs) if cs.is_empty() => {
            errs.push(FieldError::required(format!("{path}.containers"), ""))
        }
        Some(cs) => {
            let mut seen = std::collections::HashSet::new();
            for (i, c) in cs.iter().enumerate() {
                let cpath = format!("{path}.containers[{i}]");
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    errs.push(FieldError::required(format!("{cpath}.name"), ""));
                } else if !is_dns1123_label(name) {
                    errs.push(FieldError::invalid(
                        format!("{cpath}.name"),
                        &format!("\"{name}\""),
                        LABEL_MSG,
                    ));
                } else if !seen.insert(name.to_string()) {
                    errs.push(FieldError::duplicate(format!("{cpath}.name"), name));
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty())
                {
                    errs.push(FieldError::required(format!("{cpath}.image"), ""));
                }
            }
        }
    }
    let policy = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !restart_allowed.contains(&policy) {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            policy,
            restart_allowed,
        ));
    }
}

fn non_negative(obj: &Value, path: &[&str], field: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = value_at(obj, path).and_then(Value::as_i64)
        && n < 0
    {
        errs.push(FieldError::invalid(
            field,
            &n.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

pub(crate) fn validate_job(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_meta(obj, &mut errs);
    let name = str_at(obj, &["metadata", "name"]);
    if name.len() > 63 && is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(
            "spec.template.labels",
            &format!("\"{name}\""),
            "must be no more than 63 characters",
        ));
    }
    non_negative(
        obj,
        &["spec", "backoffLimit"],
        "spec.backoffLimit",
        &mut errs,
    );
    non_negative(obj, &["spec", "completions"], "spec.completions", &mut errs);
    non_negative(obj, &["spec", "parallelism"], "spec.parallelism", &mut errs);
    if let Some(n) = value_at(obj, &["spec", "activeDeadlineSeconds"]).and_then(Value::as_i64)
        && n <= 0
    {
        errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            &n.to_string(),
            "must be greater than 0",
        ));
    }
    let manual = value_at(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true);
    if manual {
        let sel = value_at(obj, &["spec", "selector", "matchLabels"]).and_then(Value::as_object);
        match sel {
            None => errs.push(FieldError::required("spec.selector", "")),
            Some(sel) => {
                let labels = value_at(obj, &["spec", "template", "metadata", "labels"])
                    .and_then(Value::as_object);
                if !sel
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        &labels
                            .map_or("null".to_string(), |l| Value::Object(l.clone()).to_string()),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    validate_pod_spec(
        value_at(obj, &["spec", "template", "spec"]),
        "spec.template.spec",
        &["OnFailure", "Never"],
        &mut errs,
    );
    errs
}

pub(crate) fn validate_pod(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_meta(obj, &mut errs);
    validate_pod_spec(
        obj.get("spec"),
        "spec",
        &["Always", "OnFailure", "Never"],
        &mut errs,
    );
    errs
}

/// Update rules of the main resource: immutable parts of the spec.
pub(crate) fn validate_update(res: Res, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match res {
        Res::Jobs => {
            for field in ["selector", "template", "completionMode"] {
                let (o, n) = (old["spec"].get(field), new["spec"].get(field));
                if o != n {
                    errs.push(FieldError::invalid(
                        format!("spec.{field}"),
                        &n.map_or("null".to_string(), Value::to_string),
                        "field is immutable",
                    ));
                }
            }
        }
        Res::Pods => {
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(m) = s.as_object_mut() {
                    for f in [
                        "activeDeadlineSeconds",
                        "tolerations",
                        "terminationGracePeriodSeconds",
                    ] {
                        m.remove(f);
                    }
                    for key in ["containers", "initContainers"] {
                        if let Some(Value::Array(cs)) = m.get_mut(key) {
                            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                                c.remove("image");
                            }
                        }
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_kubernetes() {
        assert!(is_dns1123_subdomain("flink-job.a1"));
        assert!(!is_dns1123_subdomain("Bad_Name"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(is_dns1123_label("main"));
        assert!(!is_dns1123_label("a.b"));
        assert!(is_qualified_name("batch.kubernetes.io/job-name"));
        assert!(!is_qualified_name("/x"));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
    }

    #[test]
    fn unknown_fields_are_reported_by_path() {
        let input = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "a"}, "spec": {"foo": 1, "template": {"spec": {"containers": []}}}});
        let (_, unknown) = normalize(Res::Jobs, &input).unwrap_or_default();
        assert_eq!(unknown, vec!["spec.foo".to_string()]);
    }
}
