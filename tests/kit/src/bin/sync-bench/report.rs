//! What the benchmark prints: each variant's figures, a scenario's ratios,
//! the machine and the cold start; as a table, or as JSON (`--json`, the
//! shape the README's figures are read from).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use test_kit::flinkfake::HEALTH_ENDPOINTS;

use crate::seed::Knobs;

/// One variant's run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measure {
    pub variant: &'static str,
    pub wall_ms: f64,
    pub flink_requests: BTreeMap<String, u64>,
    pub k8s_requests: BTreeMap<String, u64>,
    pub mongo_commands: BTreeMap<String, u64>,
    pub mongo_round_trips: u64,
    /// Bytes of answers read from each server.
    pub bytes_read: BTreeMap<String, u64>,
    /// Time the driver waited for each kind of command.
    pub mongo_wait_ms: BTreeMap<String, u64>,
    pub peak_rss_mb: Option<f64>,
    pub records_changed: Option<u64>,
    /// Of `flink_requests`, the health looks' (checkpoints, their config,
    /// metrics), by endpoint.
    pub health_requests: BTreeMap<String, u64>,
    /// Jobs whose health the product looked at (`health_checked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_looks: Option<u64>,
    /// Health verdicts it changed (`health_changes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_changes: Option<u64>,
    /// The product's own account of where its time went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases_ms: Option<Value>,
}

/// The runs of one fleet size.
pub struct Runs {
    /// The product's first run, then its next and later ones.
    pub product: [Measure; 3],
    pub floor: Measure,
    pub guarded: Measure,
    /// `None` above `--baseline-max`.
    pub baseline: Option<Measure>,
}

/// One fleet size's entry of the report, with its ratios.
pub fn scenario(n: usize, knobs: Knobs, health_budget: Option<usize>, runs: Runs) -> Value {
    let ratio = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
    let first = runs.product[0].wall_ms;
    let over_floor = ratio(first, runs.floor.wall_ms);
    let over_guarded = ratio(first, runs.guarded.wall_ms);
    let baseline_over = runs.baseline.as_ref().and_then(|b| ratio(b.wall_ms, first));
    let all: Vec<Measure> = runs
        .product
        .into_iter()
        .chain([runs.floor, runs.guarded])
        .chain(runs.baseline)
        .collect();
    json!({
        "records": n, "changing": knobs.changing, "pending": knobs.pending,
        "clusters": knobs.clusters, "rtt_ms": knobs.rtt.as_secs_f64() * 1000.0,
        "health_budget": health_budget.map_or(json!("default (200)"), |b| json!(b)),
        "runs": all,
        "product_over_floor": over_floor,
        "product_over_guarded_floor": over_guarded,
        "baseline_over_product": baseline_over,
    })
}

/// The whole report, printed as asked.
pub fn print(scenarios: Vec<Value>, cold_start: Value, as_json: bool) {
    let out = json!({"machine": machine(), "scenarios": scenarios, "cold_start": cold_start});
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_table(&out);
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

fn total(v: &Value) -> u64 {
    v.as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

fn print_table(out: &Value) {
    println!("machine: {}", out["machine"].as_str().unwrap_or_default());
    println!(
        "{:>7}  {:<26} {:>10} {:>7} {:>6} {:>7} {:>9} {:>8} {:>8} {:>6} {:>7}",
        "records",
        "variant",
        "wall ms",
        "flink",
        "k8s",
        "mongo",
        "read KiB",
        "rss MB",
        "changed",
        "looks",
        "health"
    );
    for s in out["scenarios"].as_array().into_iter().flatten() {
        for r in s["runs"].as_array().into_iter().flatten() {
            print_run(s["records"].as_u64().unwrap_or(0), r);
        }
        println!(
            "         {} cluster(s), {} ms round trip: sync / floor = {}   sync / guarded floor = {}   per-record / sync = {}",
            s["clusters"].as_u64().unwrap_or(1),
            s["rtt_ms"].as_f64().unwrap_or(0.0),
            s["product_over_floor"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}x")),
            s["product_over_guarded_floor"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}x")),
            s["baseline_over_product"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.1}x"))
        );
    }
    let c = &out["cold_start"];
    println!(
        "cold start: {} bytes, ready for first event in {} ms (median of 5)",
        c["binary_bytes"].as_u64().unwrap_or(0),
        c["ready_ms_median"]
            .as_f64()
            .map_or("-".into(), |x| format!("{x:.1}"))
    );
}

/// A variant's row, with the product's phases and health looks under it.
fn print_run(records: u64, r: &Value) {
    println!(
        "{:>7}  {:<26} {:>10.1} {:>7} {:>6} {:>7} {:>9} {:>8} {:>8} {:>6} {:>7}",
        records,
        r["variant"].as_str().unwrap_or_default(),
        r["wall_ms"].as_f64().unwrap_or(0.0),
        total(&r["flink_requests"]),
        total(&r["k8s_requests"]),
        r["mongo_round_trips"].as_u64().unwrap_or(0),
        total(&r["bytes_read"]) / 1024,
        r["peak_rss_mb"]
            .as_f64()
            .map_or("-".to_string(), |m| format!("{m:.1}")),
        r["records_changed"].as_u64().unwrap_or(0),
        r["health_looks"]
            .as_u64()
            .map_or("-".to_string(), |n| n.to_string()),
        total(&r["health_requests"]),
    );
    if let Some(p) = r["phases_ms"].as_object() {
        let parts: Vec<String> = p.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{:>9}{:<26} ms: {}", "", "  phases", parts.join(", "));
    }
    if let Some(looks) = r["health_looks"].as_u64() {
        let by_endpoint: Vec<String> = HEALTH_ENDPOINTS
            .iter()
            .map(|e| {
                let short = e.trim_start_matches("GET /jobs/{id}/");
                format!("{short} {}", r["health_requests"][*e].as_u64().unwrap_or(0))
            })
            .collect();
        println!(
            "{:>9}{:<26}    : {looks} looks, {} changed; requests: {}",
            "",
            "  health",
            r["health_changes"].as_u64().unwrap_or(0),
            by_endpoint.join(", ")
        );
    }
}
