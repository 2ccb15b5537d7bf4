//! The pipeline's semantics, one test per row of its table, plus batches. The mapping and the
//! delivery are hand-written fakes here; the fakes record exactly what they were handed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cio_segment_sync::StoreError;
use cio_segment_sync::customerio_client::track::v2::{
    EventTarget, Merge, Operation, PersonEvent, PersonIdentify, PersonOperation,
};
use cio_segment_sync::dead_letter::DeadLetterReason;
use cio_segment_sync::dedupe::{Claim, Deduper, MemoryDeduper};
use cio_segment_sync::identity::{IdentityResolver, SkipReason, Target};
use cio_segment_sync::loop_guard::{LoopGuard, StampingLoopGuard};
use cio_segment_sync::pipeline::{
    Deliver, DeliverError, Delivered, MapError, Mapped, Mapper, Outcome, Pipeline, PipelineError,
    Step, SyncPipeline, dedupe_key,
};
use cio_segment_sync::segment_model::Message;
use serde_json::{Value, json};

const LEASE: Duration = Duration::from_secs(60);

fn message(value: Value) -> Message {
    Message::from_value(value).expect("test message decodes")
}

fn track(id: &str, user: &str, event: &str) -> Message {
    message(json!({"type": "track", "messageId": id, "userId": user, "event": event}))
}

// ---------------------------------------------------------------------------------------------
// Fakes

/// Track → event, identify → identify (carrying `anonymous_id`), alias merge → merge; the
/// event "Unmappable" fails, "Nothing" maps to no operation; other calls are filtered.
#[derive(Debug)]
struct TestMapper;

impl Mapper for TestMapper {
    fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError> {
        let who = match target {
            Target::Person { identifier, .. } => EventTarget::Person(identifier.clone()),
            Target::Anonymous { anonymous_id } => {
                EventTarget::anonymous(anonymous_id.clone()).map_err(MapError::new)?
            }
            Target::Merge { primary, secondary } => {
                let merge =
                    Merge::new(primary.clone(), secondary.clone()).map_err(MapError::new)?;
                return Ok(Mapped::Operations(vec![Operation::Person(
                    PersonOperation::Merge(merge),
                )]));
            }
            _ => return Ok(Mapped::Skip(SkipReason::NoIdentity)),
        };
        match message {
            Message::Track(_) => match message.event() {
                Some("Unmappable") => Err(MapError::new("event name refused by the test mapper")),
                Some("Nothing") => Ok(Mapped::Operations(Vec::new())),
                Some(name) => Ok(Mapped::Operations(vec![Operation::Person(
                    PersonOperation::Event(PersonEvent::new(who, name).map_err(MapError::new)?),
                )])),
                None => Ok(Mapped::Skip(SkipReason::Filtered)),
            },
            Message::Identify(_) => {
                let (EventTarget::Person(identifier), Target::Person { anonymous_id, .. }) =
                    (who, target)
                else {
                    return Ok(Mapped::Skip(SkipReason::AnonymousNotAllowed));
                };
                let mut op = PersonIdentify::new(identifier).map_err(MapError::new)?;
                if let Some(anonymous_id) = anonymous_id {
                    op = op
                        .with_attribute("anonymous_id", anonymous_id.clone())
                        .map_err(MapError::new)?;
                }
                Ok(Mapped::Operations(vec![Operation::Person(
                    PersonOperation::Identify(op),
                )]))
            }
            _ => Ok(Mapped::Skip(SkipReason::Filtered)),
        }
    }
}

