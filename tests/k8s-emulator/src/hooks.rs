//! Test hooks of an emulator started in process (no HTTP endpoint: only the
//! test that holds the [`crate::RunningEmulator`] reaches them):
//!
//! - every request counted by method and path
//!   ([`crate::RunningEmulator::take_requests_by_path`]), so a test can say
//!   how often a client listed one namespace;
//! - requests a test marks ([`crate::RunningEmulator::intercept`]) answered as
//!   a failing server answers them, or met by an object that another client
//!   deleted just before.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::Method;

use crate::errors::ApiError;
use crate::store::Res;

/// What the emulator does to the requests a test marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intercept {
    /// Answer every matching request with a `metav1.Status` failure of this
    /// code, worded as the real server words it (500 `InternalError`, 503
    /// `ServiceUnavailable`, 429 `TooManyRequests`, 403 `Forbidden`, ...),
    /// and change nothing.
    Fail(u16),
    /// Before the first matching request is served, delete the Job or pod
    /// its path names (a Job with the pods it owns), as another client
    /// would have just before; the request then gets the server's own
    /// answer (404 NotFound for a get, a patch or a delete).
    VanishFirst,
}

/// The hooks' state, shared by the handlers.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Requests served, by `METHOD /path` (the query left out).
    by_path: Mutex<BTreeMap<String, u64>>,
    /// Marked requests: method, path, what to do.
    marked: Mutex<Vec<(Method, String, Intercept)>>,
}

impl Hooks {
    pub(crate) fn count(&self, method: &Method, path: &str) {
        *self
            .by_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(format!("{method} {path}"))
            .or_default() += 1;
    }

    pub(crate) fn take_counts(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.by_path.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn mark(&self, method: Method, path: &str, what: Intercept) {
        let mut marked = self.marked.lock().unwrap_or_else(|e| e.into_inner());
        marked.retain(|(m, p, _)| !(*m == method && p == path));
        marked.push((method, path.to_string(), what));
    }

    /// What to do with this request, if it is marked; a `VanishFirst` mark
    /// is spent by its first request.
    pub(crate) fn take(&self, method: &Method, path: &str) -> Option<Intercept> {
        let mut marked = self.marked.lock().unwrap_or_else(|e| e.into_inner());
        let i = marked
            .iter()
            .position(|(m, p, _)| m == method && p == path)?;
        let what = marked[i].2;
        if what == Intercept::VanishFirst {
            marked.remove(i);
        }
        Some(what)
    }
}

/// The failure a `Fail(code)` mark answers with.
pub(crate) fn failure(code: u16) -> ApiError {
    let (reason, message) = match code {
        403 => (
            "Forbidden",
            "forbidden: the emulator's test hook refuses this request",
        ),
        404 => (
            "NotFound",
            "the server could not find the requested resource",
        ),
        409 => (
            "Conflict",
            "Operation cannot be fulfilled: the emulator's test hook",
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted",
        ),
        _ => (
            "InternalError",
            "Internal error occurred: injected by the emulator's test hook",
        ),
    };
    ApiError::new(code, reason, message)
}

/// The Job or pod a path names: `(resource, namespace, name)`.
pub(crate) fn named_object<'a>(segs: &[&'a str]) -> Option<(Res, &'a str, &'a str)> {
    match segs {
        ["apis", "batch", "v1", "namespaces", ns, "jobs", name, ..] => Some((Res::Jobs, ns, name)),
        ["api", "v1", "namespaces", ns, "pods", name, ..] => Some((Res::Pods, ns, name)),
        _ => None,
    }
}
