//! The dispatcher as the pipeline's delivery step.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::track::v2::Operation;

use super::steps::{Deliver, DeliverError, Delivered};
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink};
use crate::dispatch::{
    Delivery, DispatcherHandle, FailureKind, GiveUp, OrderingKey, Sink, SubmitError,
};
use crate::outcome::describe;

/// [`Deliver`] through a [`Dispatcher`](crate::dispatch::Dispatcher) of Track v2 operations
/// (usually a [`CustomerIoBatchSink`](crate::dispatch::sinks::CustomerIoBatchSink)).
///
/// Each operation is submitted with the person's [`OrderingKey`] (so one person's operations
/// reach Customer.io in order), then every completion is awaited:
///
/// - all delivered → [`Delivered::Accepted`];
/// - some refused for good by the server and recorded → [`Delivered::DeadLettered`] with the
///   first refused operation's reason;
/// - an operation the dispatcher refuses at submit because no request could ever carry it (too
///   large, or not encodable) is recorded in `dead_letters` here — the dispatcher hands such
///   items back instead of recording them — and counts as dead-lettered;
/// - the dispatcher stopped retrying a failure that may pass ([`Delivery::RetryLater`]), a
///   closed dispatcher, a completion dropped unresolved, or a dead letter that could not be
///   recorded → [`DeliverError`]: the source must retry. Operations submitted before the failure
///   may still be delivered; the retry sends them again (Customer.io applies an event `id` once;
///   identify is an upsert).
///
/// Pass the same dead-letter sink the dispatcher was built with, so every undeliverable
/// operation ends up in one place.
///
/// Wiring a pipeline to Customer.io:
///
/// ```
/// use std::sync::Arc;
/// use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
/// use cio_segment_sync::dead_letter::{DeadLetterSink, MemoryDeadLetters};
/// use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
/// use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
/// use cio_segment_sync::pipeline::{DispatchDeliver, SyncPipeline};
/// use cio_segment_sync::rate_limit::Unlimited;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = TrackClient::new(
///     SiteId::new("site-id"),
///     TrackApiKey::new("track-api-key"),
///     ClientConfig::new(Region::Eu),
/// )?;
/// let dead_letters: Arc<dyn DeadLetterSink> = Arc::new(MemoryDeadLetters::new(10_000));
/// let (handle, worker) = Dispatcher::new(
///     CustomerIoBatchSink::new(client),
///     DispatcherConfig::default(),
///     Arc::new(Unlimited),
///     dead_letters.clone(),
/// );
/// // The host runs `worker` on its runtime (e.g. `tokio::spawn(worker)`), and calls
/// // `handle.shutdown().await` when it stops.
/// # drop(worker);
/// let pipeline = SyncPipeline::builder(Arc::new(DispatchDeliver::new(handle, dead_letters)))
///     .build();
/// # let _ = pipeline;
/// # Ok(())
/// # }
/// ```
pub struct DispatchDeliver<S: Sink<Item = Operation>> {
    handle: DispatcherHandle<S>,
    dead_letters: Arc<dyn DeadLetterSink>,
}

impl<S: Sink<Item = Operation>> fmt::Debug for DispatchDeliver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchDeliver")
            .field("handle", &self.handle)
            .field("dead_letters", &self.dead_letters)
            .finish()
    }
}

impl<S: Sink<Item = Operation>> DispatchDeliver<S> {
    /// Delivers through `handle`; operations refused at submit go to `dead_letters`.
    pub fn new(handle: DispatcherHandle<S>, dead_letters: Arc<dyn DeadLetterSink>) -> Self {
        Self {
            handle,
            dead_letters,
        }
    }

    /// The dispatcher's handle (for stats and shutdown).
    pub fn handle(&self) -> &DispatcherHandle<S> {
        &self.handle
    }

    /// Records an operation no request can carry. `Err` when the entry was not kept.
    async fn refuse(
        &self,
        operation: &Operation,
        reason: DeadLetterReason,
        key: OrderingKey,
    ) -> Result<(), DeliverError> {
        let item = serde_json::to_value(operation).map_err(DeliverError::new)?;
        let mut entry = DeadLetter::new(self.handle.sink.name(), item, reason, 0);
        entry.ordering_key = Some(key.get());
        self.dead_letters
            .record(entry)
            .await
            .map_err(DeliverError::new)
    }
}

/// The dispatcher stopped (closed, or dropped an item unresolved) before delivering.
#[derive(Debug, thiserror::Error)]
#[error("the dispatcher is closed or dropped the operation")]
struct NotDelivered;

/// A dead letter was not recorded: the operation is lost unless the source retries.
#[derive(Debug, thiserror::Error)]
#[error("an operation was given up but its dead letter was not recorded")]
struct DeadLetterLost;

/// The dispatcher stopped retrying a failure that may pass.
#[derive(Debug, thiserror::Error)]
#[error(
    "the delivery engine stopped retrying ({stopped:?} after {attempts} attempts): {last_error}"
)]
struct StoppedRetrying {
    stopped: GiveUp,
    attempts: u32,
    last_error: String,
}

#[async_trait]
impl<S: Sink<Item = Operation>> Deliver for DispatchDeliver<S> {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        ordering_key: &str,
    ) -> Result<Delivered, DeliverError> {
        let key = OrderingKey::new(ordering_key);
        let mut pending = Vec::with_capacity(operations.len());
        let mut refused: Option<DeadLetterReason> = None;
        for operation in operations {
            match self.handle.submit(operation, Some(key)).await {
                Ok(completion) => pending.push(completion),
                Err(SubmitError::TooLarge { item, bytes, limit }) => {
                    let reason = DeadLetterReason::TooLarge { bytes, limit };
                    self.refuse(&item, reason.clone(), key).await?;
                    refused.get_or_insert(reason);
                }
                Err(SubmitError::Encode { item, source }) => {
                    let reason = DeadLetterReason::Failed {
                        kind: FailureKind::Permanent,
                        error: describe(&source),
                    };
                    self.refuse(&item, reason.clone(), key).await?;
                    refused.get_or_insert(reason);
                }
                Err(_) => return Err(DeliverError::new(NotDelivered)),
            }
        }
        for completion in pending {
            match completion.await {
                Ok(Delivery::Delivered { .. }) => {}
                Ok(Delivery::DeadLettered {
                    reason,
                    recorded: true,
                    ..
                }) => {
                    refused.get_or_insert(reason);
                }
                Ok(Delivery::DeadLettered {
                    recorded: false, ..
                }) => return Err(DeliverError::new(DeadLetterLost)),
                Ok(Delivery::RetryLater {
                    stopped,
                    attempts,
                    last_error,
                    ..
                }) => {
                    return Err(DeliverError::new(StoppedRetrying {
                        stopped,
                        attempts,
                        last_error,
                    }));
                }
                Err(_) => return Err(DeliverError::new(NotDelivered)),
            }
        }
        Ok(match refused {
            None => Delivered::Accepted,
            Some(reason) => Delivered::DeadLettered(reason),
        })
    }
}