/// What the fake delivery answers for one call.
#[derive(Debug, Clone)]
enum Answer {
    Accept,
    DeadLetter(&'static str),
    Fail,
}

fn rejected(message: &str) -> DeadLetterReason {
    DeadLetterReason::RejectedByServer {
        message: message.to_owned(),
        field: None,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the dispatcher dropped the item")]
struct DroppedItem;

/// Answers from a script per operation name (the event name, or the action), `Accept` when
/// the script is empty; records every call as (ordering key, operations JSON).
#[derive(Debug, Default)]
struct FakeDeliver {
    script: Mutex<HashMap<String, VecDeque<Answer>>>,
    calls: Mutex<Vec<(String, Value)>>,
    /// Yield to the scheduler this many times before answering, so concurrent callers
    /// interleave.
    yields: usize,
}

impl FakeDeliver {
    fn script(self, name: &str, answers: &[Answer]) -> Self {
        self.script
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .extend(answers.iter().cloned());
        self
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    fn names(&self) -> Vec<(String, String)> {
        self.calls()
            .into_iter()
            .map(|(key, ops)| (key, op_name(&ops)))
            .collect()
    }
}

fn op_name(ops: &Value) -> String {
    let first = &ops[0];
    first["name"]
        .as_str()
        .or_else(|| first["action"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[async_trait]
impl Deliver for FakeDeliver {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        ordering_key: &str,
    ) -> Result<Delivered, DeliverError> {
        for _ in 0..self.yields {
            tokio::task::yield_now().await;
        }
        let ops = serde_json::to_value(&operations).unwrap();
        let name = op_name(&ops);
        self.calls
            .lock()
            .unwrap()
            .push((ordering_key.to_owned(), ops));
        let answer = self
            .script
            .lock()
            .unwrap()
            .get_mut(&name)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Answer::Accept);
        match answer {
            Answer::Accept => Ok(Delivered::Accepted),
            Answer::DeadLetter(reason) => Ok(Delivered::DeadLettered(rejected(reason))),
            Answer::Fail => Err(DeliverError::new(DroppedItem)),
        }
    }
}

struct Harness {
    pipeline: SyncPipeline,
    deduper: Arc<MemoryDeduper>,
    deliver: Arc<FakeDeliver>,
}

fn harness(deliver: FakeDeliver) -> Harness {
    let deduper = Arc::new(MemoryDeduper::default());
    let deliver = Arc::new(deliver);
    let pipeline = SyncPipeline::builder(deliver.clone())
        .mapper(Arc::new(TestMapper))
        .deduper(deduper.clone())
        .lease(LEASE)
        .build();
    Harness {
        pipeline,
        deduper,
        deliver,
    }
}

/// Whether the pipeline left `key` claimable by the source's retry (released) rather than done.
async fn is_released(deduper: &MemoryDeduper, key: &str) -> bool {
    match deduper.claim(key, LEASE).await.unwrap() {
        Claim::First(token) => {
            deduper.release(key, &token).await.unwrap();
            true
        }
        _ => false,
    }
}

async fn is_done(deduper: &MemoryDeduper, key: &str) -> bool {
    deduper.claim(key, LEASE).await.unwrap() == Claim::Done
}

// ---------------------------------------------------------------------------------------------
// One message

#[tokio::test]
async fn delivered_message_hands_exact_operations_and_then_is_a_duplicate() {
    let h = harness(FakeDeliver::default());
    let msg = track("m-1", "u-1", "Signed Up");
    assert_eq!(h.pipeline.process(&msg).await.unwrap(), Outcome::Delivered);
    assert_eq!(
        h.deliver.calls(),
        vec![(
            "id:u-1".to_owned(),
            json!([{"type": "person", "action": "event", "identifiers": {"id": "u-1"}, "name": "Signed Up"}])
        )]
    );
    assert_eq!(
        h.pipeline.process(&msg).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    assert_eq!(h.deliver.calls().len(), 1);
}

#[tokio::test]
async fn failed_delivery_then_the_sources_retry_is_delivered_not_a_duplicate() {
    let h = harness(FakeDeliver::default().script("Paid", &[Answer::Fail]));
    let msg = track("m-retry", "u-1", "Paid");

    let first = h.pipeline.process(&msg).await.unwrap_err();
    assert!(matches!(first, PipelineError::Delivery(_)), "{first:?}");
    assert!(first.is_retryable());

    // The source retries the same message.
    assert_eq!(h.pipeline.process(&msg).await.unwrap(), Outcome::Delivered);
    assert_eq!(h.deliver.calls().len(), 2);
    assert_eq!(h.deliver.calls()[0], h.deliver.calls()[1]);

    // Only now is it a duplicate.
    assert_eq!(
        h.pipeline.process(&msg).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    assert_eq!(h.deliver.calls().len(), 2);
}

#[tokio::test]
async fn message_held_by_another_worker_is_in_flight_and_not_delivered() {
    let h = harness(FakeDeliver::default());
    let Claim::First(other_worker) = h.deduper.claim("m-busy", LEASE).await.unwrap() else {
        panic!("the key was free");
    };
    let err = h
        .pipeline
        .process(&track("m-busy", "u-1", "E"))
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::InFlight), "{err:?}");
    assert!(err.is_retryable());
    assert!(h.deliver.calls().is_empty());
    // The other worker's lease is untouched: it can still commit.
    h.deduper.commit("m-busy", &other_worker).await.unwrap();
}

#[tokio::test]
async fn dead_lettered_message_is_committed() {
    let h =
        harness(FakeDeliver::default().script("Paid", &[Answer::DeadLetter("400: bad attribute")]));
    let msg = track("m-dl", "u-1", "Paid");
    assert_eq!(
        h.pipeline.process(&msg).await.unwrap(),
        Outcome::DeadLettered(rejected("400: bad attribute"))
    );
    // The source's retry would only repeat the failure: it is a duplicate now.
    assert_eq!(
        h.pipeline.process(&msg).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    assert_eq!(h.deliver.calls().len(), 1);
}

#[tokio::test]
async fn own_echo_is_skipped_and_committed() {
    let guard = Arc::new(StampingLoopGuard::default());
    let deduper = Arc::new(MemoryDeduper::default());
    let deliver = Arc::new(FakeDeliver::default());
    let pipeline = SyncPipeline::builder(deliver.clone())
        .mapper(Arc::new(TestMapper))
        .deduper(deduper.clone())
        .loop_guard(guard.clone())
        .build();
    // The back-sync wrote this event into Segment; Segment's webhook sends it back.
    let mut written = track("bs-1", "u-1", "Email Opened");
    guard.stamp(&mut written).await.unwrap();
    let echoed = Message::from_slice(&serde_json::to_vec(&written).unwrap()).unwrap();
    assert_eq!(
        pipeline.process(&echoed).await.unwrap(),
        Outcome::Skipped(SkipReason::OwnEcho)
    );
    assert!(deliver.calls().is_empty());
    assert!(is_done(&deduper, "bs-1").await);
}

#[tokio::test]
async fn identity_skip_is_committed() {
    let h = harness(FakeDeliver::default());
    let msg = message(json!({"type": "track", "messageId": "m-noid", "event": "E"}));
    assert_eq!(
        h.pipeline.process(&msg).await.unwrap(),
        Outcome::Skipped(SkipReason::NoIdentity)
    );
    assert!(h.deliver.calls().is_empty());
    assert!(is_done(&h.deduper, "m-noid").await);
}

#[tokio::test]
async fn mapping_skip_and_empty_mapping_are_committed_skips() {
    let h = harness(FakeDeliver::default());
    let page = message(json!({"type": "page", "messageId": "m-page", "userId": "u-1"}));
    assert_eq!(
        h.pipeline.process(&page).await.unwrap(),
        Outcome::Skipped(SkipReason::Filtered)
    );
    assert_eq!(
        h.pipeline
            .process(&track("m-nothing", "u-1", "Nothing"))
            .await
            .unwrap(),
        Outcome::Skipped(SkipReason::Filtered)
    );
    assert!(h.deliver.calls().is_empty());
    assert!(is_done(&h.deduper, "m-page").await);
    assert!(is_done(&h.deduper, "m-nothing").await);
}

#[tokio::test]
async fn mapping_error_releases_and_is_not_retryable() {
    let h = harness(FakeDeliver::default());
    let err = h
        .pipeline
        .process(&track("m-bad", "u-1", "Unmappable"))
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::Mapping(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(h.deliver.calls().is_empty());
    assert!(is_released(&h.deduper, "m-bad").await);
}

/// A resolver whose store is down.
#[derive(Debug)]
struct StoreDown;

#[derive(Debug, thiserror::Error)]
#[error("connection refused")]
struct Refused;

#[async_trait]
impl IdentityResolver for StoreDown {
    async fn resolve(&self, _: &Message) -> Result<Target, StoreError> {
        Err(StoreError::Unavailable {
            store: "test identity store",
            source: Box::new(Refused),
        })
    }
}

#[tokio::test]
async fn store_failure_releases_the_claim_and_is_retryable() {
    let deduper = Arc::new(MemoryDeduper::default());
    let deliver = Arc::new(FakeDeliver::default());
    let pipeline = SyncPipeline::builder(deliver.clone())
        .mapper(Arc::new(TestMapper))
        .deduper(deduper.clone())
        .resolver(Arc::new(StoreDown))
        .build();
    let err = pipeline
        .process(&track("m-store", "u-1", "E"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PipelineError::Store {
                step: Step::Identity,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "identity step: store failed");
    assert!(deliver.calls().is_empty());
    assert!(is_released(&deduper, "m-store").await);
}

#[tokio::test]
async fn message_without_id_is_deduplicated_by_its_content() {
    let h = harness(FakeDeliver::default());
    let a = message(
        json!({"type": "track", "userId": "u-1", "event": "E", "timestamp": "2024-05-01T10:00:00.000Z"}),
    );
    let a_again = a.clone();
    let b = message(
        json!({"type": "track", "userId": "u-1", "event": "E", "timestamp": "2024-05-01T10:00:01.000Z"}),
    );
    let key = dedupe_key(&a).unwrap();
    assert!(key.starts_with("derived:"), "{key}");
    assert_eq!(dedupe_key(&a_again).unwrap(), key);
    assert_ne!(dedupe_key(&b).unwrap(), key);

    assert_eq!(h.pipeline.process(&a).await.unwrap(), Outcome::Delivered);
    assert_eq!(
        h.pipeline.process(&a_again).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    assert_eq!(h.pipeline.process(&b).await.unwrap(), Outcome::Delivered);
    assert_eq!(h.deliver.calls().len(), 2);
}

#[tokio::test]
async fn identify_then_anonymous_event_reaches_the_person() {
    let h = harness(FakeDeliver::default());
    let identify = message(json!({
        "type": "identify", "messageId": "m-id", "userId": "u-7", "anonymousId": "a-7",
        "traits": {"email": "x@example.com"}
    }));
    let anonymous_track = message(json!({
        "type": "track", "messageId": "m-anon", "anonymousId": "a-7", "event": "Viewed Pricing"
    }));
    assert_eq!(
        h.pipeline.process(&identify).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(
        h.pipeline.process(&anonymous_track).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(
        h.deliver.calls(),
        vec![
            (
                "id:u-7".to_owned(),
                json!([{"type": "person", "action": "identify", "identifiers": {"id": "u-7"},
                        "attributes": {"anonymous_id": "a-7"}}])
            ),
            (
                "id:u-7".to_owned(),
                json!([{"type": "person", "action": "event", "identifiers": {"id": "u-7"},
                        "name": "Viewed Pricing"}])
            ),
        ]
    );
}

#[tokio::test]
async fn alias_between_known_people_is_delivered_as_a_merge() {
    let h = harness(FakeDeliver::default());
    for msg in [
        message(json!({"type": "identify", "messageId": "m-1", "userId": "old"})),
        message(json!({"type": "identify", "messageId": "m-2", "userId": "new"})),
        message(json!({"type": "alias", "messageId": "m-3", "previousId": "old", "userId": "new"})),
    ] {
        assert_eq!(h.pipeline.process(&msg).await.unwrap(), Outcome::Delivered);
    }
    assert_eq!(
        h.deliver.calls()[2],
        (
            "id:new".to_owned(),
            json!([{"type": "person", "action": "merge", "primary": {"id": "new"}, "secondary": {"id": "old"}}])
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Batches

#[tokio::test]
async fn batch_answers_in_input_order_and_keeps_each_persons_order() {
    let h = harness(FakeDeliver {
        yields: 3,
        ..FakeDeliver::default()
    });
    let batch = vec![
        track("b-1", "u-1", "one"),
        track("b-2", "u-2", "one"),
        track("b-3", "u-1", "two"),
        message(json!({"type": "track", "messageId": "b-4", "event": "E"})),
        track("b-5", "u-2", "two"),
        track("b-6", "u-1", "three"),
        track("b-7", "u-3", "one"),
    ];
    let results = h.pipeline.process_batch(batch).await;
    let outcomes: Vec<Outcome> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Delivered,
            Outcome::Delivered,
            Outcome::Delivered,
            Outcome::Skipped(SkipReason::NoIdentity),
            Outcome::Delivered,
            Outcome::Delivered,
            Outcome::Delivered,
        ]
    );
    let calls = h.deliver.names();
    assert_eq!(calls.len(), 6);
    for (person, expected) in [
        ("id:u-1", vec!["one", "two", "three"]),
        ("id:u-2", vec!["one", "two"]),
        ("id:u-3", vec!["one"]),
    ] {
        let seen: Vec<&str> = calls
            .iter()
            .filter(|(key, _)| key == person)
            .map(|(_, name)| name.as_str())
            .collect();
        assert_eq!(seen, expected, "{person}");
    }
}

/// Waits at a two-party barrier: only passes once another person's delivery is under way.
#[derive(Debug)]
struct Rendezvous {
    barrier: tokio::sync::Barrier,
}

#[async_trait]
impl Deliver for Rendezvous {
    async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
        self.barrier.wait().await;
        Ok(Delivered::Accepted)
    }
}

#[tokio::test(start_paused = true)]
async fn batch_runs_different_people_concurrently() {
    let pipeline = SyncPipeline::builder(Arc::new(Rendezvous {
        barrier: tokio::sync::Barrier::new(2),
    }))
    .mapper(Arc::new(TestMapper))
    .build();
    let batch = vec![track("c-1", "u-1", "E"), track("c-2", "u-2", "E")];
    // Run one after the other, the first delivery would wait at the barrier forever; the
    // paused clock then fires the timeout as soon as nothing else can run.
    let results = tokio::time::timeout(Duration::from_secs(5), pipeline.process_batch(batch))
        .await
        .expect("the two people were not processed concurrently");
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Delivered))));
}

#[tokio::test]
async fn batch_links_identities_before_later_messages_of_the_same_person() {
    let h = harness(FakeDeliver {
        yields: 3,
        ..FakeDeliver::default()
    });
    // The anonymous event shares the anonymousId with the identify, so it runs after it and
    // reaches the person.
    let batch = vec![
        message(
            json!({"type": "identify", "messageId": "l-1", "userId": "u-9", "anonymousId": "a-9"}),
        ),
        message(
            json!({"type": "track", "messageId": "l-2", "anonymousId": "a-9", "event": "Clicked"}),
        ),
    ];
    let results = h.pipeline.process_batch(batch).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Delivered))));
    assert_eq!(
        h.deliver.names(),
        vec![
            ("id:u-9".to_owned(), "identify".to_owned()),
            ("id:u-9".to_owned(), "Clicked".to_owned()),
        ]
    );
}

#[tokio::test]
async fn batch_failure_blocks_the_rest_of_that_person_only() {
    let h = harness(FakeDeliver::default().script("first", &[Answer::Fail]));
    let batch = vec![
        track("f-1", "u-1", "first"),
        track("f-2", "u-2", "other"),
        track("f-3", "u-1", "second"),
    ];
    let results = h.pipeline.process_batch(batch.clone()).await;
    assert!(matches!(results[0], Err(PipelineError::Delivery(_))));
    assert_eq!(results[1].as_ref().unwrap(), &Outcome::Delivered);
    assert!(matches!(results[2], Err(PipelineError::Blocked)));
    assert!(results[2].as_ref().unwrap_err().is_retryable());
    let mut delivered = h.deliver.names();
    delivered.sort();
    assert_eq!(
        delivered,
        vec![
            ("id:u-1".to_owned(), "first".to_owned()),
            ("id:u-2".to_owned(), "other".to_owned())
        ]
    );
    assert_eq!(h.deliver.calls().len(), 2);
    // Neither the failed nor the blocked message was claimed for good.
    assert!(is_released(&h.deduper, "f-1").await);
    assert!(is_released(&h.deduper, "f-3").await);

    // The source redelivers the batch: u-1's messages go through in order, u-2's is a duplicate.
    let retry = h.pipeline.process_batch(batch).await;
    let outcomes: Vec<Outcome> = retry.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Delivered,
            Outcome::Skipped(SkipReason::Duplicate),
            Outcome::Delivered,
        ]
    );
    let u1: Vec<String> = h
        .deliver
        .names()
        .into_iter()
        .filter(|(key, _)| key == "id:u-1")
        .map(|(_, name)| name)
        .collect();
    assert_eq!(u1, vec!["first", "first", "second"]);
}

#[tokio::test]
async fn pipelines_compose_behind_arc_dyn() {
    /// A decorator counting what it sees, around any pipeline.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn Pipeline>,
        seen: Mutex<usize>,
    }

    #[async_trait]
    impl Pipeline for Counting {
        async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
            *self.seen.lock().unwrap() += 1;
            self.inner.process(message).await
        }
    }

