//! The store writer: one thread that owns every write to the feedback store and commits in groups.
//!
//! Handlers queue a job (verdicts to audit, actions, restores) and await its acknowledgement. The thread takes
//! everything queued, applies it as one atomic sled batch and flushes once: under load many requests share one
//! fsync (a group commit) instead of paying one each, and no request waits for a timer. A job is acknowledged only
//! after the commit that holds it; a failed commit fails every job in it, and nothing of it was acknowledged.
//!
//! The queue is bounded by a semaphore counted in records (`write_queue_records`): when the disk falls behind,
//! scoring and feedback calls wait for room instead of buffering without bound.
//!
//! Durability per job: feedback writes are always flushed before they are acknowledged. Verdicts are too with
//! `audit_durability = "fsync"`; with `"buffered"` they are acknowledged once applied, and the thread flushes at
//! most `audit_flush_interval_ms` later (or sooner, with the next durable group).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reprieve_store::{Ack, ActionEvent, EncodedVerdict, RestoreEvent, Store, StoreError, WriteRequest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::telemetry::Telemetry;

/// Most records one group commit takes: a bound on how long one commit holds the store.
const MAX_GROUP_RECORDS: usize = 20_000;

/// Why a write was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The store refused the request as a whole; nothing of it was written.
    #[error("refused by the feedback store: {0}")]
    Invalid(String),
    /// The commit failed (I/O): nothing of the request was acknowledged.
    #[error("the feedback store could not write: {0}")]
    Failed(String),
    /// The writer has stopped (the server is shutting down).
    #[error("the feedback store is shut down")]
    Closed,
}

/// What a job writes.
#[derive(Debug)]
pub enum Work {
    Verdicts(Vec<EncodedVerdict>),
    Actions(Vec<ActionEvent>),
    Restores(Vec<RestoreEvent>),
}

impl Work {
    fn len(&self) -> usize {
        match self {
            Work::Verdicts(v) => v.len(),
            Work::Actions(a) => a.len(),
            Work::Restores(r) => r.len(),
        }
    }

    fn request(&self) -> WriteRequest<'_> {
        match self {
            Work::Verdicts(v) => WriteRequest::Verdicts(v),
            Work::Actions(a) => WriteRequest::Actions(a),
            Work::Restores(r) => WriteRequest::Restores(r),
        }
    }
}

struct Job {
    work: Work,
    durable: bool,
    reply: oneshot::Sender<Result<Ack, WriteError>>,
    /// Room in the queue, given back when the job is answered.
    _permit: OwnedSemaphorePermit,
}

enum Message {
    Job(Job),
    /// Flush everything applied so far, then answer.
    Flush(oneshot::Sender<Result<(), WriteError>>),
}

/// A queued job's acknowledgement, to await.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Ack, WriteError>>);

impl Pending {
    /// Waits for the commit that holds the job.
    pub async fn wait(self) -> Result<Ack, WriteError> {
        self.0.await.unwrap_or(Err(WriteError::Closed))
    }
}

/// The handle to the writer thread.
#[derive(Debug)]
pub struct StoreWriter {
    queue: Mutex<Option<mpsc::Sender<Message>>>,
    room: Arc<Semaphore>,
    capacity: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// How the thread flushes non-durable groups.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    pub flush_interval: Duration,
    pub queue_records: usize,
}

impl StoreWriter {
    /// Starts the writer thread for `store`.
    pub fn start(store: Arc<Store>, options: WriterOptions, telemetry: Arc<Telemetry>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("reprieve-store-writer".into())
            .spawn(move || run(&store, &rx, options.flush_interval, &telemetry))?;
        let capacity = options
            .queue_records
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `work` once there is room for it (waiting is the backpressure) and returns its acknowledgement to
    /// await. Dropping the returned value does not cancel the write.
    pub async fn submit(&self, work: Work, durable: bool) -> Result<Pending, WriteError> {
        // A job larger than the whole queue takes all of it rather than waiting forever.
        let n = work.len().clamp(1, self.capacity) as u32;
        let permit = self
            .room
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| WriteError::Closed)?;
        let (reply, rx) = oneshot::channel();
        let job = Job {
            work,
            durable,
            reply,
            _permit: permit,
        };
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue
            .as_ref()
            .ok_or(WriteError::Closed)?
            .send(Message::Job(job))
            .map_err(|_| WriteError::Closed)?;
        Ok(Pending(rx))
    }

