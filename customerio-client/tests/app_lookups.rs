//! App API look-ups against a mock server: segments, people, the filter search and paging.
//! Each test asserts the exact method, path, query string, Bearer header and body, and how many
//! requests arrived.

use customerio_client::app::filter::Filter;
use customerio_client::app::people::{CioIdForm, PageRequest, PersonRef};
use customerio_client::app::segments::{NewSegment, SegmentType};
use customerio_client::{AppApiKey, AppClient, ClientConfig, ErrorKind, Identifier, Phase, Region};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const KEY: &str = "app-secret-key";

fn client(server: &MockServer) -> AppClient {
    let config = ClientConfig::new(Region::Eu)
        .with_app_base_url(&server.uri())
        .unwrap();
    AppClient::new(AppApiKey::new(KEY), config).unwrap()
}

/// Matches a request whose whole query string is exactly `expected` (`None`: no query).
fn exact_query(expected: Option<&'static str>) -> impl Fn(&Request) -> bool + Send + Sync {
    move |request: &Request| request.url.query() == expected
}

/// Matches a request without a body.
fn no_body(request: &Request) -> bool {
    request.body.is_empty()
}

fn get(route: &str, query: Option<&'static str>) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path(route))
        .and(exact_query(query))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(no_body)
}

fn post(route: &str, query: Option<&'static str>, body: Value) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(route))
        .and(exact_query(query))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn segment_json(id: u64) -> Value {
    json!({"id": id, "deduplicate_id": format!("{id}:1717171717"), "name": "High intent",
           "description": "from Segment", "state": "finished", "progress": null,
           "type": "manual", "tags": null})
}

fn customer_json() -> Value {
    json!({"customer": {
        "id": "user-42",
        "identifiers": {"id": "user-42", "email": "ada@example.com", "cio_id": "d9c106000001"},
        "attributes": {"id": "user-42", "email": "ada@example.com", "plan": "pro", "created_at": "1717171717"},
        "timestamps": {"id": 1717171717, "plan": 1717171800},
        "unsubscribed": false,
        "devices": [{"id": "fcm-token", "platform": "android", "last_used": 1717172300,
                     "attributes": {"push_enabled": "true"}}]
    }})
}

#[tokio::test]
async fn create_segment_sends_the_wrapped_body() {
    let server = MockServer::start().await;
    post(
        "/v1/segments",
        None,
        json!({"segment": {"name": "High intent", "description": "from Segment"}}),
    )
    .respond_with(ok(json!({"segment": segment_json(7)})))
    .expect(1)
    .mount(&server)
    .await;
    let segment = client(&server)
        .create_segment(&NewSegment::new("High intent").with_description("from Segment"))
        .await
        .unwrap();
    assert_eq!(segment.id, 7);
    assert_eq!(segment.deduplicate_id.as_deref(), Some("7:1717171717"));
    assert_eq!(segment.segment_type, Some(SegmentType::Manual));
    assert_eq!(segment.state.as_deref(), Some("finished"));
}

#[tokio::test]
async fn create_segment_without_name_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let err = client(&server)
        .create_segment(&NewSegment::new("  "))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("segment.name is empty"));
}

#[tokio::test]
async fn list_get_count_and_delete_segments() {
    let server = MockServer::start().await;
    get("/v1/segments", None)
        .respond_with(ok(json!({"segments": [segment_json(7),
            {"id": 8, "name": "Active", "type": "dynamic", "description": "", "tags": ["core"]}]})))
        .expect(1)
        .mount(&server)
        .await;
    get("/v1/segments/7", None)
        .respond_with(ok(json!({"segment": segment_json(7)})))
        .expect(1)
        .mount(&server)
        .await;
    get("/v1/segments/7/customer_count", None)
        .respond_with(ok(json!({"count": 123})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/segments/7"))
        .and(exact_query(None))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(no_body)
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let all = client.list_segments().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].segment_type, Some(SegmentType::Dynamic));
    assert_eq!(all[1].tags.as_deref(), Some(&["core".to_owned()][..]));
    assert_eq!(client.get_segment(7).await.unwrap().name, "High intent");
    assert_eq!(client.segment_customer_count(7).await.unwrap(), 123);
    client.delete_segment(7).await.unwrap();
}

