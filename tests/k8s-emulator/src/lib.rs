//! A Kubernetes API emulator: the subset of kube-apiserver (v1.32) that
//! flink-job-sync, kube-rs and kubectl use — `batch/v1` Jobs and `v1` Pods with
//! their `status` and `log` subresources — served over plain HTTP, with an
//! optional runner mode that plays Job controller and kubelet by running a
//! Job's container command as a local process. The local stack runs it as the
//! `k8s-emulator` binary (`src/main.rs`); tests start one in process with
//! [`start`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), k8s_emulator::EmulatorError> {
//! use k8s_emulator::{EmulatorConfig, start};
//! let emulator = start(EmulatorConfig::default()).await?;
//! let client = emulator.client().await;
//! # drop(client);
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Emulator-only test hooks live under `/emulator/v1/`:
//! `PUT /emulator/v1/namespaces/{ns}/pods/{name}/log?container=C` replaces a
//! container's log with the request body, `POST` appends to it. An emulator
//! started in process also counts its requests by path
//! ([`RunningEmulator::take_requests_by_path`]) and answers the requests a
//! test marks as a failing server would ([`RunningEmulator::intercept`]).
//!
//! # Modules
//!
//! | module | what |
//! | --- | --- |
//! | this crate's root | [`EmulatorConfig`], [`RunnerConfig`], [`start`], [`RunningEmulator`], [`kubeconfig_yaml`], the request counts |
//! | `hooks` | the in-process test hooks: requests counted by path, [`Intercept`]ed requests |
//! | `api` | the HTTP surface: routing (`api`), the request context and query parsing (`api::request`), list and get (`api::read`), create, replace and patch (`api::write`), delete and propagation (`api::delete`), pod logs and the log hook (`api::logs`), namespaces (`api::namespaces`) |
//! | `watch` | `?watch=true` streams of watch events |
//! | `store` | the in-memory objects, resourceVersions, pod logs and the event history |
//! | `validate` | decoding, defaulting and validation of Jobs and Pods |
//! | `patch` | JSON merge, strategic merge and JSON patches |
//! | `selector` | label and field selectors |
//! | `table` | the Tables `kubectl get` prints |
//! | `errors` | `metav1.Status` errors as the real server words them |
//! | `discovery` | `/version`, `/api`, `/apis` and the resource lists |
//! | `openapi` | the OpenAPI v3 documents kubectl reads before `create -f` |
//! | `runner` | runner mode: Job controller (pods, retries, Job status) and kubelet (process, log, pod status) |

mod api;
mod discovery;
mod errors;
mod hooks;
mod openapi;
mod patch;
mod runner;
mod selector;
mod store;
mod table;
mod validate;
mod watch;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch as watch_channel};
use tokio::task::{AbortHandle, JoinHandle};

pub use hooks::Intercept;
use store::{Key, Store};

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Runner mode (Job controller + kubelet running local processes), or `None`.
    pub runner: Option<RunnerConfig>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            runner: None,
        }
    }
}

/// Runner mode settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Prefix replacements applied to a container's command, args, env values
    /// and workingDir: `("/opt/flink", "/home/me/flink")`.
    pub path_map: Vec<(String, String)>,
    /// Wait before a failed Job pod is replaced (the real controller backs off 10s, 20s, ...).
    pub retry_delay: Duration,
    /// Environment added to every container process (wins over the container's `env`).
    pub extra_env: Vec<(String, String)>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            path_map: Vec::new(),
            retry_delay: Duration::from_secs(1),
            extra_env: Vec::new(),
        }
    }
}

/// Why an emulator could not start or be reached.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("emulator I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid emulator URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot build a kube client for the emulator: {0}")]
    Client(#[from] kube::Error),
}

/// State shared by the HTTP handlers and the runner.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) runner: Option<RunnerConfig>,
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown: watch_channel::Receiver<bool>,
    /// When the emulator started (the namespaces' creationTimestamp).
    pub(crate) started: String,
    /// Process-group leaders of running containers.
    procs: std::sync::Mutex<HashMap<Key, u32>>,
    /// Job controller tasks, aborted on shutdown.
    tasks: std::sync::Mutex<Vec<AbortHandle>>,
    /// Requests served, by `METHOD resource` (for the benchmark).
    requests: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Requests by path, and the requests a test marked.
    pub(crate) hooks: hooks::Hooks,
    /// Pod → its Job, deleted (with their pods) by the first log read of that
    /// pod: the race of a Job removed between a list and a log read.
    pub(crate) vanish_on_log_read: std::sync::Mutex<HashMap<Key, String>>,
}

impl Shared {
    pub(crate) fn track(&self, task: AbortHandle) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub(crate) fn register_process(&self, key: &Key, pid: u32) {
        if pid != 0 {
            self.procs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), pid);
        }
    }

    pub(crate) fn unregister_process(&self, key: &Key) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Stops the controllers and kills every container process.
    fn stop_everything(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
        for (_, pid) in self.procs.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            runner::kill_now(pid);
        }
    }
}

