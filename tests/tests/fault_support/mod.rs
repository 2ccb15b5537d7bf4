//! A fault-injecting fake Customer.io Track API and the wiring the fault suites share.
//!
//! [`FakeCustomerIo`] speaks just enough HTTP/1.1 over raw tokio TCP to answer
//! `POST /api/v2/batch`, so it can do what a mock server cannot: reset a connection, or accept
//! a batch and then drop the connection before answering. Each request draws one fault from a
//! seeded ChaCha stream (in arrival order), and the fake keeps a view of accepted operations
//! de-duplicated the way Customer.io de-duplicates them: by the operation's `id`.

#![allow(dead_code)] // Each fault_* test binary uses a different subset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cio_segment_sync::customerio_client::{
    ClientConfig, Identifier, Region, SiteId, TrackApiKey, TrackClient,
};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::MemoryDeduper;
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, RetryPolicy};
use cio_segment_sync::identity::Target;
use cio_segment_sync::mapping::{Mapped, MappingConfig, map};
use cio_segment_sync::pipeline::{DispatchDeliver, SyncPipeline};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// `Basic base64("site:key")`: what every request must carry.
pub(crate) const AUTH: &str = "Basic c2l0ZTprZXk=";

/// The per-attempt timeout the suites give the client and the dispatcher.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);

/// How long a "slow" reply waits: well past [`ATTEMPT_TIMEOUT`].
pub(crate) const SLOW_REPLY: Duration = Duration::from_millis(700);

/// Probability, per request, of each fault. What is left over is a plain `200`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultRates {
    /// `500`, nothing accepted.
    pub(crate) server_error: f64,
    /// `429` with `Retry-After: 1`, nothing accepted.
    pub(crate) throttled: f64,
    /// The connection is reset after the request is read, nothing accepted.
    pub(crate) reset: f64,
    /// The operations are accepted, then the connection is dropped without an answer.
    pub(crate) lost_reply: f64,
    /// The operations are accepted, and the answer comes after [`SLOW_REPLY`].
    pub(crate) slow: f64,
    /// A `207` refusing one operation not accepted before; the rest are accepted.
    pub(crate) partial: f64,
}

impl FaultRates {
    /// The rates of the issue: 10 % / 5 % / 2 % / 2 % / 1 % / 1 %.
    pub(crate) const ISSUE: FaultRates = FaultRates {
        server_error: 0.10,
        throttled: 0.05,
        reset: 0.02,
        lost_reply: 0.02,
        slow: 0.01,
        partial: 0.01,
    };

    /// No faults.
    pub(crate) const NONE: FaultRates = FaultRates {
        server_error: 0.0,
        throttled: 0.0,
        reset: 0.0,
        lost_reply: 0.0,
        slow: 0.0,
        partial: 0.0,
    };

    /// The rate of `fault` (0 for the kinds that are not drawn).
    fn rate_of(&self, fault: Fault) -> f64 {
        match fault {
            Fault::ServerError => self.server_error,
            Fault::Throttled => self.throttled,
            Fault::Reset => self.reset,
            Fault::LostReply => self.lost_reply,
            Fault::Slow => self.slow,
            Fault::Partial => self.partial,
            _ => 0.0,
        }
    }

    fn draw(&self, u: f64) -> Fault {
        let table = [
            (self.server_error, Fault::ServerError),
            (self.throttled, Fault::Throttled),
            (self.reset, Fault::Reset),
            (self.lost_reply, Fault::LostReply),
            (self.slow, Fault::Slow),
            (self.partial, Fault::Partial),
        ];
        let mut edge = 0.0;
        for (p, fault) in table {
            edge += p;
            if u < edge {
                return fault;
            }
        }
        Fault::None
    }
}

/// What the fake did to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Fault {
    /// Answered `200`.
    None,
    /// Answered `500`.
    ServerError,
    /// Answered `429`.
    Throttled,
    /// Reset the connection.
    Reset,
    /// Accepted, then dropped the connection.
    LostReply,
    /// Accepted, answered late.
    Slow,
    /// Answered `207`.
    Partial,
    /// Not a batch request with the right credentials: answered `404` or `401`.
    Refused,
}

