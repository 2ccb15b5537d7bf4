//! The host's side of a dispatcher: submitting items, completions, stats, shutdown.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, TryAcquireError, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::config::OrderingKey;
use super::retry::GiveUp;
use super::sink::FailureKind;
use super::sink::{EncodeError, Encoded, Sink};
use super::stats::Stats;
use super::worker::{Meta, Pending, Shared};
use crate::dead_letter::{DeadLetter, DeadLetterReason};

/// How an item's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The server accepted the item. Ack the source now.
    Delivered {
        /// Requests it took (1 when the first one succeeded).
        attempts: u32,
    },
    /// The item was given up and handed to the dead-letter sink.
    DeadLettered {
        /// Why.
        reason: DeadLetterReason,
        /// Requests made for it.
        attempts: u32,
        /// Whether the dead-letter sink kept it. `false` means the item is lost: do not ack
        /// the source if it can redeliver.
        recorded: bool,
    },
    /// The dispatcher stopped retrying a failure that may pass (an outage or throttling that
    /// outlasted the retry policy, an attempt that may have been sent to a sink whose server
    /// does not de-duplicate). Nothing was recorded: the caller must not ack its source, so
    /// the source redelivers it.
    RetryLater {
        /// Why the dispatcher stopped.
        stopped: GiveUp,
        /// The kind of the last failure.
        last_kind: FailureKind,
        /// The last failure, as its `Display` reads (no customer data).
        last_error: String,
        /// Requests made for it.
        attempts: u32,
    },
}

impl Delivery {
    /// Whether the server accepted the item.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered { .. })
    }

    /// Whether the caller must have its source redeliver the item ([`Delivery::RetryLater`],
    /// or a dead letter the sink failed to keep).
    pub fn must_retry(&self) -> bool {
        matches!(
            self,
            Delivery::RetryLater { .. }
                | Delivery::DeadLettered {
                    recorded: false,
                    ..
                }
        )
    }
}

/// The dispatcher dropped an item without resolving it (its worker stopped or was dropped).
/// The item was **not** delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the dispatcher dropped the item without delivering it")]
pub struct Dropped;

/// Resolves when the item is delivered or dead-lettered.
///
/// Only a server acceptance yields [`Delivery::Delivered`]. Dropping a `Completion` does not
/// cancel the delivery.
#[must_use = "a completion tells whether the item was delivered; ack the source only then"]
pub struct Completion {
    rx: oneshot::Receiver<Delivery>,
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").finish_non_exhaustive()
    }
}

impl Future for Completion {
    type Output = Result<Delivery, Dropped>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map_err(|_| Dropped)
    }
}

/// An item was not accepted. Every variant hands the item back.
///
/// `Display` and `Debug` never show the item (it holds customer data).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError<T> {
    /// The queue is full (`try_submit` only; `submit` waits).
    #[error("the dispatcher queue is full")]
    QueueFull(T),
    /// The dispatcher is shutting down or its worker stopped.
    #[error("the dispatcher is closed")]
    Closed(T),
    /// The item alone is larger than any request may be.
    #[error("the item is {bytes} bytes encoded; the sink accepts at most {limit}")]
    TooLarge {
        /// The item.
        item: T,
        /// Its encoded size.
        bytes: usize,
        /// The largest size the sink accepts.
        limit: usize,
    },
    /// The sink could not encode the item.
    #[error("the item could not be encoded")]
    Encode {
        /// The item.
        item: T,
        /// Why.
        #[source]
        source: EncodeError,
    },
}

impl<T> SubmitError<T> {
    /// The item, handed back.
    pub fn into_item(self) -> T {
        match self {
            SubmitError::QueueFull(item)
            | SubmitError::Closed(item)
            | SubmitError::TooLarge { item, .. }
            | SubmitError::Encode { item, .. } => item,
        }
    }
}

impl<T> fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::QueueFull(_) => f.write_str("QueueFull(..)"),
            SubmitError::Closed(_) => f.write_str("Closed(..)"),
            SubmitError::TooLarge { bytes, limit, .. } => f
                .debug_struct("TooLarge")
                .field("bytes", bytes)
                .field("limit", limit)
                .finish_non_exhaustive(),
            SubmitError::Encode { source, .. } => f
                .debug_struct("Encode")
                .field("source", source)
                .finish_non_exhaustive(),
        }
    }
}

