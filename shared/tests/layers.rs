//! The library's folders are layers: a module imports only from its own
//! layer or the ones below it, and no two modules import each other (even
//! through others). Read from the sources, so a new import that breaks the
//! shape fails here rather than in a reviewer's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first: `error` imports nothing, `runs` may import everything.
const LAYERS: [&str; 6] = ["error", "rules", "config", "adapters", "reporting", "runs"];

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|l| *l == top)
        .unwrap_or_else(|| panic!("module {module} is in no layer: add its folder to LAYERS"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `rules/plan.rs` → `rules::plan`; `rules/mod.rs` → `rules`.
fn module_of(src: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap_or(path).with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod")
        .collect();
    parts.join("::")
}

/// The modules a file's code (not its comments, not its tests) imports,
/// named to the depth of the module tree (`adapters::store`).
fn imports(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        // Forms this reader cannot follow are refused, so no import slips past.
        assert!(
            !line.contains("crate::{") && !line.contains("super::"),
            "write `use crate::module::Item;` (one module a line), not: {line}"
        );
        for (i, _) in line.match_indices("crate::") {
            let path: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            // The longest prefix that is a module: `adapters::store::Store` → `adapters::store`.
            let module = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| known.contains(m));
            if let Some(m) = module {
                out.insert(m);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .into_iter()
        .map(|p| (module_of(&src, &p), p))
        .filter(|(m, _)| m != "lib")
        .collect();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(m, p)| {
            let text =
                std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let mut deps = imports(&text, &known);
            deps.remove(m);
            (m.clone(), deps)
        })
        .collect()
}

#[test]
fn every_module_imports_only_from_its_own_layer_or_below() {
    let mut wrong = Vec::new();
    for (module, deps) in graph() {
        for dep in deps {
            if layer(&dep) > layer(&module) {
                wrong.push(format!("{module} imports {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers ({LAYERS:?}): {wrong:#?}"
    );
}

#[test]
fn no_module_reaches_itself_through_its_imports() {
    let graph = graph();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[start].iter().collect();
        while let Some(m) = todo.pop() {
            assert!(m != start, "{start} imports itself through {seen:?}");
            if seen.insert(m.clone()) {
                todo.extend(graph.get(m).into_iter().flatten());
            }
        }
    }
}

#[test]
fn the_layer_check_sees_imports() {
    // Guards the check itself: it must find what the sync run imports.
    let graph = graph();
    let sync = &graph["runs::sync"];
    for dep in [
        "adapters::store",
        "rules::plan",
        "config",
        "reporting::summary",
    ] {
        assert!(
            sync.contains(dep),
            "runs::sync should import {dep}: {sync:?}"
        );
    }
    assert!(graph["rules::plan"].iter().all(|d| d.starts_with("rules")));
}
