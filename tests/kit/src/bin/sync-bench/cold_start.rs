//! The release `sync` binary's cold start: from process start to its first
//! `GET /runtime/invocation/next`, against a Lambda Runtime API that only
//! accepts the connection (median of 5).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The release `sync` binary, where cargo puts it (`CARGO_TARGET_DIR` or
/// the workspace's `target/`).
fn release_sync() -> PathBuf {
    let root = test_kit::lambda::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| root.join("target"), |t| root.join(t));
    target.join("release/sync")
}

/// The cold start's figures, or why there are none.
pub async fn measure(uri: &str, flink_url: &str, kubeconfig: &Path) -> Value {
    let bin = release_sync();
    let Ok(meta) = std::fs::metadata(&bin) else {
        return json!({"error": format!("{} not built (cargo build --release -p sync)", bin.display())});
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut child = tokio::process::Command::new(&bin)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "sync")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("MONGODB_URI", uri)
            .env("FLINK_REST_URL", flink_url)
            .env("KUBECONFIG", kubeconfig)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        let elapsed = start.elapsed();
        let _ = child.kill().await;
        if accepted.is_ok() {
            samples.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    json!({"binary": "target/release/sync (x86_64)", "binary_bytes": meta.len(),
        "ready_ms_median": samples.get(samples.len() / 2), "ready_ms_samples": samples})
}
