//! Running the real functions under `sam local`: the template `sam build`
//! wrote (`scripts/sam-local build`, the `local` environment of
//! samconfig.toml: x86_64, debug), the stack's private Docker (`DOCKER_HOST`
//! from `scripts/stack up`), and the functions' environment given with
//! `--env-vars`, as a user does it.
//!
//! Everything here fails loudly: no Docker, no build, a build older than the
//! code, or a sam command that does not answer is a panic that says why and
//! what to run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::lambda::workspace_root;

/// What `scripts/test` runs before the tests, and what a person runs by hand.
pub const BUILD_HINT: &str =
    "build the functions for sam local first: scripts/sam-local build (scripts/test does it)";

/// The longest one sam command may take (a cold invoke builds SAM's image).
const SAM_TIMEOUT: Duration = Duration::from_secs(180);

/// One sam command at a time in a test binary. SAM picks the emulator's port
/// by trying to bind it, then starts the container; with containers on the
/// host's loopback, two sams picking at once could pick the same port
/// (scripts/oci-loopback refuses the second container, but the test would
/// fail for nothing).
static SAM_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The SAM CLI of the project's AWS venv (`scripts/install` puts it there).
pub fn sam_bin() -> PathBuf {
    let cache = std::env::var("FJS_CACHE").ok().filter(|v| !v.is_empty());
    let venv = std::env::var("FJS_AWS_VENV")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = cache.map(PathBuf::from).unwrap_or_else(|| {
                let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
                Path::new(&home).join(".cache/flink-job-sync")
            });
            cache.join("venv-aws")
        });
    let sam = venv.join("bin/sam");
    assert!(
        sam.is_file(),
        "no SAM CLI at {}: run scripts/install",
        sam.display()
    );
    sam
}

/// The stack's Docker daemon (`DOCKER_HOST`), or a panic with the reason the
/// stack wrote when dockerd could not start, and the commands to try.
pub async fn require_docker() -> String {
    let stack_dir = std::env::var("FJS_STACK_DIR")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".stack"));
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() {
        match std::fs::read_to_string(stack_dir.join("docker.unavailable")) {
            Ok(reason) => panic!(
                "sam local needs Docker, and the local stack has none.\n{reason}\n(stack status: FJS_STACK_DIR={} scripts/stack status)",
                stack_dir.display()
            ),
            Err(_) => panic!(
                "DOCKER_HOST is not set: sam local needs the local stack's Docker daemon; {}",
                crate::stack::START_HINT
            ),
        }
    }
    let socket = host.strip_prefix("unix://").unwrap_or_else(|| {
        panic!(
            "DOCKER_HOST={host}: expected the stack's unix:// socket; {}",
            crate::stack::START_HINT
        )
    });
    match ping(socket).await {
        Ok(()) => host,
        Err(e) => panic!(
            "no Docker daemon answers at DOCKER_HOST={host}: {e}.\nLook at {}/docker/dockerd.log, then: scripts/stack down; eval \"$(scripts/stack up)\"",
            stack_dir.display()
        ),
    }
}

/// `GET /_ping` over the daemon's socket.
async fn ping(socket: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connecting to {socket}: {e}"))?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(format!(
                "unexpected answer: {}",
                answer.lines().next().unwrap_or("")
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

/// The output of `sam build --config-env local`: `target/sam-local`.
#[derive(Debug, Clone)]
pub struct SamBuild {
    pub dir: PathBuf,
}

impl SamBuild {
    /// The build, checked: both functions built for x86_64 (this machine),
    /// and not older than the code they are built from.
    pub fn require() -> SamBuild {
        let dir = workspace_root().join("target/sam-local");
        let template = dir.join("template.yaml");
        assert!(
            template.is_file(),
            "{} is missing; {BUILD_HINT}",
            template.display()
        );
        let root = workspace_root();
        let newest_source = ["shared/src", "functions/sync/src", "functions/cleanup/src"]
            .iter()
            .map(|d| newest_mtime(&root.join(d)))
            .chain(
                ["Cargo.lock", "shared/Cargo.toml"]
                    .iter()
                    .map(|f| mtime(&root.join(f))),
            )
            .max()
            .flatten();
        for function in ["SyncFunction", "CleanupFunction"] {
            let bootstrap = dir.join(function).join("bootstrap");
            let head = std::fs::read(&bootstrap)
                .map(|b| b.into_iter().take(20).collect::<Vec<u8>>())
                .unwrap_or_else(|e| panic!("{}: {e}; {BUILD_HINT}", bootstrap.display()));
            // ELF, e_machine 0x3E: x86_64, what this machine's containers run.
            assert!(
                head.len() == 20 && head.starts_with(b"\x7fELF") && head[18] == 0x3e,
                "{} is not an x86_64 ELF binary (was it built for arm64?); {BUILD_HINT}",
                bootstrap.display()
            );
            if let (Some(built), Some(source)) = (mtime(&bootstrap), newest_source) {
                assert!(
                    built >= source,
                    "{} is older than the code it is built from: it would test old code; {BUILD_HINT}",
                    bootstrap.display()
                );
            }
        }
        SamBuild { dir }
    }

    /// Writes `yaml` as a kubeconfig inside `function`'s code directory, which
    /// SAM mounts on /var/task; returns the path the function sees. The file
    /// is removed when the returned guard drops.
    pub fn place_kubeconfig(&self, function: &str, yaml: &str) -> PlacedFile {
        let name = format!("kubeconfig-{}", crate::stack::unique_name("test"));
        let host = self.dir.join(function).join(&name);
        std::fs::write(&host, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", host.display()));
        PlacedFile {
            host,
            container: format!("/var/task/{name}"),
        }
    }
}

/// A file placed in a function's code directory; removed on drop.
#[derive(Debug)]
pub struct PlacedFile {
    pub host: PathBuf,
    /// Where the function sees it.
    pub container: String,
}

impl Drop for PlacedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.host);
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = mtime(dir);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        let t = if p.is_dir() {
            newest_mtime(&p)
        } else {
            mtime(&p)
        };
        newest = newest.max(t);
    }
    newest
}