    let h = harness(FakeDeliver::default());
    let counting = Counting {
        inner: Arc::new(h.pipeline),
        seen: Mutex::new(0),
    };
    let outer: Arc<dyn Pipeline> = Arc::new(counting);
    let results = outer
        .process_batch(vec![track("d-1", "u-1", "E"), track("d-1", "u-1", "E")])
        .await;
    assert_eq!(results[0].as_ref().unwrap(), &Outcome::Delivered);
    assert_eq!(
        results[1].as_ref().unwrap(),
        &Outcome::Skipped(SkipReason::Duplicate)
    );
    assert_eq!(h.deliver.calls().len(), 1);
}

#[tokio::test]
async fn loop_guard_is_replaceable() {
    /// Treats everything as an echo.
    #[derive(Debug)]
    struct EverythingEchoes;

    #[async_trait]
    impl LoopGuard for EverythingEchoes {
        async fn stamp(&self, _: &mut Message) -> Result<(), StoreError> {
            Ok(())
        }
        async fn check(
            &self,
            _: &Message,
        ) -> Result<cio_segment_sync::loop_guard::LoopVerdict, StoreError> {
            Ok(cio_segment_sync::loop_guard::LoopVerdict::Echo(
                cio_segment_sync::loop_guard::EchoSignal::Stamp,
            ))
        }
    }

    let deliver = Arc::new(FakeDeliver::default());
    let pipeline = SyncPipeline::builder(deliver.clone())
        .mapper(Arc::new(TestMapper))
        .loop_guard(Arc::new(EverythingEchoes))
        .build();
    assert_eq!(
        pipeline.process(&track("e-1", "u-1", "E")).await.unwrap(),
        Outcome::Skipped(SkipReason::OwnEcho)
    );
    assert!(deliver.calls().is_empty());
}

