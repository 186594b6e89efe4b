//! Suites that need no server: the tests' AWS endpoint guard, dependency
//! hygiene, the deployment files, how the RBAC suite reads a Kubernetes
//! request, and the fuzz targets' properties over their seeds. `cargo test
//! -p flink-job-sync-tests --test offline` runs them on a machine with no
//! stack.

mod aws_endpoint;
mod deps;
mod fuzz_seeds;
mod infra;
mod rbac_attributes;
