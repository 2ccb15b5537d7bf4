//! `CustomerIoEndpoint` (feature `http`): every row of the Customer.io answer table, over real
//! flows: an `EngagementFlow` whose dispatcher sends to a wiremock Segment `/v1/batch`, and a
//! `BackfillFlow` reading a wiremock Profile API. Requests are signed as Customer.io signs them
//! and verified at a fixed "now" (`handle_at`), except in the one test of `handle` itself.
//! Exact request counts are asserted, never durations: the deadline test uses a short real
//! deadline and a Segment that answers late.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use cio_segment_sync::customerio_client::track::v2::Operation;
use cio_segment_sync::customerio_client::webhook::{SignatureVerifier, WebhookSigningKey};
use cio_segment_sync::dead_letter::{DeadLetterReason, MemoryDeadLetters};
use cio_segment_sync::dedupe::{Claim, ClaimToken, Deduper, MemoryDeduper};
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, FailureKind, RetryPolicy};
use cio_segment_sync::flows::backfill::{BackfillConfig, BackfillFlow};
use cio_segment_sync::flows::engagement::{DEDUPE_KEY_PREFIX, EngagementConfig, EngagementFlow};
use cio_segment_sync::http::{
    CUSTOMERIO_DEAD_LETTER_SINK, CUSTOMERIO_WINDOW, CustomerIoEndpoint, CustomerIoEndpointBuilder,
    EndpointConfigError, EndpointResponse, Problem, ProblemKind,
};
use cio_segment_sync::loop_guard::StampingLoopGuard;
use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::client::BaseUrl;
use cio_segment_sync::segment_model::client::profile::{AccessToken, ProfileClient};
use cio_segment_sync::segment_model::client::tracking::{TrackingClient, WriteKey};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SIGNING_KEY: &str = "reporting-webhook-signing-key";
/// When the webhooks were signed, and "now" for the verifier.
const SIGNED_AT: u64 = 1_717_173_005;
const OPENED_ID: &str = "01E4C4CT6YDC7Y5M7FE1GWWPQJ";
const SUBSCRIBED_ID: &str = "01HSUB0000000000000000001";
const PROFILE_PATH: &str = "/v1/spaces/spa_1/collections/users/profiles/user_id:user-42/traits";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SIGNED_AT)
}

fn opened() -> Value {
    json!({
        "event_id": OPENED_ID, "object_type": "email", "metric": "opened",
        "timestamp": 1_717_173_000,
        "data": {
            "identifiers": {"id": "user-42", "email": "ada@example.com"},
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "campaign_id": 5,
            "recipient": "ada@example.com", "subject": "Your trial ends soon"
        }
    })
}

fn subscribed() -> Value {
    json!({
        "event_id": SUBSCRIBED_ID, "object_type": "customer", "metric": "subscribed",
        "timestamp": 1_717_173_000,
        "data": {"identifiers": {"id": "user-42", "email": "ada@example.com"}}
    })
}

/// The headers Customer.io sends with `body`, signed at `signed_at` with `key`.
fn signed_with(body: &[u8], signed_at: u64, key: &str) -> HeaderMap {
    let signature = WebhookSigningKey::new(key).unwrap().sign(signed_at, body);
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-CIO-Timestamp",
        HeaderValue::from_str(&signed_at.to_string()).unwrap(),
    );
    headers.insert(
        "X-CIO-Signature",
        HeaderValue::from_str(&signature).unwrap(),
    );
    headers
}

fn body(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap())
}

fn segment_batch() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path("/v1/batch"))
}

/// An engagement flow sending each event at once to `segment` (two attempts at most).
fn engagement(segment: &MockServer) -> (Arc<EngagementFlow>, Arc<MemoryDeduper>) {
    let client = TrackingClient::builder(WriteKey::new("wk"))
        .base_url(BaseUrl::parse(&segment.uri()).unwrap())
        .build()
        .unwrap();
    let config = DispatcherConfig::default()
        .with_max_items(std::num::NonZeroUsize::MIN)
        .with_attempt_timeout(Duration::from_secs(20))
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(20))
                .with_jitter_seed(5),
        );
    let dead = Arc::new(MemoryDeadLetters::new(100));
    let (handle, _worker) = Dispatcher::spawn(
        SegmentTrackingSink::new(client),
        config,
        Arc::new(Unlimited),
        dead.clone(),
    );
    let deduper = Arc::new(MemoryDeduper::default());
    let flow = EngagementFlow::new(
        EngagementConfig::default(),
        verifier(),
        deduper.clone(),
        Arc::new(StampingLoopGuard::default()),
        handle,
        dead,
    )
    .unwrap();
    (Arc::new(flow), deduper)
}

