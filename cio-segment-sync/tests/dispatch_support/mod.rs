//! A scripted in-process sink for dispatcher tests: answers each request from a script and
//! records every request. In-process, so tests may run on tokio's paused clock.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cio_segment_sync::StoreError;
use cio_segment_sync::dispatch::{
    BatchLimits, BatchResponse, Classification, EncodeError, Encoded, FailureKind, Rejection,
    SendPhase, Sink, SinkError,
};
use cio_segment_sync::rate_limit::{Admission, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

/// A test item: who it is about, its place in that person's sequence, a partition, a size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: u32,
    pub person: String,
    pub seq: u32,
    pub partition: u8,
    /// Encoded size in bytes.
    pub size: usize,
    /// A batch holding a bad item is refused with a 400.
    pub bad: bool,
}

impl Item {
    pub fn new(id: u32) -> Self {
        Self {
            id,
            person: format!("person-{id}"),
            seq: 0,
            partition: 0,
            size: 10,
            bad: false,
        }
    }
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }
    pub fn partition(mut self, partition: u8) -> Self {
        self.partition = partition;
        self
    }
    pub fn bad(mut self) -> Self {
        self.bad = true;
        self
    }
    pub fn person(mut self, person: impl Into<String>, seq: u32) -> Self {
        self.person = person.into();
        self.seq = seq;
        self
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Accept,
    /// A 207 refusing these indexes with these messages.
    Partial(Vec<(usize, &'static str)>),
    /// A classified failure.
    Fail(Classification, &'static str),
    /// Never answers (the per-attempt timeout fires).
    Hang,
    /// Waits (on the tokio clock), then answers.
    After(Duration, Box<Reply>),
}

impl Reply {
    pub fn status_500() -> Self {
        Reply::Fail(
            Classification::new(FailureKind::Server, SendPhase::ResponseReceived),
            "server error (HTTP 500)",
        )
    }
    pub fn status_429(retry_after: Duration) -> Self {
        Reply::Fail(
            Classification::new(FailureKind::Throttled, SendPhase::ResponseReceived)
                .with_retry_after(retry_after),
            "rate limited (HTTP 429)",
        )
    }
    pub fn status_400(message: &'static str) -> Self {
        Reply::Fail(
            Classification::new(FailureKind::Rejected, SendPhase::ResponseReceived),
            message,
        )
    }
    pub fn maybe_sent() -> Self {
        Reply::Fail(
            Classification::new(FailureKind::Transient, SendPhase::MaybeSent),
            "connection reset after the request was written",
        )
    }
    pub fn connect_refused() -> Self {
        Reply::Fail(
            Classification::new(FailureKind::Transient, SendPhase::NotSent),
            "connection refused",
        )
    }
    pub fn auth() -> Self {
        Reply::Fail(
            Classification::new(FailureKind::Permanent, SendPhase::ResponseReceived),
            "credentials refused (HTTP 401)",
        )
    }
}

/// The error a scripted failure produces.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TestError {
    class: Classification,
    message: &'static str,
}

impl SinkError for TestError {
    fn classify(&self) -> Classification {
        self.class
    }
    fn server_message(&self) -> Option<String> {
        (self.class.kind == FailureKind::Rejected).then(|| format!("server says: {}", self.message))
    }
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Call {
    pub partition: u8,
    pub ids: Vec<u32>,
    pub items: Vec<Item>,
    pub bytes: usize,
    pub at: Instant,
}

type Responder = Box<dyn Fn(&Call, usize) -> Reply + Send + Sync>;

pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    call_count: watch::Sender<usize>,
    active_people: Mutex<HashMap<String, usize>>,
    pub violations: Mutex<Vec<String>>,
    active_sends: Mutex<(usize, usize)>,
}

/// The scripted sink. Clone the `Arc<Recorder>` out before handing the sink over.
pub struct ScriptedSink {
    pub limits: BatchLimits,
    pub dedup: bool,
    pub name: &'static str,
    script: Mutex<VecDeque<Reply>>,
    fallback: Option<Responder>,
    pub recorder: Arc<Recorder>,
}

pub fn limits(max_items: usize, max_request_bytes: usize, linger: Duration) -> BatchLimits {
    BatchLimits {
        max_items: NonZeroUsize::new(max_items).unwrap(),
        max_request_bytes,
        max_item_bytes: 1_000,
        wrapper_bytes: 2,
        separator_bytes: 1,
        linger,
    }
}

impl ScriptedSink {
    /// Answers from `script` in order, then accepts everything.
    pub fn new(limits: BatchLimits, dedup: bool, script: Vec<Reply>) -> Self {
        let (call_count, _) = watch::channel(0);
        Self {
            limits,
            dedup,
            name: "scripted",
            script: Mutex::new(script.into()),
            fallback: None,
            recorder: Arc::new(Recorder {
                calls: Mutex::new(Vec::new()),
                call_count,
                active_people: Mutex::new(HashMap::new()),
                violations: Mutex::new(Vec::new()),
                active_sends: Mutex::new((0, 0)),
            }),
        }
    }

    /// Once the script is used up, answers with `responder(call, call_index)`.
    pub fn with_responder(
        mut self,
        responder: impl Fn(&Call, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.fallback = Some(Box::new(responder));
        self
    }

    /// Refuses (400) any request holding a bad item.
    pub fn refusing_bad_items(self) -> Self {
        self.with_responder(|call, _| {
            if call.items.iter().any(|i| i.bad) {
                Reply::status_400("invalid operation")
            } else {
                Reply::Accept
            }
        })
    }
}

impl Recorder {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    pub fn ids(&self) -> Vec<Vec<u32>> {
        self.calls().into_iter().map(|c| c.ids).collect()
    }
    /// Waits until at least `n` requests were made.
    pub async fn wait_calls(&self, n: usize) {
        let mut rx = self.call_count.subscribe();
        rx.wait_for(|count| *count >= n).await.unwrap();
    }
    pub fn max_concurrent_sends(&self) -> usize {
        self.active_sends.lock().unwrap().1
    }
}

impl Sink for ScriptedSink {
    type Item = Item;
    type Partition = u8;
    type Error = TestError;

    fn name(&self) -> &'static str {
        self.name
    }
    fn limits(&self) -> BatchLimits {
        self.limits
    }
    fn server_deduplicates(&self) -> bool {
        self.dedup
    }
    fn partition(&self, item: &Item) -> u8 {
        item.partition
    }
    fn encode(&self, item: &Item) -> Result<Bytes, EncodeError> {
        Ok(Bytes::from(vec![b'x'; item.size]))
    }

    async fn send(
        &self,
        partition: &u8,
        items: &[Encoded<Item>],
    ) -> Result<BatchResponse, TestError> {
        let call = Call {
            partition: *partition,
            ids: items.iter().map(|e| e.item.id).collect(),
            items: items.iter().map(|e| e.item.clone()).collect(),
            bytes: self
                .limits
                .request_bytes(items.len(), items.iter().map(|e| e.bytes.len()).sum()),
            at: Instant::now(),
        };
        let index = {
            let mut calls = self.recorder.calls.lock().unwrap();
            calls.push(call.clone());
            calls.len() - 1
        };
        let _active = self.enter(&call);
        self.recorder.call_count.send_modify(|c| *c += 1);
        let reply = self.script.lock().unwrap().pop_front();
        let reply = match (reply, &self.fallback) {
            (Some(reply), _) => reply,
            (None, Some(responder)) => responder(&call, index),
            (None, None) => Reply::Accept,
        };
        answer(reply).await
    }
}

/// Tracks people in requests at the same time, to catch per-key order violations.
struct Active<'a> {
    sink: &'a ScriptedSink,
    people: Vec<String>,
}

impl ScriptedSink {
    fn enter(&self, call: &Call) -> Active<'_> {
        let mut active = self.recorder.active_people.lock().unwrap();
        let mut people: Vec<String> = call.items.iter().map(|i| i.person.clone()).collect();
        people.sort();
        people.dedup();
        for person in &people {
            let n = active.entry(person.clone()).or_default();
            if *n > 0 {
                self.recorder
                    .violations
                    .lock()
                    .unwrap()
                    .push(format!("{person} in two requests at once"));
            }
            *n += 1;
        }
        let mut sends = self.recorder.active_sends.lock().unwrap();
        sends.0 += 1;
        sends.1 = sends.1.max(sends.0);
        Active { sink: self, people }
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let mut active = self.sink.recorder.active_people.lock().unwrap();
        for person in &self.people {
            if let Some(n) = active.get_mut(person) {
                *n -= 1;
            }
        }
        self.sink.recorder.active_sends.lock().unwrap().0 -= 1;
    }
}

