//! Where the daemon's work runs.
//!
//! Each HTTP connection is served on a thread of its own, with a single-threaded tokio runtime
//! that drives only that connection ([`crate::listen::serve`] says why). Its plugin calls run
//! right there: the thread has nothing else to do meanwhile ([`on_connection_thread`]).
//!
//! Work that must outlive the request, or run beside it, goes to the daemon's main runtime:
//! tasks, idempotent runs, migrations, recovery, readiness checks with a timeout. A plain
//! `tokio::spawn` on a connection thread would put it on the connection's runtime, which is
//! dropped when the connection closes (its tasks cancelled, its blocking calls waited for by the
//! closing thread), so the daemon spawns only through [`spawn`] and [`spawn_blocking`]. On a
//! thread of the main runtime they are tokio's own.

use std::{cell::RefCell, future::Future};

use tokio::{runtime::Handle, task::JoinHandle};

thread_local! {
    /// The main runtime, on a connection thread (`None` elsewhere).
    static MAIN: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Marks the calling thread as a connection thread of the daemon whose main runtime is `main`.
pub(crate) fn enter_connection_thread(main: Handle) {
    MAIN.with(|m| *m.borrow_mut() = Some(main));
}

/// Whether the calling thread serves one connection (so a blocking call may run on it).
pub fn on_connection_thread() -> bool {
    MAIN.with(|m| m.borrow().is_some())
}

/// The main runtime: the one this connection thread belongs to, else the current one.
fn main() -> Handle {
    MAIN.with(|m| m.borrow().clone()).unwrap_or_else(Handle::current)
}

/// `tokio::spawn` on the main runtime.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    main().spawn(fut)
}

/// `tokio::task::spawn_blocking` on the main runtime's blocking pool.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    main().spawn_blocking(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn work_spawned_on_a_connection_thread_outlives_its_runtime() {
        let main = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let handle = main.handle().clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            enter_connection_thread(handle);
            assert!(on_connection_thread());
            let conn = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            conn.block_on(async move {
                spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    tx.send("task").unwrap();
                });
            });
            // The connection's runtime goes; the task, on the main runtime, must not.
            drop(conn);
        })
        .join()
        .unwrap();
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(), "task");
        assert!(!on_connection_thread());
    }
}
