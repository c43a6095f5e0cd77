//! Every task the node runs, owned in one place: a [`Tasks`] handle spawns into one `TaskTracker`, and
//! `Node::shutdown` cancels them all and waits until the last has ended (bounded, naming any that do not).
//!
//! Two kinds of task:
//! - [`Tasks::spawn`]: dropped at its next await once shutdown begins (a dial, a lookup, a watch).
//! - [`Tasks::spawn_graceful`]: given the cancellation token and trusted to return soon after it fires, because it has
//!   something to close first (the LAN socket, the rendezvous task, a connection's writer).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A narrow handle on the node's tasks: spawn, watch for shutdown. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
    live: Arc<Live>,
}

/// The names of the tasks still running, for the shutdown log.
#[derive(Default)]
struct Live {
    next: AtomicU64,
    names: Mutex<HashMap<u64, &'static str>>,
}

/// Removes its task's name when the task ends, however it ends (returned, dropped, panicked).
struct NameGuard {
    live: Arc<Live>,
    key: u64,
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        self.live
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

impl Live {
    fn enter(self: &Arc<Self>, name: &'static str) -> NameGuard {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, name);
        NameGuard {
            live: self.clone(),
            key,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .copied()
            .collect();
        names.sort_unstable();
        names
    }
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks {
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            live: Arc::default(),
        }
    }

    /// Run `task` until it ends or shutdown begins, whichever is first.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.spawn_graceful(name, async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Run `task`, which watches [`Tasks::cancelled`] itself and returns soon after shutdown begins.
    pub fn spawn_graceful<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.tracker.is_closed() {
            // Shutdown is waiting for the tasks already running; a new one would not be waited for.
            tracing::debug!(task = name, "not started: the node is stopping");
            return;
        }
        let guard = self.live.enter(name);
        self.tracker.spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    /// Blocking work (disk, hashing) on tokio's blocking pool, waited for at shutdown like every task.
    pub fn spawn_blocking<F, T>(&self, name: &'static str, work: F) -> tokio::task::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.live.enter(name);
        self.tracker.spawn_blocking(move || {
            let _guard = guard;
            work()
        })
    }

    /// A token cancelled when shutdown begins (children of it end a single connection earlier).
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Resolves once shutdown begins.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Tasks still running.
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Cancel every task and wait until each has ended, at most `bound`. Returns the names of the tasks still running
    /// after it (logged): empty when the node stopped cleanly.
    pub async fn shutdown(&self, bound: Duration) -> Vec<&'static str> {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_ok()
        {
            return Vec::new();
        }
        let stragglers = self.live.names();
        tracing::warn!(
            count = self.tracker.len(),
            tasks = ?stragglers,
            "tasks still running after shutdown's wait"
        );
        stragglers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_ends_and_awaits_every_kind_of_task() {
        let tasks = Tasks::new();
        let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<&str>();
        tasks.spawn("forever", std::future::pending());
        let graceful = tasks.clone();
        let tx = ended_tx.clone();
        tasks.spawn_graceful("graceful", async move {
            graceful.cancelled().await;
            let _ = tx.send("graceful cleaned up");
        });
        let (release, wait) = std::sync::mpsc::channel::<()>();
        tasks.spawn_blocking("blocking", move || {
            let _ = wait.recv();
        });
        assert_eq!(tasks.running(), 3);
        drop(release);
        let stragglers = tasks.shutdown(Duration::from_secs(30)).await;
        assert!(stragglers.is_empty(), "{stragglers:?}");
        assert_eq!(tasks.running(), 0);
        assert_eq!(ended.recv().await, Some("graceful cleaned up"));
        // After shutdown nothing new starts.
        tasks.spawn("late", std::future::pending());
        assert_eq!(tasks.running(), 0);
        assert!(tasks.live.names().is_empty());
    }

    #[tokio::test]
    async fn a_task_that_ignores_shutdown_is_named() {
        let tasks = Tasks::new();
        tasks.spawn_graceful("stubborn", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let stragglers = tasks.shutdown(Duration::from_millis(10)).await;
        assert_eq!(stragglers, vec!["stubborn"]);
    }
}
