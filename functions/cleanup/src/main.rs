//! The `cleanup` Lambda function: daily, deletes the product's finished
//! Kubernetes Jobs once old enough, keeping those whose record still needs the
//! pod log. All logic lives in the `flink-job-sync` crate.

use flink_job_sync::cleanup::{Cleaner, handle};
use flink_job_sync::{Config, telemetry};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let mut config = Config::from_env()?;
    flink_job_sync::aws::resolve_secrets(&mut config).await?;
    let cleaner = Cleaner::from_config(&config).await?;
    let cleaner = &cleaner;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(cleaner, event.payload).await
    }))
    .await
}
