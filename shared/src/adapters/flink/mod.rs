//! Flink REST adapter: fetches job facts from the JobManager (and the
//! History Server, when configured) of every cluster sync follows.
//!
//! - [`client`]: one cluster's REST API;
//! - [`clusters`]: every cluster, by the cluster a record names;
//! - [`parse`]: Flink's answers read into the rules' types.

pub mod client;
pub mod clusters;
pub mod parse;

pub use crate::adapters::flink::client::FlinkClient;
pub use crate::adapters::flink::clusters::FlinkClusters;
pub use crate::adapters::flink::parse::{
    parse_checkpoint_config, parse_checkpoints, parse_metric, parse_overview, root_cause_of,
};
