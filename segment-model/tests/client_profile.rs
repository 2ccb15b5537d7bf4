//! Profile API reader against a mock server: exact requests, paging, 404, errors, redaction.
#![cfg(feature = "client")]

use std::time::Duration;

use segment_model::client::profile::{
    AccessToken, Collection, ExternalId, ExternalIdError, InvalidLimit, MAX_TRAITS_LIMIT,
    ProfileClient, ProfileClientBuilder, ProfileConfigError, TraitClass, TraitsQuery,
};
use segment_model::client::{Api, BaseUrl, ClientError, FailureKind, Region};
use serde_json::{Map, Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "tok_abc123";
/// `printf 'tok_abc123:' | base64`
const AUTH: &str = "Basic dG9rX2FiYzEyMzo=";
const SPACE: &str = "spa_9zYxWvUtS";
const USER_PATH: &str =
    "/v1/spaces/spa_9zYxWvUtS/collections/users/profiles/user_id:usr_48151623/traits";
const USER_AGENT: &str = concat!("segment-model/", env!("CARGO_PKG_VERSION"));

/// Matches the exact raw query string (`None`: no query at all).
struct Query(Option<&'static str>);

impl Match for Query {
    fn matches(&self, request: &Request) -> bool {
        request.url.query() == self.0
    }
}

fn builder(server: &MockServer) -> ProfileClientBuilder {
    ProfileClient::builder(AccessToken::new(TOKEN), SPACE)
        .base_url(BaseUrl::parse(&server.uri()).expect("mock uri"))
}

fn user() -> ExternalId {
    ExternalId::user_id("usr_48151623").expect("valid id")
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("fixture is not an object: {other}"),
    }
}

#[tokio::test]
async fn reads_traits_with_exact_path_query_and_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(Some("limit=200&include=email%2Cplan&class=audience")))
        .and(header("authorization", AUTH))
        .and(header("user-agent", USER_AGENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"email": "lena.fischer@example.org", "plan": "growth"},
            "cursor": {"url": USER_PATH, "has_more": false, "next": ""}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let query = TraitsQuery::new()
        .limit(200)
        .expect("limit")
        .include(["email", "plan"])
        .class(TraitClass::Audience);
    let traits = client.traits(&user(), &query).await.expect("ok");
    assert_eq!(
        traits,
        Some(obj(
            json!({"email": "lena.fischer@example.org", "plan": "growth"})
        ))
    );
}

#[tokio::test]
async fn a_query_without_options_has_no_query_string() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(None))
        .and(header("authorization", AUTH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"traits": {"a": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let page = client
        .traits_page(Collection::Users, &user(), &TraitsQuery::new(), None)
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(page.traits, obj(json!({"a": 1})));
    assert_eq!(page.cursor, None);
    assert_eq!(page.next_cursor(), None);
}

#[tokio::test]
async fn paging_follows_the_next_cursor_until_has_more_is_false() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(Some("limit=2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"a": 1, "b": 2},
            "cursor": {"url": USER_PATH, "has_more": true, "next": "b", "limit": 2}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(Some("limit=2&next=b")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"c": 3, "d": 4},
            "cursor": {"url": USER_PATH, "has_more": true, "next": "d", "limit": 2}
        })))
        // Once while following the cursor, once for the explicit single-page call below.
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(Some("limit=2&next=d")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"e": 5},
            "cursor": {"url": USER_PATH, "has_more": false, "next": ""}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let query = TraitsQuery::new().limit(2).expect("limit");
    let traits = client.traits(&user(), &query).await.expect("ok");
    assert_eq!(
        traits,
        Some(obj(json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})))
    );

    // The single-page call exposes the cursor for callers who page themselves.
    let page = client
        .traits_page(Collection::Users, &user(), &query, Some("b"))
        .await
        .expect("ok")
        .expect("found");
    assert_eq!(page.next_cursor(), Some("d"));
    let cursor = page.cursor.expect("cursor");
    assert!(cursor.has_more);
    assert_eq!(cursor.limit, Some(2));
    assert_eq!(cursor.url.as_deref(), Some(USER_PATH));
}

#[tokio::test]
async fn not_found_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"code": "not_found", "message": "Profile was not found."}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    assert_eq!(
        client
            .traits(&user(), &TraitsQuery::new())
            .await
            .expect("ok"),
        None
    );
}