/// Accepts every Customer.io write and counts them.
#[derive(Debug, Default)]
struct CountingDeliver(AtomicUsize);

#[async_trait]
impl Deliver for CountingDeliver {
    async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Delivered::Accepted)
    }
}

/// A backfill flow reading `profiles` and writing to a counting fake.
fn backfill(profiles: &MockServer) -> (Arc<BackfillFlow>, Arc<CountingDeliver>) {
    let client = ProfileClient::builder(AccessToken::new("tok"), "spa_1")
        .base_url(BaseUrl::parse(&profiles.uri()).unwrap())
        .build()
        .unwrap();
    let deliver = Arc::new(CountingDeliver::default());
    let flow = BackfillFlow::new(
        BackfillConfig::default(),
        client,
        Arc::new(MemoryDeduper::default()),
        deliver.clone(),
    )
    .unwrap()
    .with_rate_limiter(Arc::new(Unlimited));
    (Arc::new(flow), deliver)
}

fn verifier() -> SignatureVerifier {
    SignatureVerifier::new(WebhookSigningKey::new(SIGNING_KEY).unwrap())
}

fn builder() -> CustomerIoEndpointBuilder {
    CustomerIoEndpoint::builder(verifier())
}

async fn post(endpoint: &CustomerIoEndpoint, value: &Value) -> EndpointResponse {
    let body = body(value);
    let headers = signed_with(&body, SIGNED_AT, SIGNING_KEY);
    endpoint.handle_at(&headers, body, now()).await
}

/// Asserts that `answer` has `status` and names exactly one problem about the whole request:
/// of `kind`, saying `message`.
#[track_caller]
fn assert_answer(answer: &EndpointResponse, status: StatusCode, kind: ProblemKind, message: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body.problems);
    assert_eq!(answer.body.problems, [Problem::new(None, kind, message)]);
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

/// Polls `done` until it holds (bounded, so a bug fails instead of hanging).
async fn eventually(mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the condition never held");
}

/// The number of requests `server` received.
async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

/// The Profile API lookup of `user-42`.
fn profile_lookup() -> wiremock::MockBuilder {
    Mock::given(method("GET")).and(path(PROFILE_PATH))
}

/// Both flows over their own mock servers: the engagement flow sending to `segment`, the
/// backfill reading `profiles`; what the tests look at afterwards.
struct Harness {
    segment: MockServer,
    profiles: MockServer,
    engagement: Arc<EngagementFlow>,
    deduper: Arc<MemoryDeduper>,
    backfill: Arc<BackfillFlow>,
    deliver: Arc<CountingDeliver>,
}

impl Harness {
    async fn start() -> Self {
        let segment = MockServer::start().await;
        let profiles = MockServer::start().await;
        let (engagement, deduper) = engagement(&segment);
        let (backfill, deliver) = backfill(&profiles);
        Self {
            segment,
            profiles,
            engagement,
            deduper,
            backfill,
            deliver,
        }
    }

    /// An endpoint over the engagement flow alone.
    fn with_engagement(&self) -> CustomerIoEndpointBuilder {
        builder().engagement(self.engagement.clone())
    }

    /// An endpoint over both flows.
    fn with_both(&self) -> CustomerIoEndpointBuilder {
        self.with_engagement().backfill(self.backfill.clone())
    }