#[derive(Debug, Default)]
struct State {
    /// Accepted operations by key, once each.
    accepted: HashMap<String, Value>,
    /// Keys of operations refused in a `207`, with the reason sent.
    rejected: BTreeSet<String>,
    /// How many times an operation with each key arrived in a request that accepted it.
    arrivals: HashMap<String, u32>,
    /// Requests by what was done to them.
    faults: BTreeMap<Fault, u64>,
}

/// The fake Customer.io. Dropping it stops accepting connections.
#[derive(Debug)]
pub(crate) struct FakeCustomerIo {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    requests: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl Drop for FakeCustomerIo {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking connection task must not hide the state from the assertions.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key Customer.io de-duplicates an operation on: its `id`, or for operations without one
/// (upserts, which are idempotent) the operation's whole JSON.
pub(crate) fn op_key(op: &Value) -> String {
    match op.get("id").and_then(Value::as_str) {
        Some(id) => format!("id:{id}"),
        None => format!("content:{op}"),
    }
}

impl FakeCustomerIo {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub(crate) async fn start(rates: FaultRates, seed: u64) -> FakeCustomerIo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let requests = Arc::new(AtomicU64::new(0));
        let rng = Arc::new(Mutex::new((ChaCha8Rng::seed_from_u64(seed), 0)));
        let accept = {
            let state = state.clone();
            let requests = requests.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let conn = Connection {
                        rates,
                        state: state.clone(),
                        requests: requests.clone(),
                        rng: rng.clone(),
                    };
                    tokio::spawn(conn.serve(stream));
                }
            })
        };
        FakeCustomerIo {
            addr,
            state,
            requests,
            accept,
        }
    }

    /// The base URL to give the Track client.
    pub(crate) fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The accepted operations, one per key.
    pub(crate) fn accepted(&self) -> HashMap<String, Value> {
        lock(&self.state).accepted.clone()
    }

    /// Keys refused in a `207`.
    pub(crate) fn rejected(&self) -> BTreeSet<String> {
        lock(&self.state).rejected.clone()
    }

    /// How many times each accepted key arrived.
    pub(crate) fn arrivals(&self) -> HashMap<String, u32> {
        lock(&self.state).arrivals.clone()
    }

    /// Requests by what was done to them.
    pub(crate) fn faults(&self) -> BTreeMap<Fault, u64> {
        lock(&self.state).faults.clone()
    }
}

struct Connection {
    rates: FaultRates,
    state: Arc<Mutex<State>>,
    requests: Arc<AtomicU64>,
    rng: Arc<Mutex<(ChaCha8Rng, u64)>>,
}

/// The faults the first requests get, one of each kind in turn, so every kind is exercised
/// whatever the number of requests (which depends on how operations happen to batch); the
/// seeded draw decides from then on.
const FIRST_FAULTS: [Fault; 6] = [
    Fault::ServerError,
    Fault::Throttled,
    Fault::Reset,
    Fault::LostReply,
    Fault::Slow,
    Fault::Partial,
];

/// One parsed request.
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The client sends JSON bodies with a length; anything else is a bug to surface.
            panic!("unexpected transfer-encoding {value}");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        authorization,
        body,
    })
}

