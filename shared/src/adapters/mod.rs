//! The adapters: each fetches facts from one system or applies decisions to
//! it, and decides nothing. Each takes only its own settings from
//! [`crate::config`]; none imports a run.
//!
//! - [`flink`]: Flink's REST API (JobManager, History Server).
//! - [`k8s`]: the Kubernetes API: Jobs, pods, pod logs, deletions.
//! - [`store`]: MongoDB: the records, the conditional writes, the runs.
//! - [`events`]: state-change events, stored with their transition and
//!   published to EventBridge.
//! - [`aws`]: the AWS SDK configuration and the secrets read at cold start.

pub mod aws;
pub mod events;
pub mod flink;
pub mod k8s;
pub mod store;
