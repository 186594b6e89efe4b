//! The crate's one error type. Sources are kept; messages never carry secrets
//! (a MongoDB URI or a token is never formatted into one, and Flink's URLs
//! are dropped from its HTTP errors).

/// A cause under a Flink or kubeconfig error (an HTTP, JSON or YAML error).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, by the system it went wrong in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or bad; `var` names it, never its value.
    #[error("configuration: {var} {reason}")]
    Config {
        /// The variable's name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// MongoDB failed while doing `context`.
    #[error("MongoDB: {context}")]
    Mongo {
        /// What was being done.
        context: String,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },
    /// The Kubernetes API failed while doing `context`.
    #[error("Kubernetes: {context}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// No usable kubeconfig (or in-cluster account) to reach Kubernetes.
    #[error("Kubernetes configuration: {context}")]
    KubeConfig {
        /// Where the configuration was looked for.
        context: String,
        /// Why it could not be used.
        #[source]
        source: Option<Cause>,
    },
    /// Reading a pod log's stream failed part way.
    #[error("Kubernetes: {context}")]
    KubeRead {
        /// Which log.
        context: String,
        /// Why the stream broke.
        #[source]
        source: std::io::Error,
    },
    /// Flink's REST API gave no usable answer to `context` (a request).
    #[error("Flink: {context}")]
    Flink {
        /// The request.
        context: String,
        /// Why it got no usable answer (none for an HTTP status).
        #[source]
        source: Option<Cause>,
    },
    /// The invocation's payload is not one the function accepts.
    #[error("bad input: {0}")]
    Input(String),
}

impl Error {
    /// A missing or bad setting.
    pub fn config(var: &str, reason: impl Into<String>) -> Self {
        Error::Config {
            var: var.to_string(),
            reason: reason.into(),
        }
    }

    /// The `errorType` Lambda reports for this kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "ConfigError",
            Error::Mongo { .. } => "MongoError",
            Error::Kube { .. } | Error::KubeConfig { .. } | Error::KubeRead { .. } => {
                "KubernetesError"
            }
            Error::Flink { .. } => "FlinkError",
            Error::Input(_) => "InputError",
        }
    }

    /// Wraps a MongoDB error with what was being done.
    pub fn mongo(context: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> Self {
        let context = context.into();
        move |source| Error::Mongo { context, source }
    }

    /// Wraps a Kubernetes API error with what was being done.
    pub fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }

    /// A Flink failure with an optional cause.
    pub fn flink(context: impl Into<String>, source: Option<Cause>) -> Self {
        Error::Flink {
            context: context.into(),
            source,
        }
    }

    /// A kubeconfig failure with an optional cause.
    pub fn kube_config(context: impl Into<String>, source: Option<Cause>) -> Self {
        Error::KubeConfig {
            context: context.into(),
            source,
        }
    }

    /// What went wrong without the system's name, for a record's
    /// `sync_error`, which names the system itself (`"flink: GET ..."`).
    /// A Kubernetes API refusal reads as its Status: `HTTP 403 Forbidden: ...`.
    pub fn detail(&self) -> String {
        let (context, source): (&str, Option<&(dyn std::error::Error + 'static)>) = match self {
            Error::Kube {
                context,
                source: kube::Error::Api(status),
            } => {
                return format!(
                    "{context}: HTTP {} {}: {}",
                    status.code, status.reason, status.message
                );
            }
            Error::Kube { context, source } => (context, Some(source)),
            Error::KubeRead { context, source } => (context, Some(source)),
            // A failed request's cause in parentheses, as records have stored it.
            Error::Flink {
                context,
                source: Some(cause),
            } => return format!("{context} ({})", chain(cause.as_ref())),
            Error::Mongo { context, source } => (context, Some(source)),
            Error::Flink { context, source } | Error::KubeConfig { context, source } => {
                (context, source.as_deref().map(|s| s as _))
            }
            other => return chain(other),
        };
        match source {
            Some(s) => format!("{context}: {}", chain(s)),
            None => context.to_string(),
        }
    }
}

/// How Lambda reports a failed invocation: the variant as `errorType`, the
/// message (which carries no secret) with its sources as `errorMessage`.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind().to_string(),
            error_message: chain(&e),
        }
    }
}

/// An error and every source under it, `outer: inner: root`: the one way the
/// crate puts a cause chain into words (answers, logs, the CLI).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Some errors repeat their source in their own message.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_leaves_the_system_to_the_record_and_keeps_the_causes() {
        let json = serde_json::from_str::<serde_json::Value>("{").expect_err("truncated");
        let e = Error::flink("GET /jobs/overview: unreadable JSON", Some(Box::new(json)));
        assert!(
            chain(&e).starts_with("Flink: GET /jobs/overview"),
            "{}",
            chain(&e)
        );
        let detail = e.detail();
        assert!(
            detail.starts_with("GET /jobs/overview: unreadable JSON (EOF"),
            "{detail}"
        );
        assert_eq!(e.kind(), "FlinkError");
    }

    #[test]
    fn a_kubernetes_refusal_reads_as_its_status() {
        let mut status = kube::core::Status::failure("jobs is forbidden", "Forbidden");
        status.code = 403;
        let e = Error::kube("listing Jobs in namespace a")(kube::Error::Api(status.boxed()));
        assert_eq!(
            e.detail(),
            "listing Jobs in namespace a: HTTP 403 Forbidden: jobs is forbidden"
        );
    }
}
