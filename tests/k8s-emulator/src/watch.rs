//! `?watch=true`: a stream of `{"type": ..., "object": ...}` lines.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use super::api::{Query, Selectors, event_object, select};
use super::errors::ApiError;
use super::store::{Event, EventType, Res, str_at};

fn line(etype: &str, object: Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": etype, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn expired(rv: u64, current: u64) -> Bytes {
    let status = ApiError::new(
        410,
        "Expired",
        format!("too old resource version: {rv} ({current})"),
    )
    .to_status();
    line("ERROR", serde_json::to_value(status).unwrap_or(Value::Null))
}

struct Filter {
    res: Res,
    ns: Option<String>,
    sel: Selectors,
    as_table: bool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.ns
            .as_deref()
            .is_none_or(|ns| str_at(obj, &["metadata", "namespace"]) == ns)
            && self.sel.matches(self.res, obj)
    }

    fn render(&self, ev: &Event) -> Option<Bytes> {
        if ev.res != self.res {
            return None;
        }
        let new = self.matches(&ev.obj);
        let old = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        let etype = match ev.etype {
            EventType::Added if new => EventType::Added,
            EventType::Modified if new && old => EventType::Modified,
            EventType::Modified if new => EventType::Added,
            EventType::Modified if old => EventType::Deleted,
            EventType::Deleted if old || new => EventType::Deleted,
            _ => return None,
        };
        Some(line(
            etype.as_str(),
            event_object(self.res, &ev.obj, self.as_table),
        ))
    }
}

pub(crate) async fn watch(
    shared: &Arc<Shared>,
    res: Res,
    ns: Option<&str>,
    q: &Query,
    as_table: bool,
) -> Result<Response, ApiError> {
    let sel = Selectors::parse(res, q)?;
    let rv = match q.get("resourceVersion") {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    let timeout = Duration::from_secs(
        q.int("timeoutSeconds")?
            .filter(|t| *t > 0)
            .map_or(1800, |t| t as u64),
    );
    let send_initial = rv.is_none() || q.flag("sendInitialEvents")?;
    let bookmark_initial = q.flag("sendInitialEvents")? && q.flag("allowWatchBookmarks")?;
    let (initial, past, current, rx) = {
        let store = shared.store.lock().await;
        let (past, rx) = store.watch_from(rv);
        let initial = if send_initial {
            select(&store, res, ns, &sel, None, None).0
        } else {
            Vec::new()
        };
        (initial, past, store.current_rv(), rx)
    };
    let filter = Filter {
        res,
        ns: ns.map(str::to_string),
        sel,
        as_table,
    };
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let mut rx = rx;
        let Some(past) = past else {
            let _ = tx.send(expired(rv.unwrap_or(0), current)).await;
            return;
        };
        for obj in &initial {
            if tx
                .send(line(
                    "ADDED",
                    event_object(filter.res, obj, filter.as_table),
                ))
                .await
                .is_err()
            {
                return;
            }
        }
        if bookmark_initial {
            let bookmark = json!({
                "kind": filter.res.kind(),
                "apiVersion": filter.res.api_version(),
                "metadata": {"resourceVersion": current.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}},
            });
            if tx.send(line("BOOKMARK", bookmark)).await.is_err() {
                return;
            }
        }
        let mut last = rv.unwrap_or(current);
        for ev in past {
            last = ev.rv;
            if let Some(b) = filter.render(&ev)
                && tx.send(b).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last {
                            continue;
                        }
                        last = ev.rv;
                        if let Some(b) = filter.render(&ev)
                            && tx.send(b).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(expired(last, last)).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(out, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