/// Writes a `--env-vars` file (CloudFormation parameter format: one set of
/// values for every function) into `dir`; returns its path.
pub fn write_env_vars(dir: &Path, vars: &[(&str, String)]) -> PathBuf {
    let map: serde_json::Map<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect();
    let body = serde_json::json!({ "Parameters": map });
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(format!("{}.env.json", crate::stack::unique_name("sam")));
    std::fs::write(&path, body.to_string())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// One `sam local invoke`: the function's answer (what sam prints on stdout)
/// and the log sam and the function printed (stderr).
#[derive(Debug)]
pub struct Invocation {
    pub answer: Value,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// `sam local invoke FUNCTION --config-env local --env-vars ENV --event EVENT`,
/// from the workspace root (samconfig.toml's `local` environment gives the
/// built template, `Architecture=x86_64` and `--skip-pull-image`).
pub async fn invoke(function: &str, event: &Path, env_vars: &Path) -> Invocation {
    let _turn = SAM_TURN.lock().await;
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(sam_bin());
    cmd.current_dir(workspace_root())
        .args(["local", "invoke", function, "--config-env", "local"])
        .arg("--env-vars")
        .arg(env_vars)
        .arg("--event")
        .arg(event)
        .env("SAM_CLI_TELEMETRY", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let shown = format!(
        "sam local invoke {function} --config-env local --env-vars {} --event {}",
        env_vars.display(),
        event.display()
    );
    let out = tokio::time::timeout(SAM_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`{shown}` did not end within {SAM_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("running `{shown}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "`{shown}` failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let answer = last_json_object(&stdout).unwrap_or_else(|| {
        panic!("`{shown}` printed no JSON answer on stdout:\n{stdout}\nstderr:\n{stderr}")
    });
    Invocation {
        answer,
        stdout,
        stderr,
        elapsed: started.elapsed(),
    }
}

/// The function's answer in what sam printed: the whole of it when it is one
/// JSON object, else the last line that is one.
pub fn last_json_object(stdout: &str) -> Option<Value> {
    let whole = stdout.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str(whole) {
        return Some(v);
    }
    stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(Value::is_object)
}

/// `sam local start-lambda` on a free 127.0.0.1 port; stopped on drop.
pub struct StartLambda {
    child: tokio::process::Child,
    pub endpoint: String,
    log: PathBuf,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl StartLambda {
    /// Starts it and waits until its endpoint accepts connections.
    pub async fn start(env_vars: &Path, log_dir: &Path) -> StartLambda {
        let turn = SAM_TURN.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        std::fs::create_dir_all(log_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_dir.display()));
        let log = log_dir.join(format!("start-lambda-{port}.log"));
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("log file: {e}"));
        let child = tokio::process::Command::new(sam_bin())
            .current_dir(workspace_root())
            .args(["local", "start-lambda", "--config-env", "local"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--env-vars")
            .arg(env_vars)
            .env("SAM_CLI_TELEMETRY", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting sam local start-lambda: {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = StartLambda {
            child,
            endpoint,
            log,
            _turn: turn,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "sam local start-lambda did not listen on 127.0.0.1:{port} within 60 s; log {}:\n{}",
                server.log.display(),
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }

    /// `POST /2015-03-31/functions/FUNCTION/invocations`, as the AWS SDK and
    /// `aws lambda invoke --endpoint-url` send it: the function's answer.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Value {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint
        );
        let resp = reqwest::Client::new()
            .post(&url)
            .json(payload)
            .timeout(SAM_TIMEOUT)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}\nlog:\n{}", self.output()));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "POST {url}: HTTP {status}: {body}\nlog:\n{}",
            self.output()
        );
        serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!(
                "POST {url}: not JSON ({e}): {body}\nlog:\n{}",
                self.output()
            )
        })
    }

    /// What sam and the functions printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it the way Ctrl-C does, so that it removes its containers;
    /// killed if it does not end within 20 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("sam local start-lambda did not end within 20 s of SIGINT: killed");
            let _ = self.child.kill().await;
        }
    }
}
