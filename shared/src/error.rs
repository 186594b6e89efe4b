//! The crate's one error type. Sources are kept; messages never carry secrets
//! (a MongoDB URI or a token is never formatted into one).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {var} {reason}")]
    Config { var: String, reason: String },
    #[error("MongoDB: {context}")]
    Mongo {
        context: String,
        #[source]
        source: mongodb::error::Error,
    },
    #[error("Kubernetes: {context}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("Kubernetes configuration: {0}")]
    KubeConfig(String),
    #[error("Flink: {0}")]
    Flink(String),
    #[error("bad input: {0}")]
    Input(String),
}

impl Error {
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
            Error::Kube { .. } | Error::KubeConfig(_) => "KubernetesError",
            Error::Flink(_) => "FlinkError",
            Error::Input(_) => "InputError",
        }
    }

    pub fn mongo(context: impl Into<String>) -> impl FnOnce(mongodb::error::Error) -> Self {
        let context = context.into();
        move |source| Error::Mongo { context, source }
    }

    pub fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Error::Kube { context, source }
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
