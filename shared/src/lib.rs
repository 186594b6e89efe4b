//! flink-job-sync: keeps MongoDB records of Flink jobs submitted as Kubernetes
//! Jobs true to what Kubernetes and Flink did.
//!
//! The folders are the layers; a module imports only from its own layer or
//! the ones above it in this list:
//!
//! - [`error`]: the crate's one error type, its kinds and its cause chain.
//! - [`rules`]: pure decisions, tested without I/O; no storage format.
//!   - [`rules::model`]: statuses, Flink states, JobIDs, clusters, systems;
//!   - [`rules::record`]: the record as sync reads it;
//!   - [`rules::facts`]: what the adapters observed of a record;
//!   - [`rules::podlog`]: the JobIDs a pod log announces;
//!   - [`rules::plan`]: the sync rule (facts in, changes out), and
//!     [`rules::change`]: the plan it makes;
//!   - [`rules::health`]: the health rule and a run's health looks;
//!   - [`rules::cleanup`]: the cleanup rule.
//! - [`config`]: every setting, read once from the environment into each
//!   component's own settings, naming the variable that is missing or bad;
//!   each binary reads only its own ([`SyncConfig`], [`CleanupConfig`],
//!   [`StatsConfig`]).
//!   - [`config::declared`]: every variable's name, default, range and
//!     meaning, declared once (the README's tables are checked against it);
//!   - [`config::settings`]: each component's settings;
//!     [`config::secret`]: secrets, their redaction, where they come from
//!     and their resolving;
//!   - `config::numeric` (the numeric settings and their `Default` impls)
//!     and `config::env` (the environment's reader) are private.
//! - [`adapters`]: fetch facts, apply plans, decide nothing.
//!   - [`adapters::flink`], [`adapters::k8s`], [`adapters::store`] (MongoDB:
//!     the only module that knows BSON, one submodule per collection job),
//!     [`adapters::events`] (EventBridge), [`adapters::aws`] (SDK, secrets).
//! - [`reporting`]: what operators see.
//!   - [`reporting::summary`]: a sync run's answer; [`reporting::metrics`]:
//!     its EMF metrics; [`reporting::stats`]: the monitoring aggregations;
//!     [`reporting::telemetry`]: logging setup.
//! - [`runs`]: one invocation each.
//!   - [`runs::sync`]: the sync run ([`runs::sync::request`],
//!     [`runs::sync::run`], [`runs::sync::observe`], [`runs::sync::untracked`],
//!     [`runs::sync::outbox`]) and its Lambda handler;
//!   - [`runs::cleanup`]: the cleanup run and its Lambda handler;
//!     [`runs::payload`]: the keys an invocation may carry;
//!     [`runs::lambda`]: reporting a failed cold start.

#![warn(missing_docs)]

pub mod adapters;
pub mod config;
pub mod error;
pub mod reporting;
pub mod rules;
pub mod runs;

pub use config::{CleanupConfig, StatsConfig, SyncConfig};
pub use error::Error;