#[tokio::test]
async fn debug_output_shows_no_customer_identifiers() {
    /// Accepts everything and remembers nothing (the recording fake's own `Debug` would show
    /// what it recorded).
    #[derive(Debug)]
    struct AcceptAll;

    #[async_trait]
    impl Deliver for AcceptAll {
        async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
            Ok(Delivered::Accepted)
        }
    }

    // Every step but the delivery is the crate's default, holding what it learnt.
    let pipeline = SyncPipeline::builder(Arc::new(AcceptAll)).build();
    let identify = message(json!({
        "type": "identify", "messageId": "m-pii", "userId": "usr-secret-42",
        "anonymousId": "anon-secret-7", "timestamp": "2024-05-01T10:15:30.123Z",
        "traits": {"email": "secret.person@example.com"}
    }));
    assert_eq!(
        pipeline.process(&identify).await.unwrap(),
        Outcome::Delivered
    );
    let debug = format!("{pipeline:?}");
    for secret in [
        "usr-secret-42",
        "anon-secret-7",
        "secret.person@example.com",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("StoreResolver"), "{debug}");
}

#[tokio::test]
async fn stats_count_each_message_once_by_how_it_ended() {
    let h = harness(
        FakeDeliver::default()
            .script("Lost", &[Answer::DeadLetter("400")])
            .script("Flaky", &[Answer::Fail])
            .script("Blocked first", &[Answer::Fail]),
    );
    let p = &h.pipeline;
    p.process(&track("s-1", "u-1", "Paid")).await.unwrap(); // delivered
    p.process(&track("s-1", "u-1", "Paid")).await.unwrap(); // deduplicated
    p.process(&track("s-2", "u-1", "Lost")).await.unwrap(); // dead-lettered
    p.process(&message(
        json!({"type": "track", "messageId": "s-3", "event": "E"}),
    ))
    .await
    .unwrap(); // skipped: no identity
    p.process(&track("s-4", "u-1", "Flaky")).await.unwrap_err(); // failed
    p.process(&track("s-5", "u-1", "Unmappable"))
        .await
        .unwrap_err(); // rejected
    let Claim::First(_held) = h.deduper.claim("s-6", LEASE).await.unwrap() else {
        panic!("free key");
    };
    p.process(&track("s-6", "u-1", "E")).await.unwrap_err(); // in flight
    let mut echo = track("s-7", "u-1", "Email Opened");
    StampingLoopGuard::default().stamp(&mut echo).await.unwrap();
    p.process(&echo).await.unwrap(); // loop-dropped (by the stamp)
    let batch = p
        .process_batch(vec![
            track("s-8", "u-2", "Blocked first"),
            track("s-9", "u-2", "Behind it"),
        ])
        .await; // one more failed, one blocked
    assert!(matches!(batch[1], Err(PipelineError::Blocked)));

    let stats = p.stats();
    assert_eq!(
        (
            stats.delivered,
            stats.deduplicated,
            stats.dead_lettered,
            stats.skipped,
            stats.failed,
            stats.rejected,
            stats.in_flight,
            stats.loop_dropped,
            stats.blocked
        ),
        (1, 1, 1, 1, 2, 1, 1, 1, 1)
    );
}

