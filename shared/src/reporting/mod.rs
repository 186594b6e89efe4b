//! What the product tells its operators.
//!
//! - [`summary`]: what a sync run reports (the invocation's answer).
//! - [`metrics`]: a run's CloudWatch metrics (EMF).
//! - [`stats`]: the monitoring aggregations behind `flink-job-stats`.
//! - [`telemetry`]: logging setup (JSON lines in Lambda).

pub mod metrics;
pub mod stats;
pub mod summary;
pub mod telemetry;
