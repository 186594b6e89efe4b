//! The fleet-scale benchmark (`scripts/bench`): for each fleet size, the
//! product's sync run against (1) the per-record algorithm of the design note
//! and (2) the floor, the bare minimal calls for the same changes, with and
//! without the product's guards; all on the same generated data, on the
//! stack's MongoDB, an in-process Kubernetes API emulator and a fast
//! in-process Flink REST stand-in that counts requests. The product runs
//! three times on each fleet: its first run (no job ever looked at for
//! health), the next run, and a later run once every running job has been
//! looked at (its checkpoint config known), so the cost of the health looks
//! shows per run. Prints a table, or JSON with `--json`.
//!
//! This file runs the scenarios in order; each job has its module:
//! [`args`] the command line, [`seed`] the generated fleet, [`rig`] the
//! servers, proxies and counters, [`product`] the product (the only module
//! that configures and constructs it), [`floor`] and [`baseline`] the two
//! comparison algorithms, [`shape`] the check that the floor writes what
//! sync writes, [`cold_start`] the release binary's start, and [`report`]
//! the output.

mod args;
mod baseline;
mod cold_start;
mod floor;
mod mongo;
mod product;
mod report;
mod rig;
mod seed;
mod shape;

use std::collections::BTreeMap;

use clap::Parser;
use serde_json::{Value, json};
use test_kit::flinkfake::FlinkFake;

use crate::args::Args;
use crate::report::Runs;
use crate::rig::{Bench, Mongo};

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.child_sync {
        return product::child_sync().await;
    }
    let knobs = args.knobs();
    let mongo = Mongo::connect(test_kit::stack::require("MONGODB_URI"), knobs.rtt).await;
    let mut scenarios = Vec::new();
    for &n in &args.records {
        let bench = Bench::start(&mongo, n, knobs, args.health_budget).await;
        scenarios.push(scenario(&bench, &mongo, n, &args).await);
    }
    let cold = {
        let flink_url = FlinkFake::with_jobs(BTreeMap::new()).serve().await;
        cold_start::measure(&mongo.direct_uri, &flink_url, &rig::kubeconfig_path()).await
    };
    report::print(scenarios, cold, args.json);
}

/// Every variant on a fleet of `n`, each on freshly seeded records.
async fn scenario(bench: &Bench, mongo: &Mongo, n: usize, args: &Args) -> Value {
    let knobs = args.knobs();
    let db_name = format!("fjs_bench_{n}");
    let db = mongo.seeder.database(&db_name);
    eprintln!("bench: {n} records: seeding");
    seed::records(&db, n, knobs).await;
    eprintln!("bench: {n} records: sync, first run");
    let product = bench.product(&db_name, "sync (product)");
    let synced = shape::of(&db).await;
    eprintln!("bench: {n} records: sync, next run");
    let next = bench.product(&db_name, "sync, next run");
    seed::mark_all_looked_at(&db).await;
    eprintln!("bench: {n} records: sync, later run (all looked at)");
    let later = bench.product(&db_name, "sync, later run");
    seed::records(&db, n, knobs).await;
    eprintln!("bench: {n} records: floor");
    let floor = bench.floor(&db_name, false).await;
    // The plain floor does not bump `revision`: that is the guard it goes without.
    let mut differ = shape::differences(&synced, &shape::of(&db).await, &["revision"]);
    seed::records(&db, n, knobs).await;
    eprintln!("bench: {n} records: floor with the product's guards");
    let guarded = bench.floor(&db_name, true).await;
    differ.extend(shape::differences(&synced, &shape::of(&db).await, &[]));
    for d in &differ {
        eprintln!("bench: {n} records: the floor's writes differ from sync's: {d}");
    }
    let baseline = if n <= args.baseline_max {
        seed::records(&db, n, knobs).await;
        eprintln!("bench: {n} records: per-record baseline");
        Some(bench.baseline(&db_name).await)
    } else {
        None
    };
    let _ = db.drop().await;
    let runs = Runs {
        product: [product, next, later],
        floor,
        guarded,
        baseline,
    };
    let mut s = report::scenario(n, knobs, args.health_budget, runs);
    s["floor_writes_differ"] = json!(differ);
    s
}
