//! The tests' AWS clients reach the local stack's moto and nothing else:
//! the kit refuses to build an SDK configuration for an endpoint that is
//! unset or off the loopback range, and says how to start the stack.

use test_kit::aws::{loopback_endpoint, sdk_config_at};
use test_kit::stack::START_HINT;

#[test]
fn an_unset_or_non_loopback_aws_endpoint_is_refused_with_the_command_that_starts_the_stack() {
    for endpoint in [
        None,
        Some(""),
        Some("   "),
        Some("https://events.eu-west-1.amazonaws.com"),
        Some("https://sqs.us-east-1.amazonaws.com/"),
        Some("http://10.0.0.5:4566"),
        Some("http://192.168.1.20:5000"),
        Some("http://0.0.0.0:5000"),
        Some("http://127.0.0.1.example.com:5000"),
        Some("http://localhost.example.com:5000"),
        Some("http://127.0.0.1@example.com:5000"),
        Some("http://[::ffff:10.0.0.5]:5000"),
        Some("ftp://127.0.0.1/"),
        Some("127.0.0.1:5000"),
    ] {
        let refused = loopback_endpoint(endpoint)
            .expect_err(&format!("AWS_ENDPOINT_URL={endpoint:?} must be refused"));
        assert!(
            refused.contains("AWS_ENDPOINT_URL") && refused.contains(START_HINT),
            "names the variable and the command that starts the stack: {refused}"
        );
    }
}

#[test]
fn a_loopback_aws_endpoint_is_taken_as_it_is() {
    for endpoint in [
        "http://127.0.0.1:5000",
        "http://127.0.0.1:5000/",
        "http://127.42.0.9:40123",
        "http://localhost:5000",
        "http://LOCALHOST:5000",
        "https://localhost",
        "http://[::1]:5000",
    ] {
        assert_eq!(
            loopback_endpoint(Some(endpoint)).as_deref(),
            Ok(endpoint),
            "{endpoint}"
        );
    }
}

#[test]
fn no_sdk_configuration_is_built_for_an_endpoint_off_the_loopback_range() {
    let built =
        std::panic::catch_unwind(|| sdk_config_at("https://events.us-east-1.amazonaws.com"));
    let message = built.map(|_| String::from("built")).unwrap_or_else(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| String::from("a panic without a message"))
    });
    assert!(
        message.contains("not on the loopback range") && message.contains(START_HINT),
        "refused before any client exists, saying why: {message}"
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_test_builds_an_aws_sdk_configuration_but_through_the_kit() {
    let root = test_kit::lambda::workspace_root();
    let guard = root.join("tests/kit/src/aws.rs");
    let mut files = Vec::new();
    rust_files(&root.join("tests/tests"), &mut files);
    rust_files(&root.join("tests/kit/src"), &mut files);
    assert!(files.contains(&guard), "{files:?}");
    // The ways to an SDK configuration other than test_kit::aws: the default
    // chain (aws_config's loaders, the product's own configuration) or one
    // built by hand.
    let ways = [
        "adapters::aws::sdk_config",
        "aws_config::defaults",
        "aws_config::load",
        "ConfigLoader",
        "SdkConfig::builder",
    ];
    let this = root.join("tests/tests/offline/aws_endpoint.rs");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| **f != guard && **f != this) {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for way in ways {
            if text.contains(way) {
                found.push(format!("{}: {way}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "AWS SDK configurations built around test_kit::aws::sdk_config: {found:#?}"
    );
}
