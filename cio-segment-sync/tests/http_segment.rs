//! `SegmentEndpoint` (feature `http`): every row of the Segment answer table, the three body
//! shapes, signatures, and work that outlives the deadline, over a hand-written `Pipeline`
//! scripted per messageId. No clock is paused and no duration is asserted: the deadline tests
//! use a short real deadline and a pipeline that waits for a gate or never answers.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cio_segment_sync::StoreError;
use cio_segment_sync::dead_letter::DeadLetterReason;
use cio_segment_sync::http::{
    EndpointResponse, EndpointStatsSnapshot, Problem, ProblemKind, SegmentEndpoint,
};
use cio_segment_sync::outcome::{Outcome, SkipReason};
use cio_segment_sync::pipeline::{MapError, Pipeline, PipelineError, Step};
use cio_segment_sync::segment_model::Message;
use cio_segment_sync::segment_model::webhook::WebhookLimits;
use cio_segment_sync::segment_model::webhook::signature::{SharedSecret, WebhookVerifier, sign};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

/// How the fake answers one messageId.
#[derive(Debug, Clone)]
enum Script {
    Deliver,
    Skip,
    DeadLetter,
    /// Another worker holds the messageId: retry later.
    InFlight,
    /// The dedupe store is down: retry later.
    StoreDown,
    /// The message can never be mapped: refuse.
    Refuse,
    /// Never answers.
    Hang,
    /// Delivers once the gate has a permit.
    Gate(Arc<Semaphore>),
}

/// A pipeline answering each messageId as scripted (unscripted ones are delivered), recording
/// every message it was given and every message it finished.
#[derive(Debug, Default)]
struct Fake {
    scripts: HashMap<String, Script>,
    seen: Mutex<Vec<Message>>,
    finished: Mutex<Vec<String>>,
    finished_changed: Notify,
    single_calls: AtomicUsize,
    batch_calls: AtomicUsize,
}

impl Fake {
    fn new(scripts: &[(&str, Script)]) -> Arc<Self> {
        Arc::new(Self {
            scripts: scripts
                .iter()
                .map(|(id, script)| ((*id).to_owned(), script.clone()))
                .collect(),
            ..Self::default()
        })
    }

    /// The messageIds the pipeline was given, in the order it was given them.
    fn seen(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|message| message.message_id().unwrap_or_default().to_owned())
            .collect()
    }

    fn seen_messages(&self) -> Vec<Message> {
        self.seen.lock().unwrap().clone()
    }

    fn finished(&self) -> Vec<String> {
        self.finished.lock().unwrap().clone()
    }

    /// Waits until `id` was finished (with a generous bound, so a bug fails instead of hanging).
    async fn wait_finished(&self, id: &str) {
        let wait = async {
            loop {
                let changed = self.finished_changed.notified();
                if self.finished().iter().any(|done| done == id) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the message was never finished");
    }
}

#[async_trait]
impl Pipeline for Fake {
    async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        self.single_calls.fetch_add(1, Ordering::SeqCst);
        self.run(message).await
    }

    async fn process_batch(&self, messages: Vec<Message>) -> Vec<Result<Outcome, PipelineError>> {
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        let mut results = Vec::with_capacity(messages.len());
        for message in &messages {
            results.push(self.run(message).await);
        }
        results
    }
}

impl Fake {
    async fn run(&self, message: &Message) -> Result<Outcome, PipelineError> {
        self.seen.lock().unwrap().push(message.clone());
        let id = message.message_id().unwrap_or_default().to_owned();
        let script = self.scripts.get(&id).cloned().unwrap_or(Script::Deliver);
        let result = match script {
            Script::Deliver => Ok(Outcome::Delivered),
            Script::Skip => Ok(Outcome::Skipped(SkipReason::Filtered)),
            Script::DeadLetter => Ok(Outcome::DeadLettered(DeadLetterReason::TooLarge {
                bytes: 40_000,
                limit: 32_000,
            })),
            Script::InFlight => Err(PipelineError::InFlight),
            Script::StoreDown => Err(PipelineError::Store {
                step: Step::Dedupe,
                source: StoreError::Unavailable {
                    store: "fake deduper",
                    source: "connection refused".into(),
                },
            }),
            Script::Refuse => Err(PipelineError::Mapping(MapError::new(
                "no operation can carry this call",
            ))),
            Script::Hang => std::future::pending().await,
            Script::Gate(gate) => {
                let _permit = gate.acquire().await.expect("the gate is never closed");
                Ok(Outcome::Delivered)
            }
        };
        self.finished.lock().unwrap().push(id);
        self.finished_changed.notify_waiters();
        result
    }
}