/// A dead letter could not be submitted again.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ResubmitError<T> {
    /// The entry was written by another sink.
    #[error("dead letter {index} belongs to sink {found:?}, not {expected:?}")]
    WrongSink {
        /// The entry's position in the list.
        index: usize,
        /// The entry's sink.
        found: String,
        /// This dispatcher's sink.
        expected: &'static str,
    },
    /// The entry's item is not an item of this sink.
    #[error("dead letter {index}: the item does not decode as this sink's item type")]
    Decode {
        /// The entry's position in the list.
        index: usize,
        /// Why (serde's message names the JSON path).
        #[source]
        source: serde_json::Error,
    },
    /// Submitting the decoded item failed.
    #[error("dead letter {index} could not be submitted")]
    Submit {
        /// The entry's position in the list.
        index: usize,
        /// Why (the item is inside).
        #[source]
        error: SubmitError<T>,
    },
}

impl<T> fmt::Debug for ResubmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResubmitError::WrongSink {
                index,
                found,
                expected,
            } => f
                .debug_struct("WrongSink")
                .field("index", index)
                .field("found", found)
                .field("expected", expected)
                .finish(),
            ResubmitError::Decode { index, source } => f
                .debug_struct("Decode")
                .field("index", index)
                .field("source", source)
                .finish(),
            ResubmitError::Submit { index, error } => f
                .debug_struct("Submit")
                .field("index", index)
                .field("error", error)
                .finish(),
        }
    }
}

/// Submits items to a dispatcher. Cheap to clone; every clone feeds the same worker.
///
/// Dropping every handle, or calling [`shutdown`](Self::shutdown), drains the dispatcher: it
/// stops accepting, sends what it holds without waiting for linger, and its worker completes
/// once every item is resolved.
pub struct DispatcherHandle<S: Sink> {
    pub(crate) sink: Arc<S>,
    pub(crate) tx: mpsc::UnboundedSender<Pending<S>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) done: watch::Receiver<bool>,
}

impl<S: Sink> Clone for DispatcherHandle<S> {
    fn clone(&self) -> Self {
        Self {
            sink: Arc::clone(&self.sink),
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            done: self.done.clone(),
        }
    }
}

impl<S: Sink> fmt::Debug for DispatcherHandle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherHandle")
            .field("sink", &self.sink.name())
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

struct Prepared<S: Sink> {
    entry: Encoded<S::Item>,
    partition: S::Partition,
}

