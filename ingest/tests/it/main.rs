//! The ingest crate's integration tests in one test binary (one link instead
//! of one per file); `kafka_sigkill` stays a binary of its own (it runs
//! without the test harness and kills a copy of itself).
//! `cargo test -p ingest --test it MODULE` runs one module.

mod common;

mod formats;
mod kafka_mock;
mod kafka_poison;
mod kafka_tansu;
mod memory_bus;
mod never_panic;
mod simulate;
