//! What the function binaries do around the Lambda runtime that the runtime
//! crate does not: report a failed cold start through the Runtime API's init
//! error endpoint, so that whoever invoked (AWS, `sam local`, `cargo lambda`)
//! gets the reason at once instead of waiting for a timeout.

use crate::error::{Error, chain};

/// The Runtime API path for errors before the first `next` call.
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// Logs `error`, posts it to the Runtime API's init error endpoint when
/// there is one (`AWS_LAMBDA_RUNTIME_API`), and hands it back for `main` to
/// return, so the process exits non-zero as Lambda expects after an init
/// error. Outside Lambda (no Runtime API) it only logs.
pub async fn fail_init(error: Error) -> Error {
    let diagnostic = lambda_runtime::Diagnostic {
        error_type: error.kind().to_string(),
        error_message: format!("cold start failed: {}", chain(&error)),
    };
    tracing::error!(error_type = %diagnostic.error_type, error = %diagnostic.error_message, "cold start failed");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        && let Err(e) = post_init_error(&api, &diagnostic).await
    {
        tracing::error!(error = %e, "the init error could not be reported to the Runtime API");
    }
    error
}

async fn post_init_error(api: &str, diagnostic: &lambda_runtime::Diagnostic) -> Result<(), String> {
    let url = init_error_url(api)?;
    let body = serde_json::json!({
        "errorType": diagnostic.error_type,
        "errorMessage": diagnostic.error_message,
    });
    // The Runtime API is on this host: never through an HTTP(S)_PROXY.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| chain(&e))?;
    let answer = client
        .post(url)
        .header("Lambda-Runtime-Function-Error-Type", &diagnostic.error_type)
        .json(&body)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| chain(&e.without_url()))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the Runtime API answered HTTP {}", answer.status()))
    }
}

/// The init error endpoint under `AWS_LAMBDA_RUNTIME_API`: `host:port` on
/// AWS and under SAM's emulator, a base URL with a path under cargo-lambda.
fn init_error_url(api: &str) -> Result<reqwest::Url, String> {
    let api = api.trim();
    let base = if api.contains("://") {
        api.to_string()
    } else {
        format!("http://{api}")
    };
    let bad = || format!("AWS_LAMBDA_RUNTIME_API is neither host:port nor an http URL: {api:?}");
    let mut url = reqwest::Url::parse(&base).map_err(|_| bad())?;
    if url.scheme() != "http"
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(bad());
    }
    let path = format!("{}{INIT_ERROR_PATH}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_error_url_follows_aws_and_cargo_lambda_forms() {
        let url = |api: &str| init_error_url(api).map(|u| u.to_string());
        assert_eq!(
            url("127.0.0.1:9001"),
            Ok("http://127.0.0.1:9001/2018-06-01/runtime/init/error".to_string())
        );
        assert_eq!(
            url("http://127.0.0.1:9311/.rt/sync"),
            Ok("http://127.0.0.1:9311/.rt/sync/2018-06-01/runtime/init/error".to_string())
        );
        for bad in [
            "",
            "ftp://x:1",
            "http://u:p@h:1/",
            "h:1/?q=1",
            "http://h:1/#f",
        ] {
            assert!(url(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
