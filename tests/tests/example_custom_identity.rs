//! The `custom_identity` example's resolver: tenant-prefixed ids and lower-cased emails over
//! the default `StoreResolver`, alone and handed to `SyncBuilder::resolver`, through the
//! engine's `SegmentRouter` against wiremock.

use std::sync::Arc;

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::{
    ClientConfig, Identifier, Region, SiteId, TrackApiKey, TrackClient,
};
use cio_segment_sync::identity::{
    IdentityResolver, MemoryIdentityStore, ResolverConfig, StoreResolver, Target,
};
use cio_segment_sync::outcome::Outcome;
use cio_segment_sync::pipeline::Pipeline;
use cio_segment_sync::segment_model::Message;
use examples::custom_identity::TenantResolver;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;

fn resolver() -> TenantResolver {
    let inner = StoreResolver::new(
        Arc::new(MemoryIdentityStore::default()),
        ResolverConfig::default(),
    );
    TenantResolver::new("acme", Arc::new(inner))
}

fn message(value: Value) -> Message {
    Message::from_value(value).unwrap()
}

fn identify() -> Message {
    message(
        json!({"type": "identify", "messageId": "m-1", "userId": "u-1",
                   "anonymousId": "a-1", "traits": {"plan": "pro"}, "timestamp": AT}),
    )
}

fn anonymous_track() -> Message {
    message(
        json!({"type": "track", "messageId": "m-2", "anonymousId": "a-1",
                   "event": "Clicked", "timestamp": AT}),
    )
}

fn identifier(target: &Target) -> &Identifier {
    match target {
        Target::Person { identifier, .. } => identifier,
        other => panic!("not a person: {other:?}"),
    }
}

#[tokio::test]
async fn ids_get_the_tenant_prefix_exactly_once() {
    let resolver = resolver();
    let target = resolver.resolve(&identify()).await.unwrap();
    assert_eq!(identifier(&target), &Identifier::id("acme:u-1"));
    resolver.delivered(&identify(), &target).await.unwrap();

    // The link the inner resolver stored is read back and prefixed once, not twice.
    let target = resolver.resolve(&anonymous_track()).await.unwrap();
    assert_eq!(identifier(&target), &Identifier::id("acme:u-1"));
}

#[tokio::test]
async fn emails_are_lower_cased_and_merges_get_the_rule_on_both_sides() {
    let resolver = resolver();
    let by_email = message(json!({"type": "identify", "messageId": "m-3",
        "userId": "Ada@Example.COM", "timestamp": AT}));
    let target = resolver.resolve(&by_email).await.unwrap();
    assert_eq!(identifier(&target), &Identifier::email("ada@example.com"));

    // Two known people, then an alias between them.
    for (id, user) in [("m-4", "u-old"), ("m-5", "u-new")] {
        let m = message(json!({"type": "identify", "messageId": id, "userId": user,
                               "timestamp": AT}));
        let target = resolver.resolve(&m).await.unwrap();
        resolver.delivered(&m, &target).await.unwrap();
    }
    let alias = message(
        json!({"type": "alias", "messageId": "m-6", "userId": "u-new",
                               "previousId": "u-old", "timestamp": AT}),
    );
    assert_eq!(
        resolver.resolve(&alias).await.unwrap(),
        Target::Merge {
            primary: Identifier::id("acme:u-new"),
            secondary: Identifier::id("acme:u-old"),
        }
    );

    // Anonymous people are left alone.
    let anonymous = message(json!({"type": "track", "messageId": "m-7",
        "anonymousId": "a-9", "event": "Clicked", "timestamp": AT}));
    assert_eq!(
        resolver.resolve(&anonymous).await.unwrap(),
        Target::Anonymous {
            anonymous_id: "a-9".to_owned()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_reaches_customerio_through_the_router() {
    let server = MockServer::start().await;
    for operation in [
        json!({"type": "person", "action": "identify", "identifiers": {"id": "acme:u-1"},
               "timestamp": AT_MS / 1000, "attributes": {"plan": "pro", "anonymous_id": "a-1"}}),
        json!({"type": "person", "action": "event", "identifiers": {"id": "acme:u-1"},
               "name": "Clicked", "id": event_id("m-2", AT_MS).to_string(),
               "timestamp": AT_MS / 1000}),
    ] {
        Mock::given(method("POST"))
            .and(path("/api/v2/batch"))
            .and(header("authorization", "Basic c2l0ZTprZXk="))
            .and(body_json(json!({ "batch": [operation] })))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us)
            .with_track_base_url(&server.uri())
            .unwrap(),
    )
    .unwrap();
    let mut config = SyncConfig::default();
    config.triggers.dispatcher.linger_ms = Some(5);
    config.triggers.dispatcher.max_attempts = std::num::NonZeroU32::new(1);
    let (engine, workers) = SyncBuilder::new(client, config)
        .resolver(Arc::new(resolver()))
        .build()
        .unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    let router = &engine.router;
    assert_eq!(
        router.process(&identify()).await.unwrap(),
        Outcome::Delivered
    );
    assert_eq!(
        router.process(&anonymous_track()).await.unwrap(),
        Outcome::Delivered
    );
    engine.shutdown().await;
    server.verify().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