#[tokio::test]
async fn not_found_on_a_later_page_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(None))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {"a": 1}, "cursor": {"has_more": true, "next": "x"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .and(Query(Some("next=x")))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let err = client
        .traits(&user(), &TraitsQuery::new())
        .await
        .expect_err("404 mid-way");
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_repeating_cursor_stops_with_a_protocol_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {}, "cursor": {"has_more": true, "next": "same"}
        })))
        .expect(2)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let err = client
        .traits(&user(), &TraitsQuery::new())
        .await
        .expect_err("loop detected");
    assert!(
        matches!(
            err,
            ClientError::Protocol {
                api: Api::Profile,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn has_more_without_next_is_a_protocol_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "traits": {}, "cursor": {"has_more": true, "next": ""}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let err = client
        .traits(&user(), &TraitsQuery::new())
        .await
        .expect_err("no next");
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn ids_are_percent_encoded_in_the_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/spaces/spa_9zYxWvUtS/collections/users/profiles/email:lena%2Btest%40example.org/traits",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"traits": {}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/spaces/spa_9zYxWvUtS/collections/accounts/profiles/group_id:acct%2F2718%20x/traits",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"traits": {"n": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    let email = ExternalId::email("lena+test@example.org").expect("id");
    assert_eq!(
        client
            .traits(&email, &TraitsQuery::new())
            .await
            .expect("ok"),
        Some(Map::new())
    );
    let group = ExternalId::group_id("acct/2718 x").expect("id");
    assert_eq!(
        client
            .collection_traits(Collection::Accounts, &group, &TraitsQuery::new())
            .await
            .expect("ok"),
        Some(obj(json!({"n": 1})))
    );
}

#[tokio::test]
async fn lookup_values_can_be_lower_cased() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/v1/spaces/spa_9zYxWvUtS/collections/users/profiles/email:lena%40example.org/traits",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"traits": {}})))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server)
        .lowercase_lookup_values(true)
        .build()
        .expect("client");
    let id = ExternalId::email("Lena@Example.ORG").expect("id");
    assert!(
        client
            .traits(&id, &TraitsQuery::new())
            .await
            .expect("ok")
            .is_some()
    );

    // Off by default: the value is sent as given.
    let as_given = builder(&server).build().expect("client");
    let url = as_given.traits_url(Collection::Users, &id, &TraitsQuery::new(), None);
    assert!(
        url.path().ends_with("/email:Lena%40Example.ORG/traits"),
        "{url}"
    );
}

#[test]
fn region_selects_the_profile_host() {
    let url = |region| {
        ProfileClient::builder(AccessToken::new(TOKEN), SPACE)
            .region(region)
            .build()
            .expect("client")
            .traits_url(Collection::Users, &user(), &TraitsQuery::new(), None)
            .to_string()
    };
    assert_eq!(
        url(Region::Us),
        format!("https://profiles.segment.com{USER_PATH}")
    );
    assert_eq!(
        url(Region::Eu),
        format!("https://profiles.euw1.segment.com{USER_PATH}")
    );
}

async fn error_for(template: ResponseTemplate) -> ClientError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(USER_PATH))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).build().expect("client");
    client
        .traits(&user(), &TraitsQuery::new())
        .await
        .expect_err("error expected")
}

