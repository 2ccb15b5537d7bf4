//! Flow 6, new-subscriber backfill, end to end: a Customer.io `subscribed` reporting event (or
//! a direct call) → `BackfillFlow` → a wiremock Segment Profile API → the mapping → dispatcher
//! → `CustomerIoBatchSink` → a wiremock Customer.io. Exact paths, queries, auth and bodies, and
//! exact request counts; a counting rate limiter proves a token is taken per Profile API call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cio_segment_sync::StoreError;
use cio_segment_sync::customerio_client::webhook::ReportingEvent;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::MemoryDeduper;
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle};
use cio_segment_sync::flows::backfill::{
    BackfillConfig, BackfillError, BackfillFlow, BackfillPerson,
};
use cio_segment_sync::outcome::{Ack, AckRule, Outcome, SkipReason};
use cio_segment_sync::pipeline::DispatchDeliver;
use cio_segment_sync::rate_limit::{Admission, RateLimiter, Unlimited};
use cio_segment_sync::segment_model::client::BaseUrl;
use cio_segment_sync::segment_model::client::profile::{AccessToken, ProfileClient};
use serde_json::{Value, json};
use wiremock::matchers::{any, body_json, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// `Basic base64("tok:")`: the access token as user name, empty password.
const PROFILE_AUTH: &str = "Basic dG9rOg==";
/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
const BY_ID: &str = "/v1/spaces/spa_1/collections/users/profiles/user_id:user-42/traits";
const BY_EMAIL: &str = "/v1/spaces/spa_1/collections/users/profiles/email:ada%40example.com/traits";

/// Grants every token and counts how many were taken.
#[derive(Debug, Default)]
struct CountingLimiter(AtomicUsize);

impl CountingLimiter {
    fn taken(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl RateLimiter for CountingLimiter {
    async fn try_acquire(&self) -> Result<Admission, StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Admission::Granted)
    }

    /// This test limiter keeps no pause.
    async fn pause(&self, _delay: std::time::Duration) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Matches the exact query string (`None`: no query at all).
struct ExactQuery(Option<&'static str>);

impl Match for ExactQuery {
    fn matches(&self, request: &Request) -> bool {
        request.url.query() == self.0
    }
}

fn profile(path_: &str, query: Option<&'static str>) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(path_.to_owned()))
        .and(ExactQuery(query))
        .and(header("authorization", PROFILE_AUTH))
}

fn traits_page(traits: Value, next: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "traits": traits,
        "cursor": {"url": "/v1/...", "has_more": next.is_some(), "next": next.unwrap_or("")}
    }))
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404)
        .set_body_json(json!({"error": {"code": "not_found", "message": "Profile was not found."}}))
}

fn cio_batch(body: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
}

struct Setup {
    flow: BackfillFlow,
    limiter: Arc<CountingLimiter>,
    handle: DispatcherHandle<CustomerIoBatchSink>,
}

fn setup(profiles: &MockServer, cio: &MockServer, config: BackfillConfig) -> Setup {
    let profile_client = ProfileClient::builder(AccessToken::new("tok"), "spa_1")
        .base_url(BaseUrl::parse(&profiles.uri()).unwrap())
        .build()
        .unwrap();
    let cio_config = ClientConfig::new(Region::Us)
        .with_track_base_url(&cio.uri())
        .unwrap();
    let client =
        TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), cio_config).unwrap();
    let dead = Arc::new(MemoryDeadLetters::new(100));
    let (handle, _worker) = Dispatcher::spawn(
        CustomerIoBatchSink::new(client),
        DispatcherConfig::default().with_linger(Duration::from_millis(10)),
        Arc::new(Unlimited),
        dead.clone(),
    );
    let limiter = Arc::new(CountingLimiter::default());
    let flow = BackfillFlow::new(
        config,
        profile_client,
        Arc::new(MemoryDeduper::default()),
        Arc::new(DispatchDeliver::new(handle.clone(), dead)),
    )
    .unwrap()
    .with_rate_limiter(limiter.clone());
    Setup {
        flow,
        limiter,
        handle,
    }
}