fn track(id: &str) -> Value {
    json!({"type": "track", "messageId": id, "userId": format!("user-{id}"), "event": "Signed Up"})
}

/// A track whose `event` is a number: it does not decode.
fn undecodable(id: &str) -> Value {
    json!({"type": "track", "messageId": id, "userId": format!("user-{id}"), "event": 42})
}

fn array(items: &[Value]) -> Bytes {
    Bytes::from(serde_json::to_vec(items).unwrap())
}

fn endpoint(fake: &Arc<Fake>) -> SegmentEndpoint {
    SegmentEndpoint::builder(fake.clone()).build().unwrap()
}

fn counts(answer: &EndpointResponse) -> [usize; 5] {
    let body = &answer.body;
    [
        body.delivered,
        body.skipped,
        body.dead_lettered,
        body.retry_later,
        body.refused,
    ]
}

fn problem(index: Option<usize>, kind: ProblemKind, message: &str) -> Problem {
    Problem::new(index, kind, message)
}

// ---------------------------------------------------------------------------------------------
// 200: every item finished
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delivered_skipped_and_dead_lettered_items_answer_200_with_counts() {
    let fake = Fake::new(&[("m-1", Script::Skip), ("m-2", Script::DeadLetter)]);
    let body = array(&[track("m-0"), track("m-1"), track("m-2")]);

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(counts(&answer), [1, 1, 1, 0, 0]);
    assert_eq!(answer.body.problems, []);
    assert_eq!(fake.seen(), ["m-0", "m-1", "m-2"]);
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn one_event_is_processed_alone() {
    let fake = Fake::new(&[]);
    let body = Bytes::from(serde_json::to_vec(&track("m-0")).unwrap());

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(counts(&answer), [1, 0, 0, 0, 0]);
    assert_eq!(fake.seen(), ["m-0"]);
    assert_eq!(fake.single_calls.load(Ordering::SeqCst), 1);
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_batch_envelope_is_processed_as_a_batch_with_its_context() {
    let fake = Fake::new(&[("m-1", Script::Skip)]);
    let body = json!({
        "batch": [track("m-0"), track("m-1")],
        "context": {"library": {"name": "analytics-go", "version": "3.3.0"}}
    });

    let answer = endpoint(&fake)
        .handle(&HeaderMap::new(), Bytes::from(body.to_string()))
        .await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(counts(&answer), [1, 1, 0, 0, 0]);
    assert_eq!(fake.seen(), ["m-0", "m-1"]);
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 1);
    for message in fake.seen_messages() {
        let context = serde_json::to_value(message.context()).unwrap();
        assert_eq!(context["library"]["name"], "analytics-go");
    }
}

// ---------------------------------------------------------------------------------------------
// 503: an item must be retried
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_item_in_flight_elsewhere_answers_503_naming_its_index() {
    let fake = Fake::new(&[("m-1", Script::InFlight)]);
    let body = array(&[track("m-0"), track("m-1"), track("m-2")]);

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(counts(&answer), [2, 0, 0, 1, 0]);
    assert_eq!(
        answer.body.problems,
        [problem(
            Some(1),
            ProblemKind::RetryLater,
            "item 1: another worker is processing this message"
        )]
    );
    assert_eq!(fake.seen(), ["m-0", "m-1", "m-2"]);
}

#[tokio::test]
async fn an_unavailable_store_answers_503_naming_the_step_and_the_store() {
    let fake = Fake::new(&[("m-0", Script::StoreDown)]);
    let body = Bytes::from(serde_json::to_vec(&track("m-0")).unwrap());

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(counts(&answer), [0, 0, 0, 1, 0]);
    assert_eq!(
        answer.body.problems,
        [problem(
            Some(0),
            ProblemKind::RetryLater,
            "item 0: dedupe step: store failed: fake deduper: backend unavailable: connection refused"
        )]
    );
}

#[tokio::test]
async fn retry_later_wins_over_refused_and_undecodable_items() {
    let fake = Fake::new(&[("m-0", Script::Refuse), ("m-2", Script::InFlight)]);
    let body = array(&[track("m-0"), undecodable("m-1"), track("m-2"), track("m-3")]);

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(counts(&answer), [1, 0, 0, 1, 2]);
    assert_eq!(
        answer.body.problems,
        [
            problem(
                Some(0),
                ProblemKind::Refused,
                "item 0: mapping step failed: the message could not be mapped to Customer.io operations: \
                 no operation can carry this call"
            ),
            problem(
                Some(1),
                ProblemKind::Undecodable,
                "item 1 does not decode: `event`: expected a string, found a number"
            ),
            problem(
                Some(2),
                ProblemKind::RetryLater,
                "item 2: another worker is processing this message"
            ),
        ]
    );
    assert_eq!(fake.seen(), ["m-0", "m-2", "m-3"]);
}

#[tokio::test]
async fn a_delivery_outliving_the_deadline_answers_503_and_finishes_in_the_background() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Fake::new(&[("m-0", Script::Gate(gate.clone()))]);
    let endpoint = SegmentEndpoint::builder(fake.clone())
        .deadline(Duration::from_millis(200))
        .build()
        .unwrap();
    let body = Bytes::from(serde_json::to_vec(&track("m-0")).unwrap());

    let answer = endpoint.handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(counts(&answer), [0, 0, 0, 1, 0]);
    assert_eq!(
        answer.body.problems,
        [problem(
            None,
            ProblemKind::Deadline,
            "1 message(s) were not finished within 200 ms; they go on in the background"
        )]
    );
    // The answer left while the delivery was still waiting; it was not cancelled.
    assert_eq!(fake.seen(), ["m-0"]);
    assert_eq!(fake.finished(), Vec::<String>::new());
    gate.add_permits(1);
    fake.wait_finished("m-0").await;
    assert_eq!(fake.finished(), ["m-0"]);
    assert_eq!(endpoint.stats().snapshot().deadlines, 1);
}

