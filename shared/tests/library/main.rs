//! The library's own tests, in one binary: the rules row by row without
//! I/O, and the shape of the source tree.

mod builder;
mod health_rules;
mod layers;
mod plan_rules;
