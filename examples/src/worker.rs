//! The `embed_in_worker` example's parts: a simulated in-memory queue and a consumer that acks
//! a message only once the sync finished it.
//!
//! The host owns everything here: the tokio runtime, the queue, the consumer loop. The library
//! is a value (any [`Pipeline`], e.g. the engine's `SegmentRouter`) the consumer calls. What each
//! answer means for the source ([`decide`], by [`AckRule`]):
//!
//! | answer | decision |
//! |---|---|
//! | `Ok(Delivered)` or `Ok(Skipped(_))` | ack: finished |
//! | `Ok(DeadLettered(_))` | ack: refused for good and kept in the dead-letter sink |
//! | `Err(e)` with `e.ack() == Ack::RetryLater` | not acked: redelivered later |
//! | `Err(e)` with `e.ack() == Ack::Refuse`, or not a Segment message | parked for a human |
//!
//! A message redelivered more than [`MemoryQueue::max_deliveries`] times is parked too, as a
//! real broker's redrive policy does.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cio_segment_sync::outcome::{Ack, AckRule, Outcome, describe};
use cio_segment_sync::pipeline::{Pipeline, PipelineError};
use segment_model::Message;

/// One message handed out by the queue.
#[derive(Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The queue's own id of the message.
    pub id: String,
    /// The body: one Segment message as JSON.
    pub body: Vec<u8>,
    /// How many times it was handed out, this time included.
    pub deliveries: u32,
}

impl fmt::Debug for QueueMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds personal data; show its size only.
        f.debug_struct("QueueMessage")
            .field("id", &self.id)
            .field("body_bytes", &self.body.len())
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<QueueMessage>,
    acked: Vec<String>,
    parked: Vec<(String, String)>,
    redelivered: usize,
}

/// A stand-in for a broker (SQS, RabbitMQ, a Kafka partition): messages are handed out one at
/// a time and stay owned by the queue until acked.
#[derive(Debug)]
pub struct MemoryQueue {
    state: Mutex<QueueState>,
    max_deliveries: u32,
}

impl MemoryQueue {
    /// An empty queue that parks a message after `max_deliveries` (at least 1).
    pub fn new(max_deliveries: u32) -> Self {
        Self {
            state: Mutex::default(),
            max_deliveries: max_deliveries.max(1),
        }
    }

    /// How many times a message is handed out before it is parked.
    pub fn max_deliveries(&self) -> u32 {
        self.max_deliveries
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a message.
    pub fn publish(&self, id: impl Into<String>, body: impl Into<Vec<u8>>) {
        self.lock().ready.push_back(QueueMessage {
            id: id.into(),
            body: body.into(),
            deliveries: 0,
        });
    }

    /// The next message, if any.
    pub fn receive(&self) -> Option<QueueMessage> {
        let mut message = self.lock().ready.pop_front()?;
        message.deliveries += 1;
        Some(message)
    }

    /// The message is done: the queue forgets it.
    pub fn ack(&self, message: &QueueMessage) {
        self.lock().acked.push(message.id.clone());
    }

    /// The message is not done: hand it out again later, or park it after too many deliveries.
    pub fn redeliver(&self, message: QueueMessage, reason: &str) {
        let mut state = self.lock();
        if message.deliveries >= self.max_deliveries {
            state.parked.push((message.id, reason.to_owned()));
        } else {
            state.redelivered += 1;
            state.ready.push_back(message);
        }
    }

    /// The message cannot succeed by retrying: park it with `reason`.
    pub fn park(&self, message: QueueMessage, reason: &str) {
        self.lock().parked.push((message.id, reason.to_owned()));
    }

    /// Ids acked, in order.
    pub fn acked(&self) -> Vec<String> {
        self.lock().acked.clone()
    }

    /// Ids parked with their reasons, in order.
    pub fn parked(&self) -> Vec<(String, String)> {
        self.lock().parked.clone()
    }

    /// How many redeliveries happened.
    pub fn redelivered(&self) -> usize {
        self.lock().redelivered
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the consumer does with a message after the sync answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Finished: ack it.
    Ack,
    /// Not finished, worth retrying: hand it out again.
    Redeliver(String),
    /// Not finished and a retry cannot help: park it for a human.
    Park(String),
}

/// The library's one ack rule, as queue decisions (see the [module docs](self)).
pub fn decide(result: &Result<Outcome, PipelineError>) -> Decision {
    match result {
        // Every outcome is finished, a dead-lettered one included: the sink keeps it.
        Ok(_) => Decision::Ack,
        Err(error) => match error.ack() {
            Ack::RetryLater => Decision::Redeliver(describe(error)),
            _ => Decision::Park(describe(error)),
        },
    }
}

/// Consumes `queue` until it is empty, one message at a time, acking by [`decide`]; a body that
/// is not a Segment message is parked.
pub async fn consume<P: Pipeline + ?Sized>(queue: &MemoryQueue, pipeline: &P) {
    while let Some(message) = queue.receive() {
        let decision = match Message::from_slice(&message.body) {
            Ok(parsed) => decide(&pipeline.process(&parsed).await),
            Err(error) => Decision::Park(format!("not a Segment message: {}", describe(&error))),
        };
        match decision {
            Decision::Ack => queue.ack(&message),
            Decision::Redeliver(reason) => queue.redeliver(message, &reason),
            Decision::Park(reason) => queue.park(message, &reason),
        }
    }
}