fn subscribed(event_id: &str, identifiers: Value) -> ReportingEvent {
    ReportingEvent::from_value(json!({
        "event_id": event_id, "object_type": "customer", "metric": "subscribed",
        "timestamp": 1_717_173_000,
        "data": {"identifiers": identifiers, "customer_id": "", "email_address": null}
    }))
    .unwrap()
}

fn ada() -> Value {
    json!({"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"})
}

#[tokio::test]
async fn a_subscription_reads_the_profile_and_writes_the_exact_identify() {
    let profiles = MockServer::start().await;
    let cio = MockServer::start().await;
    profile(BY_ID, Some("limit=200"))
        .respond_with(traits_page(
            json!({
                "email": "ada@example.com", "plan": "pro", "orders_90d": 3,
                "trial_ends_at": "2024-06-01T00:00:00Z", "unsubscribed": true
            }),
            None,
        ))
        .expect(1)
        .mount(&profiles)
        .await;
    cio_batch(json!({"batch": [{
        "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
        "attributes": {
            "email": "ada@example.com", "plan": "pro", "orders_90d": 3,
            "trial_ends_at": 1_717_200_000
        }
    }]}))
    .respond_with(ResponseTemplate::new(200))
    .expect(1)
    .mount(&cio)
    .await;
    let s = setup(&profiles, &cio, BackfillConfig::default());

    let event = subscribed("01HSUB0000000000000000001", ada());
    assert_eq!(s.flow.on_event(&event).await.unwrap(), Outcome::Delivered);
    assert_eq!(s.limiter.taken(), 1);
    // Customer.io's retry of the same event does nothing more.
    assert_eq!(
        s.flow.on_event(&event).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    assert_eq!(s.limiter.taken(), 1);
    s.handle.shutdown().await;
    profiles.verify().await;
    cio.verify().await;
}

#[tokio::test]
async fn no_profile_by_id_falls_back_to_email_and_follows_every_page() {
    let profiles = MockServer::start().await;
    let cio = MockServer::start().await;
    profile(BY_ID, Some("limit=50&include=plan%2Ccompany"))
        .respond_with(not_found())
        .expect(1)
        .mount(&profiles)
        .await;
    profile(BY_EMAIL, Some("limit=50&include=plan%2Ccompany"))
        .respond_with(traits_page(json!({"plan": "team"}), Some("page-2")))
        .expect(1)
        .mount(&profiles)
        .await;
    profile(
        BY_EMAIL,
        Some("limit=50&include=plan%2Ccompany&next=page-2"),
    )
    .respond_with(traits_page(json!({"company": "Analytical Engines"}), None))
    .expect(1)
    .mount(&profiles)
    .await;
    cio_batch(json!({"batch": [{
        "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
        "attributes": {"plan": "team", "organisation": "Analytical Engines"}
    }]}))
    .respond_with(ResponseTemplate::new(200))
    .expect(1)
    .mount(&cio)
    .await;
    let config: BackfillConfig = serde_json::from_value(json!({
        "page_size": 50, "include": ["plan", "company"],
        "mapping": {"traits": {"rename": {"company": "organisation"}}}
    }))
    .unwrap();
    let s = setup(&profiles, &cio, config);

    let person = BackfillPerson::new()
        .with_id("user-42")
        .with_email("ada@example.com");
    assert_eq!(s.flow.backfill(&person).await.unwrap(), Outcome::Delivered);
    // One token per Profile API request: id lookup, email lookup, second page.
    assert_eq!(s.limiter.taken(), 3);
    s.handle.shutdown().await;
    profiles.verify().await;
    cio.verify().await;
}

#[tokio::test]
async fn a_missing_profile_is_a_skip_and_customerio_gets_nothing() {
    let profiles = MockServer::start().await;
    let cio = MockServer::start().await;
    profile(BY_ID, Some("limit=200"))
        .respond_with(not_found())
        .expect(1)
        .mount(&profiles)
        .await;
    profile(BY_EMAIL, Some("limit=200"))
        .respond_with(not_found())
        .expect(1)
        .mount(&profiles)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&cio)
        .await;
    let s = setup(&profiles, &cio, BackfillConfig::default());
    let outcome = s
        .flow
        .on_event(&subscribed("01HSUB0000000000000000002", ada()))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Skipped(SkipReason::NotFound));
    assert_eq!(s.limiter.taken(), 2);
    assert_eq!(s.flow.stats().not_found, 1);
    s.handle.shutdown().await;
    profiles.verify().await;
    cio.verify().await;
}

