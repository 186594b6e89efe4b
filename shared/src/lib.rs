//! flink-job-sync: keeps MongoDB records of Flink jobs submitted as Kubernetes
//! Jobs true to what Kubernetes and Flink did.
//!
//! - [`model`], [`podlog`], [`plan`]: pure: the record, the log parsing and the
//!   sync rule (facts in, changes out), tested without I/O.
//! - [`flink`], [`k8s`], [`store`]: thin adapters that fetch facts and apply plans.
//! - [`sync`]: one run, wiring observation, decision and application;
//!   [`summary`]: what a run reports.
//! - [`cleanup`]: the daily deletion of finished Kubernetes Jobs.
//! - [`events`], [`metrics`]: state-change events on EventBridge, EMF run metrics.
//! - [`stats`]: the monitoring aggregations behind the `stats` CLI.
//! - [`payload`]: the keys an invocation may carry; unknown ones are refused.
//! - [`lambda`]: reporting a failed cold start through the Runtime API.
//! - [`telemetry`]: logging setup (JSON lines in Lambda).
//! - [`config`]: every setting, read once from the environment, naming the
//!   variable that is missing or bad; [`aws`]: the SDK configuration and the
//!   Secrets Manager secrets read at cold start.
//! - [`error`]: the crate's one error type, its kinds and its cause chain.

pub mod aws;
pub mod cleanup;
pub mod config;
pub mod error;
pub mod events;
pub mod flink;
pub mod k8s;
pub mod lambda;
pub mod metrics;
pub mod model;
pub mod payload;
pub mod plan;
pub mod podlog;
pub mod stats;
pub mod store;
pub mod summary;
pub mod sync;
pub mod telemetry;

pub use config::Config;
pub use error::Error;
