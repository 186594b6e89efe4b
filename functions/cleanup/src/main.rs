//! The `cleanup` Lambda function: daily, deletes the product's finished
//! Kubernetes Jobs once old enough, keeping those whose record still needs the
//! pod log. All logic lives in the `flink-job-sync` crate.

use flink_job_sync::runs::cleanup::{Cleaner, handle};
use flink_job_sync::{CleanupConfig, reporting::telemetry, runs::lambda};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

/// Reads the cleanup function's settings once and builds every client once.
async fn init() -> Result<Cleaner, flink_job_sync::Error> {
    let config = flink_job_sync::adapters::aws::resolve_secrets(CleanupConfig::from_env()?).await?;
    Cleaner::from_config(&config).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let cleaner = match init().await {
        Ok(c) => c,
        Err(e) => return Err(lambda::fail_init(e).await.into()),
    };
    let cleaner = &cleaner;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(cleaner, event.payload).await
    }))
    .await
}
