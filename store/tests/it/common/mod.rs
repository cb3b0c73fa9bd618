//! Shared setup of the store's suites: the backends a scenario runs on
//! (`store::testing`, also used by the portal's tests), the fixtures of the
//! conformance scenarios and a recorded history for the analytics ones.

#![allow(dead_code, unreachable_pub)]

pub mod fixtures;
pub mod history;
#[allow(unused_imports)]
pub use store::testing as stores;