async fn respond(
    stream: &mut BufReader<TcpStream>,
    status: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(text.as_bytes()).await
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let mut stream = BufReader::new(stream);
        while let Some(request) = read_request(&mut stream).await {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let keep_open = self.answer(&mut stream, request).await;
            if !keep_open {
                return;
            }
        }
    }

    fn record(&self, fault: Fault) {
        *lock(&self.state).faults.entry(fault).or_default() += 1;
    }

    /// Accepts every operation of `ops` except those at `refused`.
    fn accept(&self, ops: &[Value], refused: &BTreeSet<usize>) {
        let mut state = lock(&self.state);
        for (index, op) in ops.iter().enumerate() {
            if refused.contains(&index) {
                continue;
            }
            let key = op_key(op);
            *state.arrivals.entry(key.clone()).or_default() += 1;
            state.accepted.entry(key).or_insert_with(|| op.clone());
        }
    }

    /// Answers one request; `false` when the connection is to be closed.
    async fn answer(&self, stream: &mut BufReader<TcpStream>, request: Request) -> bool {
        if request.method != "POST" || request.path != "/api/v2/batch" {
            self.record(Fault::Refused);
            return respond(stream, "404 Not Found", "", "{}").await.is_ok();
        }
        if request.authorization.as_deref() != Some(AUTH) {
            self.record(Fault::Refused);
            return respond(stream, "401 Unauthorized", "", "{}").await.is_ok();
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            self.record(Fault::Refused);
            return respond(stream, "400 Bad Request", "", r#"{"errors":[]}"#)
                .await
                .is_ok();
        };
        let ops: Vec<Value> = body["batch"].as_array().cloned().unwrap_or_default();
        let (fault, pick) = {
            let mut guard = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            let (rng, drawn) = &mut *guard;
            let drawn_fault = self.rates.draw(rng.random::<f64>());
            let pick = rng.random::<u64>();
            let fault = FIRST_FAULTS
                .get(*drawn as usize)
                .copied()
                .filter(|first| self.rates.rate_of(*first) > 0.0)
                .unwrap_or(drawn_fault);
            *drawn += 1;
            (fault, pick)
        };
        // An operation refused once is invalid: Customer.io refuses it every time.
        let mut refused: BTreeSet<usize> = {
            let state = lock(&self.state);
            ops.iter()
                .enumerate()
                .filter(|(_, op)| state.rejected.contains(&op_key(op)))
                .map(|(i, _)| i)
                .collect()
        };
        match fault {
            Fault::ServerError => {
                self.record(fault);
                respond(
                    stream,
                    "500 Internal Server Error",
                    "",
                    r#"{"errors":[{"reason":"internal"}]}"#,
                )
                .await
                .is_ok()
            }
            Fault::Throttled => {
                self.record(fault);
                respond(stream, "429 Too Many Requests", "retry-after: 1\r\n", "{}")
                    .await
                    .is_ok()
            }
            Fault::Reset => {
                self.record(fault);
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = stream.get_ref().set_zero_linger();
                false
            }
            Fault::LostReply => {
                self.record(fault);
                self.accept(&ops, &refused);
                false
            }
            Fault::Slow => {
                self.record(fault);
                self.accept(&ops, &refused);
                tokio::time::sleep(SLOW_REPLY).await;
                let _ = respond(stream, "200 OK", "", "{}").await;
                false
            }
            Fault::None | Fault::Partial | Fault::Refused => {
                if fault == Fault::Partial {
                    // Refuse one operation that was never accepted (an accepted one cannot
                    // turn invalid on a re-send).
                    let state = lock(&self.state);
                    let fresh: Vec<usize> = ops
                        .iter()
                        .enumerate()
                        .filter(|(_, op)| !state.accepted.contains_key(&op_key(op)))
                        .map(|(i, _)| i)
                        .collect();
                    drop(state);
                    if !fresh.is_empty() {
                        let len = fresh.len() as u64;
                        refused.insert(fresh[(pick % len) as usize]);
                    }
                }
                self.accept(&ops, &refused);
                if refused.is_empty() {
                    self.record(Fault::None);
                    return respond(stream, "200 OK", "", "{}").await.is_ok();
                }
                self.record(Fault::Partial);
                let errors: Vec<Value> = {
                    let mut state = lock(&self.state);
                    refused
                        .iter()
                        .map(|&index| {
                            state.rejected.insert(op_key(&ops[index]));
                            json!({
                                "batch_index": index, "reason": "invalid", "field": "name",
                                "message": "refused by the fault injector"
                            })
                        })
                        .collect()
                };
                let body = json!({ "errors": errors }).to_string();
                respond(stream, "207 Multi-Status", "", &body).await.is_ok()
            }
        }
    }
}

