//! Running the real function binaries the way Lambda does, locally:
//! `cargo lambda watch` emulates the Runtime API and `cargo lambda invoke`
//! sends events to it. Used by the end-to-end tests and the demo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The workspace root (where `events/` and the functions live).
pub fn workspace_root() -> PathBuf {
    // This crate is `tests/kit`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A binary of the workspace, built now (a no-op when it is fresh), so a
/// test never runs a stale or missing one: `cargo build -p package --bin bin`.
pub fn built_binary(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = std::process::Command::new(&cargo)
        .args(["build", "-q", "-p", package, "--bin", bin])
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("running {cargo} build -p {package} --bin {bin}: {e}"));
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed ({status})"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join(bin)
}

/// Longest wait for one invocation's answer (a cold build of a function
/// under the watch included).
const INVOKE_TIMEOUT_SECS: &str = "300";

fn cargo_lambda_hint() -> String {
    "cargo-lambda is not on PATH: run scripts/install and put its venv first on PATH (eval \"$(scripts/stack up)\" does)"
        .to_string()
}

/// A `cargo lambda watch` server; stopped (with the function it runs) on drop.
pub struct LambdaWatch {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl LambdaWatch {
    /// Starts the emulator with `env` as the functions' environment.
    pub fn start(env: &[(String, String)], log_dir: &Path) -> LambdaWatch {
        let port = free_port();
        let env_file = log_dir.join(format!("lambda-{port}.env"));
        let body: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::create_dir_all(log_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_dir.display()));
        std::fs::write(&env_file, body)
            .unwrap_or_else(|e| panic!("writing {}: {e}", env_file.display()));
        let log = log_dir.join(format!("lambda-watch-{port}.log"));
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("log file: {e}"));
        // Its own session: no controlling terminal to take over, and one
        // process group (watcher and function) to end on drop.
        let mut cmd = Command::new("setsid");
        cmd.current_dir(workspace_root())
            .args([
                "cargo",
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("starting cargo lambda watch: {e}; {}", cargo_lambda_hint())
        });
        let watch = LambdaWatch { child, port, log };
        watch.wait_ready();
        watch
    }

    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "cargo lambda watch did not listen on {} within 60s; log {}:\n{}",
                self.port,
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `cargo lambda invoke FUNCTION --data-file FILE`: the function's JSON
    /// answer, or the error it reported.
    pub fn invoke_file(
        &self,
        function: &str,
        data_file: &Path,
    ) -> Result<serde_json::Value, String> {
        // An invocation the emulator never answers must fail the test, not
        // hang the suite: coreutils' timeout ends it.
        let out = Command::new("timeout")
            .current_dir(workspace_root())
            .args([
                INVOKE_TIMEOUT_SECS,
                "cargo",
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(data_file)
            .output()
            .map_err(|e| format!("running cargo lambda invoke: {e}; {}", cargo_lambda_hint()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() == Some(124) {
            return Err(format!(
                "invoke {function}: no answer within {INVOKE_TIMEOUT_SECS} s; log {}",
                self.log.display()
            ));
        }
        if !out.status.success() {
            return Err(format!(
                "invoke {function} failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_str(stdout.trim())
            .map_err(|e| format!("invoke {function}: not JSON ({e}): {stdout}"))
    }

    /// Invokes with an inline payload, written to a file beside the log.
    pub fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let file = self.log.with_extension(format!("{function}.payload.json"));
        std::fs::write(&file, payload.to_string()).map_err(|e| format!("writing payload: {e}"))?;
        self.invoke_file(function, &file)
    }

    /// What the server and the functions printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // The function runs as a child of the watcher: end the whole group
        // (setsid made the watcher its leader). A syscall, not `kill(1)`,
        // whose parsing of a negative PID is not to be trusted with this.
        if let Some(pgid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}
