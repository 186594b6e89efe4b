//! What the suites, the demo and the benchmark share to reach the local
//! stack and to stand things up on it.
//!
//! - [`aws`]: the AWS SDK configuration of every test, refused unless
//!   `AWS_ENDPOINT_URL` is on the loopback range (the stack's moto).
//! - [`stack`]: the stack's settings (from `scripts/stack up`), failing
//!   loudly with the command that starts a missing service.
//! - [`scenario`]: a fresh database, an in-process Kubernetes API emulator
//!   and the product's real `Syncer` on top.
//! - [`faultproxy`], [`faultrig`]: a fault-injecting TCP proxy, and the fault
//!   suite's fleet with a known truth reached through such proxies.
//! - [`flinkfake`]: a fast, stateful stand-in for Flink's REST endpoints.
//! - [`k8saudit`]: a proxy that records what a client asks of the Kubernetes
//!   API as RBAC sees it (verb, group, resource, subresource).
//! - [`fleet`]: real Flink Python jobs submitted as the data platform does.
//! - [`lambda`], [`samlocal`]: the real function binaries under `cargo lambda
//!   watch` and under `sam local`.
//! - [`schedule`]: EventBridge schedule expressions, checked as AWS does.
//! - [`scope`]: the fields a run wrote that sync does not own (none, ever).
//! - [`emulator`]: the Kubernetes API emulator (the `k8s-emulator` crate).

pub use k8s_emulator as emulator;
pub mod aws;
pub mod faultproxy;
pub mod faultrig;
pub mod fleet;
pub mod flinkfake;
pub mod k8saudit;
pub mod lambda;
pub mod samlocal;
pub mod scenario;
pub mod schedule;
pub mod scope;
pub mod stack;
