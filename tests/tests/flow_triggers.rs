//! Flow 1 end to end: `SegmentToCustomerIo` → dispatcher → a wiremock Customer.io. Exact
//! requests (method, path, auth, JSON body) and exact request counts.

mod support_flows_a;

use cio_segment_sync::flows::triggers::{SegmentToCustomerIo, TriggersError};
use cio_segment_sync::identity::SkipReason;
use cio_segment_sync::pipeline::Outcome;
use cio_segment_sync::segment_model::Batch;
use serde_json::json;
use support_flows_a::*;
use wiremock::MockServer;

fn flow(server: &MockServer) -> SegmentToCustomerIo {
    let (flow, _worker) = SegmentToCustomerIo::builder(client(server), triggers_config()).spawn();
    flow
}

/// One operation per request, so concurrent people's operations never share a request.
fn one_per_request_flow(server: &MockServer) -> SegmentToCustomerIo {
    let mut config = triggers_config();
    config.dispatcher.max_items = std::num::NonZeroUsize::new(1);
    let (flow, _worker) = SegmentToCustomerIo::builder(client(server), config).spawn();
    flow
}

fn identify_op() -> serde_json::Value {
    json!({
        "type": "person", "action": "identify", "identifiers": {"id": "u-1"},
        "timestamp": AT_S,
        "attributes": {"plan": "pro", "email": "ada@example.com", "anonymous_id": "a-1"}
    })
}