/// A sync worker: a pipeline over a dispatcher over a Customer.io batch sink.
#[derive(Debug)]
pub(crate) struct SyncWorker {
    /// The pipeline to feed.
    pub(crate) pipeline: Arc<SyncPipeline>,
    /// Where given-up operations go.
    pub(crate) dead: Arc<MemoryDeadLetters>,
    /// The dispatcher.
    pub(crate) handle: DispatcherHandle<CustomerIoBatchSink>,
    /// The dispatcher's worker task.
    pub(crate) worker: JoinHandle<()>,
}

/// Starts a worker against `base_url`, with a fresh in-memory deduper.
pub(crate) fn sync_worker(base_url: &str, jitter_seed: u64) -> SyncWorker {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(base_url)
        .unwrap()
        .with_timeout(ATTEMPT_TIMEOUT);
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    let sink =
        CustomerIoBatchSink::new(client).with_max_operations(NonZeroUsize::new(250).unwrap());
    let dead = Arc::new(MemoryDeadLetters::new(1_000_000));
    let dispatcher_config = DispatcherConfig::default()
        .with_linger(Duration::from_millis(20))
        .with_attempt_timeout(ATTEMPT_TIMEOUT)
        .with_concurrency(NonZeroUsize::new(8).unwrap())
        .with_retry(
            // Enough attempts that giving up on a maybe-sent batch (which would leave its
            // operations both accepted and dead-lettered) does not happen at these rates.
            RetryPolicy::default()
                .with_max_attempts(40)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(50))
                .with_total_deadline(Duration::from_secs(600))
                .with_max_retry_after(Duration::from_secs(2))
                .with_jitter_seed(jitter_seed),
        );
    let (handle, worker) =
        Dispatcher::spawn(sink, dispatcher_config, Arc::new(Unlimited), dead.clone());
    let pipeline =
        SyncPipeline::builder(Arc::new(DispatchDeliver::new(handle.clone(), dead.clone())))
            .deduper(Arc::new(MemoryDeduper::default()))
            .build();
    SyncWorker {
        pipeline: Arc::new(pipeline),
        dead,
        handle,
        worker,
    }
}

/// `n` event-like messages (track, page, screen) from a fixed seed, about 500 people.
pub(crate) fn events(n: usize, seed: u64) -> Vec<Message> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base_ms: i64 = 1_714_558_530_000;
    (0..n)
        .map(|i| {
            let user = format!("u-{}", rng.random_range(0..500));
            let timestamp = jiff::Timestamp::from_millisecond(base_ms + i as i64)
                .unwrap()
                .to_string();
            let message_id = format!("fault-{seed}-{i}");
            let event = ["Order Completed", "Viewed Pricing", "Signed Up"][i % 3];
            let value = match rng.random_range(0..10) {
                0..=6 => json!({
                    "type": "track", "messageId": message_id, "userId": user,
                    "event": event,
                    "timestamp": timestamp,
                    "properties": {"order": i, "total": rng.random_range(1..500), "currency": "EUR"}
                }),
                7..=8 => json!({
                    "type": "page", "messageId": message_id, "userId": user,
                    "name": "Pricing", "timestamp": timestamp,
                    "properties": {"path": "/pricing", "url": "https://example.com/pricing"}
                }),
                _ => json!({
                    "type": "screen", "messageId": message_id, "userId": user,
                    "name": "Home", "timestamp": timestamp
                }),
            };
            Message::from_value(value).unwrap()
        })
        .collect()
}

/// The keys (as [`op_key`] computes them) of the operations `message` maps to under the
/// default mapping, computed with the same pure function the pipeline uses.
pub(crate) fn expected_keys(message: &Message) -> Vec<String> {
    let user = message.user_id().unwrap().to_string();
    let target = Target::Person {
        identifier: Identifier::id(user),
        anonymous_id: None,
    };
    match map(message, &target, &MappingConfig::default()).unwrap() {
        Mapped::Operations(ops) => ops
            .iter()
            .map(|op| op_key(&serde_json::to_value(op).unwrap()))
            .collect(),
        other => panic!("an event maps to operations, not {other:?}"),
    }
}
