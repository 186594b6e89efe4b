//! The pure rules: facts in, decisions out, no I/O. Nothing here imports an
//! adapter or a run, so every rule is tested without a server.
//!
//! - [`model`]: the record as sync reads it, statuses, Flink JobIDs, names.
//! - [`podlog`]: the JobIDs a submitting pod's log announces.
//! - [`plan`]: the sync rule: a record and what was observed, to a plan of changes.
//! - [`cleanup`]: the cleanup rule: a Job and its record, to keep or delete.
//! - [`health`]: the health rule: checkpoints, restarts and tasks, to a
//!   verdict and a restart point.

pub mod cleanup;
pub mod health;
pub mod model;
pub mod plan;
pub mod podlog;
