//! Tests that must have the process and the stack to themselves, one at a
//! time (each takes [`alone`] first):
//!
//! - [`secrets`] captures log lines with a subscriber scoped to its test;
//!   events of callsites another test hits first on its own thread, at the
//!   same time, can miss such a subscriber and leave lines unchecked.
//! - [`flink_restart`] stops the stack's JobManager in the middle of a run
//!   and starts it again: no other test may use the cluster meanwhile.
//!
//! One binary for both, so the kube, MongoDB and AWS SDK dependencies are
//! linked once more, not twice.

mod flink_restart;
mod secrets;

/// Held for the whole of each test of this binary.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until no other test of this binary runs, and keeps it so.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    ALONE.lock().await
}