async fn answer(mut reply: Reply) -> Result<BatchResponse, TestError> {
    loop {
        match reply {
            Reply::Accept => return Ok(BatchResponse::Accepted),
            Reply::Partial(rejected) => {
                return Ok(BatchResponse::Partial(
                    rejected
                        .into_iter()
                        .map(|(index, message)| Rejection {
                            index,
                            message: message.to_owned(),
                            field: Some("id".to_owned()),
                        })
                        .collect(),
                ));
            }
            Reply::Fail(class, message) => return Err(TestError { class, message }),
            Reply::Hang => std::future::pending::<()>().await,
            Reply::After(delay, next) => {
                tokio::time::sleep(delay).await;
                reply = *next;
            }
        }
    }
}

/// A rate limiter that grants every request, counts the tokens it handed out and records the
/// pauses it was asked for (without holding anyone).
#[derive(Debug, Default)]
pub struct CountingLimiter {
    pub granted: AtomicU64,
    pub pauses: Mutex<Vec<Duration>>,
}

#[async_trait]
impl RateLimiter for CountingLimiter {
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        self.granted.fetch_add(1, Ordering::SeqCst);
        Ok(Admission::Granted)
    }

    async fn pause(&self, delay: Duration) -> Result<(), StoreError> {
        self.pauses.lock().unwrap().push(delay);
        Ok(())
    }
}