/// A started emulator; dropping it stops the server and kills runner processes.
pub struct RunningEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch_channel::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RunningEmulator {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            match self.addr {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            }
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// A kube client for this emulator (default namespace `default`).
    pub async fn try_client(&self) -> Result<kube::Client, EmulatorError> {
        let url = self.url();
        let uri: axum::http::Uri =
            url.parse()
                .map_err(|e: axum::http::uri::InvalidUri| EmulatorError::Url {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
        let config = kube::Config::new(uri);
        Ok(kube::Client::try_from(config)?)
    }

    /// A kube client for this emulator (default namespace `default`).
    ///
    /// # Panics
    /// Only if kube cannot build a plain-HTTP client, which does not happen;
    /// use [`RunningEmulator::try_client`] to get the error instead.
    pub async fn client(&self) -> kube::Client {
        match self.try_client().await {
            Ok(c) => c,
            Err(e) => panic!("cannot build a kube client for {}: {e}", self.url()),
        }
    }

    /// Stops the server, the Job controllers and every container process.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        self.shared.stop_everything();
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        self.shared.stop_everything();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Starts an emulator with fresh state; it serves until shut down or dropped.
pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = watch_channel::channel(false);
    let shared = Arc::new(Shared {
        store: Mutex::new(Store::default()),
        runner: config.runner,
        addr,
        shutdown: shutdown_rx.clone(),
        started: store::now_rfc3339(),
        procs: std::sync::Mutex::new(HashMap::new()),
        tasks: std::sync::Mutex::new(Vec::new()),
        requests: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        hooks: hooks::Hooks::default(),
        vanish_on_log_read: std::sync::Mutex::new(HashMap::new()),
    });
    let app = axum::Router::new()
        .fallback(api::handle)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            count_request,
        ))
        .with_state(shared.clone());
    let mut stop = shutdown_rx;
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "emulator server failed");
        }
    });
    tracing::info!(%addr, runner = shared.runner.is_some(), "k8s emulator listening");
    Ok(RunningEmulator {
        addr,
        shared,
        shutdown_tx,
        server: Some(server),
    })
}

/// A kubeconfig whose cluster, context and user are all named `emulator`.
pub fn kubeconfig_yaml(server_url: &str, namespace: &str) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: {server}\ncontexts:\n- name: emulator\n  context:\n    cluster: emulator\n    namespace: {ns}\n    user: emulator\ncurrent-context: emulator\npreferences: {{}}\nusers:\n- name: emulator\n  user:\n    token: emulator-dummy-token\n",
        server = q(server_url),
        ns = q(namespace)
    )
}

/// Counts a request under `METHOD resource`, `resource` being what the path
/// names: `jobs` (a list) or `jobs/NAME`-like (`job`), `pods`, `pod`, `pods/log`.
async fn count_request(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let segments: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let resource = match segments.as_slice() {
        [.., "pods", _, "log"] => "pods/log".to_string(),
        [.., "jobs"] => "jobs (list)".to_string(),
        [.., "pods"] => "pods (list)".to_string(),
        [.., "jobs", _] | [.., "jobs", _, _] => "job".to_string(),
        [.., "pods", _] | [.., "pods", _, _] => "pod".to_string(),
        [first, ..] if *first == "emulator" => "emulator hook".to_string(),
        _ => "other".to_string(),
    };
    shared.hooks.count(req.method(), req.uri().path());
    let key = format!("{} {resource}", req.method());
    *shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default() += 1;
    next.run(req).await
}

impl RunningEmulator {
    /// Makes the first log read of `pod` find the pod and its Job `job`
    /// deleted, as if someone deleted the Job just after sync listed it.
    pub fn vanish_on_log_read(&self, namespace: &str, job: &str, pod: &str) {
        self.shared
            .vanish_on_log_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.to_string(), pod.to_string()), job.to_string());
    }

    /// Requests served since the last call, by `METHOD /path` (the query
    /// left out: each page of a paged list counts, and so do watches), as
    /// `GET /api/v1/namespaces/lemo-dev/pods`; resets these counts only.
    pub fn take_requests_by_path(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.hooks.take_counts()
    }

    /// Marks the requests of `method` (`GET`, `DELETE`, ...) to `path`
    /// (`/apis/batch/v1/namespaces/lemo-dev/jobs/x`, no query): from now on
    /// they meet `what`, replacing an earlier mark of the same requests.
    ///
    /// # Panics
    /// If `method` is not an HTTP method.
    pub fn intercept(&self, method: &str, path: &str, what: Intercept) {
        let method = axum::http::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("intercept: {method:?} is not an HTTP method: {e}"));
        self.shared.hooks.mark(method, path, what);
    }

    /// Requests served so far by `METHOD resource`, and resets the counts.
    pub fn take_request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(
            &mut *self
                .shared
                .requests
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}