#[tokio::test]
async fn a_delivered_deletion_forgets_the_person_and_a_failed_one_does_not() {
    let h = harness(FakeDeliver::default().script("User Deleted", &[Answer::Fail]));
    let identify = message(json!({
        "type": "identify", "messageId": "g-1", "userId": "u-gone", "anonymousId": "a-gone"
    }));
    let deletion = track("g-2", "u-gone", "User Deleted");
    let later = |id: &str| {
        message(
            json!({"type": "track", "messageId": id, "anonymousId": "a-gone", "event": "Visited"}),
        )
    };
    assert_eq!(
        h.pipeline.process(&identify).await.unwrap(),
        Outcome::Delivered
    );

    // The deletion fails: nothing is forgotten, the anonymousId still reaches the person.
    assert!(h.pipeline.process(&deletion).await.is_err());
    assert_eq!(
        h.pipeline.process(&later("g-3")).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(h.deliver.calls().last().unwrap().0, "id:u-gone");

    // The source retries the deletion: delivered, and the person's links are gone.
    assert_eq!(
        h.pipeline.process(&deletion).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(
        h.pipeline.process(&later("g-4")).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(h.deliver.calls().last().unwrap().0, "anonymous_id:a-gone");
}

/// Resolves every message to one person, but cannot record anything after delivery.
#[derive(Debug)]
struct ForgetFails;

#[async_trait]
impl IdentityResolver for ForgetFails {
    async fn resolve(&self, _: &Message) -> Result<Target, StoreError> {
        Ok(Target::Person {
            identifier: cio_segment_sync::customerio_client::Identifier::id("u-1"),
            anonymous_id: None,
        })
    }

    async fn delivered(&self, _: &Message, _: &Target) -> Result<(), StoreError> {
        Err(StoreError::Unavailable {
            store: "test identity store",
            source: Box::new(Refused),
        })
    }
}

#[tokio::test]
async fn a_failed_update_after_delivery_releases_the_message_for_a_retry() {
    let deduper = Arc::new(MemoryDeduper::default());
    let deliver = Arc::new(FakeDeliver::default());
    let pipeline = SyncPipeline::builder(deliver.clone())
        .mapper(Arc::new(TestMapper))
        .deduper(deduper.clone())
        .resolver(Arc::new(ForgetFails))
        .build();
    let err = pipeline
        .process(&track("h-1", "u-1", "User Deleted"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PipelineError::Store {
                step: Step::Identity,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(deliver.calls().len(), 1);
    assert!(is_released(&deduper, "h-1").await);
}
