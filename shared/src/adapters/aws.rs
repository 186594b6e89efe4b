//! AWS adapter: one SDK configuration per process (rustls on ring, the same
//! TLS stack as the other clients), and the secrets read at cold start
//! (`MONGODB_URI_SECRET_ARN`, `KUBECONFIG_SECRET_ARN`) from Secrets Manager.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::{Builder, tls};

use crate::config::{Config, Secret};
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

/// Replaces the secret references in `cfg` by the secrets themselves. Nothing
/// is fetched when no `*_SECRET_ARN` is set (local runs pass the values).
pub async fn resolve_secrets(cfg: &mut Config) -> Result<(), Error> {
    if cfg.mongo.uri_secret_arn.is_none() && cfg.kube.kubeconfig_secret_arn.is_none() {
        return Ok(());
    }
    let client = aws_sdk_secretsmanager::Client::new(&sdk_config().await);
    if let Some(arn) = cfg.mongo.uri_secret_arn.clone() {
        let uri = secret_string(&client, &arn, "MONGODB_URI_SECRET_ARN").await?;
        if !(uri.expose().starts_with("mongodb://") || uri.expose().starts_with("mongodb+srv://")) {
            return Err(Error::config(
                "MONGODB_URI_SECRET_ARN",
                "names a secret that is not a mongodb:// URI",
            ));
        }
        cfg.mongo.uri = uri;
    }
    if let Some(arn) = cfg.kube.kubeconfig_secret_arn.clone() {
        cfg.kube.kubeconfig = Some(secret_string(&client, &arn, "KUBECONFIG_SECRET_ARN").await?);
    }
    Ok(())
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
