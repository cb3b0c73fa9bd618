//! The task tree of one `tracker serve` node: every task the node starts is
//! spawned into one of four stages, each a child of one root
//! [`CancellationToken`] with its own [`TaskTracker`], and the node stops them
//! in order, waiting for each before the next:
//!
//! 1. **intake**: the HTTP server (graceful: open requests finish), the
//!    demo fleet and the Redis fan-out's subscriber (it feeds this node's
//!    WebSocket viewers), so no new position enters;
//! 2. **pipeline**: the bus consumer (memory partitions or Kafka), which
//!    finishes what the bus holds;
//! 3. **background**: the order sync, the periodic learned-state save, the
//!    node's beat (Kafka: the hand-over's sign of life) and the
//!    metrics upkeep, so that nothing but the final save writes learned state
//!    after it;
//! 4. **outbound**: the e-mail deliverer (after the last event is stored).
//!
//! Between 3 and 4 `serve` makes its final save. No task is detached: a task
//! outside the tree could write after the final save. The `ingest` crate's
//! tasks take its own [`ingest::Shutdown`]; [`Stage::ingest_shutdown`] bridges
//! a stage's token to one.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One stage of the node: its tasks and the token that asks them to stop.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    name: &'static str,
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Stage {
    fn child_of(root: &CancellationToken, name: &'static str) -> Stage {
        Stage {
            name,
            token: root.child_token(),
            tasks: TaskTracker::new(),
        }
    }

    /// Runs `task` in this stage.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// This stage's tracker, for a library that spawns its own tasks (the
    /// Redis fan-out's subscriber) into the tree.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// This stage's token, for such a library's tasks to stop on.
    pub(crate) fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Completes when this stage is asked to stop.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// This stage's stop request as the `ingest` crate's [`ingest::Shutdown`].
    pub(crate) fn ingest_shutdown(&self) -> ingest::Shutdown {
        let (trigger, shutdown) = ingest::shutdown_channel();
        let stopped = self.stopped();
        self.spawn(async move {
            stopped.await;
            trigger.trigger();
        });
        shutdown
    }

    /// Asks this stage's tasks to stop and waits for all of them, at most
    /// `within`; false (and a warning) when some did not stop in time.
    pub(crate) async fn stop(&self, within: Duration) -> bool {
        self.token.cancel();
        self.tasks.close();
        let done = tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok();
        if !done {
            tracing::warn!(
                stage = self.name,
                left = self.tasks.len(),
                within_s = within.as_secs_f64(),
                "tasks did not stop in time"
            );
        }
        done
    }
}

/// The four stages of a node, under one root token (cancelling the root
/// stops every stage at once; [`Node::shut_down`] stops them in order).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    root: CancellationToken,
    pub(crate) intake: Stage,
    pub(crate) pipeline: Stage,
    pub(crate) background: Stage,
    pub(crate) outbound: Stage,
}

/// How long each stage may take to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StopBudget {
    pub(crate) intake: Duration,
    pub(crate) pipeline: Duration,
    pub(crate) background: Duration,
    pub(crate) outbound: Duration,
}

impl StopBudget {
    /// Open requests 30 s, the bus 10 s, background 10 s, e-mails 35 s (an
    /// SMTP exchange times out at 30 s).
    pub(crate) const RECOMMENDED: StopBudget = StopBudget {
        intake: Duration::from_secs(30),
        pipeline: Duration::from_secs(10),
        background: Duration::from_secs(10),
        outbound: Duration::from_secs(35),
    };
}

impl Node {
    pub(crate) fn new() -> Node {
        let root = CancellationToken::new();
        Node {
            intake: Stage::child_of(&root, "intake"),
            pipeline: Stage::child_of(&root, "pipeline"),
            background: Stage::child_of(&root, "background"),
            outbound: Stage::child_of(&root, "outbound"),
            root,
        }
    }

    /// Stops intake, pipeline and background, in that order, each waited for;
    /// then `between` (the final save), then the outbound stage. Returns
    /// whether every stage stopped within its budget.
    pub(crate) async fn shut_down<F: Future<Output = ()>>(
        &self,
        budget: StopBudget,
        between: F,
    ) -> bool {
        let mut clean = self.intake.stop(budget.intake).await;
        clean &= self.pipeline.stop(budget.pipeline).await;
        clean &= self.background.stop(budget.background).await;
        between.await;
        clean &= self.outbound.stop(budget.outbound).await;
        // Anything left (a stage that did not stop in time) is cancelled with
        // the root; the runtime drops it when `serve` returns.
        self.root.cancel();
        clean
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::*;

    /// Each stage's tasks see the stop only after the stage before has
    /// finished, and the step between background and outbound runs between.
    #[tokio::test]
    async fn stages_stop_in_order_and_every_task_is_waited_for() {
        let node = Node::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (stage, name) in [
            (&node.outbound, "outbound"),
            (&node.background, "background"),
            (&node.pipeline, "pipeline"),
            (&node.intake, "intake"),
        ] {
            let (log, stopped) = (Arc::clone(&log), stage.stopped());
            stage.spawn(async move {
                stopped.await;
                // A little work after the request: the next stage must wait.
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.lock().push(name);
            });
        }
        let between = {
            let log = Arc::clone(&log);
            async move { log.lock().push("final save") }
        };
        assert!(node.shut_down(StopBudget::RECOMMENDED, between).await);
        assert_eq!(
            *log.lock(),
            ["intake", "pipeline", "background", "final save", "outbound"]
        );
    }

    #[tokio::test]
    async fn a_stage_that_does_not_stop_in_time_is_reported() {
        let node = Node::new();
        node.pipeline.spawn(std::future::pending::<()>());
        assert!(!node.pipeline.stop(Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn the_ingest_shutdown_of_a_stage_fires_when_the_stage_stops() {
        let node = Node::new();
        let mut shutdown = node.background.ingest_shutdown();
        assert!(!shutdown.is_triggered());
        assert!(node.background.stop(Duration::from_secs(1)).await);
        shutdown.wait().await;
        assert!(shutdown.is_triggered());
    }
}
