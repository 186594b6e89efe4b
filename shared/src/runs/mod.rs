//! The runs: one invocation each, wiring the adapters' observations through
//! the rules and back through the adapters.
//!
//! - [`sync`]: the sync run and its Lambda handler.
//! - [`cleanup`]: the cleanup run and its Lambda handler.
//! - [`payload`]: the keys an invocation may carry; unknown ones are refused.
//! - [`lambda`]: reporting a failed cold start through the Runtime API.

pub mod cleanup;
pub mod lambda;
pub mod payload;
pub mod sync;
