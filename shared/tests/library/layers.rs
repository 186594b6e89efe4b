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

/// A source's code with string literals, char literals and comments blanked
/// (newlines kept), so braces and words are only the code's own.
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == 'r' && matches!(b.get(i + 1), Some('"') | Some('#')) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            j += 1;
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(b.len());
            out.extend(b[i..end].iter().map(|c| blank(*c)));
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            out.extend(b[i..end].iter().map(|c| blank(*c)));
            i = end;
        } else if c == '\'' && (b.get(i + 2) == Some(&'\'') || b.get(i + 1) == Some(&'\\')) {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            let mut j = i + 1;
            while j < b.len() && b[j] != '\'' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            out.extend(b[i..end].iter().map(|c| blank(*c)));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The functions of a source's code (its tests module aside) longer than
/// `max` lines, signature to closing brace: (name, first line, lines).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let code = code_only(text.split("#[cfg(test)]").next().unwrap_or(text));
    let chars: Vec<char> = code.chars().collect();
    let line_of = |pos: usize| chars[..pos].iter().filter(|c| **c == '\n').count() + 1;
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = code[search..].find("fn ") {
        let at = search + found;
        search = at + 3;
        let word_start =
            at == 0 || !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !word_start || name.is_empty() {
            continue;
        }
        // The body: the first `{` before any `;` (a declaration has none).
        let rest = &code[at..];
        let (Some(open), semi) = (rest.find('{'), rest.find(';')) else {
            continue;
        };
        if semi.is_some_and(|s| s < open) {
            continue;
        }
        let mut depth = 0;
        let start = at + open;
        let mut end = start;
        for (k, c) in code[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = start + k;
                break;
            }
        }
        let first = line_of(code[..at].chars().count());
        let last = line_of(code[..end].chars().count());
        if last - first + 1 > max {
            out.push((name, first, last - first + 1));
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    sources(dir, &mut files);
    files.sort();
    files
}

#[test]
fn no_library_function_is_over_sixty_lines_and_no_source_over_seven_hundred() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut too_long = Vec::new();
    for path in rust_files(&root.join("src")) {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        for (name, line, n) in long_functions(&text, 60) {
            too_long.push(format!("{}:{line} fn {name}: {n} lines", path.display()));
        }
    }
    let kit = root.join("../tests/kit/src");
    for path in rust_files(&root.join("src"))
        .into_iter()
        .chain(rust_files(&kit))
    {
        let n = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
        if n > 700 {
            too_long.push(format!("{}: {n} lines", path.display()));
        }
    }
    assert!(too_long.is_empty(), "split these: {too_long:#?}");
}

#[test]
fn the_size_check_measures_functions_from_signature_to_closing_brace() {
    let text = "fn short() {\n    let s = \"}}}\";\n}\n\nfn long() {\n    if x {\n        y('}');\n    }\n}\nfn decl();\n";
    assert_eq!(long_functions(text, 3), [("long".to_string(), 5, 5)]);
    assert!(long_functions(text, 5).is_empty());
}

#[test]
fn the_rules_name_no_storage_crate() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rules");
    let mut named = Vec::new();
    for path in rust_files(&rules) {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let code = code_only(&text);
        for (n, line) in code.lines().enumerate() {
            if ["mongodb", "bson"].iter().any(|c| line.contains(c)) {
                named.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        named.is_empty(),
        "storage belongs to adapters::store: {named:#?}"
    );
}
