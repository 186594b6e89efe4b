//! AWS adapter: one SDK configuration per process (rustls on ring, the same
//! TLS stack as the other clients), and the secrets read at cold start
//! (`MONGODB_URI_SECRET_ARN`, `KUBECONFIG_SECRET_ARN`) from Secrets Manager.

use std::collections::HashMap;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::{Builder, tls};

use crate::config::secret::{Resolve, Secret, SecretSource};
use crate::error::Error;

/// The SDK configuration: region and credentials from the Lambda environment
/// (or `AWS_*` variables and `AWS_ENDPOINT_URL` locally).
pub async fn sdk_config() -> aws_config::SdkConfig {
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// Resolves `cfg`'s secrets: those given as values as they are, those in
/// Secrets Manager read from it (nothing is asked when none is: local runs
/// pass the values). A configuration cannot reach the clients unresolved.
pub async fn resolve_secrets<C: Resolve>(cfg: C) -> Result<C::Resolved, Error> {
    let wanted: Vec<(&'static str, String)> = cfg
        .sources()
        .into_iter()
        .filter_map(SecretSource::secrets_manager)
        .map(|(var, arn)| (var, arn.to_string()))
        .collect();
    if wanted.is_empty() {
        return cfg.resolve_given();
    }
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config().await);
    let mut read = HashMap::new();
    for (var, arn) in wanted {
        let secret = secret_string(&client, &arn, var).await?;
        read.insert(arn, secret);
    }
    cfg.resolve_with(&mut |source| match source {
        SecretSource::Given(secret) => Ok(secret),
        SecretSource::SecretsManager { var, arn } => read
            .get(&arn)
            .cloned()
            .ok_or_else(|| Error::config(var, "names a secret that was not read")),
    })
}

async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
    var: &str,
) -> Result<Secret, Error> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            Error::config(
                var,
                format!(
                    "secret could not be read: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ),
            )
        })?;
    out.secret_string()
        .filter(|s| !s.trim().is_empty())
        .map(|s| Secret::new(s.trim()))
        .ok_or_else(|| Error::config(var, "names a secret without a SecretString"))
}