#[tokio::test]
async fn email_lookups_can_be_switched_off() {
    let profiles = MockServer::start().await;
    let cio = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&profiles)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&cio)
        .await;
    let config: BackfillConfig = serde_json::from_value(json!({"lookup_by_email": false})).unwrap();
    let s = setup(&profiles, &cio, config);
    // Known to Customer.io only by email: nothing to look up by.
    let outcome = s
        .flow
        .on_event(&subscribed(
            "01HSUB0000000000000000003",
            json!({"id": null, "email": "ada@example.com"}),
        ))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Skipped(SkipReason::NoIdentity));
    // Other metrics are not subscriptions.
    let opened = ReportingEvent::from_value(json!({
        "event_id": "E-open", "object_type": "email", "metric": "opened", "timestamp": 1,
        "data": {"identifiers": ada()}
    }))
    .unwrap();
    assert_eq!(
        s.flow.on_event(&opened).await.unwrap(),
        Outcome::Skipped(SkipReason::Filtered)
    );
    assert_eq!(s.limiter.taken(), 0);
    s.handle.shutdown().await;
    profiles.verify().await;
    cio.verify().await;
}

#[tokio::test]
async fn a_throttled_lookup_is_retried_later_and_the_retry_is_delivered() {
    let profiles = MockServer::start().await;
    let cio = MockServer::start().await;
    profile(BY_ID, Some("limit=200"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(json!({"error": {"code": "rate_limit_error", "message": "slow"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&profiles)
        .await;
    profile(BY_ID, Some("limit=200"))
        .respond_with(traits_page(json!({"plan": "pro"}), None))
        .expect(1)
        .mount(&profiles)
        .await;
    cio_batch(json!({"batch": [{
        "type": "person", "action": "identify", "identifiers": {"id": "user-42"},
        "attributes": {"plan": "pro"}
    }]}))
    .respond_with(ResponseTemplate::new(200))
    .expect(1)
    .mount(&cio)
    .await;
    let s = setup(&profiles, &cio, BackfillConfig::default());
    let event = subscribed("01HSUB0000000000000000004", ada());

    let err = s.flow.on_event(&event).await.unwrap_err();
    assert!(matches!(err, BackfillError::Profile(_)), "{err:?}");
    assert_eq!(err.ack(), Ack::RetryLater);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    // The claim was released: Customer.io's retry of the same event runs again.
    assert_eq!(s.flow.on_event(&event).await.unwrap(), Outcome::Delivered);
    assert_eq!(s.limiter.taken(), 2);
    let stats = s.flow.stats();
    assert_eq!((stats.retry_later, stats.delivered), (1, 1));
    s.handle.shutdown().await;
    profiles.verify().await;
    cio.verify().await;
}

#[tokio::test]
async fn a_person_known_by_cio_id_only_is_written_by_cio_id() {
    let profiles = MockServer::start().await;
    let cio = MockServer::start().await;
    profile(BY_EMAIL, Some("limit=200"))
        .respond_with(traits_page(json!({"first_name": "Ada"}), None))
        .expect(1)
        .mount(&profiles)
        .await;
    cio_batch(json!({"batch": [{
        "type": "person", "action": "identify", "identifiers": {"cio_id": "d9c106000001"},
        "attributes": {"first_name": "Ada"}
    }]}))
    .respond_with(ResponseTemplate::new(200))
    .expect(1)
    .mount(&cio)
    .await;
    let s = setup(&profiles, &cio, BackfillConfig::default());
    let person = BackfillPerson::new()
        .with_email("ada@example.com")
        .with_cio_id("d9c106000001");
    assert_eq!(s.flow.backfill(&person).await.unwrap(), Outcome::Delivered);
    assert_eq!(s.limiter.taken(), 1);
    s.handle.shutdown().await;
    profiles.verify().await;
    cio.verify().await;
}
