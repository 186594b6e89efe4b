//! Suites that need no server: dependency hygiene, the deployment files, and
//! the fuzz targets' properties over their seeds. `cargo test -p
//! flink-job-sync-tests --test offline` runs them on a machine with no stack.

mod deps;
mod fuzz_seeds;
mod infra;
