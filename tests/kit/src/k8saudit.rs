//! What a client asks of the Kubernetes API, as RBAC sees it: a recording
//! proxy in front of an API server (the emulator), and the authorization
//! attributes the API server derives from each request (verb, API group,
//! resource and subresource, namespace), the way its request-info resolver
//! derives them before asking RBAC. The RBAC suite runs the real sync and
//! cleanup through it and holds `infra/k8s-rbac.yaml` to what they asked.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request as it reached the proxy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
}

/// What RBAC authorizes a request by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attributes {
    /// A request about a resource (`/api/v1/...`, `/apis/GROUP/VERSION/...`).
    Resource {
        verb: String,
        /// `""` for the core group.
        group: String,
        /// `pods`, or `pods/log` for a subresource, as a Role's rules name it.
        resource: String,
        namespace: Option<String>,
    },
    /// Discovery and other paths: `nonResourceURLs` in a ClusterRole.
    NonResource { verb: String, path: String },
}

/// The attributes of `method path?query`, as the API server derives them.
pub fn attributes(method: &str, path: &str, query: &str) -> Attributes {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => {
            return Attributes::NonResource {
                verb: method.to_ascii_lowercase(),
                path: path.to_string(),
            };
        }
    };
    // A namespace's own path names it too (the namespace is the object).
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        ["namespaces", ns] => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let named = rest.len() > 1;
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match method {
        "GET" | "HEAD" if watch => "watch",
        "GET" | "HEAD" if named => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        other => {
            return Attributes::NonResource {
                verb: other.to_ascii_lowercase(),
                path: path.to_string(),
            };
        }
    };
    let resource = match rest.get(2) {
        Some(sub) => format!("{}/{sub}", rest[0]),
        None => rest[0].to_string(),
    };
    Attributes::Resource {
        verb: verb.to_string(),
        group: group.to_string(),
        resource,
        namespace,
    }
}

/// A proxy on a free 127.0.0.1 port that forwards every request to an API
/// server and notes it; stops with the test's runtime.
pub struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Recorder {
    /// A recorder in front of the API server at `upstream` (`http://...`).
    pub async fn in_front_of(upstream: &str) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        Recorder {
            url: crate::stack::serve_local(app).await,
            seen,
        }
    }

    /// Its URL, for a kube client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests recorded since the last call, in order.
    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn forward(
    axum::extract::State(up): axum::extract::State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    up.seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Request {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
        });
    let target = format!(
        "{}{}",
        up.base,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut req = up.http.request(method, &target).body(body);
    for (name, value) in &headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let answer = match req.send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("recorder: {e}")).into_response(),
    };
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .cloned();
    let body = answer.bytes().await.unwrap_or_default();
    let mut out = (status, body).into_response();
    if let Some(ct) = content_type {
        out.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, ct);
    }
    out
}