fn identify_json() -> serde_json::Value {
    json!({
        "type": "identify", "messageId": "m-identify", "userId": "u-1", "anonymousId": "a-1",
        "timestamp": AT, "traits": {"email": "ada@example.com", "plan": "pro"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_type_reaches_customerio_as_an_exact_v2_batch() {
    let server = MockServer::start().await;
    expect_batch(&server, json!([identify_op()]), 1).await;
    expect_batch(
        &server,
        json!([{
            "type": "person", "action": "event", "identifiers": {"id": "u-1"},
            "name": "Order Completed", "id": id_at("m-track"), "timestamp": AT_S,
            "attributes": {"total": 30}
        }]),
        1,
    )
    .await;
    expect_batch(
        &server,
        json!([{
            "type": "person", "action": "page", "identifiers": {"id": "u-1"},
            "name": "https://example.com/pricing", "id": id_at("m-page"), "timestamp": AT_S,
            "attributes": {"url": "https://example.com/pricing"}
        }]),
        1,
    )
    .await;
    expect_batch(
        &server,
        json!([{
            "type": "person", "action": "screen", "identifiers": {"id": "u-1"},
            "name": "Settings", "id": id_at("m-screen"), "timestamp": AT_S
        }]),
        1,
    )
    .await;
    let flow = flow(&server);

    // A single message.
    assert_eq!(
        flow.process(&message(identify_json())).await.unwrap(),
        Outcome::Delivered
    );
    // Raw bytes.
    let track = json!({
        "type": "track", "messageId": "m-track", "userId": "u-1", "event": "Order Completed",
        "timestamp": AT, "properties": {"total": 30}
    });
    assert_eq!(
        flow.process_slice(track.to_string().as_bytes())
            .await
            .unwrap(),
        Outcome::Delivered
    );
    // A Segment batch: one person, so delivered in order, one request each.
    let batch = Batch::from_value(json!({"batch": [
        {"type": "page", "messageId": "m-page", "userId": "u-1", "timestamp": AT,
         "properties": {"url": "https://example.com/pricing"}},
        {"type": "screen", "messageId": "m-screen", "userId": "u-1", "timestamp": AT,
         "name": "Settings"}
    ]}))
    .unwrap();
    let results = flow.process_batch(batch).await;
    assert_eq!(results.len(), 2);
    for result in results {
        assert_eq!(result.unwrap(), Outcome::Delivered);
    }

    flow.shutdown().await;
    assert_eq!(
        flow.pipeline().stats().delivered,
        4,
        "{:?}",
        received(&server).await
    );
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_message_id_is_skipped_and_sent_once() {
    let server = MockServer::start().await;
    expect_batch(&server, json!([identify_op()]), 1).await;
    let flow = flow(&server);

    let identify = message(identify_json());
    assert_eq!(flow.process(&identify).await.unwrap(), Outcome::Delivered);
    assert_eq!(
        flow.process(&identify).await.unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    // The same messageId as bytes is a duplicate too.
    assert_eq!(
        flow.process_slice(identify_json().to_string().as_bytes())
            .await
            .unwrap(),
        Outcome::Skipped(SkipReason::Duplicate)
    );
    flow.shutdown().await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_malformed_item_delivers_the_others_and_names_the_bad_index() {
    let server = MockServer::start().await;
    for (user, message_id) in [("u-1", "m-a"), ("u-2", "m-c")] {
        expect_batch(
            &server,
            json!([{
                "type": "person", "action": "event", "identifiers": {"id": user},
                "name": "Signed Up", "id": id_at(message_id), "timestamp": AT_S
            }]),
            1,
        )
        .await;
    }
    let flow = one_per_request_flow(&server);
    // Both good items are about different people; `max_items` of one keeps them in separate
    // requests even when they are batched together in time.
    let body = json!({"batch": [
        {"type": "track", "messageId": "m-a", "userId": "u-1", "event": "Signed Up", "timestamp": AT},
        {"type": "track", "messageId": "m-b", "userId": "u-3", "event": 42, "timestamp": AT},
        {"type": "track", "messageId": "m-c", "userId": "u-2", "event": "Signed Up", "timestamp": AT}
    ]});
    let results = flow
        .process_batch_slice(body.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &Outcome::Delivered);
    assert_eq!(results[2].as_ref().unwrap(), &Outcome::Delivered);
    match &results[1] {
        Err(TriggersError::Item(item)) => {
            assert_eq!(item.index, 1);
            // The item names its index once; the field at fault is its source.
            assert_eq!(item.to_string(), "`batch[1]` does not decode");
            let cause = std::error::Error::source(item).map(ToString::to_string);
            assert!(
                cause.as_deref().is_some_and(|c| c.contains("event")),
                "{cause:?}"
            );
        }
        other => panic!("expected the bad item's error, got {other:?}"),
    }
    assert!(!results[1].as_ref().unwrap_err().is_retryable());
    flow.shutdown().await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_event_after_identify_is_sent_to_the_person() {
    let server = MockServer::start().await;
    expect_batch(&server, json!([identify_op()]), 1).await;
    expect_batch(
        &server,
        json!([{
            "type": "person", "action": "event", "identifiers": {"id": "u-1"},
            "name": "Viewed Pricing", "id": id_at("m-anon"), "timestamp": AT_S
        }]),
        1,
    )
    .await;
    let flow = flow(&server);
    assert_eq!(
        flow.process(&message(identify_json())).await.unwrap(),
        Outcome::Delivered
    );
    let anonymous = json!({
        "type": "track", "messageId": "m-anon", "anonymousId": "a-1", "event": "Viewed Pricing",
        "timestamp": AT
    });
    assert_eq!(
        flow.process_slice(anonymous.to_string().as_bytes())
            .await
            .unwrap(),
        Outcome::Delivered
    );
    flow.shutdown().await;
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_are_a_typed_error_and_send_nothing() {
    let server = MockServer::start().await;
    let flow = flow(&server);
    let error = flow
        .process_slice(br#"{"type":"track","userId":"u-1","event":["not","a","name"]}"#)
        .await
        .unwrap_err();
    assert!(matches!(error, TriggersError::Decode(_)), "{error:?}");
    assert!(!error.is_retryable());
    let error = flow.process_slice(b"{not json").await.unwrap_err();
    assert!(matches!(error, TriggersError::Decode(_)), "{error:?}");
    assert!(flow.process_batch_slice(b"[1, 2]").await.is_err());
    flow.shutdown().await;
    assert!(received(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_what_is_waiting_for_its_linger() {
    let server = MockServer::start().await;
    expect_batch(&server, json!([identify_op()]), 1).await;
    let mut config = triggers_config();
    // Far longer than the test: only shutdown can send the operation.
    config.dispatcher.linger_ms = Some(3_600_000);
    let (flow, worker) = SegmentToCustomerIo::builder(client(&server), config).spawn();
    let flow = std::sync::Arc::new(flow);
    let processing = tokio::spawn({
        let flow = flow.clone();
        async move { flow.process(&message(identify_json())).await }
    });
    // Wait (bounded, as a guard against a hang, not a timing assertion) until the operation
    // is in the dispatcher.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while flow.dispatcher().stats().submitted == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the operation reached the dispatcher");
    assert!(received(&server).await.is_empty());
    flow.shutdown().await;
    assert_eq!(processing.await.unwrap().unwrap(), Outcome::Delivered);
    worker.await.unwrap();
    server.verify().await;
}
