//! The `sync` Lambda function: every few minutes, makes the non-final records
//! of `flink_jobs` follow Kubernetes and Flink. All logic lives in the
//! `flink-job-sync` crate; this only wires it to the Lambda runtime.

use flink_job_sync::sync::{Syncer, handle, stop_at};
use flink_job_sync::{Config, telemetry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let mut config = Config::from_env()?;
    flink_job_sync::aws::resolve_secrets(&mut config).await?;
    let syncer = Syncer::from_config(config).await?;
    let syncer = &syncer;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle(syncer, event.payload, stop_at(event.context.deadline)).await
        },
    ))
    .await
}
