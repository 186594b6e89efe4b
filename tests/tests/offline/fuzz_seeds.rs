//! The fuzz targets' properties (`fuzz/src/lib.rs`) on stable, over the
//! committed seeds (`fuzz/seeds/`) and every input a fuzzer once broke the
//! product with (`fuzz/regressions/`), so a fixed finding stays fixed
//! without nightly. `scripts/fuzz` runs the targets themselves.

#[path = "../../../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() && path.extension().is_none_or(|x| x != "py") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `check` over every input of `target`; names each input that breaks
/// it, each seed that reaches no property (say, one that no longer parses
/// at all, which would check nothing), and each of `properties` no seed reaches.
fn replay(
    target: &str,
    at_least: usize,
    properties: &[&str],
    check: fn(&[u8]) -> Vec<&'static str>,
) {
    let files = inputs(target);
    assert!(
        files.len() >= at_least,
        "expected at least {at_least} inputs for {target} under fuzz/seeds, found {}: \
         regenerate them with `python fuzz/seeds/make_seeds.py`",
        files.len()
    );
    let mut broken = Vec::new();
    let mut reached = std::collections::BTreeSet::new();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        match std::panic::catch_unwind(|| check(&data)) {
            Err(p) => {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                broken.push(format!("{}: {why}", f.display()));
            }
            Ok(props) => {
                let seed = f.components().any(|c| c.as_os_str() == "seeds");
                if seed && props.is_empty() {
                    broken.push(format!("{}: reaches no property", f.display()));
                }
                reached.extend(props);
            }
        }
    }
    for p in properties {
        if !reached.contains(p) {
            broken.push(format!("no input reaches the {p} property"));
        }
    }
    assert!(broken.is_empty(), "{target}: {broken:#?}");
}

#[test]
fn pod_log_inputs_yield_only_job_ids_that_stand_in_the_log() {
    replay("podlog", 7, &["job_ids", "tail"], checks::check_podlog);
}

#[test]
fn flink_bodies_parse_or_fail_naming_the_endpoint() {
    replay(
        "flink_json",
        5,
        &[
            "overview",
            "overview_error",
            "root_cause",
            "checkpoints",
            "checkpoint_config",
            "metric",
        ],
        checks::check_flink_json,
    );
}

#[test]
fn kubernetes_objects_reduce_consistently_and_only_names_reach_a_log_read() {
    replay(
        "k8s_objects",
        3,
        &["job_with_pods", "pod"],
        checks::check_k8s_objects,
    );
}

#[test]
fn records_are_read_whole_or_reported_with_a_bounded_message() {
    replay("record", 7, &["record", "report"], checks::check_record);
}
