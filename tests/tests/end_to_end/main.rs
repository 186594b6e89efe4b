//! End to end on the local stack: real Flink Python jobs submitted through
//! the Kubernetes API emulator in runner mode, synced by the real function
//! binaries under `cargo lambda watch` and under `sam local`.

mod e2e_lambda;
mod sam_local;
mod stack_flink;
