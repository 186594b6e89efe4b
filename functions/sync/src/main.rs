//! The `sync` Lambda function: every few minutes, makes the non-final records
//! of `flink_jobs` follow Kubernetes and Flink. All logic lives in the
//! `flink-job-sync` crate; this only wires it to the Lambda runtime.

use flink_job_sync::runs::sync::{Syncer, handle, stop_at};
use flink_job_sync::{SyncConfig, reporting::telemetry, runs::lambda};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

/// Reads the sync function's settings once and builds every client once.
async fn init() -> Result<Syncer, flink_job_sync::Error> {
    let config = flink_job_sync::adapters::aws::resolve_secrets(SyncConfig::from_env()?).await?;
    Syncer::from_config(config).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let syncer = match init().await {
        Ok(s) => s,
        Err(e) => return Err(lambda::fail_init(e).await.into()),
    };
    let syncer = &syncer;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle(syncer, event.payload, stop_at(event.context.deadline)).await
        },
    ))
    .await
}
