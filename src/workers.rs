//! Workers: one single-threaded tokio runtime per core (`--workers`), each serving the client
//! connections handed to it from accept to close, with its own pool of upstream connections.
//!
//! A request then runs start to finish on one thread: the client connection, the pipeline and
//! the pooled upstream connection it borrows are all driven by the same runtime, so no request
//! wakes another thread. On a work-stealing runtime the upstream connection's task and the
//! client's task land on different threads about half the time, and each hop between them is a
//! cross-thread wake-up (a futex and a context switch): about a fifth of the proxy's CPU under
//! load on a 2-core machine. This is the shape of pingora's no-steal runtime and of
//! thread-per-core servers generally. What is shared across workers (the session cache,
//! credentials, metrics, the access file) is behind `Arc`s and atomics, and a session created on
//! one worker serves them all.
//!
//! The accept loop (on the caller's runtime) hands each accepted connection to the worker with
//! the fewest open connections. With `--workers 0`, connections are served on the caller's
//! runtime instead, as a multi-threaded tokio runtime would.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the worker this thread is, if it is one.
pub fn current() -> Option<usize> {
    INDEX.with(Cell::get)
}

/// The number of workers `--workers` defaults to: the CPUs this process may use (which counts
/// a container's CPU quota).
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The running workers. Dropping this stops them without waiting; [`Workers::stop`] waits.
pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

struct Worker {
    handle: Handle,
    open: Arc<AtomicUsize>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    stopped: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Workers {
    /// Starts `count` worker threads (none for 0).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            workers.push(Worker::start(index)?);
        }
        Ok(Self {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// How many workers there are.
    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// Serves `stream` with `serve` on the least busy worker (or the caller's runtime without
    /// workers). The stream moves to the worker's reactor, so its readiness wakes that worker.
    pub fn serve<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(worker) = self.pick() else {
            tokio::spawn(serve(stream));
            return;
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => return tracing::debug!(%error, "could not hand a connection over"),
        };
        // Counted until the task ends, or is dropped unrun by a worker that is stopping.
        let open = Open::count(&worker.open);
        worker.handle.spawn(async move {
            let _open = open;
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(error) => tracing::debug!(%error, "could not take a connection over"),
            }
        });
    }

    /// The worker with the fewest open connections, taking turns among equals.
    fn pick(&self) -> Option<&Worker> {
        let count = self.workers.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        (0..count)
            .map(|i| &self.workers[(start + i) % count])
            .min_by_key(|worker| worker.open.load(Ordering::Relaxed))
    }

    /// Stops every worker: their runtimes drop whatever tasks are left (call this after the
    /// drain), and this returns once every thread has finished.
    pub async fn stop(&self) {
        for worker in &self.workers {
            worker.signal_stop();
        }
        for worker in &self.workers {
            let stopped = worker.stopped.lock().map(|mut s| s.take()).ok().flatten();
            if let Some(stopped) = stopped {
                let _ = stopped.await;
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.signal_stop();
        }
    }
}

impl Worker {
    fn start(index: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Log lines queue up while the worker is busy and go out before it waits.
            .on_thread_park(crate::logging::flush_thread)
            .build()?;
        let handle = runtime.handle().clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("s3x-worker-{index}"))
            .spawn(move || {
                INDEX.with(|i| i.set(Some(index)));
                crate::logging::batch_this_thread();
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                // Dropped here, on its own thread: cancels the tasks still on it.
                drop(runtime);
                crate::logging::flush_thread();
                let _ = stopped_tx.send(());
            })?;
        Ok(Self {
            handle,
            open: Arc::new(AtomicUsize::new(0)),
            stop: Mutex::new(Some(stop_tx)),
            stopped: Mutex::new(Some(stopped_rx)),
        })
    }

    fn signal_stop(&self) {
        if let Some(stop) = self.stop.lock().ok().and_then(|mut s| s.take()) {
            let _ = stop.send(());
        }
    }
}

/// One open connection on a worker, counted until it closes.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_busy_worker_and_run_there() {
        let workers = Workers::start(2).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(TcpStream::connect(addr).await.unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen_tx.clone();
            workers.serve(stream, move |mut stream| async move {
                use tokio::io::AsyncReadExt;
                let _ = seen.send((current(), std::thread::current().name().map(String::from)));
                // Held open (on this worker's reactor) until the client closes.
                let mut buf = [0u8; 1];
                let _ = stream.read(&mut buf).await;
            });
        }
        let mut on = [0usize; 2];
        for _ in 0..4 {
            let (index, name) = seen_rx.recv().await.unwrap();
            let index = index.expect("served on a worker thread");
            assert_eq!(
                name.as_deref(),
                Some(format!("s3x-worker-{index}").as_str())
            );
            on[index] += 1;
        }
        assert_eq!(on, [2, 2], "four open connections split evenly");
        assert_eq!(current(), None, "the caller is not a worker");
        drop(clients);
        workers.stop().await;
        for worker in &workers.workers {
            let late = worker.handle.spawn(async {});
            assert!(late.await.is_err(), "a stopped worker runs nothing");
        }
    }

    #[tokio::test]
    async fn without_workers_connections_run_on_the_callers_runtime() {
        let workers = Workers::start(0).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (tx, rx) = oneshot::channel();
        workers.serve(stream, move |_| async move {
            let _ = tx.send(current());
        });
        assert_eq!(rx.await.unwrap(), None);
        workers.stop().await;
    }
}