#[tokio::test]
async fn unknown_segment_is_a_404_client_error() {
    let server = MockServer::start().await;
    get("/v1/segments/99", None)
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"errors": [{"detail": "segment not found", "status": "404"}]}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).get_segment(99).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert_eq!(err.status_code().map(|s| s.as_u16()), Some(404));
    assert_eq!(
        err.api_errors()[0].message.as_deref(),
        Some("segment not found")
    );
    assert_eq!(err.operation(), "app.segments.get");
}

#[tokio::test]
async fn segment_members_are_followed_across_pages() {
    let server = MockServer::start().await;
    get("/v1/segments/7/membership", Some("limit=2"))
        .respond_with(ok(json!({
            "identifiers": [{"id": "u1", "email": "a@example.com", "cio_id": "c1"},
                            {"id": null, "email": "b@example.com", "cio_id": "c2"}],
            "ids": ["u1", ""],
            "next": "cursor-2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The App API types this cursor as an integer in places: it must still be followed.
    get("/v1/segments/7/membership", Some("start=cursor-2&limit=2"))
        .respond_with(ok(json!({
            "identifiers": [{"id": "u3", "email": null, "cio_id": "c3"}],
            "ids": ["u3"],
            "next": 3
        })))
        .expect(1)
        .mount(&server)
        .await;
    get("/v1/segments/7/membership", Some("start=3&limit=2"))
        .respond_with(ok(json!({"identifiers": [], "ids": [], "next": ""})))
        .expect(1)
        .mount(&server)
        .await;

    let mut pager = client(&server).segment_members(7, Some(2));
    let mut people = Vec::new();
    let mut pages = 0;
    while let Some(page) = pager.next_page().await.unwrap() {
        pages += 1;
        people.extend(page.identifiers.into_iter().map(|p| p.cio_id.unwrap()));
    }
    assert_eq!(pages, 3);
    assert_eq!(people, ["c1", "c2", "c3"]);
    assert!(pager.is_done());
    // A finished pager sends nothing more (the mocks' `.expect(1)` checks it).
    assert!(pager.next_page().await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_page_is_asked_for_again() {
    let server = MockServer::start().await;
    post(
        "/v1/customers",
        None,
        json!({"filter": {"segment": {"id": 4}}}),
    )
    .respond_with(ok(
        json!({"identifiers": [{"id": "u1", "email": null}], "ids": ["u1"], "next": "n2"}),
    ))
    .expect(1)
    .mount(&server)
    .await;
    // The first try of page 2 is throttled; the second try gets it.
    post(
        "/v1/customers",
        Some("start=n2"),
        json!({"filter": {"segment": {"id": 4}}}),
    )
    .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
    .up_to_n_times(1)
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/customers",
        Some("start=n2"),
        json!({"filter": {"segment": {"id": 4}}}),
    )
    .respond_with(ok(
        json!({"identifiers": [{"id": "u2", "email": null}], "ids": ["u2"]}),
    ))
    .expect(1)
    .mount(&server)
    .await;

    let mut pager = client(&server).search_customers_pages(Filter::segment(4), None);
    let first = pager.next_page().await.unwrap().unwrap();
    assert_eq!(first.ids, ["u1"]);
    let err = pager.next_page().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(1)));
    assert_eq!(pager.cursor(), Some("n2"));
    let second = pager.next_page().await.unwrap().unwrap();
    assert_eq!(second.ids, ["u2"]);
    assert!(pager.next_page().await.unwrap().is_none());
}

#[tokio::test]
async fn a_repeated_cursor_ends_the_walk() {
    let server = MockServer::start().await;
    get("/v1/segments/3/membership", Some("start=same"))
        .respond_with(ok(json!({"identifiers": [], "ids": [], "next": "same"})))
        .expect(1)
        .mount(&server)
        .await;
    let mut pager = client(&server).segment_members(3, None).starting_at("same");
    assert!(pager.next_page().await.unwrap().is_some());
    assert!(pager.next_page().await.unwrap().is_none());
}

#[tokio::test]
async fn search_sends_the_filter_json_and_limit() {
    let server = MockServer::start().await;
    post(
        "/v1/customers",
        Some("limit=1000"),
        json!({"filter": {"and": [{"segment": {"id": 12}},
            {"not": {"attribute": {"field": "unsubscribed", "operator": "eq", "value": "true"}}}]}}),
    )
    .respond_with(ok(json!({
        "identifiers": [{"id": "42", "email": "ada@example.com", "cio_id": "c42", "phone": "+1415"}],
        "ids": ["42"],
        "next": null
    })))
    .expect(1)
    .mount(&server)
    .await;
    let filter = Filter::and([
        Filter::segment(12),
        Filter::not(Filter::attribute("unsubscribed").eq("true")),
    ]);
    let page = client(&server)
        .search_customers(&filter, &PageRequest::first(1000))
        .await
        .unwrap();
    assert_eq!(page.next, None);
    assert_eq!(
        page.identifiers[0].extra.get("phone"),
        Some(&json!("+1415"))
    );
}

#[tokio::test]
async fn search_refuses_bad_limits_and_filters_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let cases = [
        (
            Filter::segment(1),
            PageRequest::first(1001),
            "limit is 1001",
        ),
        (Filter::segment(1), PageRequest::first(0), "limit is 0"),
        (
            Filter::or([Filter::segment(1), Filter::attribute("").exists()]),
            PageRequest::default(),
            "filter.or[1].attribute.field is empty",
        ),
    ];
    for (filter, page, expected) in cases {
        let err = client.search_customers(&filter, &page).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.phase(), Phase::NotSent);
        assert!(err.to_string().contains(expected), "{err} / {expected}");
    }
}

#[tokio::test]
async fn one_persons_attributes_by_each_identifier_kind() {
    let server = MockServer::start().await;
    let routes = [
        ("/v1/customers/user-42/attributes", "id_type=id"),
        (
            "/v1/customers/ada%2Bx%40example.com/attributes",
            "id_type=email",
        ),
        ("/v1/customers/d9c106000001/attributes", "id_type=cio_id"),
        (
            "/v1/customers/cio_d9c106000001/attributes",
            "id_type=cio_id",
        ),
        ("/v1/customers/%2B14155550100/attributes", "id_type=phone"),
    ];
    for (route, query) in routes {
        get(route, Some(query))
            .respond_with(ok(customer_json()))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = client(&server);
    let people: [PersonRef; 5] = [
        Identifier::id("user-42").into(),
        Identifier::email("ada+x@example.com").into(),
        Identifier::cio_id("cio_d9c106000001").into(),
        PersonRef::new(Identifier::cio_id("d9c106000001")).with_cio_id_form(CioIdForm::Prefixed),
        Identifier::phone("+14155550100").into(),
    ];
    for person in people {
        let customer = client.customer_attributes(person).await.unwrap();
        assert_eq!(customer.attribute("plan"), Some("pro"));
        assert_eq!(customer.timestamp("plan"), Some(1_717_171_800));
        assert_eq!(customer.identifiers.cio_id.as_deref(), Some("d9c106000001"));
        assert_eq!(customer.unsubscribed, Some(false));
        assert_eq!(customer.devices.len(), 1);
    }
}

#[tokio::test]
async fn attributes_400_meta_error_and_401() {
    let server = MockServer::start().await;
    get(
        "/v1/customers/ada%40example.com/attributes",
        Some("id_type=email"),
    )
    .respond_with(
        ResponseTemplate::new(400).set_body_json(
            json!({"meta": {"error": "email is not an identifier in this workspace"}}),
        ),
    )
    .expect(1)
    .mount(&server)
    .await;
    let err = client(&server)
        .customer_attributes(Identifier::email("ada@example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert_eq!(
        err.api_errors()[0].message.as_deref(),
        Some("email is not an identifier in this workspace")
    );
    assert!(!err.to_string().contains("ada@"));

    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&denied)
        .await;
    let err = client(&denied).list_segments().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(!err.is_retryable());
    assert!(err.api_errors().is_empty());
}

#[tokio::test]
async fn server_errors_are_retryable_and_reported_once() {
    let server = MockServer::start().await;
    get("/v1/segments/7/customer_count", None)
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).segment_customer_count(7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(err.is_retryable());
    assert_eq!(err.body(), Some("<html>bad gateway</html>"));
}

#[tokio::test]
async fn many_peoples_attributes() {
    let server = MockServer::start().await;
    post(
        "/v1/customers/attributes",
        None,
        json!({"ids": ["user-42", "nobody"]}),
    )
    .respond_with(ok(json!({"customers": [customer_json()]})))
    .expect(1)
    .mount(&server)
    .await;
    let customers = client(&server)
        .customers_attributes(&["user-42", "nobody"])
        .await
        .unwrap();
    // Unknown ids are left out of the answer.
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0].id.as_deref(), Some("user-42"));
}

