//! The AWS SDK configuration of every test: aimed at the local stack's moto
//! and nothing else. Tests create buses, queues and secrets; with
//! `AWS_ENDPOINT_URL` unset (or aimed elsewhere) and real credentials in the
//! environment, an SDK client built from the default chain would create them
//! in a real account. So the endpoint is checked first, and must be on the
//! loopback range (127.0.0.0/8, `localhost`, `[::1]`); the configuration is
//! then built by hand, with no default chain behind it: the region and the
//! (dummy) credentials `scripts/stack up` exports, the endpoint given, and
//! no per-service endpoint from the environment or a profile.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::{Builder, tls};

use crate::stack::{START_HINT, require};

/// `endpoint` (the value of `AWS_ENDPOINT_URL`, `None` when unset) if it is
/// an http(s) URL whose host is on the loopback range; otherwise why not,
/// with the command that starts the stack.
pub fn loopback_endpoint(endpoint: Option<&str>) -> Result<String, String> {
    let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return Err(format!(
            "AWS_ENDPOINT_URL is not set: tests reach AWS only through the local stack's moto, never a real account; {START_HINT}"
        ));
    };
    let refuse = |why: &str| {
        Err(format!(
            "AWS_ENDPOINT_URL={endpoint:?} {why}: tests reach AWS only through the local stack's moto on 127.0.0.1, never a real account; {START_HINT}"
        ))
    };
    let url = match reqwest::Url::parse(endpoint) {
        Ok(url) => url,
        Err(e) => return refuse(&format!("is not a URL ({e})")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("is not an http(s) URL");
    }
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match ip.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    if !loopback {
        return refuse("is not on the loopback range (127.0.0.0/8 or localhost)");
    }
    Ok(endpoint.to_string())
}

/// The stack's `AWS_ENDPOINT_URL`, checked to be on the loopback range;
/// a test panics here, before any client exists, when it is not.
pub fn endpoint() -> String {
    let value = std::env::var("AWS_ENDPOINT_URL").ok();
    loopback_endpoint(value.as_deref()).unwrap_or_else(|e| panic!("{e}"))
}

/// The SDK configuration tests build every AWS client from: the stack's
/// moto at `AWS_ENDPOINT_URL`.
pub fn sdk_config() -> SdkConfig {
    sdk_config_at(&endpoint())
}

/// The same, aimed at `endpoint` (a fault proxy in front of moto, a stand-in,
/// a port where nothing listens), which must be on the loopback range too.
/// The HTTP client is the product's kind (rustls on ring).
pub fn sdk_config_at(endpoint: &str) -> SdkConfig {
    let endpoint = loopback_endpoint(Some(endpoint)).unwrap_or_else(|e| panic!("{e}"));
    let credentials = Credentials::new(
        require("AWS_ACCESS_KEY_ID"),
        require("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "the local stack",
    );
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(require("AWS_REGION")))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http)
        .build()
}