#[tokio::test]
async fn a_pipeline_that_never_answers_is_answered_503_at_the_deadline() {
    let fake = Fake::new(&[("m-1", Script::Hang)]);
    let endpoint = SegmentEndpoint::builder(fake.clone())
        .deadline(Duration::from_millis(200))
        .build()
        .unwrap();
    let body = array(&[track("m-0"), track("m-1"), undecodable("m-2")]);

    let answer = endpoint.handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    // Which of the batch finished is not known at the deadline: both count as retry later.
    assert_eq!(counts(&answer), [0, 0, 0, 2, 1]);
    assert_eq!(
        answer.body.problems,
        [
            problem(
                None,
                ProblemKind::Deadline,
                "2 message(s) were not finished within 200 ms; they go on in the background"
            ),
            problem(
                Some(2),
                ProblemKind::Undecodable,
                "item 2 does not decode: `event`: expected a string, found a number"
            ),
        ]
    );
    assert_eq!(fake.seen(), ["m-0", "m-1"]);
}

// ---------------------------------------------------------------------------------------------
// 400: items refused or undecodable, the others handled; whole-body errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_item_answers_400_naming_its_index_and_the_others_are_handled() {
    let fake = Fake::new(&[("m-1", Script::Refuse), ("m-2", Script::Skip)]);
    let body = array(&[track("m-0"), track("m-1"), track("m-2")]);

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(counts(&answer), [1, 1, 0, 0, 1]);
    assert_eq!(
        answer.body.problems,
        [problem(
            Some(1),
            ProblemKind::Refused,
            "item 1: mapping step failed: the message could not be mapped to Customer.io operations: \
             no operation can carry this call"
        )]
    );
    assert_eq!(fake.finished(), ["m-0", "m-1", "m-2"]);
}

