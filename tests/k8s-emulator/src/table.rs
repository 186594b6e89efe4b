//! Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`),
//! which `kubectl get` asks for: the columns of the real printers.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::store::{Res, str_at, value_at};

/// `duration.HumanDuration` of apimachinery.
pub(crate) fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        let dd = d % 365;
        if dd == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{dd}d")
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn time(obj: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    value_at(obj, path)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn age(obj: &Value) -> String {
    time(obj, &["metadata", "creationTimestamp"])
        .map(|t| human_duration((Utc::now() - t).num_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn column(name: &str, ty: &str, format: &str, priority: i32, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

pub(crate) fn column_definitions(res: Res) -> Value {
    let name = column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    );
    let age = column(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    );
    match res {
        Res::Jobs => json!([
            name,
            column("Status", "string", "", 0, "Status of the job."),
            column(
                "Completions",
                "string",
                "",
                0,
                "The completion status of the job"
            ),
            column(
                "Duration",
                "string",
                "",
                0,
                "Time required to complete the job."
            ),
            age,
            column(
                "Containers",
                "string",
                "",
                1,
                "Names of each container in the template."
            ),
            column(
                "Images",
                "string",
                "",
                1,
                "Images referenced by each container in the template."
            ),
            column("Selector", "string", "", 1, "Label selector."),
        ]),
        Res::Pods => json!([
            name,
            column(
                "Ready",
                "string",
                "",
                0,
                "The aggregate readiness state of this pod for accepting traffic."
            ),
            column(
                "Status",
                "string",
                "",
                0,
                "The aggregate status of the containers in this pod."
            ),
            column(
                "Restarts",
                "string",
                "",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
            ),
            age,
            column("IP", "string", "", 1, "The IP address assigned to the pod"),
            column(
                "Node",
                "string",
                "",
                1,
                "The name of the node to which the pod is assigned"
            ),
            column(
                "Nominated Node",
                "string",
                "",
                1,
                "The name of the node that the pod is nominated to run on"
            ),
            column(
                "Readiness Gates",
                "string",
                "",
                1,
                "The readiness gates of the pod"
            ),
        ]),
    }
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    value_at(obj, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(ty)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn job_cells(obj: &Value) -> Vec<Value> {
    let status = if value_at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else {
        "Running"
    };
    let succeeded = value_at(obj, &["status", "succeeded"])
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let completions = match value_at(obj, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let p = value_at(obj, &["spec", "parallelism"])
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if p > 1 {
                format!("{succeeded}/1 of {p}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time(obj, &["status", "startTime"]),
        time(obj, &["status", "completionTime"]),
    ) {
        (Some(s), Some(c)) => human_duration((c - s).num_seconds()),
        (Some(s), None) => human_duration((Utc::now() - s).num_seconds()),
        _ => String::new(),
    };
    let containers = value_at(obj, &["spec", "template", "spec", "containers"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    let selector = value_at(obj, &["spec", "selector", "matchLabels"])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        json!(str_at(obj, &["metadata", "name"])),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(obj)),
        json!(names.join(",")),
        json!(images.join(",")),
        json!(selector),
    ]
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = value_at(obj, &["status", "containerStatuses"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = value_at(obj, &["spec", "containers"])
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut ready = 0;
    let mut restarts = 0;
    let mut reason = str_at(obj, &["status", "phase"]).to_string();
    let pod_reason = str_at(obj, &["status", "reason"]);
    if !pod_reason.is_empty() {
        reason = pod_reason.to_string();
    }
    let mut has_running = false;
    for cs in statuses.iter().rev() {
        restarts += cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        let state = cs.get("state").cloned().unwrap_or(Value::Null);
        if let Some(w) = state
            .get("waiting")
            .filter(|w| !str_at(w, &["reason"]).is_empty())
        {
            reason = str_at(w, &["reason"]).to_string();
        } else if let Some(t) = state.get("terminated") {
            let r = str_at(t, &["reason"]);
            reason = if !r.is_empty() {
                r.to_string()
            } else if let Some(sig) = t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                format!("Signal:{sig}")
            } else {
                format!(
                    "ExitCode:{}",
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                )
            };
        } else if state.get("running").is_some()
            && cs.get("ready").and_then(Value::as_bool) == Some(true)
        {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        reason = "Running".into();
    }
    if value_at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        reason = "Terminating".into();
    }
    if reason.is_empty() {
        reason = "Pending".into();
    }
    let none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        json!(str_at(obj, &["metadata", "name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age(obj)),
        json!(none(str_at(obj, &["status", "podIP"]))),
        json!(none(str_at(obj, &["spec", "nodeName"]))),
        json!(none(str_at(obj, &["status", "nominatedNodeName"]))),
        json!("<none>"),
    ]
}

/// How much of each object a row carries (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

pub(crate) fn row(res: Res, obj: &Value, include: IncludeObject) -> Value {
    let cells = match res {
        Res::Jobs => job_cells(obj),
        Res::Pods => pod_cells(obj),
    };
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
        }),
        IncludeObject::Object => obj.clone(),
    };
    if object.is_null() {
        json!({"cells": cells})
    } else {
        json!({"cells": cells, "object": object})
    }
}

pub(crate) fn table(res: Res, objs: &[&Value], meta: Value, include: IncludeObject) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": column_definitions(res),
        "rows": objs.iter().map(|o| row(res, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_print_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }
}
