//! Fixed pools of threads: the workers for the CPU work (libxml2, xmlsec), and the journal
//! threads that run a pipeline's steps and wait on the journal, handing the CPU work to a worker.
//!
//! libxml2 and xmlsec objects are not `Send`: each worker builds its own state (validator,
//! signer, verifier) once, on its own thread, and keeps it; only jobs (closures over bytes) and
//! their results cross threads. The queue is bounded, so a burst waits instead of growing memory.

use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// A job; it returns true when it panicked, so that its worker builds its state anew (a panic
/// may have left the C libraries' state half changed).
type Job<S> = Box<dyn FnOnce(&mut S) -> bool + Send>;

/// Why a job gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool is gone (its workers stopped).
    #[error("the worker pool has stopped")]
    Closed,
    /// The job panicked: a bug, never the input's fault alone. Its worker was replaced.
    #[error("the job panicked: {0}")]
    Panicked(String),
}

/// The text of a panic's payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs `f` on `state`, catching a panic as [`PoolError::Panicked`].
fn guarded<S, R>(f: impl FnOnce(&mut S) -> R, state: &mut S) -> Result<R, PoolError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(state)))
        .map_err(|payload| PoolError::Panicked(panic_text(&*payload)))
}

/// A fixed set of threads, each owning a state `S` built on that thread.
pub struct Pool<S> {
    jobs: async_channel::Sender<Job<S>>,
    threads: Vec<JoinHandle<()>>,
    done: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<S> std::fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Pool<S> {
    /// Starts `threads` workers named `name-N`, each building its state with `make`. Fails with
    /// the first worker's error if any state cannot be built.
    pub fn start<E, F>(threads: usize, name: &str, make: F) -> Result<Pool<S>, E>
    where
        E: Send + 'static,
        F: Fn() -> Result<S, E> + Send + Sync + 'static,
    {
        let threads = threads.max(1);
        let (jobs, queue) = async_channel::bounded::<Job<S>>(threads * 64);
        let make = std::sync::Arc::new(make);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), E>>();
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let queue = queue.clone();
            let make = make.clone();
            let ready = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    let mut state = match make() {
                        Ok(state) => {
                            let _ = ready.send(Ok(()));
                            state
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    drop(ready);
                    while let Ok(job) = queue.recv_blocking() {
                        if job(&mut state) {
                            // The state may be half changed: replace it, as a new worker would.
                            match make() {
                                Ok(fresh) => {
                                    state = fresh;
                                    tracing::error!("A job panicked; its worker state was built anew.");
                                }
                                Err(_) => {
                                    tracing::error!("A job panicked and its worker state cannot be built again; the worker stops.");
                                    return;
                                }
                            }
                        }
                    }
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Running out of threads at start-up is not recoverable for a daemon.
                    tracing::error!(error = %e, "Cannot start a worker thread.");
                }
            }
        }
        drop(ready_tx);
        let pool = Pool {
            jobs,
            threads: handles,
            done,
        };
        for _ in 0..pool.threads.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        Ok(pool)
    }

    /// Runs `f` on a worker with its state and returns the result; waits for room in the queue.
    pub async fn run<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = self.job(f, move |result| {
            let _ = tx.send(result);
        });
        self.jobs.send(job).await.map_err(|_| PoolError::Closed)?;
        rx.await.map_err(|_| PoolError::Closed)?
    }

    /// Runs `f` on a worker and waits for its result, blocking this thread: for threads that
    /// do not drive async tasks (the journal threads), never for a runtime's own threads.
    pub fn run_blocking<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job = self.job(f, move |result| {
            let _ = tx.send(result);
        });
        self.jobs
            .send_blocking(job)
            .map_err(|_| PoolError::Closed)?;
        rx.recv().map_err(|_| PoolError::Closed)?
    }

    /// The job that runs `f` on a worker's state, counts it done and hands its result (or its
    /// panic) to `send`.
    fn job<R, F>(&self, f: F, send: impl FnOnce(Result<R, PoolError>) + Send + 'static) -> Job<S>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        let done = self.done.clone();
        Box::new(move |state| {
            let result = guarded(f, state);
            let panicked = result.is_err();
            // Counted before the result is sent, so a caller that has it sees the count.
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            send(result);
            panicked
        })
    }

    /// Number of worker threads.
    pub fn size(&self) -> usize {
        self.threads.len()
    }

    /// Jobs the workers have finished since the pool started.
    pub fn jobs_done(&self) -> u64 {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops taking jobs and waits for the workers to finish the queued ones.
    pub fn shutdown(self) {
        self.jobs.close();
        for handle in self.threads {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[tokio::test]
    async fn jobs_run_on_workers_with_non_send_state() {
        // Rc is not Send: the state must be built and used on the worker thread only.
        let pool =
            Pool::start(2, "test", || Ok::<_, String>(Rc::new(RefCell::new(0u32)))).expect("start");
        assert_eq!(pool.size(), 2);
        let mut total = 0;
        for i in 0..100u32 {
            total += pool
                .run(move |s| {
                    *s.borrow_mut() += 1;
                    i
                })
                .await
                .expect("run");
        }
        assert_eq!(total, 4950);
        let names = pool
            .run(|_| std::thread::current().name().map(str::to_owned))
            .await
            .expect("run");
        assert!(names.is_some_and(|n| n.starts_with("test-")));
        pool.shutdown();
    }

    #[test]
    fn other_threads_hand_jobs_to_the_workers_and_wait() {
        let pool =
            Pool::start(1, "cpu", || Ok::<_, String>(Rc::new(RefCell::new(0u32)))).expect("start");
        let pool = std::sync::Arc::new(pool);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let pool = pool.clone();
                scope.spawn(move || {
                    for _ in 0..25 {
                        let on = pool
                            .run_blocking(|s| {
                                *s.borrow_mut() += 1;
                                std::thread::current().name().map(str::to_owned)
                            })
                            .expect("run");
                        assert_eq!(on.as_deref(), Some("cpu-0"));
                    }
                });
            }
        });
        let total = pool.run_blocking(|s| *s.borrow()).expect("run");
        assert_eq!(total, 100);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_with_its_text_and_its_worker_is_rebuilt() {
        let built = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = built.clone();
        let pool = Pool::start(1, "panicky", move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, String>(Rc::new(RefCell::new(0u32)))
        })
        .expect("start");
        pool.run(|s| *s.borrow_mut() = 41).await.expect("run");
        let panicked = pool
            .run(|_| -> u32 { panic!("injected fault in a worker job") })
            .await;
        assert_eq!(
            panicked,
            Err(PoolError::Panicked("injected fault in a worker job".into()))
        );
        // The worker goes on, with its state built anew (the old one may be half changed).
        assert_eq!(pool.run(|s| *s.borrow()).await, Ok(0));
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 2);
        let blocking = std::thread::scope(|scope| {
            scope
                .spawn(|| pool.run_blocking(|_| -> u32 { panic!("{}", String::from("again")) }))
                .join()
                .expect("the calling thread does not panic")
        });
        assert_eq!(blocking, Err(PoolError::Panicked("again".into())));
        assert_eq!(pool.run_blocking(|s| *s.borrow() + 1), Ok(1));
        pool.shutdown();
    }

    #[tokio::test]
    async fn a_failing_state_fails_the_start() {
        let result = Pool::<u8>::start(2, "bad", || Err::<u8, _>("no schemas".to_owned()));
        assert_eq!(result.err().as_deref(), Some("no schemas"));
    }
}
