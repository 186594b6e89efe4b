//! Reaching the local stack from tests: its settings come from the environment
//! that `scripts/stack up` prints. A test that needs a service and finds none
//! panics with the command that starts it; it never passes silently.

use std::time::{Duration, Instant};

/// The command a person runs to give tests the stack they need.
pub const START_HINT: &str = "start the local stack first: eval \"$(scripts/stack up)\" (or run scripts/test, which does it)";

/// The value of an environment variable the stack exports, or a loud failure.
pub fn require(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!("{var} is not set: this test needs the local stack; {START_HINT}"),
    }
}

/// Settings of the running stack, read once per test. Flink's are read
/// when a test asks for them: a test that brings a stand-in for Flink
/// needs no real one.
#[derive(Debug, Clone)]
pub struct Stack {
    pub mongodb_uri: String,
    pub kubeconfig: String,
}

impl Stack {
    pub fn from_env() -> Self {
        Self {
            mongodb_uri: require("MONGODB_URI"),
            kubeconfig: require("KUBECONFIG"),
        }
    }

    /// The stack's real Flink (its JobManager's REST API).
    pub fn flink_rest_url(&self) -> String {
        require("FLINK_REST_URL")
    }

    /// `host:port` for `flink run -m`.
    pub fn flink_jobmanager(&self) -> String {
        require("FLINK_JOBMANAGER")
    }

    /// A kube client for the stack's emulator, built the way the product builds
    /// one: from the kubeconfig file.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}; {START_HINT}", self.kubeconfig));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", self.kubeconfig));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
    }

    pub async fn mongo_client(&self) -> mongodb::Client {
        mongodb::Client::with_uri_str(&self.mongodb_uri)
            .await
            .unwrap_or_else(|e| panic!("MONGODB_URI is not usable: {e}; {START_HINT}"))
    }

    /// The records collection (`flink_jobs`) of `database` on the stack's MongoDB.
    pub async fn records(&self, database: &str) -> mongodb::Collection<mongodb::bson::Document> {
        self.mongo_client()
            .await
            .database(database)
            .collection("flink_jobs")
    }
}

/// The names of the Jobs `jobs` lists, sorted.
pub async fn job_names(jobs: &kube::Api<k8s_openapi::api::batch::v1::Job>) -> Vec<String> {
    let mut names: Vec<String> = jobs
        .list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("listing Jobs: {e}"))
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    names.sort();
    names
}

/// A database name no other test uses, so suites can run in parallel against
/// one server and leave nothing behind that matters.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it yields a value or `within` runs out; the panic names
/// `what` and the last observation.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    let mut last;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {within:?}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Serves `app` on a free 127.0.0.1 port for the rest of the test; returns
/// its base URL (`http://127.0.0.1:PORT`).
pub async fn serve_local(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
