//! What the long-running commands write to stdout and stderr — the log, and the
//! lines `serve` prints by contract — written so that a failed write (a full
//! disk, a closed pipe, `/dev/full`) is dropped and counted, never a panic.
//!
//! Why this matters: `println!`, `eprintln!`, and tracing-subscriber's own
//! report of a failed write (an `eprintln!`) all panic when the write fails. A
//! panic inside a position handler or the engine turns every position into an
//! error for as long as the disk stays full, and the writes that follow fail the
//! same way. A log line is worth less than the position it describes.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// Lines (log events and printed lines) that could not be written, exported on
/// `/metrics` as `tracker_log_write_failures_total`.
static WRITE_FAILURES: LazyLock<Arc<AtomicU64>> = LazyLock::new(|| Arc::new(AtomicU64::new(0)));

/// The counter of failed writes, to export.
pub(crate) fn write_failures() -> Arc<AtomicU64> {
    Arc::clone(&WRITE_FAILURES)
}

fn count_failure() {
    WRITE_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// Prints a line on stdout (the lines scripts read, such as `listening on …`);
/// a failed write is counted, not fatal.
pub(crate) fn print_line(line: &str) {
    let mut out = io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        count_failure();
    }
}

/// Prints a line on stderr (messages for the person at the terminal); a failed
/// write is counted, not fatal.
pub(crate) fn eprint_line(line: &str) {
    let mut err = io::stderr().lock();
    if writeln!(err, "{line}").is_err() {
        count_failure();
    }
}

/// The log's destination: stderr, dropping (and counting) what cannot be
/// written. It never reports an error, so the log layer has nothing to panic on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StderrOrDrop;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrOrDrop {
    type Writer = StderrOrDrop;

    fn make_writer(&'a self) -> StderrOrDrop {
        StderrOrDrop
    }
}

impl Write for StderrOrDrop {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // One event is one `write_all` of its whole line, so one failure here
        // is one lost line.
        if io::stderr().lock().write_all(buf).is_err() {
            count_failure();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}
