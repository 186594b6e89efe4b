//! Test bench of flink-job-sync: the Kubernetes API emulator used by the local
//! stack, and the helpers the integration suites share to reach that stack.

pub mod emulator;
pub mod faultproxy;
pub mod faultrig;
pub mod fleet;
pub mod flinkfake;
pub mod lambda;
pub mod samlocal;
pub mod scenario;
pub mod schedule;
pub mod stack;
