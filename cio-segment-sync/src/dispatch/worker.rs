//! The worker: batching, per-key ordering, and the life of one request (retries, splits,
//! per-item resolution).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::config::{DispatcherConfig, OrderingKey};
use super::handle::Delivery;
use super::retry::{AttemptFacts, Decision, GiveUp, decide};
use super::sink::{
    BatchLimits, BatchResponse, Classification, Encoded, FailureKind, Rejection, SendPhase, Sink,
    SinkError,
};
use super::stats::Counters;
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink};
use crate::outcome::describe;
use crate::rate_limit::{RateLimiter, RateLimiterExt};
use crate::store::StoreError;

/// State shared by the handles, the worker and the request tasks.
pub(crate) struct Shared {
    pub(crate) queue: Arc<Semaphore>,
    pub(crate) capacity: usize,
    pub(crate) counters: Counters,
    /// Set by `shutdown()`; the worker drains once it sees it.
    pub(crate) shutdown: AtomicBool,
    /// Wakes the worker after `shutdown` is set (a stored permit, so no wake is lost).
    pub(crate) wake: Notify,
    /// Nothing is sent before this instant (set by throttled answers). Here rather than in
    /// `Ctx` so that a handle can tell whether the dispatcher is paused.
    pub(crate) paused_until: Mutex<Option<Instant>>,
    /// Set when a shutdown's grace period ran out: nothing waits or retries any more; every
    /// item not yet sent goes back to its caller as `RetryLater`.
    pub(crate) abandon: watch::Sender<bool>,
}

impl Shared {
    /// Resolves once the dispatcher abandons what it holds (never, unless a grace ran out).
    pub(crate) async fn abandoned(&self) {
        let mut abandon = self.abandon.subscribe();
        // An error means the sender is gone with the dispatcher: nothing to abandon then.
        if abandon.wait_for(|abandoned| *abandoned).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        *self.abandon.borrow()
    }
}

impl Shared {
    /// Items accepted and not yet resolved.
    pub(crate) fn outstanding(&self) -> usize {
        self.capacity.saturating_sub(self.queue.available_permits())
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("capacity", &self.capacity)
            .field("outstanding", &self.outstanding())
            .finish_non_exhaustive()
    }
}

/// What travels with an item from submit to resolution (everything but the item itself).
pub(crate) struct Meta<S: Sink> {
    pub(crate) partition: S::Partition,
    pub(crate) order: Option<OrderingKey>,
    pub(crate) tx: oneshot::Sender<Delivery>,
    /// Holds the item's place in the bounded queue until it is resolved.
    pub(crate) _permit: OwnedSemaphorePermit,
    pub(crate) submitted_at: Instant,
    pub(crate) submitted_wall: jiff::Timestamp,
    pub(crate) attempts: u32,
}

/// An accepted item on its way through the worker.
pub(crate) struct Pending<S: Sink> {
    pub(crate) entry: Encoded<S::Item>,
    pub(crate) meta: Meta<S>,
}

/// Everything a request task needs.
pub(crate) struct Ctx<S: Sink> {
    pub(crate) sink: Arc<S>,
    pub(crate) name: &'static str,
    pub(crate) limits: BatchLimits,
    pub(crate) config: DispatcherConfig,
    pub(crate) server_deduplicates: bool,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) dead_letters: Arc<dyn DeadLetterSink>,
    pub(crate) concurrency: Semaphore,
    pub(crate) shared: Arc<Shared>,
}