    /// Segment accepts exactly one batch.
    async fn segment_accepts_once(&self) {
        segment_batch()
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&self.segment)
            .await;
    }

    /// Claims webhook event `event_id` as another worker would, for a minute.
    async fn claim_elsewhere(&self, event_id: &str) -> ClaimToken {
        let key = format!("{DEDUPE_KEY_PREFIX}{event_id}");
        match self
            .deduper
            .claim(&key, Duration::from_secs(60))
            .await
            .unwrap()
        {
            Claim::First(token) => token,
            other => panic!("the key was free, not {other:?}"),
        }
    }

    /// How many Customer.io writes the backfill made.
    fn backfilled(&self) -> usize {
        self.deliver.0.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// 200: finished
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_event_both_flows_finish_answers_200_with_counts() {
    let h = Harness::start().await;
    h.segment_accepts_once().await;
    let endpoint = h.with_both().build().unwrap();

    let answer = post(&endpoint, &opened()).await;

    assert_eq!(answer.status, StatusCode::OK);
    // Engagement delivered "Email Opened"; the backfill skips anything but `subscribed`.
    assert_eq!(counts(&answer), [1, 1, 0, 0, 0]);
    assert_eq!(answer.body.problems, []);
    assert_eq!(h.engagement.stats().delivered, 1);
    assert_eq!(h.backfilled(), 0);
    assert_eq!(requests(&h.profiles).await, 0);
}

#[tokio::test]
async fn a_subscription_is_backfilled_and_skipped_by_the_engagement_flow() {
    let h = Harness::start().await;
    profile_lookup()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"plan": "pro"},
            "cursor": {"url": "/v1/...", "has_more": false, "next": ""}
        })))
        .expect(1)
        .mount(&h.profiles)
        .await;
    let endpoint = h.with_both().build().unwrap();

    let answer = post(&endpoint, &subscribed()).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(counts(&answer), [1, 1, 0, 0, 0]);
    assert_eq!(h.backfilled(), 1);
    assert_eq!(requests(&h.segment).await, 0);
}

#[tokio::test]
async fn a_redelivered_event_is_answered_200_as_a_duplicate() {
    let h = Harness::start().await;
    h.segment_accepts_once().await;
    let endpoint = h.with_engagement().build().unwrap();

    assert_eq!(counts(&post(&endpoint, &opened()).await), [1, 0, 0, 0, 0]);
    let again = post(&endpoint, &opened()).await;

    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(counts(&again), [0, 1, 0, 0, 0]);
    assert_eq!(h.engagement.stats().duplicates, 1);
}

// ---------------------------------------------------------------------------------------------
// 200: authentic but unusable
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_undecodable_authentic_body_answers_200_and_is_dead_lettered() {
    let h = Harness::start().await;
    let dead_letters = Arc::new(MemoryDeadLetters::new(10));
    let endpoint = h
        .with_engagement()
        .dead_letters(dead_letters.clone())
        .build()
        .unwrap();
    let wrong_type = json!({"event_id": 5, "object_type": "email", "metric": "opened"});

    let answer = post(&endpoint, &wrong_type).await;
    let not_json = Bytes::from_static(b"ada@example.com opened");
    let headers = signed_with(&not_json, SIGNED_AT, SIGNING_KEY);
    let not_json_answer = endpoint.handle_at(&headers, not_json, now()).await;

    for answer in [&answer, &not_json_answer] {
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(counts(answer), [0, 0, 1, 0, 0]);
        assert_eq!(answer.body.problems.len(), 1);
        assert_eq!(answer.body.problems[0].kind, ProblemKind::Undecodable);
        assert_eq!(answer.body.problems[0].index, None);
        let json = String::from_utf8(answer.to_json_bytes().to_vec()).unwrap();
        assert!(!json.contains("ada@"), "{json}");
    }
    assert_eq!(
        answer.body.problems[0].message,
        "`$.event_id` has the wrong type: expected a string, found an integer"
    );
    let entries = dead_letters.entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].sink, CUSTOMERIO_DEAD_LETTER_SINK);
    assert_eq!(entries[0].item, wrong_type);
    assert!(matches!(
        &entries[0].reason,
        DeadLetterReason::Failed { kind: FailureKind::Permanent, error }
            if error == &answer.body.problems[0].message
    ));
    assert_eq!(entries[1].item, json!("ada@example.com opened"));
    assert_eq!(requests(&h.segment).await, 0);
    assert_eq!(h.engagement.stats(), Default::default());
}

#[tokio::test]
async fn an_undecodable_authentic_body_without_a_sink_answers_200_as_refused() {
    let h = Harness::start().await;
    let endpoint = h.with_engagement().build().unwrap();

    let answer = post(&endpoint, &json!({"object_type": "email"})).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(counts(&answer), [0, 0, 0, 0, 1]);
    assert_eq!(answer.body.problems[0].kind, ProblemKind::Undecodable);
}

