//! Kubernetes API emulator: serves the subset of the Kubernetes
//! API that flink-job-sync, kube-rs and kubectl use, optionally running Jobs
//! as local processes.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use k8s_emulator::{EmulatorConfig, RunnerConfig, kubeconfig_yaml, start};

const USAGE: &str = "\
usage: k8s-emulator [--bind ADDR:PORT] [--runner [--path-map FROM=TO]... [--retry-delay-ms N] [--env KEY=VALUE]...]
                    [--kubeconfig-out FILE [--namespace NS]]

  --bind ADDR:PORT        address to listen on (default 127.0.0.1:0: any free port)
  --runner                act as Job controller and kubelet: run each Job's first
                          container command as a local process
  --path-map FROM=TO      runner: replace the path prefix FROM by TO in command,
                          args, env values and workingDir (repeatable)
  --retry-delay-ms N      runner: wait N ms before replacing a failed pod (default 1000)
  --env KEY=VALUE         runner: extra environment for every process (repeatable)
  --kubeconfig-out FILE   write a kubeconfig for the emulator to FILE once listening
  --namespace NS          the kubeconfig context's namespace (default \"default\")
  -h, --help              show this help

Prints `k8s-emulator listening on http://HOST:PORT` once ready; stops on SIGTERM/SIGINT.";

#[derive(Debug)]
struct Args {
    bind: SocketAddr,
    runner: bool,
    path_map: Vec<(String, String)>,
    retry_delay_ms: Option<u64>,
    env: Vec<(String, String)>,
    kubeconfig_out: Option<String>,
    namespace: Option<String>,
}

fn split_pair(flag: &str, v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((a, b)) if !a.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!("{flag} expects KEY=VALUE, got {v:?}")),
    }
}

fn parse_args(argv: &[String]) -> Result<Option<Args>, String> {
    let mut args = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        runner: false,
        path_map: Vec::new(),
        retry_delay_ms: None,
        env: Vec::new(),
        kubeconfig_out: None,
        namespace: None,
    };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--bind" => {
                let v = value(flag)?;
                args.bind = v.parse().map_err(|e| {
                    format!("--bind expects ADDR:PORT (e.g. 127.0.0.1:6443), got {v:?}: {e}")
                })?;
            }
            "--runner" if inline.is_none() => args.runner = true,
            "--path-map" => {
                let v = value(flag)?;
                args.path_map.push(split_pair(flag, &v)?);
            }
            "--retry-delay-ms" => {
                let v = value(flag)?;
                args.retry_delay_ms = Some(v.parse().map_err(|e| {
                    format!("--retry-delay-ms expects milliseconds, got {v:?}: {e}")
                })?);
            }
            "--env" => {
                let v = value(flag)?;
                args.env.push(split_pair(flag, &v)?);
            }
            "--kubeconfig-out" => args.kubeconfig_out = Some(value(flag)?),
            "--namespace" => args.namespace = Some(value(flag)?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !args.runner {
        for (set, flag) in [
            (!args.path_map.is_empty(), "--path-map"),
            (args.retry_delay_ms.is_some(), "--retry-delay-ms"),
            (!args.env.is_empty(), "--env"),
        ] {
            if set {
                return Err(format!("{flag} only applies with --runner"));
            }
        }
    }
    if args.namespace.is_some() && args.kubeconfig_out.is_none() {
        return Err("--namespace only applies with --kubeconfig-out".into());
    }
    Ok(Some(args))
}

async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("k8s-emulator: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runner = args.runner.then(|| RunnerConfig {
        path_map: args.path_map.clone(),
        retry_delay: args
            .retry_delay_ms
            .map_or(Duration::from_secs(1), Duration::from_millis),
        extra_env: args.env.clone(),
    });
    let emulator = match start(EmulatorConfig {
        bind: args.bind,
        runner,
    })
    .await
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("k8s-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = emulator.url();
    if let Some(path) = &args.kubeconfig_out {
        let ns = args.namespace.as_deref().unwrap_or("default");
        if let Err(e) = std::fs::write(path, kubeconfig_yaml(&url, ns)) {
            eprintln!("k8s-emulator: cannot write kubeconfig {path}: {e}");
            emulator.shutdown().await;
            return ExitCode::FAILURE;
        }
    }
    println!("k8s-emulator listening on {url}");
    let _ = std::io::stdout().flush();
    let code = match wait_for_signal().await {
        Ok(sig) => {
            tracing::info!(signal = sig, "stopping");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("k8s-emulator: cannot wait for signals: {e}");
            ExitCode::FAILURE
        }
    };
    emulator.shutdown().await;
    tracing::info!("stopped");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Option<Args>, String> {
        parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_parse_and_bad_flags_are_explained() {
        let a = args(&[
            "--bind",
            "127.0.0.1:7000",
            "--runner",
            "--path-map",
            "/opt/flink=/x",
            "--retry-delay-ms=50",
        ]);
        let a = a.ok().flatten();
        assert_eq!(a.as_ref().map(|a| a.bind.port()), Some(7000));
        assert_eq!(
            a.as_ref().map(|a| a.path_map.clone()),
            Some(vec![("/opt/flink".into(), "/x".into())])
        );
        assert!(args(&["--bogus"]).is_err_and(|e| e.contains("unknown argument")));
        assert!(args(&["--bind", "nope"]).is_err_and(|e| e.contains("--bind")));
        assert!(args(&["--path-map", "/a=/b"]).is_err_and(|e| e.contains("--runner")));
        assert!(
            args(&["--runner", "--path-map", "nothing"]).is_err_and(|e| e.contains("KEY=VALUE"))
        );
        assert!(args(&["--bind"]).is_err_and(|e| e.contains("needs a value")));
    }
}
