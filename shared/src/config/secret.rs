//! Secrets: a value that never reaches a log line ([`Secret`]), where one
//! comes from before cold start has read it ([`SecretSource`]), and how a
//! configuration as read becomes one that holds its secrets ([`Resolve`]).

use crate::error::Error;

/// A value that must never reach a log line: `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must not be shown.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a secret comes from, as the environment says: the settings hold
/// these until [`Resolve`] replaces each by the [`Secret`] itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value itself, given in the environment (local runs, tests).
    Given(Secret),
    /// A Secrets Manager secret, read at cold start.
    SecretsManager {
        /// The variable that names it (`MONGODB_URI_SECRET_ARN`), for errors.
        var: &'static str,
        /// The secret's ARN.
        arn: String,
    },
}

impl SecretSource {
    /// The variable and ARN of a Secrets Manager secret; `None` for a given value.
    pub fn secrets_manager(&self) -> Option<(&'static str, &str)> {
        match self {
            SecretSource::Given(_) => None,
            SecretSource::SecretsManager { var, arn } => Some((var, arn)),
        }
    }

    /// The value given in the environment; a Secrets Manager secret is an
    /// error naming its variable (for a process that reads none).
    pub fn given(self) -> Result<Secret, Error> {
        match self {
            SecretSource::Given(secret) => Ok(secret),
            SecretSource::SecretsManager { var, .. } => Err(Error::config(
                var,
                "names a Secrets Manager secret, and this process reads none",
            )),
        }
    }
}

/// Reads a secret from its source.
pub type ReadSecret<'a> = &'a mut dyn FnMut(SecretSource) -> Result<Secret, Error>;

/// A configuration as read from the environment, its secrets still
/// [`SecretSource`]s; resolving it gives the configuration the clients
/// take, which holds the secrets themselves, so no unresolved secret can
/// reach a client. [`crate::adapters::aws::resolve_secrets`] reads the
/// Secrets Manager ones.
pub trait Resolve: Sized {
    /// The same settings, holding their secrets.
    type Resolved;

    /// Where each of its secrets comes from.
    fn sources(&self) -> Vec<&SecretSource>;

    /// Replaces each source by what `read` makes of it, and checks what
    /// the secret must be (a MongoDB URI); an error names the variable.
    fn resolve_with(self, read: ReadSecret<'_>) -> Result<Self::Resolved, Error>;

    /// Resolves a configuration whose secrets are all given as values; a
    /// Secrets Manager secret is an error naming its variable.
    fn resolve_given(self) -> Result<Self::Resolved, Error> {
        self.resolve_with(&mut SecretSource::given)
    }
}
