//! A shutdown signal shared by the long-running loops (consumers, bus partitions,
//! the simulator's publisher): cheap to clone, awaitable, and checkable without
//! waiting.

use tokio::sync::watch;

/// The sending half: call [`ShutdownTrigger::trigger`] once to stop every loop.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// The receiving half, handed to each loop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new trigger and its signal.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Signals every [`Shutdown`] of this channel.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Whether shutdown was requested.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is requested (or the trigger is dropped).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone: treat that as shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