impl<S: Sink> DispatcherHandle<S> {
    /// Submits an item, waiting while the queue is full. The returned [`Completion`]
    /// resolves once the item is delivered or dead-lettered.
    ///
    /// Items with the same `ordering_key` are delivered in submit order, one request at a
    /// time. The item is encoded (and its size checked) here, once.
    pub async fn submit(
        &self,
        item: S::Item,
        ordering_key: Option<OrderingKey>,
    ) -> Result<Completion, SubmitError<S::Item>> {
        let prepared = self.prepare(item)?;
        let permit = match Arc::clone(&self.shared.queue).acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return Err(SubmitError::Closed(prepared.entry.item)),
        };
        self.enqueue(prepared, permit, ordering_key)
    }

    /// Submits an item if the queue has room now; fails with [`SubmitError::QueueFull`]
    /// otherwise.
    pub fn try_submit(
        &self,
        item: S::Item,
        ordering_key: Option<OrderingKey>,
    ) -> Result<Completion, SubmitError<S::Item>> {
        let prepared = self.prepare(item)?;
        let permit = match Arc::clone(&self.shared.queue).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => {
                return Err(SubmitError::QueueFull(prepared.entry.item));
            }
            Err(TryAcquireError::Closed) => return Err(SubmitError::Closed(prepared.entry.item)),
        };
        self.enqueue(prepared, permit, ordering_key)
    }

    /// Submits dead letters again (after the cause was fixed), in order, keeping their
    /// ordering keys. Returns one result per entry, in the same order.
    pub async fn resubmit(
        &self,
        entries: Vec<DeadLetter>,
    ) -> Vec<Result<Completion, ResubmitError<S::Item>>>
    where
        S::Item: DeserializeOwned,
    {
        let expected = self.sink.name();
        let mut out = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            if entry.sink != expected {
                out.push(Err(ResubmitError::WrongSink {
                    index,
                    found: entry.sink,
                    expected,
                }));
                continue;
            }
            let item = match serde_json::from_value::<S::Item>(entry.item) {
                Ok(item) => item,
                Err(source) => {
                    out.push(Err(ResubmitError::Decode { index, source }));
                    continue;
                }
            };
            let key = entry.ordering_key.map(OrderingKey::from_raw);
            out.push(
                self.submit(item, key)
                    .await
                    .map_err(|error| ResubmitError::Submit { index, error }),
            );
        }
        out
    }

    /// A snapshot of the dispatcher's counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot(self.shared.outstanding())
    }

    /// The name of the dispatcher's sink ([`Sink::name`]).
    pub fn sink_name(&self) -> &'static str {
        self.sink.name()
    }

    /// How many items the queue holds at most before `submit` waits.
    pub fn queue_capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items accepted and not yet resolved (queued, batching, in a request or backing off):
    /// the queue is full when this reaches [`queue_capacity`](Self::queue_capacity).
    pub fn queue_len(&self) -> usize {
        self.shared.outstanding()
    }

    /// How long every send stays paused by a throttled answer, or `None` when sends are not
    /// paused.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = *self
            .shared
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
    }

    /// Whether the dispatcher stopped accepting items ([`shutdown`](Self::shutdown) was
    /// called).
    pub fn is_closed(&self) -> bool {
        self.shared.queue.is_closed()
    }

    /// Stops accepting items, sends everything held without waiting for linger, and waits
    /// until every item is resolved and the worker has finished. Other handles' submits fail
    /// with [`SubmitError::Closed`] from now on.
    ///
    /// If the worker is never run (or was dropped), this returns at once.
    pub async fn shutdown(&self) {
        self.shared.queue.close();
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let mut done = self.done.clone();
        // An error means the worker is gone: nothing left to wait for.
        let _ = done.wait_for(|finished| *finished).await;
    }

    /// [`shutdown`](Self::shutdown), for at most `grace`: when the grace runs out, every item
    /// not yet sent is handed back to its caller as [`Delivery::RetryLater`]
    /// ([`GiveUp::ShuttingDown`]) instead of waiting out an outage, and requests already sent
    /// get their answers. Returns once the worker has finished.
    pub async fn shutdown_within(&self, grace: std::time::Duration) {
        let shutdown = self.shutdown();
        tokio::pin!(shutdown);
        if tokio::time::timeout(grace, &mut shutdown).await.is_err() {
            tracing::warn!(
                grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                outstanding = self.shared.outstanding(),
                "The shutdown grace ran out; handing what is not sent back to its callers."
            );
            self.shared.abandon.send_replace(true);
            shutdown.await;
        }
    }

    fn prepare(&self, item: S::Item) -> Result<Prepared<S>, SubmitError<S::Item>> {
        let bytes = match self.sink.encode(&item) {
            Ok(bytes) => bytes,
            Err(source) => return Err(SubmitError::Encode { item, source }),
        };
        let limit = self.sink.limits().largest_item();
        if bytes.len() > limit {
            return Err(SubmitError::TooLarge {
                item,
                bytes: bytes.len(),
                limit,
            });
        }
        let partition = self.sink.partition(&item);
        Ok(Prepared {
            entry: Encoded { item, bytes },
            partition,
        })
    }

    fn enqueue(
        &self,
        prepared: Prepared<S>,
        permit: OwnedSemaphorePermit,
        order: Option<OrderingKey>,
    ) -> Result<Completion, SubmitError<S::Item>> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            entry: prepared.entry,
            meta: Meta {
                partition: prepared.partition,
                order,
                tx,
                _permit: permit,
                submitted_at: Instant::now(),
                submitted_wall: jiff::Timestamp::now(),
                attempts: 0,
            },
        };
        match self.tx.send(pending) {
            Ok(()) => {
                self.shared.counters.submitted();
                Ok(Completion { rx })
            }
            Err(mpsc::error::SendError(pending)) => Err(SubmitError::Closed(pending.entry.item)),
        }
    }
}