    /// Makes everything acknowledged so far durable.
    pub async fn flush(&self) -> Result<(), WriteError> {
        let (tx, rx) = oneshot::channel();
        {
            let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue
                .as_ref()
                .ok_or(WriteError::Closed)?
                .send(Message::Flush(tx))
                .map_err(|_| WriteError::Closed)?;
        }
        rx.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Stops taking jobs, lets the thread commit and flush what is queued, and waits for it to end.
    pub async fn close(&self) {
        self.room.close();
        drop(self.queue.lock().unwrap_or_else(PoisonError::into_inner).take());
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the store writer thread ended abnormally");
            }
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Without `close`, the thread still drains and flushes what is queued once the queue is gone.
        self.room.close();
        drop(self.queue.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

fn run(store: &Store, rx: &mpsc::Receiver<Message>, flush_interval: Duration, telemetry: &Telemetry) {
    // When applied but unflushed writes must reach the disk.
    let mut flush_by: Option<Instant> = None;
    loop {
        let first = match flush_by {
            Some(by) => match rx.recv_timeout(by.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    if flush(store, telemetry).is_ok() {
                        flush_by = None;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let mut jobs = Vec::new();
        let mut flushes = Vec::new();
        let mut records = 0;
        let mut take = |m: Message, records: &mut usize| match m {
            Message::Job(job) => {
                *records += job.work.len();
                jobs.push(job);
            }
            Message::Flush(reply) => flushes.push(reply),
        };
        take(first, &mut records);
        while records < MAX_GROUP_RECORDS {
            match rx.try_recv() {
                Ok(m) => take(m, &mut records),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            let durable = jobs.iter().any(|j| j.durable);
            commit(store, jobs, durable, telemetry);
            if durable {
                flush_by = None;
            } else {
                flush_by.get_or_insert_with(|| Instant::now() + flush_interval);
            }
        }
        if !flushes.is_empty() {
            let result = flush(store, telemetry).map_err(|e| WriteError::Failed(e.to_string()));
            if result.is_ok() {
                flush_by = None;
            }
            for reply in flushes {
                let _ = reply.send(result.clone());
            }
        }
    }
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "the final flush of the feedback store failed");
    }
}

fn flush(store: &Store, telemetry: &Telemetry) -> Result<(), StoreError> {
    let started = Instant::now();
    let result = store.flush();
    telemetry.record_store_commit(true, 0, started.elapsed());
    if let Err(e) = &result {
        tracing::error!(error = %e, "flushing the feedback store failed");
    }
    result
}

fn commit(store: &Store, jobs: Vec<Job>, durable: bool, telemetry: &Telemetry) {
    let requests: Vec<WriteRequest<'_>> = jobs.iter().map(|j| j.work.request()).collect();
    let records = requests.iter().map(WriteRequest::len).sum();
    let started = Instant::now();
    let result = store.write_group(&requests, durable);
    telemetry.record_store_commit(durable, records, started.elapsed());
    drop(requests);
    match result {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.reply.send(answer.map_err(|e| match e {
                    StoreError::Invalid(m) => WriteError::Invalid(m),
                    other => WriteError::Failed(other.to_string()),
                }));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, jobs = jobs.len(), records, "a group commit to the feedback store failed");
            let e = WriteError::Failed(e.to_string());
            for job in jobs {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reprieve_store::{ActionKind, StoreConfig};

    fn action(id: &str) -> ActionEvent {
        ActionEvent {
            event_id: id.into(),
            verdict_id: "v".into(),
            tenant: "t".into(),
            key: "img/a".into(),
            kind: ActionKind::SoftDeleted,
            at: 10,
        }
    }

    #[tokio::test]
    async fn concurrent_jobs_are_answered_each_with_its_own_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).expect("open"));
        let options = WriterOptions {
            flush_interval: Duration::from_millis(10),
            queue_records: 3,
        };
        let writer =
            Arc::new(StoreWriter::start(store.clone(), options, Arc::new(Telemetry::disabled())).expect("start"));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                // Every job repeats one shared id: exactly one of them may take it.
                let work = Work::Actions(vec![action(&format!("a{i}")), action("shared")]);
                writer.submit(work, true).await?.wait().await
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            let ack = t.await.expect("task").expect("acknowledged");
            assert_eq!(ack.accepted + ack.duplicates, 2);
            accepted += ack.accepted;
        }
        assert_eq!(accepted, 21, "20 own ids and the shared one once");
        // Invalid requests are refused alone.
        let refused = writer
            .submit(Work::Actions(vec![action("")]), true)
            .await
            .expect("queued")
            .wait()
            .await;
        assert!(matches!(refused, Err(WriteError::Invalid(_))), "{refused:?}");
        writer.flush().await.expect("flush");
        writer.close().await;
        let late = writer.submit(Work::Actions(vec![action("late")]), true).await;
        assert!(matches!(late, Err(WriteError::Closed)), "{late:?}");
        assert_eq!(store.record_actions(&[action("a3")]).expect("direct").duplicates, 1);
    }
}