#[tokio::test]
async fn an_untranslatable_event_answers_200_naming_the_problem_and_is_dead_lettered() {
    let h = Harness::start().await;
    let dead_letters = Arc::new(MemoryDeadLetters::new(10));
    let endpoint = h
        .with_engagement()
        .dead_letters(dead_letters.clone())
        .build()
        .unwrap();
    let mut event = opened();
    event["timestamp"] = json!(i64::MAX);

    let answer = post(&endpoint, &event).await;

    assert_answer(
        &answer,
        StatusCode::OK,
        ProblemKind::Refused,
        "engagement flow: the webhook event could not be translated: `timestamp` is out of range",
    );
    assert_eq!(counts(&answer), [0, 0, 1, 0, 0]);
    let entries = dead_letters.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].item["event_id"], OPENED_ID);
    assert_eq!(requests(&h.segment).await, 0);
}

// ---------------------------------------------------------------------------------------------
// 503: retry later
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn segment_down_answers_503_and_the_retry_is_delivered() {
    let h = Harness::start().await;
    segment_batch()
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&h.segment)
        .await;
    h.segment_accepts_once().await;
    let endpoint = h.with_engagement().build().unwrap();

    let answer = post(&endpoint, &opened()).await;

    assert_answer(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemKind::RetryLater,
        "engagement flow: the Segment event was not delivered: the delivery engine stopped \
             retrying a failure that may pass",
    );
    assert_eq!(counts(&answer), [0, 0, 0, 1, 0]);
    // The claim was released: Customer.io's retry is delivered, not skipped.
    let retry = post(&endpoint, &opened()).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(counts(&retry), [1, 0, 0, 0, 0]);
}

#[tokio::test]
async fn an_event_in_flight_elsewhere_answers_503() {
    let h = Harness::start().await;
    let endpoint = h.with_engagement().build().unwrap();
    let _held = h.claim_elsewhere(OPENED_ID).await;

    let answer = post(&endpoint, &opened()).await;

    assert_answer(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemKind::RetryLater,
        "engagement flow: another worker is handling this webhook event",
    );
    assert_eq!(requests(&h.segment).await, 0);
}

#[tokio::test]
async fn one_flow_asking_to_retry_answers_503_whatever_the_other_did() {
    let h = Harness::start().await;
    profile_lookup()
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&h.profiles)
        .await;
    let endpoint = h.with_both().build().unwrap();

    let answer = post(&endpoint, &subscribed()).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body.retry_later, 1);
    let problem = answer
        .body
        .problems
        .iter()
        .find(|problem| problem.kind == ProblemKind::RetryLater)
        .expect("the backfill's problem is named");
    assert!(
        problem
            .message
            .starts_with("backfill flow: the Profile API lookup failed"),
        "{}",
        problem.message
    );
    assert_eq!(h.backfilled(), 0);
}

#[tokio::test]
async fn a_retry_later_is_answered_at_once_without_waiting_for_the_other_flow() {
    let h = Harness::start().await;
    // The backfill's lookup is answered long after the endpoint's deadline.
    profile_lookup()
        .respond_with(ResponseTemplate::new(404).set_delay(Duration::from_secs(60)))
        .mount(&h.profiles)
        .await;
    let endpoint = h.with_both().build().unwrap();
    let _held = h.claim_elsewhere(SUBSCRIBED_ID).await;

    let answer = post(&endpoint, &subscribed()).await;

    // Only the engagement flow's problem: had the endpoint waited for the backfill, the
    // deadline would have passed and named it too.
    assert_answer(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemKind::RetryLater,
        "engagement flow: another worker is handling this webhook event",
    );
    assert_eq!(counts(&answer), [0, 0, 0, 1, 0]);
    assert_eq!(endpoint.stats().snapshot().deadlines, 0);
    // The backfill was started, and was left running.
    let lookup_sent = async {
        while requests(&h.profiles).await == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), lookup_sent)
        .await
        .expect("the backfill never looked the profile up");
    assert_eq!(h.backfill.stats(), Default::default());
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_kept_answers_503() {
    let h = Harness::start().await;
    let full = Arc::new(MemoryDeadLetters::new(0));
    let endpoint = h
        .with_engagement()
        .dead_letters(full.clone())
        .build()
        .unwrap();
    let mut untranslatable = opened();
    untranslatable["timestamp"] = json!(i64::MAX);

    let undecodable = post(&endpoint, &json!({"event_id": 5})).await;
    let refused = post(&endpoint, &untranslatable).await;

    for answer in [&undecodable, &refused] {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body.retry_later, 1);
        assert_eq!(answer.body.dead_lettered, 0);
        assert!(
            answer
                .body
                .problems
                .iter()
                .any(|p| p.message.contains("its dead letter was not recorded")),
            "{:?}",
            answer.body.problems
        );
    }
    assert_eq!(full.dropped(), 2);
}

