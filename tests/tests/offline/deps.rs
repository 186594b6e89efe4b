//! Dependency hygiene, offline of any registry service: every crate in the
//! lock file (all platforms) is under a licence we accept, and the crates we
//! ban (OpenSSL and aws-lc bindings: TLS here is rustls on ring) are absent.
//! This is the check `cargo deny check licenses bans` would make.

use std::process::Command;

/// Licences whose terms allow shipping the binaries as we do.
const ACCEPTED: [&str; 15] = [
    "MIT",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Zlib",
    "CC0-1.0",
    "BSL-1.0",
    "Unlicense",
    "CDLA-Permissive-2.0",
    "MPL-2.0",
    "0BSD",
];

const BANNED: [&str; 5] = [
    "openssl",
    "openssl-sys",
    "native-tls",
    "aws-lc-sys",
    "aws-lc-rs",
];

/// Whether an SPDX expression (or the old `A/B` form) is satisfied by the
/// accepted licences: AND binds tighter than OR; WITH stays with its licence.
fn accepted(expr: &str) -> bool {
    let normal = expr
        .replace('/', " OR ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let tokens: Vec<&str> = normal.split_whitespace().collect();
    let mut pos = 0;
    or_expr(&tokens, &mut pos) && pos == tokens.len()
}

fn or_expr(t: &[&str], pos: &mut usize) -> bool {
    let mut ok = and_expr(t, pos);
    while t.get(*pos) == Some(&"OR") {
        *pos += 1;
        ok |= and_expr(t, pos);
    }
    ok
}

fn and_expr(t: &[&str], pos: &mut usize) -> bool {
    let mut ok = atom(t, pos);
    while t.get(*pos) == Some(&"AND") {
        *pos += 1;
        ok &= atom(t, pos);
    }
    ok
}

fn atom(t: &[&str], pos: &mut usize) -> bool {
    match t.get(*pos) {
        Some(&"(") => {
            *pos += 1;
            let ok = or_expr(t, pos);
            if t.get(*pos) == Some(&")") {
                *pos += 1;
            }
            ok
        }
        Some(id) => {
            *pos += 1;
            let mut name = id.to_string();
            if t.get(*pos) == Some(&"WITH") {
                name = format!("{name} WITH {}", t.get(*pos + 1).unwrap_or(&""));
                *pos += 2;
            }
            ACCEPTED.contains(&name.as_str())
        }
        None => false,
    }
}

#[test]
fn licence_expressions_are_read_as_spdx_says() {
    assert!(accepted("MIT OR Apache-2.0"));
    assert!(accepted("MIT/Apache-2.0"));
    assert!(accepted("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(accepted("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
    assert!(!accepted("GPL-3.0-only"));
    assert!(!accepted("MIT AND GPL-2.0-only"));
    assert!(!accepted("(MIT OR Apache-2.0) AND AGPL-3.0-only"));
    assert!(!accepted(""));
}

#[test]
fn every_dependency_has_an_accepted_licence_and_none_is_banned() {
    let root = test_kit::lambda::workspace_root();
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cargo metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata --locked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("cargo metadata: {e}"));
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    assert!(packages.len() > 100, "the whole graph was listed");
    let mut refused = Vec::new();
    let mut banned = Vec::new();
    for p in &packages {
        let name = p["name"].as_str().unwrap_or_default();
        let ours = p["source"].is_null();
        if BANNED.contains(&name) {
            banned.push(name.to_string());
        }
        match p["license"].as_str() {
            _ if ours => {}
            Some(l) if accepted(l) => {}
            other => refused.push(format!("{name} {}: {other:?}", p["version"])),
        }
    }
    assert!(refused.is_empty(), "licences not accepted: {refused:#?}");
    assert!(banned.is_empty(), "banned crates in the graph: {banned:?}");
}