#[tokio::test]
async fn rate_limited_is_throttled_with_retry_after_and_request_id() {
    let err = error_for(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "2")
            .insert_header("Request-Id", "req_42")
            .set_body_json(json!({"error": {"code": "rate_limit_error", "message": "slow down"}})),
    )
    .await;
    assert_eq!(err.kind(), FailureKind::Throttled);
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    match &err {
        ClientError::Status {
            request_id, code, ..
        } => {
            assert_eq!(request_id.as_deref(), Some("req_42"));
            assert_eq!(code.as_deref(), Some("rate_limit_error"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the Segment Profile API answered HTTP 429 (rate_limit_error)"
    );
}

#[tokio::test]
async fn server_errors_are_retryable_and_auth_errors_are_not() {
    let err = error_for(ResponseTemplate::new(503)).await;
    assert_eq!(err.kind(), FailureKind::Server);
    assert!(err.is_retryable());

    let err =
        error_for(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"code": "authentication_error", "message": "bad token"}}),
        ))
        .await;
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());

    let err = error_for(ResponseTemplate::new(400)).await;
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn undecodable_bodies_name_the_json_path() {
    let err = error_for(ResponseTemplate::new(200).set_body_json(json!({
        "traits": {}, "cursor": {"has_more": "yes"}
    })))
    .await;
    match &err {
        ClientError::Decode { path, status, .. } => {
            assert_eq!(path, "cursor.has_more");
            assert_eq!(*status, 200);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_retryable());

    let err = error_for(ResponseTemplate::new(200).set_body_json(json!({"traits": [1]}))).await;
    assert!(
        matches!(&err, ClientError::Decode { path, .. } if path == "traits"),
        "{err:?}"
    );

    let err = error_for(ResponseTemplate::new(200).set_body_string("not json")).await;
    assert!(
        matches!(&err, ClientError::Decode { path, .. } if path == "$"),
        "{err:?}"
    );
}

#[test]
fn queries_and_ids_are_validated() {
    assert_eq!(TraitsQuery::new().limit(0), Err(InvalidLimit(0)));
    assert_eq!(TraitsQuery::new().limit(201), Err(InvalidLimit(201)));
    assert!(TraitsQuery::new().limit(MAX_TRAITS_LIMIT).is_ok());
    assert_eq!(
        ExternalId::new("Email", "x"),
        Err(ExternalIdError::InvalidType)
    );
    assert_eq!(ExternalId::new("", "x"), Err(ExternalIdError::InvalidType));
    assert_eq!(
        ExternalId::new("user id", "x"),
        Err(ExternalIdError::InvalidType)
    );
    assert_eq!(ExternalId::user_id(""), Err(ExternalIdError::EmptyValue));
    let custom = ExternalId::new("ios.idfa", "ABC").expect("custom type");
    assert_eq!(custom.id_type(), "ios.idfa");
    assert_eq!(custom.value(), "ABC");
    assert!(matches!(
        ProfileClient::builder(AccessToken::new(TOKEN), "").build(),
        Err(ProfileConfigError::EmptySpaceId)
    ));
    assert!(matches!(
        ProfileClient::builder(AccessToken::new(TOKEN), SPACE)
            .timeout(Duration::ZERO)
            .build(),
        Err(ProfileConfigError::ZeroTimeout)
    ));
}

#[tokio::test]
async fn the_token_and_lookup_values_never_appear_in_debug_output() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .expect(1)
        .mount(&server)
        .await;
    let token = AccessToken::new(TOKEN);
    let builder = builder(&server);
    let builder_debug = format!("{builder:?}");
    let client = builder.build().expect("client");
    let id = ExternalId::email("lena.fischer@example.org").expect("id");
    let err = client
        .traits(&id, &TraitsQuery::new())
        .await
        .expect_err("500");
    let encoded = AUTH.trim_start_matches("Basic ");
    for text in [
        format!("{token:?}"),
        format!("{token}"),
        builder_debug,
        format!("{client:?}"),
        format!("{err:?}"),
        format!("{err}"),
    ] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains(encoded), "encoded token leaked: {text}");
    }
    let id_debug = format!("{id:?}");
    assert!(!id_debug.contains("lena"), "{id_debug}");
    assert!(id_debug.contains("email"), "{id_debug}");
}

#[tokio::test]
async fn transport_errors_do_not_show_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = ProfileClient::builder(AccessToken::new(TOKEN), SPACE)
        .base_url(BaseUrl::parse(&format!("http://127.0.0.1:{port}")).expect("url"))
        .build()
        .expect("client");
    let id = ExternalId::email("lena.fischer@example.org").expect("id");
    let err = client
        .traits(&id, &TraitsQuery::new())
        .await
        .expect_err("refused");
    assert!(err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(!text.contains("lena"), "{text}");
}

#[test]
fn client_and_futures_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let client = ProfileClient::builder(AccessToken::new(TOKEN), SPACE)
        .build()
        .expect("client");
    assert_send_sync(&client);
    let id = user();
    let query = TraitsQuery::new();
    // Futures are only constructed, never polled.
    assert_send(&client.traits(&id, &query));
    assert_send(&client.traits_page(Collection::Users, &id, &query, None));
}
