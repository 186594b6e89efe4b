//! `GET .../pods/{name}/log` (container, `tailLines`, `limitBytes`, `since*`,
//! `timestamps`, `follow`), checked and answered like the kubelet does, and the
//! emulator's hook that writes a container's log.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::request::{ApiResult, Query, Req, to_json};
use crate::Shared;
use crate::errors::{ApiError, FieldError};
use crate::store::{Key, Res, Store, str_at, value_at};

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

/// What a log request asks for.
struct LogOpts {
    container: String,
    tail: Option<u64>,
    limit: Option<u64>,
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    follow: bool,
}

/// Invalid (422) answer about a numeric `PodLogOptions` field of pod `name`.
fn invalid_option(name: &str, field: &str, value: i64, detail: &str) -> ApiError {
    ApiError::invalid(
        Res::Pods,
        name,
        &[FieldError::invalid(field, &value.to_string(), detail)],
    )
}

/// `sinceSeconds` or `sinceTime` (at most one), as the time from which to show lines.
fn since(q: &Query, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let since_seconds = match q.int("sinceSeconds")? {
        Some(s) if s < 1 => {
            return Err(invalid_option(
                name,
                "sinceSeconds",
                s,
                "must be greater than 0",
            ));
        }
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
    Ok(since_time.or_else(|| since_seconds.map(|s| Utc::now() - chrono::Duration::seconds(s))))
}

fn log_opts(q: &Query, pod: &Value, name: &str) -> Result<LogOpts, ApiError> {
    let tail = match q.int("tailLines")? {
        Some(t) if t < 0 => {
            return Err(invalid_option(
                name,
                "tailLines",
                t,
                "must be greater than or equal to 0",
            ));
        }
        t => t.map(|t| t as u64),
    };
    let limit = match q.int("limitBytes")? {
        Some(l) if l < 1 => {
            return Err(invalid_option(
                name,
                "limitBytes",
                l,
                "must be greater than 0",
            ));
        }
        l => l.map(|l| l as u64),
    };
    let since = since(q, name)?;
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

fn text_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The test hook of [`crate::RunningEmulator::vanish_on_log_read`]: the first
/// log read of a marked pod finds it and its Job deleted.
fn vanish_if_marked(shared: &Shared, store: &mut Store, key: &Key) {
    let vanishing = shared
        .vanish_on_log_read
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(key);
    if let Some(job) = vanishing {
        store.remove(Res::Jobs, &key.0, &job);
        store.remove(Res::Pods, &key.0, &key.1);
    }
}

pub(super) async fn pod_log(req: &Req<'_>, ns: &str, name: &str) -> ApiResult {
    let key: Key = (ns.to_string(), name.to_string());
    let mut store = req.shared.store.lock().await;
    vanish_if_marked(req.shared, &mut store, &key);
    let pod = store
        .get(Res::Pods, ns, name)
        .ok_or_else(|| ApiError::not_found(Res::Pods, name))?;
    let opts = log_opts(req.query, &pod, name)?;
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
    if !opts.follow {
        return Ok(text_response(Body::from(first)));
    }
    let follow = Follow {
        shared: req.shared.clone(),
        budget: opts.limit.map(|l| l.saturating_sub(first.len() as u64)),
        key,
        pod_uid,
        opts,
        offset,
    };
    Ok(text_response(follow.stream(first)))
}

/// A followed log: what a container writes after `offset`, until it
/// terminates, the pod goes or `budget` (what is left of `limitBytes`) is spent.
struct Follow {
    shared: Arc<Shared>,
    key: Key,
    pod_uid: String,
    opts: LogOpts,
    offset: u64,
    budget: Option<u64>,
}

impl Follow {
    /// A response body: `first`, then what follows, sent as it is written.
    fn stream(self, first: Vec<u8>) -> Body {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
                return;
            }
            self.run(tx).await;
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        Body::from_stream(stream)
    }

    /// The log written since the last call, and whether the container is done
    /// (terminated, or its pod deleted or replaced).
    fn next_chunk(&mut self, store: &Store) -> (Vec<u8>, bool) {
        let pod = store.get(Res::Pods, &self.key.0, &self.key.1);
        let alive = pod
            .as_ref()
            .is_some_and(|p| str_at(p, &["metadata", "uid"]) == self.pod_uid);
        let terminated = pod.as_ref().is_none_or(|p| {
            let phase = str_at(p, &["status", "phase"]);
            phase == "Succeeded" || phase == "Failed"
        });
        let chunk = match store.log(&self.key, &self.opts.container) {
            Some(log) if log.end() > self.offset => {
                let c = log.render(self.offset, self.opts.timestamps);
                self.offset = log.end();
                c
            }
            _ => Vec::new(),
        };
        (chunk, !alive || terminated)
    }

    async fn run(mut self, tx: mpsc::Sender<Bytes>) {
        let shared = self.shared.clone();
        let mut shutdown = shared.shutdown.clone();
        loop {
            let notify = {
                let store = shared.store.lock().await;
                store.log_notify.clone()
            };
            let notified = notify.notified();
            let (chunk, done) = {
                let store = shared.store.lock().await;
                self.next_chunk(&store)
            };
            if !chunk.is_empty() {
                let chunk = truncate(chunk, self.budget);
                if let Some(b) = self.budget.as_mut() {
                    *b = b.saturating_sub(chunk.len() as u64);
                }
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
            if done || self.budget == Some(0) {
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
}

/// Emulator-only: PUT replaces, POST appends to a pod container's log.
pub(super) async fn log_hook(req: &Req<'_>, ns: &str, name: &str) -> ApiResult {
    if *req.method != Method::PUT && *req.method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let key: Key = (ns.to_string(), name.to_string());
    let mut store = req.shared.store.lock().await;
    let pod = store
        .get(Res::Pods, ns, name)
        .ok_or_else(|| ApiError::not_found(Res::Pods, name))?;
    let container = match req.query.get("container") {
        Some(c) => log_container(&pod, name, Some(c))?,
        None => value_at(&pod, &["spec", "containers"])
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} has no containers")))?,
    };
    let body: &[u8] = req.body;
    if *req.method == Method::PUT {
        store.log_mut(&key, &container).replace(body, Utc::now());
        store.log_notify.notify_waiters();
    } else {
        store.append_log(&key, &container, body);
    }
    let size = store.log(&key, &container).map_or(0, |l| l.end());
    Ok(to_json(
        StatusCode::OK,
        &json!({"pod": name, "container": container, "bytes": size}),
    ))
}