impl<S: Sink> Ctx<S> {
    fn pause_until(&self, until: Instant) {
        let mut paused = self
            .shared
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    async fn wait_while_paused(&self) {
        loop {
            let until = *self
                .shared
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    fn paused(&self) -> bool {
        self.shared
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| until > Instant::now())
    }

    fn resolve_delivered(&self, meta: Meta<S>) {
        self.shared.counters.delivered(meta.submitted_at.elapsed());
        // The caller may have dropped its completion; the item is delivered either way.
        let _ = meta.tx.send(Delivery::Delivered {
            attempts: meta.attempts,
        });
    }

    fn resolve_retry_later(
        &self,
        meta: Meta<S>,
        stopped: GiveUp,
        last_kind: FailureKind,
        last_error: String,
    ) {
        self.shared
            .counters
            .retry_later(meta.submitted_at.elapsed());
        // Dropped completions are fine: the caller stopped waiting and its source retries.
        let _ = meta.tx.send(Delivery::RetryLater {
            stopped,
            last_kind,
            last_error,
            attempts: meta.attempts,
        });
    }

    async fn dead_letter(&self, entry: Encoded<S::Item>, meta: Meta<S>, reason: DeadLetterReason) {
        let item = serde_json::to_value(&entry.item).unwrap_or_else(|_| {
            // The item's Serialize impl refused (e.g. a map with non-string keys): keep the
            // bytes that would have been sent instead.
            serde_json::Value::String(String::from_utf8_lossy(&entry.bytes).into_owned())
        });
        let record = DeadLetter {
            sink: self.name.to_owned(),
            item,
            reason: reason.clone(),
            attempts: meta.attempts,
            submitted_at: meta.submitted_wall,
            dead_lettered_at: jiff::Timestamp::now(),
            ordering_key: meta.order.map(OrderingKey::get),
        };
        let recorded = match self.dead_letters.record(record).await {
            Ok(()) => {
                tracing::error!(
                    sink = self.name,
                    reason = reason.label(),
                    attempts = meta.attempts,
                    "An item could not be delivered and was dead-lettered."
                );
                true
            }
            Err(err) => {
                tracing::error!(
                    sink = self.name,
                    reason = reason.label(),
                    attempts = meta.attempts,
                    error = %describe(&err),
                    "An item could not be delivered and the dead-letter sink failed to keep it; it is lost."
                );
                false
            }
        };
        self.shared
            .counters
            .dead_lettered(meta.submitted_at.elapsed(), recorded);
        let _ = meta.tx.send(Delivery::DeadLettered {
            reason,
            attempts: meta.attempts,
            recorded,
        });
    }
}

impl<S: Sink> fmt::Debug for Ctx<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("sink", &self.name)
            .field("limits", &self.limits)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed.
enum AttemptError<E> {
    Sink(E),
    Timeout(Duration),
    RateLimiter(StoreError),
    /// The concurrency semaphore was closed. Nothing closes it today; kept typed rather than
    /// assumed impossible.
    Closed,
    /// A shutdown's grace period ran out before the attempt was sent.
    Abandoned,
}

impl<E: SinkError> AttemptError<E> {
    fn classify(&self) -> Classification {
        match self {
            AttemptError::Sink(err) => err.classify(),
            AttemptError::Timeout(_) => {
                Classification::new(FailureKind::Transient, SendPhase::MaybeSent)
            }
            AttemptError::RateLimiter(_) => {
                Classification::new(FailureKind::Transient, SendPhase::NotSent)
            }
            AttemptError::Closed => Classification::new(FailureKind::Permanent, SendPhase::NotSent),
            AttemptError::Abandoned => {
                Classification::new(FailureKind::Transient, SendPhase::NotSent)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            AttemptError::Sink(err) => describe(err),
            AttemptError::Timeout(after) => {
                format!("the attempt timed out after {} ms", after.as_millis())
            }
            AttemptError::RateLimiter(err) => {
                format!("the rate limiter failed: {}", describe(err))
            }
            AttemptError::Closed => "the dispatcher's concurrency limit was closed".to_owned(),
            AttemptError::Abandoned => {
                "the dispatcher shut down before the item could be sent".to_owned()
            }
        }
    }

    fn server_message(&self) -> Option<String> {
        match self {
            AttemptError::Sink(err) => err.server_message(),
            _ => None,
        }
    }
}

/// A batch being filled.
struct OpenBatch<S: Sink> {
    id: u64,
    items: Vec<Pending<S>>,
    item_bytes: usize,
    deadline: Instant,
    owned: Vec<OrderingKey>,
}

/// What a request task reports back when every one of its items is resolved.
struct Finished {
    owned: Vec<OrderingKey>,
    id: u64,
}

pub(crate) struct Worker<S: Sink> {
    ctx: Arc<Ctx<S>>,
    rx: mpsc::UnboundedReceiver<Pending<S>>,
    done: watch::Sender<bool>,
    open: HashMap<S::Partition, OpenBatch<S>>,
    owners: HashMap<OrderingKey, u64>,
    waiting: HashMap<OrderingKey, VecDeque<Pending<S>>>,
    in_flight: FuturesUnordered<BoxFuture<'static, Finished>>,
    next_id: u64,
    draining: bool,
    rx_closed: bool,
}

impl<S: Sink> Worker<S> {
    pub(crate) fn new(
        ctx: Arc<Ctx<S>>,
        rx: mpsc::UnboundedReceiver<Pending<S>>,
        done: watch::Sender<bool>,
    ) -> Self {
        Self {
            ctx,
            rx,
            done,
            open: HashMap::new(),
            owners: HashMap::new(),
            waiting: HashMap::new(),
            in_flight: FuturesUnordered::new(),
            next_id: 0,
            draining: false,
            rx_closed: false,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            if self.ctx.shared.shutdown.load(Ordering::SeqCst) {
                self.draining = true;
            }
            if self.draining {
                self.seal_all();
            }
            self.ctx
                .shared
                .counters
                .queue_depth(self.ctx.shared.outstanding());
            if self.draining
                && self.open.is_empty()
                && self.waiting.is_empty()
                && self.in_flight.is_empty()
                && (self.rx_closed || self.ctx.shared.outstanding() == 0)
            {
                break;
            }
            let linger = self.open.values().map(|b| b.deadline).min();
            tokio::select! {
                biased;
                Some(finished) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.release(finished);
                }
                () = self.ctx.shared.wake.notified(), if !self.draining => self.draining = true,
                msg = self.rx.recv(), if !self.rx_closed => match msg {
                    Some(pending) => {
                        self.admit(pending);
                        // Take what else is already queued before sealing anything.
                        while let Ok(pending) = self.rx.try_recv() {
                            self.admit(pending);
                        }
                    }
                    None => {
                        self.rx_closed = true;
                        self.draining = true;
                    }
                },
                () = sleep_until_opt(linger), if linger.is_some() => self.seal_expired(),
                else => break,
            }
        }
        tracing::debug!(
            sink = self.ctx.name,
            "The dispatcher has drained and stopped."
        );
        self.rx.close();
        let _ = self.done.send(true);
    }

    /// Places an accepted item: into its partition's open batch, or behind an earlier item
    /// with the same ordering key.
    fn admit(&mut self, pending: Pending<S>) {
        if let Some(key) = pending.meta.order {
            if let Some(queue) = self.waiting.get_mut(&key) {
                queue.push_back(pending);
                return;
            }
            if let Some(owner) = self.owners.get(&key).copied() {
                let joins_owner = self
                    .open
                    .get(&pending.meta.partition)
                    .is_some_and(|b| b.id == owner && self.fits(b, &pending));
                if !joins_owner {
                    self.waiting.entry(key).or_default().push_back(pending);
                    return;
                }
            }
        }
        let partition = pending.meta.partition.clone();
        let needs_new = self
            .open
            .get(&partition)
            .is_none_or(|b| !self.fits(b, &pending));
        if needs_new {
            if let Some(full) = self.open.remove(&partition) {
                self.launch(partition.clone(), full);
            }
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let linger = self.ctx.config.linger.unwrap_or(self.ctx.limits.linger);
            self.open.insert(
                partition.clone(),
                OpenBatch {
                    id,
                    items: Vec::new(),
                    item_bytes: 0,
                    deadline: Instant::now() + linger,
                    owned: Vec::new(),
                },
            );
        }
        let limits = self.ctx.limits;
        let Some(batch) = self.open.get_mut(&partition) else {
            // Inserted just above when absent.
            return;
        };
        if let Some(key) = pending.meta.order {
            self.owners.insert(key, batch.id);
            batch.owned.push(key);
        }
        batch.item_bytes = batch.item_bytes.saturating_add(pending.entry.bytes.len());
        batch.items.push(pending);
        let no_room = batch.items.len() >= limits.max_items.get()
            || limits.request_bytes(batch.items.len() + 1, batch.item_bytes + 1)
                > limits.max_request_bytes;
        if no_room && let Some(full) = self.open.remove(&partition) {
            self.launch(partition, full);
        }
    }

    fn fits(&self, batch: &OpenBatch<S>, pending: &Pending<S>) -> bool {
        let limits = &self.ctx.limits;
        batch.items.len() < limits.max_items.get()
            && limits.request_bytes(
                batch.items.len() + 1,
                batch.item_bytes.saturating_add(pending.entry.bytes.len()),
            ) <= limits.max_request_bytes
    }

    fn seal_expired(&mut self) {
        let now = Instant::now();
        let expired: Vec<S::Partition> = self
            .open
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for partition in expired {
            if let Some(batch) = self.open.remove(&partition) {
                self.launch(partition, batch);
            }
        }
    }

    fn seal_all(&mut self) {
        for (partition, batch) in mem::take(&mut self.open) {
            self.launch(partition, batch);
        }
    }

    fn launch(&mut self, partition: S::Partition, batch: OpenBatch<S>) {
        if batch.items.is_empty() {
            return;
        }
        let ctx = Arc::clone(&self.ctx);
        let finished = Finished {
            owned: batch.owned,
            id: batch.id,
        };
        let task = deliver(ctx, partition, batch.id, batch.items);
        self.in_flight.push(Box::pin(async move {
            task.await;
            finished
        }));
    }

    /// A request is fully resolved: free its ordering keys and admit what waited on them.
    fn release(&mut self, finished: Finished) {
        for key in finished.owned {
            if self.owners.get(&key) != Some(&finished.id) {
                continue;
            }
            self.owners.remove(&key);
            if let Some(queue) = self.waiting.remove(&key) {
                for pending in queue {
                    self.admit(pending);
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends one batch until every item is resolved: retries, splits (sequentially, so order
/// within the batch holds), per-item results.
async fn deliver<S: Sink>(
    ctx: Arc<Ctx<S>>,
    partition: S::Partition,
    id: u64,
    items: Vec<Pending<S>>,
) {
    let (entries, metas): (Vec<_>, Vec<_>) = items.into_iter().map(|p| (p.entry, p.meta)).unzip();
    let mut work = vec![(entries, metas)];
    let mut salt = id;
    while let Some((entries, metas)) = work.pop() {
        if let Some((mut entries, mut metas)) =
            send_with_retries(&ctx, &partition, salt, entries, metas).await
        {
            ctx.shared.counters.split();
            let mid = entries.len() / 2;
            let second = (entries.split_off(mid), metas.split_off(mid));
            work.push(second);
            work.push((entries, metas));
        }
        salt = salt.wrapping_add(1 << 32);
    }
}

/// Sends one (sub-)batch with retries. Returns the batch back when it must be split.
async fn send_with_retries<S: Sink>(
    ctx: &Ctx<S>,
    partition: &S::Partition,
    salt: u64,
    entries: Vec<Encoded<S::Item>>,
    mut metas: Vec<Meta<S>>,
) -> Option<(Vec<Encoded<S::Item>>, Vec<Meta<S>>)> {
    let mut backoff = ctx.config.retry.backoff(salt);
    let mut attempt: u32 = 0;
    let mut started: Option<Instant> = None;
    let bytes = ctx
        .limits
        .request_bytes(entries.len(), entries.iter().map(|e| e.bytes.len()).sum());
    let span = tracing::info_span!(
        "dispatch_batch",
        sink = ctx.name,
        items = entries.len(),
        bytes,
        attempt = tracing::field::Empty,
    );
    loop {
        attempt += 1;
        let started_at = *started.get_or_insert_with(Instant::now);
        let result = attempt_once(ctx, partition, &entries, attempt)
            .instrument(span.clone())
            .await;
        for meta in &mut metas {
            meta.attempts += 1;
        }
        let failure = match result {
            Ok(BatchResponse::Accepted) => {
                for meta in metas {
                    ctx.resolve_delivered(meta);
                }
                return None;
            }
            Ok(BatchResponse::Partial(rejections)) => {
                resolve_partial(ctx, entries, metas, rejections).await;
                return None;
            }
            Err(failure) => failure,
        };
        if matches!(failure, AttemptError::Abandoned) {
            give_back(ctx, metas, &failure, &span);
            return None;
        }
        let class = failure.classify();
        let next_backoff = backoff.next();
        if let Some(delay) = pause_for(&ctx.config.retry, class, next_backoff) {
            if class.kind == FailureKind::Throttled {
                ctx.shared.counters.throttled();
            }
            ctx.pause_until(Instant::now() + delay);
            // Shared with every dispatcher on the same limiter (every worker, through Redis).
            if let Err(error) = ctx.limiter.pause(delay).await {
                tracing::warn!(
                    parent: &span,
                    error = %describe(&error),
                    "Could not share a pause through the rate limiter; only this dispatcher pauses."
                );
            }
            tracing::warn!(
                parent: &span,
                delay_ms = delay.as_millis() as u64,
                kind = ?class.kind,
                "The server asked for a pause; every send on this API waits."
            );
        }
        let facts = AttemptFacts {
            failure: class,
            attempts: attempt,
            elapsed: started_at.elapsed(),
            batch_len: entries.len(),
            server_deduplicates: ctx.server_deduplicates
                && ctx.sink.partition_deduplicates(partition),
            next_backoff,
        };
        match decide(&ctx.config.retry, &facts) {
            Decision::Retry { after } => {
                tracing::warn!(
                    parent: &span,
                    attempt,
                    kind = ?class.kind,
                    delay_ms = after.as_millis() as u64,
                    error = %failure.describe(),
                    "A request failed; retrying after a backoff."
                );
                tokio::select! {
                    () = tokio::time::sleep(after) => {}
                    () = ctx.shared.abandoned() => {
                        give_back(ctx, metas, &AttemptError::<S::Error>::Abandoned, &span);
                        return None;
                    }
                }
            }
            Decision::Split => {
                tracing::warn!(
                    parent: &span,
                    error = %failure.describe(),
                    "The server refused a batch; splitting it to isolate the refused items."
                );
                return Some((entries, metas));
            }
            Decision::GiveUp(stopped) => {
                match refusal_reason(stopped, class, &failure) {
                    Some(reason) => {
                        for (entry, meta) in entries.into_iter().zip(metas) {
                            ctx.dead_letter(entry, meta, reason.clone()).await;
                        }
                    }
                    None => {
                        tracing::warn!(
                            parent: &span,
                            attempts = attempt,
                            stopped = ?stopped,
                            kind = ?class.kind,
                            error = %failure.describe(),
                            "Stopped retrying a failure that may pass; the callers must have their sources retry."
                        );
                        let last_error = failure.describe();
                        for meta in metas {
                            ctx.resolve_retry_later(meta, stopped, class.kind, last_error.clone());
                        }
                    }
                }
                return None;
            }
        }
    }
}

/// Hands every item back to its caller after a shutdown's grace ran out: not sent this time,
/// never dead-lettered.
fn give_back<S: Sink>(
    ctx: &Ctx<S>,
    metas: Vec<Meta<S>>,
    failure: &AttemptError<S::Error>,
    span: &tracing::Span,
) {
    tracing::warn!(
        parent: span,
        items = metas.len(),
        "The shutdown grace ran out; handing undelivered items back to their callers."
    );
    let last_error = failure.describe();
    for meta in metas {
        ctx.resolve_retry_later(
            meta,
            GiveUp::ShuttingDown,
            FailureKind::Transient,
            last_error.clone(),
        );
    }
}

/// How long every send on the API waits after this failure, if at all: a `429` pauses for its
/// `Retry-After` (or the next backoff when it gave none), any other retryable answer that
/// carries a `Retry-After` (a `503` during an outage) for that delay. Honoured up to the
/// policy's maximum.
fn pause_for(
    policy: &super::RetryPolicy,
    class: Classification,
    next_backoff: Option<Duration>,
) -> Option<Duration> {
    let delay = match (class.kind, class.retry_after) {
        (FailureKind::Throttled, asked) => asked.or(next_backoff).unwrap_or_default(),
        (kind, Some(asked)) if kind.is_retryable() => asked,
        _ => return None,
    };
    Some(policy.honoured_retry_after(delay))
}

/// The dead-letter reason when the failure is a permanent refusal; `None` when it may pass and
/// the items go back to their callers instead ([`Delivery::RetryLater`]).
fn refusal_reason<E: SinkError>(
    stopped: GiveUp,
    class: Classification,
    failure: &AttemptError<E>,
) -> Option<DeadLetterReason> {
    let answered = class.phase == SendPhase::ResponseReceived;
    match (stopped, class.kind) {
        (GiveUp::NotRetryable, FailureKind::Rejected) if answered => {
            Some(DeadLetterReason::RejectedByServer {
                message: failure
                    .server_message()
                    .unwrap_or_else(|| failure.describe()),
                field: None,
            })
        }
        (GiveUp::NotRetryable, kind) => Some(DeadLetterReason::Failed {
            kind,
            error: failure.describe(),
        }),
        _ => None,
    }
}

/// One attempt, in the documented order: (retry is the caller) → pause and rate-limit token →
/// concurrency permit → per-attempt timeout → transport.
async fn attempt_once<S: Sink>(
    ctx: &Ctx<S>,
    partition: &S::Partition,
    entries: &[Encoded<S::Item>],
    attempt: u32,
) -> Result<BatchResponse, AttemptError<S::Error>> {
    tracing::Span::current().record("attempt", attempt);
    // Everything before the send waits (pause, token, permit) and gives way to a shutdown
    // whose grace ran out; the send itself is never cut (its answer decides the items).
    let ready = async {
        ctx.wait_while_paused().await;
        ctx.limiter
            .acquire()
            .await
            .map_err(AttemptError::RateLimiter)?;
        loop {
            ctx.wait_while_paused().await;
            let permit = ctx
                .concurrency
                .acquire()
                .await
                .map_err(|_| AttemptError::Closed)?;
            if !ctx.paused() {
                return Ok(permit);
            }
        }
    };
    if ctx.shared.is_abandoned() {
        return Err(AttemptError::Abandoned);
    }
    let _permit = tokio::select! {
        permit = ready => permit?,
        () = ctx.shared.abandoned() => return Err(AttemptError::Abandoned),
    };
    ctx.shared.counters.attempt(attempt > 1);
    ctx.shared.counters.request(entries.len(), true);
    let timeout = ctx.config.attempt_timeout;
    let result = tokio::time::timeout(timeout, ctx.sink.send(partition, entries)).await;
    ctx.shared.counters.request(entries.len(), false);
    match result {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(AttemptError::Sink(err)),
        Err(_) => Err(AttemptError::Timeout(timeout)),
    }
}

async fn resolve_partial<S: Sink>(
    ctx: &Ctx<S>,
    entries: Vec<Encoded<S::Item>>,
    metas: Vec<Meta<S>>,
    rejections: Vec<Rejection>,
) {
    let len = entries.len();
    let mut by_index: HashMap<usize, Rejection> = HashMap::new();
    for rejection in rejections {
        if rejection.index < len {
            by_index.entry(rejection.index).or_insert(rejection);
        } else {
            tracing::warn!(
                sink = ctx.name,
                index = rejection.index,
                items = len,
                "The server refused an item index outside the batch; ignoring it."
            );
        }
    }
    for (index, (entry, meta)) in entries.into_iter().zip(metas).enumerate() {
        match by_index.remove(&index) {
            Some(rejection) => {
                let reason = DeadLetterReason::RejectedByServer {
                    message: rejection.message,
                    field: rejection.field,
                };
                ctx.dead_letter(entry, meta, reason).await;
            }
            None => ctx.resolve_delivered(meta),
        }
    }
}
