//! Track API v1 calls against a mock server: for each call the exact method, path, query,
//! Basic auth header, JSON body and number of requests; then path encoding, regions and the
//! mapping of failures.

use std::time::{Duration, SystemTime};

use customerio_client::track::v1::{
    DeliveryMetricReport, Device, EmailMetric, Event, IdentifyRequest, InAppMetric,
    ObjectIdentifier, Platform, Relationship, Relationships, SegmentIdType,
    SubscriptionPreferences,
};
use customerio_client::{
    ClientConfig, ErrorKind, Identifier, Phase, Region, SiteId, TrackApiKey, TrackClient,
};
use serde_json::json;
use ulid::Ulid;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

// printf 'site:key' | base64 → c2l0ZTprZXk=
const AUTH: &str = "Basic c2l0ZTprZXk=";
const EVENT_ID: &str = "01J0ZQ4N7S8K3M2B9TVW5XY6AB";

/// Matches the exact query string (`None`: no query at all).
struct ExactQuery(Option<&'static str>);

impl Match for ExactQuery {
    fn matches(&self, request: &Request) -> bool {
        request.url.query() == self.0
    }
}

/// Matches a request without a body.
struct EmptyBody;

impl Match for EmptyBody {
    fn matches(&self, request: &Request) -> bool {
        request.body.is_empty()
    }
}

fn client_with(server: &MockServer, config: ClientConfig) -> TrackClient {
    let config = config.with_track_base_url(&server.uri()).unwrap();
    TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap()
}

fn client(server: &MockServer) -> TrackClient {
    client_with(server, ClientConfig::new(Region::Us))
}

/// A mock for `method path` with Basic auth and the exact query.
fn call(verb: &str, at: &str, query: Option<&'static str>) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(at.to_owned()))
        .and(header("authorization", AUTH))
        .and(ExactQuery(query))
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({}))
}

/// A mock that must never be hit: proves a refused call sent nothing.
async fn nothing_sent(server: &MockServer) {
    Mock::given(wiremock::matchers::any())
        .respond_with(ok())
        .expect(0)
        .mount(server)
        .await;
}

