//! The catalog's owner: one thread holds the SQLite connection and runs every database job in turn, so no async
//! worker thread ever waits on SQLite (a slow disk, a long transaction, a checkpoint). Everything else in the node
//! reaches the catalog through [`CatalogService`], a narrow handle: `run` a closure over the catalog and await its
//! answer. The jobs run one at a time, in the order sent, exactly as the mutex they replace serialised them.
//!
//! At shutdown [`CatalogService::close`] stops the thread after the jobs already queued, closes the database, and
//! waits for it: the data directory's lock is released only after. A job sent later fails with
//! [`CatalogError::Closed`].

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use kolokol_store::{Catalog, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Jobs waiting for the catalog thread (senders wait for room beyond it).
const QUEUE: usize = 256;

type Job = Box<dyn FnOnce(&mut Catalog) + Send>;

/// `job` as the catalog thread runs it, and where its answer arrives.
fn packaged<T, F>(job: F) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
where
    F: FnOnce(&mut Catalog) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let (answer, answered) = oneshot::channel();
    let job: Job = Box::new(move |catalog| {
        let _ = answer.send(job(catalog));
    });
    (job, answered)
}

enum Command {
    Run(Job),
    Stop,
}

/// A catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("the catalog is closed: the node is stopping")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The handle on the catalog thread.
pub(crate) struct CatalogService {
    commands: mpsc::Sender<Command>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl CatalogService {
    /// Move `catalog` to its own thread.
    pub fn start(catalog: Catalog) -> std::io::Result<CatalogService> {
        let (commands, receiver) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("kolokol-catalog".into())
            .spawn(move || serve(catalog, receiver))?;
        Ok(CatalogService {
            commands,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Run `job` on the catalog thread and return its answer.
    pub async fn run<T, F>(&self, job: F) -> Result<T, CatalogError>
    where
        F: FnOnce(&mut Catalog) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (job, answered) = packaged(job);
        self.commands
            .send(Command::Run(job))
            .await
            .map_err(|_| CatalogError::Closed)?;
        Ok(answered.await.map_err(|_| CatalogError::Closed)??)
    }

    /// [`CatalogService::run`] for code already on a blocking thread (a bundle import). Never call it from async
    /// code: it blocks its thread until the job is done.
    pub fn run_blocking<T, F>(&self, job: F) -> Result<T, CatalogError>
    where
        F: FnOnce(&mut Catalog) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (job, answered) = packaged(job);
        self.commands
            .blocking_send(Command::Run(job))
            .map_err(|_| CatalogError::Closed)?;
        Ok(answered
            .blocking_recv()
            .map_err(|_| CatalogError::Closed)??)
    }

    /// Finish the queued jobs, close the database and wait for the thread to end.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Stop).await;
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::warn!("the catalog thread did not end cleanly"),
            }
        }
    }
}

fn serve(mut catalog: Catalog, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.blocking_recv() {
        match command {
            Command::Run(job) => {
                // A panicking job must not take the catalog away from the rest of the node; its caller sees `Closed`
                // (the answer was dropped) and an open transaction was rolled back as it unwound.
                if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut catalog))).is_err() {
                    tracing::error!("a catalog job panicked");
                }
            }
            Command::Stop => break,
        }
    }
    // Jobs still queued are dropped with the receiver: their callers get `Closed`.
    drop(commands);
    drop(catalog);
    tracing::debug!("catalog closed");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_catalog_thread_and_fail_cleanly_after_close() {
        let service = CatalogService::start(Catalog::open_in_memory("test").unwrap()).unwrap();
        let thread = service
            .run(|_| Ok(std::thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("kolokol-catalog"));
        service
            .run(|catalog| catalog.set_setting("k", "v"))
            .await
            .unwrap();
        let value = service.run(|catalog| catalog.get_setting("k")).await;
        assert_eq!(value.unwrap().as_deref(), Some("v"));
        let panicked = service.run(|_| -> Result<(), StoreError> { panic!("a bug") });
        assert!(matches!(panicked.await, Err(CatalogError::Closed)));
        // The thread survived the panic.
        assert!(service.run(|catalog| catalog.count_records()).await.is_ok());

        service.close().await;
        let late = service.run(|catalog| catalog.count_records()).await;
        assert!(matches!(late, Err(CatalogError::Closed)), "{late:?}");
    }
}
