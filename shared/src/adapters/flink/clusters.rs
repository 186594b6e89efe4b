//! Every Flink cluster sync follows, by the [`ClusterRef`] a record names.

use std::collections::BTreeMap;

use crate::adapters::flink::client::FlinkClient;
use crate::config::FlinkSettings;
use crate::error::Error;
use crate::rules::model::{ClusterRef, Unobserved};

/// Every Flink cluster sync follows: the one `FLINK_REST_URL` names (for
/// records without `flink_cluster`) and those `FLINK_CLUSTERS` names.
#[derive(Debug, Clone, Default)]
pub struct FlinkClusters {
    default: Option<FlinkClient>,
    named: BTreeMap<String, FlinkClient>,
}

impl From<FlinkClient> for FlinkClusters {
    fn from(default: FlinkClient) -> Self {
        FlinkClusters::single(default)
    }
}

impl FlinkClusters {
    /// The clients the settings describe (sync needs at least one cluster).
    pub fn from_settings(settings: &FlinkSettings) -> Result<Self, Error> {
        settings.require_a_cluster()?;
        let client = |rest: &str, history: Option<&str>| {
            FlinkClient::with_tls(rest, history, settings.timeout, !settings.tls_insecure)
        };
        let default = match &settings.rest_url {
            Some(rest) => Some(client(rest, settings.history_url.as_deref())?),
            None => None,
        };
        let mut named = BTreeMap::new();
        for (name, urls) in &settings.clusters {
            named.insert(
                name.clone(),
                client(&urls.rest_url, urls.history_url.as_deref())?,
            );
        }
        Ok(FlinkClusters { default, named })
    }

    /// One cluster, for the records without `flink_cluster`.
    pub fn single(default: FlinkClient) -> Self {
        FlinkClusters {
            default: Some(default),
            named: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the cluster records name `name`.
    pub fn insert(&mut self, name: &str, client: FlinkClient) {
        self.named.insert(name.to_string(), client);
    }

    /// The names of the clusters `FLINK_CLUSTERS` configures.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    /// Every cluster followed: the default one when `FLINK_REST_URL` is set, then the named ones.
    pub fn all(&self) -> impl Iterator<Item = ClusterRef> + '_ {
        self.default
            .as_ref()
            .map(|_| ClusterRef::Default)
            .into_iter()
            .chain(self.names().map(|n| ClusterRef::Named(n.to_string())))
    }

    /// The client of a record's cluster; for one that is not configured,
    /// an error that names the known clusters.
    pub fn client(&self, cluster: &ClusterRef) -> Result<&FlinkClient, Unobserved> {
        let found = match cluster {
            ClusterRef::Default => self.default.as_ref(),
            ClusterRef::Named(name) => self.named.get(name),
        };
        found.ok_or_else(|| Unobserved::UnknownCluster {
            cluster: cluster.clone(),
            known: self.names().map(str::to_string).collect(),
        })
    }
}
