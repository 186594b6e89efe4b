//! Suites that need the local stack (`eval "$(scripts/stack up)"`): the
//! stack's MongoDB, its real Flink cluster and moto, with a Kubernetes API
//! emulator started in-process by each test. One binary, so the kube, MongoDB
//! and AWS SDK dependencies are linked once.

mod cleanup;
mod clusters;
mod events;
mod faults;
mod health;
mod history;
mod namespaces;
mod outages;
mod races;
mod rbac;
mod run_metrics;
mod stack_mongo;
mod stats;
mod sync_scenarios;