#[tokio::test]
async fn an_undecodable_item_answers_400_naming_its_index_and_the_others_are_processed() {
    let fake = Fake::new(&[]);
    let body = array(&[track("m-0"), undecodable("m-1"), track("m-2")]);

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(counts(&answer), [2, 0, 0, 0, 1]);
    assert_eq!(
        answer.body.problems,
        [problem(
            Some(1),
            ProblemKind::Undecodable,
            "item 1 does not decode: `event`: expected a string, found a number"
        )]
    );
    assert_eq!(fake.finished(), ["m-0", "m-2"]);
    let json: Value = serde_json::from_slice(&answer.to_json_bytes()).unwrap();
    assert_eq!(
        json,
        json!({
            "delivered": 2, "skipped": 0, "dead_lettered": 0, "retry_later": 0, "refused": 1,
            "problems": [{
                "index": 1,
                "kind": "undecodable",
                "message": "item 1 does not decode: `event`: expected a string, found a number"
            }]
        })
    );
}

#[tokio::test]
async fn a_body_with_no_decodable_item_answers_400_and_runs_nothing() {
    let fake = Fake::new(&[]);
    let body = array(&[undecodable("m-0"), json!({"type": "bogus"})]);

    let answer = endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(counts(&answer), [0, 0, 0, 0, 2]);
    let indexes: Vec<_> = answer.body.problems.iter().map(|p| p.index).collect();
    assert_eq!(indexes, [Some(0), Some(1)]);
    assert_eq!(fake.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn whole_body_errors_answer_400_naming_what_was_wrong() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "the body is empty"),
        (
            b"{\"type\": \"track\",",
            "the body is not JSON: unexpected end of input at line 1, column 17",
        ),
        (
            b"42",
            "the body is a number, not an event object, an array of events or a batch envelope",
        ),
        (b"[]", "the body holds no events: it is an empty array"),
        (
            br#"{"batch": {"type": "track"}}"#,
            "`batch`: expected an array, found an object",
        ),
        (
            br#"[{"type":"track","userId":"u","event":"A"},{"type":"track","userId":"u","event":"B"},{"type":"track","userId":"u","event":"C"}]"#,
            "the body holds 3 items; the limit is 2",
        ),
        (
            br#"{"type": "track", "userId": "ada@example.com", "event": 42}"#,
            "the event does not decode: `event`: expected a string, found a number",
        ),
    ];
    for (body, message) in cases {
        let fake = Fake::new(&[]);
        let endpoint = SegmentEndpoint::builder(fake.clone())
            .limits(WebhookLimits::default().with_max_items(NonZeroUsize::new(2).unwrap()))
            .build()
            .unwrap();

        let answer = endpoint
            .handle(&HeaderMap::new(), Bytes::copy_from_slice(body))
            .await;

        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{message}");
        assert_eq!(counts(&answer), [0; 5], "{message}");
        assert_eq!(
            answer.body.problems,
            [problem(None, ProblemKind::Undecodable, message)]
        );
        assert_eq!(fake.seen(), Vec::<String>::new(), "{message}");
    }
}

