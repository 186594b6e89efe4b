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
        let error_type = match &e {
            Error::Config { .. } => "ConfigError",
            Error::Mongo { .. } => "MongoError",
            Error::Kube { .. } | Error::KubeConfig(_) => "KubernetesError",
            Error::Flink(_) => "FlinkError",
            Error::Input(_) => "InputError",
        };
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: message,
        }
    }
}