fn ulid() -> Ulid {
    EVENT_ID.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// One test per call
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn identify_with_sends_reserved_keys_and_custom_attributes() {
    let server = MockServer::start().await;
    let expected = json!({
        "email": "ada@example.com",
        "created_at": 1717171717,
        "anonymous_id": "anon-7f3c",
        "_timestamp": 1717171800,
        "_update": true,
        "unsubscribed": false,
        "cio_subscription_preferences": {"topics": {"topic_3": true}},
        "cio_relationships": {
            "action": "add_relationships",
            "relationships": [{"identifiers": {"object_type_id": "1", "object_id": "acme"},
                               "relationship_attributes": {"role": "admin"}}]
        },
        "plan": "pro",
        "seats": 5,
        "beta": true
    });
    call("PUT", "/api/v1/customers/user-42", None)
        .and(header("content-type", "application/json"))
        .and(body_json(expected))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let request = IdentifyRequest::new()
        .email("ada@example.com")
        .created_at(1717171717)
        .anonymous_id("anon-7f3c")
        .timestamp(1717171800)
        .update_only()
        .unsubscribed(false)
        .subscription_preferences(SubscriptionPreferences::new().topic(3, true))
        .relationships(Relationships::add(vec![
            Relationship::new(ObjectIdentifier::object("1", "acme")).attribute("role", "admin"),
        ]))
        .attribute("plan", "pro")
        .attribute("seats", 5)
        .attribute("beta", true);
    client(&server)
        .identify_with(&Identifier::id("user-42"), &request)
        .await
        .unwrap();
}

#[tokio::test]
async fn identify_with_by_cio_id_can_change_the_id() {
    let server = MockServer::start().await;
    call("PUT", "/api/v1/customers/cio_03000001", None)
        .and(body_json(
            json!({"id": "new-id", "email": "ada@example.com"}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .identify_with(
            &Identifier::cio_id("cio_03000001"),
            &IdentifyRequest::new().id("new-id").email("ada@example.com"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_sends_no_body() {
    let server = MockServer::start().await;
    call("DELETE", "/api/v1/customers/user-42", None)
        .and(EmptyBody)
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .delete(&Identifier::id("user-42"))
        .await
        .unwrap();
}

#[tokio::test]
async fn suppress_posts_to_the_person() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/ada%40example.com/suppress", None)
        .and(EmptyBody)
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .suppress(&Identifier::email("ada@example.com"))
        .await
        .unwrap();
}

#[tokio::test]
async fn unsuppress_posts_to_the_person() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/user-42/unsuppress", None)
        .and(EmptyBody)
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .unsuppress(&Identifier::id("user-42"))
        .await
        .unwrap();
}

#[tokio::test]
async fn person_event_sends_name_id_timestamp_and_data() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/user-42/events", None)
        .and(body_json(json!({
            "name": "order_completed",
            "id": EVENT_ID,
            "timestamp": 1717172000,
            "data": {"order_id": "A-1009", "total": 129.5, "currency": "EUR"}
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let event = Event::new("order_completed")
        .id(ulid())
        .timestamp(1717172000)
        .property("order_id", "A-1009")
        .property("total", 129.5)
        .property("currency", "EUR");
    client(&server)
        .track(&Identifier::id("user-42"), &event)
        .await
        .unwrap();
}

#[tokio::test]
async fn person_page_event_has_type_page() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/user-42/events", None)
        .and(body_json(json!({
            "type": "page",
            "name": "https://shop.example.com/pricing",
            "data": {"referrer": "https://google.com"}
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let page =
        Event::page("https://shop.example.com/pricing").property("referrer", "https://google.com");
    client(&server)
        .track(&Identifier::id("user-42"), &page)
        .await
        .unwrap();
}

#[tokio::test]
async fn person_screen_event_has_type_screen() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/cio_a3000001/events", None)
        .and(body_json(
            json!({"type": "screen", "name": "Checkout", "id": EVENT_ID}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .track(
            &Identifier::cio_id("a3000001"),
            &Event::screen("Checkout").id(ulid()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn anonymous_event_carries_the_anonymous_id() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/events", None)
        .and(body_json(json!({
            "anonymous_id": "anon-7f3c",
            "name": "viewed_pricing",
            "id": EVENT_ID,
            "data": {"plan": "pro"}
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let event = Event::new("viewed_pricing")
        .id(ulid())
        .property("plan", "pro");
    client(&server)
        .track_anonymous(Some("anon-7f3c"), &event)
        .await
        .unwrap();
}

#[tokio::test]
async fn anonymous_page_and_screen_events() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/events", None)
        .and(body_json(json!({
            "anonymous_id": "anon-7f3c", "type": "screen", "name": "Checkout", "timestamp": 1717172100
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    call("POST", "/api/v1/events", None)
        .and(body_json(
            json!({"anonymous_id": "anon-7f3c", "type": "page", "name": "/pricing"}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .track_anonymous(
            Some("anon-7f3c"),
            &Event::screen("Checkout").timestamp(1717172100),
        )
        .await
        .unwrap();
    client
        .track_anonymous(Some("anon-7f3c"), &Event::page("/pricing"))
        .await
        .unwrap();
}

#[tokio::test]
async fn anonymous_event_without_an_id_leaves_the_key_out() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/events", None)
        .and(body_json(json!({
            "name": "invite", "data": {"recipient": "friend@example.com"}
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .track_anonymous(
            None,
            &Event::new("invite").property("recipient", "friend@example.com"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn add_device_wraps_the_device() {
    let server = MockServer::start().await;
    call("PUT", "/api/v1/customers/user-42/devices", None)
        .and(body_json(json!({
            "device": {
                "id": "fcm-or-apns-token",
                "platform": "android",
                "last_used": 1717172300,
                "attributes": {"app_version": "3.2.1", "device_os": "14", "push_enabled": "true"}
            }
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let device = Device::new("fcm-or-apns-token", Platform::Android)
        .last_used(1717172300)
        .attribute("app_version", "3.2.1")
        .attribute("device_os", "14")
        .push_enabled(true);
    client(&server)
        .add_device(&Identifier::id("user-42"), &device)
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_device_encodes_the_token() {
    let server = MockServer::start().await;
    call(
        "DELETE",
        "/api/v1/customers/user-42/devices/abc%2Fdef%2Bghi%20jk%3D%3D",
        None,
    )
    .and(EmptyBody)
    .respond_with(ok())
    .expect(1)
    .mount(&server)
    .await;
    client(&server)
        .delete_device(&Identifier::id("user-42"), "abc/def+ghi jk==")
        .await
        .unwrap();
}

#[tokio::test]
async fn merge_sends_one_key_per_side_with_raw_cio_id() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/merge_customers", None)
        .and(body_json(json!({
            "primary": {"cio_id": "03000001"},
            "secondary": {"email": "old-address@example.com"}
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .merge(
            &Identifier::cio_id("cio_03000001"),
            &Identifier::email("old-address@example.com"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn merge_refuses_a_phone_and_identical_sides_before_sending() {
    let server = MockServer::start().await;
    nothing_sent(&server).await;
    let client = client(&server);
    let err = client
        .merge(
            &Identifier::id("user-42"),
            &Identifier::phone("+14155550100"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(err.phase(), Phase::NotSent);
    assert_eq!(err.operation(), "track.v1.merge");
    assert!(err.to_string().contains("secondary: a phone number"));
    assert!(!err.to_string().contains("4155550100"));

    let err = client
        .merge(&Identifier::id("user-42"), &Identifier::id("user-42"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[tokio::test]
async fn report_metric_sends_the_typed_metric() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/metrics", None)
        .and(body_json(json!({
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "metric": "bounced",
            "timestamp": 1717173000,
            "recipient": "ada@example.com",
            "reason": "mailbox full"
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    call("POST", "/api/v1/metrics", None)
        .and(body_json(json!({
            "delivery_id": "d2", "metric": "clicked", "timestamp": 1717173001,
            "href": "https://example.com/x"
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .report_metric(
            &DeliveryMetricReport::new(
                "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
                EmailMetric::Bounced,
                1717173000,
            )
            .recipient("ada@example.com")
            .reason("mailbox full"),
        )
        .await
        .unwrap();
    client
        .report_metric(
            &DeliveryMetricReport::new("d2", InAppMetric::Clicked, 1717173001)
                .href("https://example.com/x"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn add_to_segment_sends_id_type_explicitly() {
    let server = MockServer::start().await;
    call(
        "POST",
        "/api/v1/segments/7/add_customers",
        Some("id_type=id"),
    )
    .and(body_json(json!({"ids": ["user-1", "user-2"]})))
    .respond_with(ok())
    .expect(1)
    .mount(&server)
    .await;
    client(&server)
        .add_to_segment(7, SegmentIdType::Id, &["user-1", "user-2"])
        .await
        .unwrap();
}

#[tokio::test]
async fn remove_from_segment_by_email_and_cio_id() {
    let server = MockServer::start().await;
    call(
        "POST",
        "/api/v1/segments/7/remove_customers",
        Some("id_type=email"),
    )
    .and(body_json(json!({"ids": ["ada@example.com"]})))
    .respond_with(ok())
    .expect(1)
    .mount(&server)
    .await;
    call(
        "POST",
        "/api/v1/segments/7/remove_customers",
        Some("id_type=cio_id"),
    )
    .and(body_json(json!({"ids": ["03000001"]})))
    .respond_with(ok())
    .expect(1)
    .mount(&server)
    .await;
    let client = client(&server);
    client
        .remove_from_segment(7, SegmentIdType::Email, &[String::from("ada@example.com")])
        .await
        .unwrap();
    client
        .remove_from_segment(7, SegmentIdType::CioId, &["03000001"])
        .await
        .unwrap();
}

#[tokio::test]
async fn segment_ids_outside_1_to_1000_are_refused_before_sending() {
    let server = MockServer::start().await;
    nothing_sent(&server).await;
    let client = client(&server);
    let none: [&str; 0] = [];
    let err = client
        .add_to_segment(7, SegmentIdType::Id, &none)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("0 entries"));
    let too_many: Vec<String> = (0..1001).map(|i| format!("user-{i}")).collect();
    let err = client
        .remove_from_segment(7, SegmentIdType::Id, &too_many)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("1001 entries"));
}

#[tokio::test]
async fn segment_accepts_exactly_1000_ids() {
    let server = MockServer::start().await;
    let ids: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    call(
        "POST",
        "/api/v1/segments/7/add_customers",
        Some("id_type=id"),
    )
    .and(body_json(json!({ "ids": ids })))
    .respond_with(ok())
    .expect(1)
    .mount(&server)
    .await;
    client(&server)
        .add_to_segment(7, SegmentIdType::Id, &ids)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Paths and identifiers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn person_identifiers_are_percent_encoded_in_paths() {
    let cases = [
        (Identifier::id("team/42"), "team%2F42"),
        (Identifier::id("first last"), "first%20last"),
        (Identifier::id("a+b"), "a%2Bb"),
        (Identifier::id("zoë-日本"), "zo%C3%AB-%E6%97%A5%E6%9C%AC"),
        (
            Identifier::email("ada.l+news@example.com"),
            "ada.l%2Bnews%40example.com",
        ),
        (Identifier::id("a&b?c#d%e"), "a%26b%3Fc%23d%25e"),
        (Identifier::cio_id("03000001"), "cio_03000001"),
        (Identifier::cio_id("cio_03000001"), "cio_03000001"),
    ];
    for (person, encoded) in cases {
        let server = MockServer::start().await;
        call("DELETE", &format!("/api/v1/customers/{encoded}"), None)
            .respond_with(ok())
            .expect(1)
            .mount(&server)
            .await;
        call(
            "DELETE",
            &format!("/api/v1/customers/{encoded}/devices/tok%2Fen%20%2B%C3%A9"),
            None,
        )
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
        let client = client(&server);
        client.delete(&person).await.unwrap();
        client.delete_device(&person, "tok/en +é").await.unwrap();
        server.verify().await;
    }
}

#[tokio::test]
async fn a_phone_is_refused_in_every_person_path() {
    let server = MockServer::start().await;
    nothing_sent(&server).await;
    let client = client(&server);
    let phone = Identifier::phone("+14155550100");
    let errors = [
        client
            .identify(&phone, &serde_json::Map::new())
            .await
            .unwrap_err(),
        client
            .identify_with(&phone, &IdentifyRequest::new())
            .await
            .unwrap_err(),
        client.delete(&phone).await.unwrap_err(),
        client.suppress(&phone).await.unwrap_err(),
        client.unsuppress(&phone).await.unwrap_err(),
        client.track(&phone, &Event::new("e")).await.unwrap_err(),
        client
            .add_device(&phone, &Device::new("t", Platform::Ios))
            .await
            .unwrap_err(),
        client.delete_device(&phone, "t").await.unwrap_err(),
    ];
    let operations: Vec<&str> = errors.iter().map(|e| e.operation()).collect();
    assert_eq!(
        operations,
        [
            "track.v1.identify",
            "track.v1.identify",
            "track.v1.delete",
            "track.v1.suppress",
            "track.v1.unsuppress",
            "track.v1.event",
            "track.v1.add_device",
            "track.v1.delete_device",
        ]
    );
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert_eq!(err.phase(), Phase::NotSent);
        assert!(err.to_string().contains("phone"), "{err}");
        assert!(!err.to_string().contains("4155550100"), "{err}");
    }
}

#[tokio::test]
async fn limits_are_checked_before_sending_and_errors_hide_values() {
    let server = MockServer::start().await;
    nothing_sent(&server).await;
    let client = client(&server);
    let person = Identifier::id("user-42");

    let err = client
        .track(&person, &Event::new("n".repeat(101)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("event name is 101 bytes"));

    let big = Event::new("e").property("blob", "secret-".repeat(15_000));
    let err = client.track_anonymous(Some("a"), &big).await.unwrap_err();
    assert!(err.to_string().contains("event data is"));
    assert!(!err.to_string().contains("secret-"));

    let err = client
        .identify_with(
            &person,
            &IdentifyRequest::new().attribute("bio", "private ".repeat(200)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`bio` is 1600 bytes"));
    assert!(!err.to_string().contains("private"));

    let err = client
        .delete(&Identifier::id("long-id-".repeat(20)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("person id is 160 bytes"));
    assert!(!err.to_string().contains("long-id"));

    let err = client
        .track(&person, &Event::new("e").timestamp(1717172000123))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timestamp is not Unix seconds"));

    let err = client
        .track_anonymous(Some(""), &Event::new("e"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("anonymous_id is empty"));

    let err = client.delete_device(&person, "").await.unwrap_err();
    assert!(err.to_string().contains("device token is empty"));
}

// ---------------------------------------------------------------------------------------------
// Regions and base URLs
// ---------------------------------------------------------------------------------------------

#[test]
fn regions_pick_the_track_host() {
    let eu = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Eu),
    )
    .unwrap();
    assert_eq!(eu.base_url().as_str(), "https://track-eu.customer.io/");
    let us = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us),
    )
    .unwrap();
    assert_eq!(us.base_url().as_str(), "https://track.customer.io/");
}

#[tokio::test]
async fn an_override_with_a_path_prefix_receives_the_eu_client_requests() {
    let server = MockServer::start().await;
    call("DELETE", "/proxy/track/api/v1/customers/user-42", None)
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let config = ClientConfig::new(Region::Eu)
        .with_track_base_url(&format!("{}/proxy/track", server.uri()))
        .unwrap();
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    assert_eq!(
        client.base_url().as_str(),
        format!("{}/proxy/track", server.uri())
    );
    client.delete(&Identifier::id("user-42")).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_400_body_is_parsed_into_api_errors() {
    let server = MockServer::start().await;
    call("PUT", "/api/v1/customers/user-42/devices", None)
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"meta": {"errors": ["device platform is invalid", "last_used is invalid"]}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .add_device(
            &Identifier::id("user-42"),
            &Device::new("t", Platform::Other("web".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert_eq!(err.phase(), Phase::ResponseReceived);
    assert_eq!(err.status_code().map(|s| s.as_u16()), Some(400));
    assert!(!err.is_retryable());
    let messages: Vec<_> = err
        .api_errors()
        .iter()
        .map(|e| e.message.as_deref())
        .collect();
    assert_eq!(
        messages,
        [
            Some("device platform is invalid"),
            Some("last_used is invalid")
        ]
    );
}

#[tokio::test]
async fn a_merge_400_with_meta_error_is_parsed() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/merge_customers", None)
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"meta": {"error": "primary has more than one identifier"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .merge(&Identifier::id("a"), &Identifier::id("b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert_eq!(err.api_errors().len(), 1);
    assert_eq!(
        err.api_errors()[0].message.as_deref(),
        Some("primary has more than one identifier")
    );
}

#[tokio::test]
async fn a_401_is_an_auth_error() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/user-42/suppress", None)
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .suppress(&Identifier::id("user-42"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.operation(), "track.v1.suppress");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_429_carries_retry_after_in_seconds() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/customers/user-42/events", None)
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .track(&Identifier::id("user-42"), &Event::new("e"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_429_carries_retry_after_as_an_http_date() {
    let server = MockServer::start().await;
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    call("POST", "/api/v1/events", None)
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", at.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .track_anonymous(Some("anon"), &Event::new("e"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    // An HTTP-date has whole seconds and the clock moves on: allow a margin, not an exact value.
    let delay = err.retry_after().unwrap();
    assert!(
        delay >= Duration::from_secs(100) && delay <= Duration::from_secs(120),
        "{delay:?}"
    );
}

#[tokio::test]
async fn a_5xx_is_a_retryable_server_error() {
    let server = MockServer::start().await;
    call(
        "POST",
        "/api/v1/segments/3/add_customers",
        Some("id_type=id"),
    )
    .respond_with(ResponseTemplate::new(503).set_body_string("<html>down</html>"))
    .expect(1)
    .mount(&server)
    .await;
    let err = client(&server)
        .add_to_segment(3, SegmentIdType::Id, &["u1"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.phase(), Phase::ResponseReceived);
    assert!(err.is_retryable());
    assert!(err.api_errors().is_empty());
    assert_eq!(err.body(), Some("<html>down</html>"));
}

#[tokio::test]
async fn a_timeout_is_transient_and_maybe_sent() {
    let server = MockServer::start().await;
    call("POST", "/api/v1/metrics", None)
        .respond_with(ok().set_delay(Duration::from_millis(1500)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_with(
        &server,
        ClientConfig::new(Region::Us).with_timeout(Duration::from_millis(200)),
    );
    let err = client
        .report_metric(&DeliveryMetricReport::new(
            "d1",
            EmailMetric::Opened,
            1717173000,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.phase(), Phase::MaybeSent);
    assert!(err.status_code().is_none());
}

#[tokio::test]
async fn a_204_without_a_body_is_a_success() {
    let server = MockServer::start().await;
    call("DELETE", "/api/v1/customers/user-42", None)
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .delete(&Identifier::id("user-42"))
        .await
        .unwrap();
}
