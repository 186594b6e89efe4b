//! The Kubernetes API emulator's suites, in one test binary:
//!
//! - [`hooks`]: the in-process test hooks (requests by path, intercepted
//!   requests);
//! - [`kube`]: driven by kube-rs as flink-job-sync drives a real cluster
//!   (runner mode off);
//! - [`kubectl`]: driven by the real kubectl (`/usr/bin/kubectl`, installed by
//!   `scripts/install`);
//! - [`runner`]: runner mode, the emulator as Job controller and kubelet
//!   running shell commands as local processes.

mod hooks;
mod kube;
mod kubectl;
mod runner;