#[tokio::test]
async fn a_delivery_outliving_the_deadline_answers_503_and_finishes_in_the_background() {
    let h = Harness::start().await;
    segment_batch()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(Duration::from_millis(1500)),
        )
        .expect(1)
        .mount(&h.segment)
        .await;
    let endpoint = h
        .with_engagement()
        .deadline(Duration::from_millis(200))
        .build()
        .unwrap();

    let answer = post(&endpoint, &opened()).await;

    assert_answer(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        ProblemKind::Deadline,
        "engagement flow: not finished within 200 ms; it goes on in the background",
    );
    assert_eq!(counts(&answer), [0, 0, 0, 1, 0]);
    assert_eq!(h.engagement.stats().delivered, 0);
    // Not cancelled: Segment's late answer is still awaited and the event delivered.
    eventually(|| h.engagement.stats().delivered == 1).await;
    // Customer.io's retry now finds it finished.
    let retry = post(&endpoint, &opened()).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(counts(&retry), [0, 1, 0, 0, 0]);
    assert_eq!(endpoint.stats().snapshot().deadlines, 1);
}

// ---------------------------------------------------------------------------------------------
// 401: signatures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_bad_and_stale_signatures_answer_401_and_nothing_runs() {
    let h = Harness::start().await;
    let endpoint = h.with_both().build().unwrap();
    let body = body(&opened());
    let cases = [
        (HeaderMap::new(), "the `x-cio-timestamp` header is missing"),
        (
            signed_with(&body, SIGNED_AT, "another key"),
            "the signature does not match the request body and timestamp",
        ),
        (
            signed_with(&body, SIGNED_AT - 3600, SIGNING_KEY),
            "the request was signed 3600 s ago, beyond the 300 s tolerance",
        ),
    ];
    for (headers, message) in cases {
        let answer = endpoint.handle_at(&headers, body.clone(), now()).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{message}");
        assert_eq!(
            answer.body.problems,
            [Problem::new(None, ProblemKind::Signature, message)]
        );
    }
    assert_eq!(h.engagement.stats(), Default::default());
    assert_eq!(h.backfill.stats(), Default::default());
    assert_eq!(h.backfilled(), 0);
    // The event id was never claimed.
    let key = format!("{DEDUPE_KEY_PREFIX}{OPENED_ID}");
    assert!(matches!(
        h.deduper.claim(&key, Duration::from_secs(1)).await.unwrap(),
        Claim::First(_)
    ));
    assert_eq!(requests(&h.segment).await, 0);
    assert_eq!(endpoint.stats().snapshot().unauthorized, 3);
}

#[tokio::test]
async fn handle_checks_the_signature_window_against_the_system_clock() {
    let h = Harness::start().await;
    h.segment_accepts_once().await;
    let endpoint = h.with_engagement().build().unwrap();
    let body = body(&opened());
    let signed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let fresh = endpoint
        .handle(&signed_with(&body, signed_at, SIGNING_KEY), body.clone())
        .await;
    let stale = endpoint
        .handle(&signed_with(&body, SIGNED_AT, SIGNING_KEY), body)
        .await;

    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deadlines_outside_customerio_window_are_refused() {
    let h = Harness::start().await;
    let build = |deadline: Duration| h.with_engagement().deadline(deadline).build();

    assert_eq!(
        build(Duration::ZERO).unwrap_err(),
        EndpointConfigError::ZeroDeadline {
            endpoint: "Customer.io"
        }
    );
    for deadline in [CUSTOMERIO_WINDOW, Duration::from_secs(5)] {
        assert_eq!(
            build(deadline).unwrap_err(),
            EndpointConfigError::OutsideCustomerIoWindow { deadline }
        );
    }
    let endpoint = build(CUSTOMERIO_WINDOW - Duration::from_millis(1)).unwrap();
    assert_eq!(endpoint.deadline(), Duration::from_millis(3999));
    assert_eq!(
        h.with_engagement().build().unwrap().deadline(),
        CustomerIoEndpoint::DEFAULT_DEADLINE
    );
    assert_eq!(builder().build().unwrap_err(), EndpointConfigError::NoFlow);
}