#[tokio::test]
async fn answers_hold_no_customer_data() {
    let fake = Fake::new(&[]);
    let endpoint = endpoint(&fake);
    let items = [
        json!({"type": "ada@example.com", "userId": "ada@example.com"}),
        json!({"type": "track", "event": "x", "userId": "u", "timestamp": "ada@example.com"}),
        json!({"type": "track", "event": "x", "userId": 7, "context": "ada@example.com"}),
        json!({"type": "identify", "userId": "u", "traits": ["ada@example.com"]}),
    ];
    let answers = [
        endpoint.handle(&HeaderMap::new(), array(&items)).await,
        endpoint
            .handle(&HeaderMap::new(), Bytes::from(items[0].to_string()))
            .await,
        endpoint
            .handle(
                &HeaderMap::new(),
                Bytes::from_static(b"{\"ada@example.com\"}"),
            )
            .await,
    ];
    for answer in answers {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let json = String::from_utf8(answer.to_json_bytes().to_vec()).unwrap();
        assert!(!json.contains("ada@"), "{json}");
    }
    assert_eq!(fake.seen(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// 401: signatures
// ---------------------------------------------------------------------------------------------

const SECRET: &str = "segment-shared-secret";

fn signed_endpoint(fake: &Arc<Fake>) -> SegmentEndpoint {
    SegmentEndpoint::builder(fake.clone())
        .verifier(WebhookVerifier::new(SharedSecret::new(SECRET)))
        .build()
        .unwrap()
}

fn signature(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-signature", HeaderValue::from_str(value).unwrap());
    headers
}

#[tokio::test]
async fn a_missing_signature_answers_401_and_runs_nothing() {
    let fake = Fake::new(&[]);
    let body = Bytes::from(track("m-0").to_string());

    let answer = signed_endpoint(&fake).handle(&HeaderMap::new(), body).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body.problems,
        [problem(
            None,
            ProblemKind::Signature,
            "the X-Signature header is missing"
        )]
    );
    assert_eq!(fake.seen(), Vec::<String>::new());
}

#[tokio::test]
async fn a_bad_signature_answers_401_and_runs_nothing() {
    let fake = Fake::new(&[]);
    let endpoint = signed_endpoint(&fake);
    let body = track("m-0").to_string();
    let wrong_secret = sign(&SharedSecret::new("another secret"), body.as_bytes());
    let cases = [
        (
            wrong_secret.as_str(),
            "the X-Signature header does not match the request body",
        ),
        (
            "not-hex",
            "the X-Signature header is malformed: expected 40 hex characters, found 7 bytes",
        ),
    ];
    for (header, message) in cases {
        let answer = endpoint
            .handle(&signature(header), Bytes::from(body.clone()))
            .await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            answer.body.problems,
            [problem(None, ProblemKind::Signature, message)]
        );
    }
    assert_eq!(fake.seen(), Vec::<String>::new());
    assert_eq!(endpoint.stats().snapshot().unauthorized, 2);
}

#[tokio::test]
async fn signed_events_and_batches_are_accepted() {
    let fake = Fake::new(&[]);
    let endpoint = signed_endpoint(&fake);
    let secret = SharedSecret::new(SECRET);
    // One event: the whole body is signed.
    let one = track("m-0").to_string();
    let answer = endpoint
        .handle(&signature(&sign(&secret, one.as_bytes())), Bytes::from(one))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    // A batch (Webhooks (Actions)): its first element is signed.
    let first = track("m-1").to_string();
    let batch = format!("[{first},{}]", track("m-2"));
    let answer = endpoint
        .handle(
            &signature(&sign(&secret, first.as_bytes())),
            Bytes::from(batch),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(counts(&answer), [2, 0, 0, 0, 0]);
    assert_eq!(fake.seen(), ["m-0", "m-1", "m-2"]);
}

// ---------------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stats_count_every_answer_by_status_and_outcome() {
    let fake = Fake::new(&[
        ("m-1", Script::Skip),
        ("m-2", Script::InFlight),
        ("m-3", Script::Refuse),
    ]);
    let endpoint = endpoint(&fake);
    let answers = [
        endpoint
            .handle(&HeaderMap::new(), array(&[track("m-0"), track("m-1")]))
            .await,
        endpoint
            .handle(&HeaderMap::new(), array(&[track("m-2"), track("m-4")]))
            .await,
        endpoint
            .handle(
                &HeaderMap::new(),
                array(&[track("m-3"), undecodable("m-5")]),
            )
            .await,
        endpoint
            .handle(&HeaderMap::new(), Bytes::from_static(b"[]"))
            .await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses, [200, 503, 400, 400]);
    assert_eq!(
        endpoint.stats().snapshot(),
        expected_stats(|s| {
            s.ok = 1;
            s.service_unavailable = 1;
            s.bad_request = 2;
            s.delivered = 2;
            s.skipped = 1;
            s.retry_later = 1;
            s.refused = 2;
        })
    );
}

fn expected_stats(set: impl FnOnce(&mut EndpointStatsSnapshot)) -> EndpointStatsSnapshot {
    let mut snapshot = EndpointStatsSnapshot::default();
    set(&mut snapshot);
    snapshot
}
