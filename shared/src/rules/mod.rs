//! The pure rules: facts in, decisions out, no I/O and no storage format.
//! Nothing here imports an adapter or a run, so every rule is tested
//! without a server.
//!
//! - [`model`]: the words: statuses, Flink states, JobIDs, clusters, systems.
//! - [`record`]: the record as sync reads it, and its stored checkpoint.
//! - [`facts`]: what the adapters observed of a record's Job and Flink job.
//! - [`podlog`]: the JobIDs a submitting pod's log announces.
//! - [`plan`]: the sync rule: a record and what was observed, to a plan of changes.
//! - [`change`]: the plan and its changes, as the rule makes them.
//! - [`health`]: the health rule: checkpoints, restarts and tasks, to a
//!   verdict and a restart point; and which jobs a run looks at.
//! - [`cleanup`]: the cleanup rule: a Job and its record, to keep or delete.

pub mod change;
pub mod cleanup;
pub mod facts;
pub mod health;
pub mod model;
pub mod plan;
pub mod podlog;
pub mod record;