#[tokio::test]
async fn more_than_100_ids_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"customers": []})))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let ids: Vec<String> = (0..101).map(|i| format!("user-{i}")).collect();
    let err = client.customers_attributes(&ids).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(err.phase(), Phase::NotSent);
    assert!(
        err.to_string().contains("101 ids; the limit is 100"),
        "{err}"
    );

    let none: [&str; 0] = [];
    assert!(client.customers_attributes(&none).await.is_err());
    let err = client.customers_attributes(&["ok", ""]).await.unwrap_err();
    assert!(err.to_string().contains("ids[1] is empty"), "{err}");
}

#[tokio::test]
async fn exactly_100_ids_are_sent() {
    let server = MockServer::start().await;
    let ids: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    post("/v1/customers/attributes", None, json!({ "ids": ids }))
        .respond_with(ok(json!({"customers": []})))
        .expect(1)
        .mount(&server)
        .await;
    assert!(
        client(&server)
            .customers_attributes(&ids)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn people_by_email_encode_the_query() {
    let server = MockServer::start().await;
    get("/v1/customers", Some("email=ada%2Bnews%40example.com"))
        .respond_with(ok(json!({"results": [
            {"id": "42", "email": "ada+news@example.com", "cio_id": "c42"},
            {"id": null, "email": "ada+news@example.com", "cio_id": "c43"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let people = client(&server)
        .customers_by_email("ada+news@example.com")
        .await
        .unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[1].id, None);
    assert_eq!(people[1].cio_id.as_deref(), Some("c43"));
}

#[tokio::test]
async fn a_persons_segments() {
    let server = MockServer::start().await;
    get("/v1/customers/user%2F42/segments", Some("id_type=id"))
        .respond_with(ok(
            json!({"segments": [{"id": 7, "name": "High intent", "description": null}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let segments = client(&server)
        .customer_segments(&Identifier::id("user/42"))
        .await
        .unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].id, 7);
    assert_eq!(segments[0].description, None);
}

#[tokio::test]
async fn an_undecodable_answer_is_a_decode_error() {
    let server = MockServer::start().await;
    get("/v1/segments/7", None)
        .respond_with(ok(json!({"segment": {"id": "seven"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).get_segment(7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.phase(), Phase::ResponseReceived);
}

#[test]
fn public_futures_and_types_are_send_and_sync() {
    fn send<T: Send>(_: T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<customerio_client::app::people::PeoplePager>();
    send_sync::<customerio_client::app::transactional::SendEmail>();
    send_sync::<customerio_client::app::broadcast::TriggerBroadcast>();
    send_sync::<Filter>();

    let client = AppClient::new(AppApiKey::new(KEY), ClientConfig::new(Region::Us)).unwrap();
    // Futures are built, never polled: this only checks their auto traits.
    send(client.list_segments());
    send(client.segment_membership(1, &PageRequest::default()));
    send(client.search_customers(&Filter::segment(1), &PageRequest::default()));
    send(client.customer_attributes(Identifier::id("u")));
    send(client.customers_attributes(&["u"]));
    let mut pager = client.segment_members(1, None);
    send(pager.next_page());
    let email = customerio_client::app::transactional::SendEmail::template(
        1,
        "a@x.com",
        Identifier::id("u"),
    );
    send(client.send_email(&email));
    let trigger = customerio_client::app::broadcast::TriggerBroadcast::new(
        customerio_client::app::broadcast::Audience::Default,
    );
    send(client.trigger_broadcast(1, &trigger));
}
